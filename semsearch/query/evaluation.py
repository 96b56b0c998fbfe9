"""Retrieval quality on judged queries (BEIR formats): nDCG@10 and Recall@100 per mode."""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from semsearch.errors import InputError
from semsearch.query.fusion import (
    DENSE_LEAD,
    KEYWORD,
    KEYWORD_ANY,
    KEYWORD_PHRASE,
    LONG_DOCUMENTS,
    NOT_LISTS,
    QUESTION,
    SHORT_DOCUMENTS,
    SMALL_INDEX,
    STANDOUT,
    SEMANTIC,
    SUBJECT,
    FusionConfig,
    fuse_hybrid,
    phrases_weighed,
    query_evidence,
    query_fusion_reason,
    rare_strict_matches,
)

Qrels = dict[str, dict[str, int]]


def load_queries(path: str | Path) -> dict[str, str]:
    """BEIR queries JSONL: one ``{"_id", "text"}`` object a line."""
    queries: dict[str, str] = {}
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: malformed JSON: {exc.msg}") from exc
            if not isinstance(obj, dict) or "_id" not in obj or not isinstance(obj.get("text"), str):
                raise InputError(f"{path}:{number}: a query needs '_id' and a string 'text'")
            queries[str(obj["_id"])] = obj["text"]
    return queries


def load_qrels(path: str | Path) -> Qrels:
    """BEIR qrels TSV: ``query-id  corpus-id  score``; a header line is optional."""
    qrels: Qrels = {}
    with open(path, encoding="utf-8-sig", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 3:
                raise InputError(f"{path}:{number}: expected 3 tab-separated columns, got {len(row)}")
            try:
                score = int(float(row[2]))
            except ValueError as exc:
                if number == 1:
                    continue  # header
                raise InputError(f"{path}:{number}: score {row[2]!r} is not a number") from exc
            qrels.setdefault(row[0], {})[row[1]] = score
    return qrels


def ndcg_at_k(ranked: Sequence[str], judgments: Mapping[str, int], k: int = 10) -> float:
    """nDCG with linear gains (as trec_eval / BEIR compute it)."""
    dcg = sum(judgments.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in judgments.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], judgments: Mapping[str, int], k: int = 100) -> float:
    relevant = {doc for doc, g in judgments.items() if g > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def judged_ids(queries: Mapping[str, str], qrels: Qrels) -> list[str]:
    """The queries with at least one relevant judgment, in the queries' order."""
    return [q for q in queries if any(g > 0 for g in qrels.get(q, {}).values())]


SHORT_CANDIDATE_LIST = 10  # fewer candidates than a page: that retriever can barely move the fused top 10


def candidate_health(lists: Mapping[str, Mapping[str, Any]], window: int) -> dict[str, Any]:
    """Per retriever list, how many queries got no candidate or fewer than :data:`SHORT_CANDIDATE_LIST`, and
    how often the adaptive keyword side (:func:`semsearch.query.fusion.query_evidence`) chose each kind, how many
    queries were fused by score (``fused_by_score``) and, of them, how many because BM25's best match stood out,
    because kNN's best match was far ahead of its second, because the query is a question, because it searched
    few documents, because it searched few documents for one term that its best BM25 match holds throughout,
    because it searched few long documents, or because it searched few short documents
    (:func:`semsearch.query.fusion.score_fusion_reason`), and in how many queries documents holding the query as a
    phrase were weighted up (a phrase list is asked for only with two to four terms and no question: no list is no
    failure; a query fused for a small index has none weighted up), and in how many its rare strict matches were
    (:func:`semsearch.query.fusion.rare_strict_matches`: only a query fused for a small index) (pure)."""
    names = list(dict.fromkeys(name for per_query in lists.values() for name in per_query
                               if name not in (*NOT_LISTS, KEYWORD_PHRASE)))
    health: dict[str, Any] = {"queries": len(lists), "short_below": SHORT_CANDIDATE_LIST, "lists": {}}
    for name in names:
        lengths = [len(per_query.get(name, ())) for per_query in lists.values()]
        health["lists"][name] = {"empty": sum(n == 0 for n in lengths),
                                 "short": sum(0 < n < SHORT_CANDIDATE_LIST for n in lengths),
                                 "median": statistics.median(lengths) if lengths else 0}
    kinds: dict[str, int] = {}
    reasons: dict[str | None, int] = {}
    weighted_phrases = weighted_rare_strict = 0
    for per_query in lists.values():
        if KEYWORD in per_query and KEYWORD_ANY in per_query:
            kind, _ = query_evidence(per_query, window)
            kinds[kind] = kinds.get(kind, 0) + 1
            reason = query_fusion_reason(per_query, kind)
            reasons[reason] = reasons.get(reason, 0) + 1
            weighted_phrases += phrases_weighed(per_query, reason)
            weighted_rare_strict += bool(rare_strict_matches(per_query, reason, window))
    health["keyword_evidence"] = kinds
    # fused_by_score: every query fused by score, whatever the reason (the seven below it add up to it)
    health["fused_by_score"] = sum(count for reason, count in reasons.items() if reason is not None)
    health["fused_for_standout"] = reasons.get(STANDOUT, 0)
    health["fused_for_dense_lead"] = reasons.get(DENSE_LEAD, 0)
    health["fused_as_question"] = reasons.get(QUESTION, 0)
    health["fused_for_small_index"] = reasons.get(SMALL_INDEX, 0)
    health["fused_for_subject"] = reasons.get(SUBJECT, 0)
    health["fused_for_long_documents"] = reasons.get(LONG_DOCUMENTS, 0)
    health["fused_for_short_documents"] = reasons.get(SHORT_DOCUMENTS, 0)
    health["with_phrase_matches"] = weighted_phrases
    health["with_rare_strict_matches"] = weighted_rare_strict
    return health


EVALUATED_DEPTH = 100  # hits per query scored: Recall@100's


def ranked_from_candidates(lists: Mapping[str, Any], mode: str, fusion: FusionConfig, window: int) -> list[str]:
    """The ids ``Searcher.search(text, mode=mode, k=100, window=window)`` ranks, from the query's candidate lists
    (``Searcher.candidates(text, window=window)``: the same requests, asked once for all three modes) (pure).

    Hybrid: the client's fusion of the lists (``fuse_hybrid``, as ``hits_from``): it holds when the search fuses on
    the client, whatever the window. Keyword and semantic: the any-term and kNN lists, whose requests are those of the
    single modes only when ``window`` is the depth scored (100): a deeper kNN search may order its top 100
    otherwise."""
    if mode == "hybrid":
        return [fused.id for fused in fuse_hybrid(lists, fusion, window)[:EVALUATED_DEPTH]]
    if window != EVALUATED_DEPTH:
        raise ValueError(f"the {mode} list of a {window}-candidate window is not the {mode} search's top 100")
    name = {"keyword": KEYWORD_ANY, "semantic": SEMANTIC}[mode]
    return [ranked.id for ranked in lists.get(name, ())[:EVALUATED_DEPTH]]


def evaluate(run: Callable[[str], Sequence[str]], queries: Mapping[str, str], qrels: Qrels,
             per_query: dict[str, float] | None = None) -> dict[str, float]:
    """Mean nDCG@10 and Recall@100 over the queries with at least one relevant judgment; ``per_query``, when
    given, receives each judged query's nDCG@10."""
    judged = judged_ids(queries, qrels)
    if not judged:
        raise InputError("no query has a relevant judgment in the qrels; check that the query ids match")
    ndcg = recall = 0.0
    for query_id in judged:
        ranked = run(queries[query_id])
        query_ndcg = ndcg_at_k(ranked, qrels[query_id], 10)
        ndcg += query_ndcg
        recall += recall_at_k(ranked, qrels[query_id], 100)
        if per_query is not None:
            per_query[query_id] = query_ndcg
    return {"ndcg@10": ndcg / len(judged), "recall@100": recall / len(judged), "queries": len(judged)}


def hybrid_margin(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, Any] | None:
    """Hybrid's nDCG@10 margin over the better single mode (ties: semantic), with the margin's standard error
    over the queries (paired: each mode answered the same queries), from each mode's per-query nDCG@10 on the
    queries all three answered. None unless hybrid, keyword and semantic share a query; the error is None
    below two queries. On a few hundred queries the error is 0.01–0.02 (docs/benchmarks.md), as large as most
    margins: it says whether a margin is more than the draw of the queries."""
    modes = ("hybrid", "keyword", "semantic")
    if not set(modes) <= set(per_query):
        return None
    shared = [q for q in per_query["hybrid"] if all(q in per_query[mode] for mode in modes)]
    if not shared:
        return None
    means = {mode: sum(per_query[mode][q] for q in shared) / len(shared) for mode in modes}
    best = "keyword" if means["keyword"] > means["semantic"] else "semantic"
    differences = [per_query["hybrid"][q] - per_query[best][q] for q in shared]
    error = statistics.stdev(differences) / math.sqrt(len(differences)) if len(differences) > 1 else None
    return {"best_single_mode": best, "margin": statistics.fmean(differences), "standard_error": error,
            "queries": len(differences)}
