"""``semsearch eval --tune``: which fusion settings rank best on the caller's own judgments (pure).

Each judged query's candidates are fetched once; every configuration of the grid re-fuses them, so
a grid of dozens costs no more round trips than one evaluation. The result is advice: defaults never
change by themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from semsearch.query.evaluation import Qrels, ndcg_at_k, recall_at_k
from semsearch.query.fusion import FusionConfig, fuse_hybrid

KEYWORD_WEIGHTS = (0.1, 0.2, 0.25, 0.3, 0.5, 0.7, 1.0, 1.5)
RRF_RANK_CONSTANTS = (20, 30, 60)
# The raw-score sum adds BM25 (~5–30) to kNN similarity (0.5–1): its useful keyword weights are small
# (best on dbpedia-entity: 0.003, docs/benchmarks.md).
SUM_KEYWORD_WEIGHTS = (0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.05)


@dataclass(frozen=True)
class Scored:
    fusion: FusionConfig
    ndcg: float
    recall: float

    def describe(self) -> str:
        weights = dict(self.fusion.weights or {})
        text = (f"method={self.fusion.method} keyword_weight={weights.get('keyword', 1.0):g} "
                f"semantic_weight={weights.get('semantic', 1.0):g}")
        text += f" rrf_k={self.fusion.rrf_k}" if self.fusion.method == "rrf" else ""
        return text + (" adaptive=true" if self.fusion.adaptive else "")


def fusion_grid(keyword_weights: Iterable[float] = KEYWORD_WEIGHTS,
                rank_constants: Iterable[int] = RRF_RANK_CONSTANTS,
                sum_keyword_weights: Iterable[float] = SUM_KEYWORD_WEIGHTS) -> list[FusionConfig]:
    """RRF (each rank constant, with and without the adaptive keyword side), min-max and z-score, each with
    the keyword weight varied (semantic 1), and the raw-score sum with its own, smaller keyword weights."""
    weights = list(keyword_weights)
    grid = [FusionConfig("rrf", {"keyword": w, "semantic": 1.0}, rrf_k=k, adaptive=adaptive)
            for adaptive in (True, False) for k in rank_constants for w in weights]
    grid += [FusionConfig(method, {"keyword": w, "semantic": 1.0}) for method in ("minmax", "zscore") for w in weights]
    grid += [FusionConfig("sum", {"keyword": w, "semantic": 1.0}) for w in sum_keyword_weights]
    return grid


def score_fusion(fusion: FusionConfig, candidates: Mapping[str, Mapping[str, Any]],
                 qrels: Qrels, window: int = 100) -> Scored:
    """Mean nDCG@10 / Recall@100 of ``fusion`` over the judged queries' cached candidates (``window`` per list)."""
    ndcg = recall = 0.0
    for query_id, lists in candidates.items():
        ranked = [f.id for f in fuse_hybrid(lists, fusion, window)[:100]]
        ndcg += ndcg_at_k(ranked, qrels[query_id], 10)
        recall += recall_at_k(ranked, qrels[query_id], 100)
    count = max(1, len(candidates))
    return Scored(fusion, ndcg / count, recall / count)


def tune(candidates: Mapping[str, Mapping[str, Any]], qrels: Qrels,
         grid: Sequence[FusionConfig], window: int = 100) -> list[Scored]:
    """Every configuration of ``grid``, best nDCG@10 first (ties: the earlier in the grid)."""
    scored = [score_fusion(fusion, candidates, qrels, window) for fusion in grid]
    order = sorted(range(len(scored)), key=lambda i: (-round(scored[i].ndcg, 6), i))
    return [scored[i] for i in order]
