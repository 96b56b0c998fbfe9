"""Query latency per search mode on dbpedia-entity, query encoding reported separately.

    python benchmarks/query.py [--index dbp] [--queries PATH] [--rounds 5] [--k 10] [--warmup 1] [--window N]

Needs OpenSearch (SEMSEARCH_OPENSEARCH_URL). When --index does not exist, the dbpedia-entity corpus
is ingested into it first, in-process, with semsearch's own pipeline.

All timings go through the public ``Searcher``. After warm-up every query vector is in the Searcher's
LRU, so the per-mode figures (keyword, semantic, hybrid) are search latency without encoding; the
encoding is timed on its own (``encoder.encode_query``, nothing cached), and ``end_to_end_hybrid``
is a hybrid search on a Searcher whose vector cache is empty (encoding included), as a first-time
query would be. In each round, for each query, the timed calls run in a rotating order so machine
noise hits all alike. Progress goes to stderr; one JSON line to stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import DATA  # noqa: E402
from semsearch import FusionConfig, Searcher, Settings  # noqa: E402
from semsearch.query.search import DEFAULT_WINDOW  # noqa: E402
from semsearch.query.server_hybrid import neural_search_present, unsupported_reason  # noqa: E402

MODES = ("keyword", "semantic", "hybrid")
# The default before issue 15, side by side: plain weighted RRF over two lists (one _msearch of two searches,
# where the adaptive default sends four or five: strict and any-term BM25, kNN, a count of the documents, and a
# phrase search when the query has two to four terms).
PLAIN_HYBRID = FusionConfig("rrf", {"keyword": 0.25, "semantic": 1.0}, rrf_k=20)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def existing_path(value: str) -> Path:
    """``value`` as given (absolute or from the working directory), else from the repository root."""
    path = Path(value).expanduser()
    for candidate in (path, ROOT / path):
        if candidate.is_file():
            return candidate.resolve()
    raise argparse.ArgumentTypeError(f"{value}: no such file (looked from {Path.cwd()} and {ROOT})")


def read_queries(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [text for text in (json.loads(line).get("text", "").strip() for line in handle if line.strip()) if text]


def ingest_corpus(searcher: Searcher, index: str, corpus: Path) -> dict:
    """Ingest ``corpus`` into a new ``index`` the way ``semsearch ingest`` does without a broker."""
    from semsearch.writing.bulk import BulkWriter
    from semsearch.writing.documents import DeadLetterFile, DocumentSchema, read_jsonl
    from semsearch.index.manage import ensure_index
    from semsearch.writing.pipeline import run_in_process

    settings, client, encoder = searcher.settings, searcher.client, searcher.encoder
    info, _ = ensure_index(client, index, fingerprint=encoder.fingerprint.as_dict(), settings=settings)
    schema = DocumentSchema.from_settings(settings, text_fields=tuple(info.text_fields),
                                          vector_field=info.vector_field)
    writer = BulkWriter.from_settings(client, index, info.vector_field, settings, passages_field=info.passages_field)
    dead_path = Path(tempfile.mkdtemp(prefix="semsearch-query-bench-")) / f"{index}.deadletter.jsonl"
    with DeadLetterFile(dead_path) as dead:
        report = run_in_process(read_jsonl([str(corpus)], schema), encoder=encoder, writer=writer,
                                dead_letter=dead, chunk_overlap=info.passage_overlap)
    client.indices.refresh(index=index)
    if not report.ok:
        raise SystemExit(f"ingest into {index!r} failed: {report.as_dict()}")
    log(f"ingested {report.indexed} of {report.read} documents into {index!r} in {report.elapsed:.1f}s")
    return {"indexed": report.indexed, "seconds": round(report.elapsed, 1)}


def hybrid_path(searcher: Searcher, fusion: FusionConfig) -> str:
    """Where this Searcher fuses a hybrid search with ``fusion``: "client" (one _msearch) or "server"."""
    if searcher.server_side is False or unsupported_reason(fusion):
        return "client"
    plugins = searcher.client.cat.plugins(format="json")
    return "server" if neural_search_present(plugins) else "client"


def ms_stats(seconds: list[float]) -> dict:
    values = sorted(s * 1000 for s in seconds)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50_ms": round(statistics.median(values), 2), "p95_ms": round(cuts[94], 2),
            "mean_ms": round(statistics.fmean(values), 2), "samples": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default="dbp")
    parser.add_argument("--queries", type=existing_path, default=DATA / "dbpedia-entity" / "queries.jsonl")
    parser.add_argument("--corpus", type=existing_path, default=DATA / "dbpedia-entity" / "corpus.jsonl",
                        help="ingested first when --index does not exist")
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over all queries")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                        help="hybrid candidates per retriever (default: the Searcher's)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed passes over all queries in every mode (at least 1: it caches the vectors)")
    args = parser.parse_args()
    if args.rounds < 1 or args.warmup < 1:
        parser.error("--rounds and --warmup must be at least 1")

    queries = read_queries(args.queries)
    settings = Settings()
    searcher = Searcher(settings, window=args.window)
    ingested = None
    if not searcher.client.indices.exists(index=args.index):
        log(f"index {args.index!r} does not exist: ingesting {args.corpus}")
        ingested = ingest_corpus(searcher, args.index, args.corpus)
    documents = searcher.client.count(index=args.index)["count"]
    encoder = searcher.encoder
    hybrid_fusion = searcher.fusion_for(searcher.index_info(args.index))  # the default, or the index's stored one
    path = hybrid_path(searcher, hybrid_fusion)

    def search(text: str, mode: str, on: Searcher = searcher, fusion: FusionConfig | None = None) -> None:
        on.search(text, index=args.index, k=args.k, mode=mode, fusion=fusion, server_side=False if fusion else None)

    log(f"warm-up: {args.warmup} pass(es) over {len(queries)} queries, every mode")
    for _ in range(args.warmup):
        for text in queries:
            encoder.encode_query(text)
            for mode in MODES:
                search(text, mode)  # the first semantic call caches the query's vector
            search(text, "hybrid", fusion=PLAIN_HYBRID)

    times: dict[str, list[float]] = {name: [] for name in (*MODES, "hybrid_plain", "encoding", "end_to_end_hybrid")}
    step = 0
    for round_number in range(args.rounds):
        # A fresh Searcher (same client and encoder) per round: its vector cache is empty, so each
        # query's first hybrid search there encodes it, as a query never seen before would be.
        fresh = Searcher(settings, client=searcher.client, encoder=encoder, window=args.window)
        fresh.index_info(args.index)  # the mapping read is once per 30 s in both; not charged to the first query
        calls = {mode: (lambda text, mode=mode: search(text, mode)) for mode in MODES}
        calls["hybrid_plain"] = lambda text: search(text, "hybrid", fusion=PLAIN_HYBRID)
        calls["encoding"] = encoder.encode_query
        calls["end_to_end_hybrid"] = lambda text: search(text, "hybrid", fresh)
        names = list(calls)
        for text in queries:
            shift = step % len(names)
            step += 1
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                calls[name](text)
                times[name].append(time.perf_counter() - started)
        log(f"round {round_number + 1}/{args.rounds}: hybrid p50 so far "
            f"{statistics.median(times['hybrid']) * 1000:.1f} ms, semantic "
            f"{statistics.median(times['semantic']) * 1000:.1f} ms")

    stats = {name: ms_stats(values) for name, values in times.items()}
    p50 = {name: figures["p50_ms"] for name, figures in stats.items()}
    info = searcher.client.info()
    print(json.dumps({
        "benchmark": "query", "date": date.today().isoformat(), "index": args.index, "documents": documents,
        "ingested": ingested, "queries": len(queries), "rounds": args.rounds, "warmup": args.warmup, "k": args.k,
        "window": searcher.window,
        "fusion": {"method": hybrid_fusion.method, "weights": dict(hybrid_fusion.weights or {}),
                   "rrf_k": hybrid_fusion.rrf_k, "adaptive": hybrid_fusion.adaptive},
        "hybrid_path": path, "encoder_device": str(encoder.device), "torch_threads": torch.get_num_threads(),
        "opensearch": info.get("version", {}).get("number"),
        "modes": {mode: stats[mode] for mode in MODES}, "hybrid_plain_previous_default": stats["hybrid_plain"],
        "hybrid_p50_vs_hybrid_plain_p50": round(p50["hybrid"] / p50["hybrid_plain"], 3),
        "encoding": stats["encoding"], "end_to_end_hybrid": stats["end_to_end_hybrid"],
        "hybrid_p50_vs_semantic_p50": round(p50["hybrid"] / p50["semantic"], 3),
        "hybrid_p50_vs_keyword_p50": round(p50["hybrid"] / p50["keyword"], 3),
    }))


if __name__ == "__main__":
    main()
