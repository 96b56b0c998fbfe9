"""Shared helpers for the benchmarks: data loading and medians of alternating runs."""

from __future__ import annotations

import csv
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

DATA = Path(os.environ.get("SEMSEARCH_TEST_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def sts_pairs() -> tuple[list[str], list[str], list[float]]:
    with open(DATA / "stsb" / "sts-test.tsv", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r[5] for r in rows], [r[6] for r in rows], [float(r[4]) for r in rows]


def dbpedia_texts(limit: int | None = None) -> list[str]:
    texts = []
    with open(DATA / "dbpedia-entity" / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            texts.append(" ".join(t.strip() for t in (doc.get("title", ""), doc.get("text", "")) if t.strip()))
            if limit and len(texts) >= limit:
                break
    return texts


def alternate(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds of each callable, run in turn (a, b, a, b, …) so machine noise hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}
