"""``semsearch eval --tune``: which fusion settings rank best on the caller's own judgments (pure).

Each judged query's candidates are fetched once; every configuration of the grid re-fuses them, so
a grid of dozens costs no more round trips than one evaluation. The result is advice: defaults never
change by themselves (``--save`` stores the best in the index: :mod:`semsearch.query.stored_fusion`), and
:func:`cross_check` says whether tuning on these judgments carries to queries it did not see.
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


def describe_fusion(fusion: FusionConfig) -> str:
    """A fusion setting as the options that give it: ``method=rrf keyword_weight=0.25 … adaptive=true`` (pure)."""
    weights = dict(fusion.weights or {})
    text = (f"method={fusion.method} keyword_weight={weights.get('keyword', 1.0):g} "
            f"semantic_weight={weights.get('semantic', 1.0):g}")
    text += f" rrf_k={fusion.rrf_k}" if fusion.method == "rrf" else ""
    return text + (" adaptive=true" if fusion.adaptive else "")


@dataclass(frozen=True)
class Scored:
    fusion: FusionConfig
    ndcg: float
    recall: float

    def describe(self) -> str:
        return describe_fusion(self.fusion)


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


@dataclass(frozen=True)
class CrossCheck:
    """How a tuned setting does on judged queries it was not tuned on: ``gain`` is the nDCG@10 of the best setting
    of each fold's complement over ``current``'s, on that fold, averaged over the queries; ``choices`` the setting
    each fold's complement chose."""

    gain: float
    queries: int
    choices: tuple[str, ...]


def cross_check(candidates: Mapping[str, Mapping[str, Any]], qrels: Qrels, grid: Sequence[FusionConfig],
                current: FusionConfig, window: int = 100, folds: int = 2) -> CrossCheck | None:
    """Tune on all folds but one and score the choice against ``current`` on that one, for each fold (queries
    dealt to folds in id order): whether tuning on these judgments carries to queries it did not see, the
    question a stored setting has to answer. None with fewer queries than folds."""
    ids = sorted(candidates)
    if len(ids) < folds:
        return None
    gain, choices = 0.0, []
    for fold in range(folds):
        held = {q: candidates[q] for q in ids[fold::folds]}
        rest = {q: candidates[q] for q in ids if q not in held}
        chosen = tune(rest, qrels, grid, window)[0].fusion
        tuned, baseline = score_fusion(chosen, held, qrels, window), score_fusion(current, held, qrels, window)
        gain += (tuned.ndcg - baseline.ndcg) * len(held)
        choices.append(describe_fusion(chosen))
    return CrossCheck(gain / len(ids), len(ids), tuple(choices))
