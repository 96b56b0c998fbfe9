"""Hybrid quality across collections and models: keyword, semantic and hybrid nDCG@10 per collection.

    python benchmarks/hybrid_spread.py [--model minilm=DEFAULT] [--model mpnet=/path/to/folder] \
        [--collection dbpedia-entity] [--collection manpages] … [--prefix spread]

Each (collection, model) pair gets an index ``<prefix>-<collection>-<model>`` on the cluster of the
SEMSEARCH_* settings (OpenSearch or Elasticsearch); a missing index is filled with ``semsearch ingest``.
Then ``semsearch eval --json`` scores every mode with the defaults, and the old default (plain weighted RRF,
rank constant 20, before issue 15) side by side. Prints a table, then one JSON line of figures.
Collections: dbpedia-entity from ../shared/data; manpages, debian-packages, pydoc, info-index, perldiag,
info-extra, perlfaq, pyfaq, debfaq, efaq, zshfaq, fetchfaq, rfaq, policy, devref, pyglossary, gitglossary,
pgglossary, debref, perlglossary, emacsglossary, jargon, foldoc, devil, mannames, pymodules, wordnet, gitcommands,
perlfunc, perlmods, debsynopsis, cfuncs, vera, syscalls, pyhowto, musicglossary, pychangelog, pgreference, gitconfig,
pgconfig and vimoptions from benchmarks/collections (see its README). Each pair from syscalls on was held out of one
round (16, 17, 18 and 19 in turn), and perlmods, debsynopsis, cfuncs and vera of round 15: built for it, with no
retrieval of any kind run on them until its change was committed.
pymodules and wordnet were held out of round 14: built for it,
with no retrieval of any kind run on them until its change was committed; gitcommands and perlfunc were held out of
round 14's final default, built after those two were scored. devil and mannames were held out of round 13: built for
it, with no retrieval of any kind run on them until its change was committed, which they refuted (it was withdrawn).
jargon and foldoc are held out of round 12: built for it, with no retrieval of any kind run on them. perlglossary and
emacsglossary were held out of round 11's final default: built after round 11's change was committed, with no retrieval
run on them before, and scored once with round 11's default (docs/benchmarks.md; gitglossary, pgglossary and debref
were held out of round 11's change, pydoc was held out of the first round of tuning, info-index of the second,
perldiag of the third, info-extra of the fourth, perlfaq of the fifth, pyfaq of the fifth's default, debfaq of round
6's first change, efaq of round 6, zshfaq and fetchfaq of round 7, rfaq of round 8, policy of round 9, devref of round
10, pyglossary of round 10's final default).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DATA  # noqa: E402

COLLECTIONS = Path(__file__).resolve().parent / "collections"
# Held out of round 11's final default (debref, gitglossary and pgglossary were held out of its change), jargon and
# foldoc held out of round 12, devil and mannames held out of round 13, pymodules and wordnet held out of round 14, and
# gitcommands and perlfunc held out of round 14's final default, perlmods, debsynopsis, cfuncs and vera held out of
# round 15, syscalls and pyhowto of round 16, musicglossary and pychangelog of round 17, pgreference and gitconfig of
# round 18, pgconfig and vimoptions of round 19.
HELD_OUT = ("perlglossary", "emacsglossary", "jargon", "foldoc", "devil", "mannames", "pymodules", "wordnet",
            "gitcommands", "perlfunc", "perlmods", "debsynopsis", "cfuncs", "vera", "syscalls", "pyhowto",
            "musicglossary", "pychangelog", "pgreference", "gitconfig", "pgconfig", "vimoptions")
OLD_DEFAULT = ["--fusion", "rrf", "--keyword-weight", "0.25", "--semantic-weight", "1", "--rrf-k", "20"]


def folder_of(collection: str) -> Path:
    return DATA / collection if collection == "dbpedia-entity" else COLLECTIONS / collection


def run_cli(args: list[str], model: str) -> subprocess.CompletedProcess:
    """``semsearch ARGS`` with ``model`` (DEFAULT: the shipped one, whatever SEMSEARCH_MODEL says here)."""
    env = {name: value for name, value in os.environ.items() if name != "SEMSEARCH_MODEL"}
    if model != "DEFAULT":
        env["SEMSEARCH_MODEL"] = model
    return subprocess.run([sys.executable, "-m", "semsearch.cli", *args], env=env, capture_output=True, text=True)


def semsearch(args: list[str], model: str) -> str:
    result = run_cli(args, model)
    if result.returncode != 0:
        raise SystemExit(f"semsearch {' '.join(args[:3])}… failed:\n{result.stderr}")
    return result.stdout


def index_exists(name: str, model: str) -> bool:
    return run_cli(["index", "info", name], model).returncode == 0


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def measure(collection: str, label: str, model: str, prefix: str) -> dict:
    folder = folder_of(collection)
    index = f"{prefix}-{collection.split('-')[0] if collection == 'dbpedia-entity' else collection}-{label}"
    if not index_exists(index, model):
        semsearch(["ingest", str(folder / "corpus.jsonl"), "--index", index], model)
    common = ["eval", "--index", index, "--queries", str(folder / "queries.jsonl"), "--qrels", str(folder / "test.tsv")]
    scores = last_json(semsearch([*common, "--json"], model))
    old = last_json(semsearch([*common, "--mode", "hybrid", "--json", *OLD_DEFAULT], model))
    keyword, semantic, hybrid = (scores[m]["ndcg@10"] for m in ("keyword", "semantic", "hybrid"))
    return {"collection": collection, "model": label, "index": index, "keyword": keyword, "semantic": semantic,
            "hybrid": hybrid, "hybrid_old_default": old["hybrid"]["ndcg@10"],
            "hybrid_minus_best": round(hybrid - max(keyword, semantic), 4),
            "recall@100": {m: scores[m]["recall@100"] for m in ("keyword", "semantic", "hybrid")},
            "keyword_evidence": scores.get("candidates", {}).get("keyword_evidence", {}),
            "held_out": collection in HELD_OUT}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="LABEL=PATH (PATH DEFAULT: the shipped model)")
    parser.add_argument("--collection", action="append", default=[])
    parser.add_argument("--prefix", default="spread")
    args = parser.parse_args()
    models = dict(m.split("=", 1) for m in args.model) or {"minilm": "DEFAULT"}
    collections = args.collection or ["dbpedia-entity", "manpages", "debian-packages", "pydoc", "info-index",
                                       "perldiag", "info-extra", "perlfaq", "pyfaq", "debfaq", "efaq", "zshfaq",
                                       "fetchfaq", "rfaq", "policy", "devref", "pyglossary", "gitglossary",
                                       "pgglossary", "debref", *HELD_OUT]
    rows = [measure(c, label, path, args.prefix) for label, path in models.items() for c in collections]
    print(f"{'collection':18} {'model':8} {'keyword':>8} {'semantic':>8} {'hybrid':>8} {'old':>8} {'h-best':>8}")
    for r in rows:
        print(f"{r['collection'] + (' (held out)' if r['held_out'] else ''):18} {r['model']:8} {r['keyword']:8.4f} "
              f"{r['semantic']:8.4f} {r['hybrid']:8.4f} {r['hybrid_old_default']:8.4f} {r['hybrid_minus_best']:+8.4f}")
    print(json.dumps({"backend": os.environ.get("SEMSEARCH_BACKEND", "opensearch"), "results": rows}))


if __name__ == "__main__":
    main()
