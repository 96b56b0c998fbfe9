"""A small copy of a judged collection, to see what the default hybrid does in a small index of its kind.

    python benchmarks/collections/subsample.py debian-packages --out /tmp/debian-packages-400

writes corpus.jsonl, queries.jsonl and test.tsv (BEIR layout) to --out: a seeded sample of --queries of the
collection's queries, every document judged relevant to one of them, and seeded other documents up to --documents.
docs/benchmarks.md ("Round 12") used it with the defaults on debian-packages, info-extra and info-index: small
indexes where BM25 is the stronger retriever, or as strong as the dense one. Standard library only; the same
arguments give the same files.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

COLLECTIONS = Path(__file__).resolve().parent


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def subsample(folder: Path, out: Path, n_queries: int, n_documents: int, seed: int) -> tuple[int, int]:
    """Write the small copy of the collection in ``folder`` to ``out``; returns (queries, documents) written."""
    documents = read_jsonl(folder / "corpus.jsonl")
    queries = read_jsonl(folder / "queries.jsonl")
    with open(folder / "test.tsv", encoding="utf-8") as qrels:
        judgments = [line.rstrip("\n").split("\t") for line in qrels][1:]
    ids = {doc["_id"] for doc in documents}
    rng = random.Random(seed)
    judged = sorted({query_id for query_id, doc_id, score in judgments if int(score) > 0 and doc_id in ids})
    if len(judged) < n_queries:
        sys.exit(f"{folder.name}: only {len(judged)} judged queries, fewer than --queries {n_queries}")
    chosen = set(rng.sample(judged, n_queries))
    kept = [row for row in judgments if row[0] in chosen and row[1] in ids and int(row[2]) > 0]
    relevant = {doc_id for _, doc_id, _ in kept}
    if len(relevant) > n_documents:
        sys.exit(f"{folder.name}: {len(relevant)} judged documents, more than --documents {n_documents}")
    others = set(rng.sample(sorted(ids - relevant), min(n_documents - len(relevant), len(ids - relevant))))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as corpus:
        for doc in documents:
            if doc["_id"] in relevant or doc["_id"] in others:
                corpus.write(json.dumps(doc) + "\n")
    with open(out / "queries.jsonl", "w", encoding="utf-8") as written:
        for query in queries:
            if query["_id"] in chosen:
                written.write(json.dumps(query) + "\n")
    with open(out / "test.tsv", "w", encoding="utf-8") as qrels:
        qrels.write("query-id\tcorpus-id\tscore\n")
        qrels.writelines("\t".join(row) + "\n" for row in kept)
    return len(chosen), len(relevant) + len(others)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("collection", help="a folder name under benchmarks/collections")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--documents", type=int, default=400)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    n_queries, n_documents = subsample(COLLECTIONS / args.collection, args.out, args.queries, args.documents,
                                       args.seed)
    print(f"{args.collection}: {n_queries} queries, {n_documents} documents in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
