"""Combining ranked lists from BM25 and kNN into one (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

FUSION_METHODS = ("rrf", "minmax", "zscore", "sum")


@dataclass(frozen=True)
class Ranked:
    """One hit of one retriever: document id and the retriever's raw score, best first."""

    id: str
    score: float


@dataclass(frozen=True)
class Fused:
    id: str
    score: float
    contributions: dict[str, float]  # per retriever; they add up to ``score``


# The sum's weights when none are given: raw BM25 scores (~5–30) would drown kNN's (0.5–1) at 1:1;
# 0.003 was best on dbpedia-entity on both engines (docs/benchmarks.md).
SUM_DEFAULT_WEIGHTS = {"keyword": 0.003, "semantic": 1.0}


@dataclass(frozen=True)
class FusionConfig:
    """How hybrid mode combines retrievers. ``weights`` maps retriever name → weight; None weighs every
    list 1.0 (the ``sum``: :data:`SUM_DEFAULT_WEIGHTS`)."""

    method: str = "rrf"
    weights: Mapping[str, float] | None = None
    rrf_k: int = 60

    def weight(self, name: str) -> float:
        if self.weights is None:
            return SUM_DEFAULT_WEIGHTS.get(name, 1.0) if self.method == "sum" else 1.0
        return float(self.weights.get(name, 0.0))


def _normalise(hits: Sequence[Ranked], method: str) -> dict[str, float]:
    if not hits:
        return {}
    scores = [h.score for h in hits]
    if method == "minmax":
        low, high = min(scores), max(scores)
        span = high - low
        return {h.id: (h.score - low) / span if span > 0 else 1.0 for h in hits}
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    return {h.id: (h.score - mean) / std if std > 0 else 0.0 for h in hits}


def fuse(lists: Mapping[str, Sequence[Ranked]], config: FusionConfig) -> list[Fused]:
    """Fuse named ranked lists; ties broken by id so the order is stable across calls and pages.

    - ``rrf``: Σ weight / (rrf_k + rank).
    - ``minmax`` / ``zscore``: each list's scores normalised, then a weighted sum. A document
      missing from a list gets that list's lowest normalised score (0 for min-max).
    - ``sum``: the weighted sum of the raw scores (BM25 + kNN similarity), 0 where a list lacks the
      document: what the cluster computes for one query holding both (server-side on either engine).
      Raw BM25 scores run ~5–30 against kNN's 0.5–1, so useful keyword weights are small (0.003 was
      best on dbpedia-entity; ``semsearch eval --tune`` finds the one for your data).
    """
    if config.method not in FUSION_METHODS:
        raise ValueError(f"unknown fusion method {config.method!r}; choose one of {', '.join(FUSION_METHODS)}")
    weighted: dict[str, tuple[dict[str, float], float]] = {}
    for name, hits in lists.items():
        weight = config.weight(name)
        if config.method == "rrf":
            values = {h.id: weight / (config.rrf_k + rank) for rank, h in enumerate(hits, start=1)}
            floor = 0.0
        elif config.method == "sum":
            values, floor = {h.id: weight * h.score for h in hits}, 0.0
        else:
            normalised = _normalise(hits, config.method)
            floor = weight * min(normalised.values(), default=0.0) if config.method == "zscore" else 0.0
            values = {doc_id: weight * value for doc_id, value in normalised.items()}
        weighted[name] = (values, floor)
    fused = []
    for doc_id in dict.fromkeys(h.id for hits in lists.values() for h in hits):
        parts = {name: values.get(doc_id, floor) for name, (values, floor) in weighted.items()}
        fused.append(Fused(doc_id, sum(parts.values()), parts))
    fused.sort(key=lambda f: (-f.score, f.id))
    return fused
