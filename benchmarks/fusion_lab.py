"""Hybrid fusions compared offline, from each judged query's candidate lists saved once.

    python benchmarks/fusion_lab.py dump --index ev-pydoc-minilm --collection pydoc --out pydoc-minilm.json \
        [--folder DIR/pydoc]
    python benchmarks/fusion_lab.py score pydoc-minilm.json manpages-minilm.json …

``dump`` asks the cluster of the SEMSEARCH_* settings for every judged query's candidate lists
(``Searcher.candidates``: the strict, any-term and phrase keyword lists, the kNN list, the document count)
and writes them with the judgments (dumps made before round 6 hold a phrase list for every query of two terms or
more, and those before round 7 no question mark; ``score`` keeps only the phrase lists today's plan asks for and
marks the questions: ``as_planned``). ``score`` re-fuses them as ``semsearch eval
--tune`` does (``score_fusion``) and prints nDCG@10 of keyword (the any-term list: what keyword mode returns),
semantic, the default hybrid and the previous defaults (see PREVIOUS), hybrid's margin over the better single mode
and that margin's standard error over the queries (paired), one row per file, then one JSON line. The same lists
give the same figures as ``semsearch eval`` (checked to the fourth decimal), without re-encoding or re-querying.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.hybrid_spread import folder_of  # noqa: E402
import semsearch.query.fusion as fusion_module  # noqa: E402
from semsearch.query.evaluation import hybrid_margin, judged_ids, load_qrels, load_queries, ndcg_at_k  # noqa: E402
from semsearch.query.fusion import (  # noqa: E402
    DOCUMENT_TERMS, KEYWORD_ANY, KEYWORD_PHRASE, NOT_LISTS, QUESTION, SEMANTIC, TERMS, Fused, FusionConfig, Ranked,
    fuse_hybrid)
from semsearch.query.plan import DEFAULT_FUSION, DEFAULT_WINDOW, phrase_sized, query_terms, wants_phrase  # noqa: E402
from semsearch.query.question import ends_with_question_mark, is_question  # noqa: E402
from semsearch.query.tuning import score_fusion  # noqa: E402

# Earlier defaults, side by side: "old", before issue 15 (plain weighted RRF, rank constant 20, strict list);
# "round1", issue 15's first adaptive default (rank constant 30, rare terms always keyword-led: no AGREED);
# "round3", the default before phrase matches led (round 4); "round4", before queries whose best BM25 match stands
# out were fused by score (round 5); "round5", before queries whose best kNN match is far ahead were, and before
# queries of more than four terms stopped asking for phrase matches (round 6); "round6", before questions were fused
# with the dense side far the heavier (round 7); "round7", before a question needed no question mark (round 8: its
# opening words tell an English one); "round9", before phrase matches were weighted up instead of put first (round
# 10); "round10", before rare keyword matches in an index of under 500 documents led only where kNN missed them all
# (round 11; every earlier label has them lead in any index too); "round11", before round 11's test was withdrawn,
# kNN's first was put first among rare keyword matches, and a query searching under 500 documents was fused by
# z-scores, its phrase matches not weighted up (round 12; no earlier label does any of these); "round12", before BM25's
# first kept its tier's lead where it scores 1.3 times the tier's second (round 14); "round14", before a one-term query
# in a small index whose best BM25 match holds the term throughout weighted keyword up (SUBJECT, round 15); "round15",
# before a small index of long documents weighted keyword up and let BM25's first keep its tier's lead at 1.05 times
# the tier's second (LONG_DOCUMENTS, round 16); "round16", before a small index of short documents weighted keyword
# down and let no one-term query's rare matches lead (SHORT_DOCUMENTS, round 17); "round17", before a small index
# weighted up the rare strict matches of a query of several terms (RARE_STRICT, round 18); "round18", before a small
# index fused by z-scores a query whose keyword matches score alike (one hit, or equal scores: fused by rank as in a
# large index until round 19, SCORES_ALIKE_BY_RANK). Those
# before round 7 do not tell a question from another query. Rounds 4 to 9 put phrase matches first (PHRASE_LED);
# before round 9 a question of two to four terms had its phrase list too (phrase_sized).
PREVIOUS = {"old": FusionConfig("rrf", {"keyword": 0.25, "semantic": 1.0}, 20),
            "round1": FusionConfig("rrf", {"keyword": 0.25, "semantic": 1.0}, 30, adaptive=True),
            **{label: DEFAULT_FUSION
               for label in ("round3", "round4", "round5", "round6", "round7", "round9", "round10", "round11",
                             "round12", "round14", "round15", "round16", "round17", "round18")}}
NEVER_AGREED = {"round1"}
WITHOUT_PHRASE = {"round1", "round3"}  # fused from the same candidate lists, the phrase matches left out
NEVER_BY_SCORE = {"round1", "round3", "round4"}  # rank fusion for every query
NEVER_DENSE_LEAD = {"round1", "round3", "round4", "round5"}  # no query fused by score for kNN's lead
AS_PLANNED = {"round6"}  # fused from the lists today's plan asks for, no query a question (the others: as dumped)
# fused from the lists today's plan asks for, questions as today
AS_PLANNED_TODAY = {"round9", "round10", "round11", "round12", "round14", "round15", "round16", "round17", "round18"}
PHRASE_LED = {"round4", "round5", "round6", "round7", "round9"}  # phrase matches first, in their order
ROUND11_RARE = {"round11"}  # rare keyword matches in an index of under 500 documents lead only where kNN missed them
ROUND11_SMALL_INDEX, ROUND11_DENSE_MISS_PAGE = 500, 10
# today's keyword_matches and small-index fusion (round 12)
ROUND12 = {"round12", "round14", "round15", "round16", "round17", "round18"}
ROUND14 = {"round14", "round15", "round16", "round17", "round18"}  # and BM25's first keeping its tier's lead (round 14)
ROUND15 = {"round15", "round16", "round17", "round18"}  # and SUBJECT (round 15)
ROUND16 = {"round16", "round17", "round18"}  # and LONG_DOCUMENTS (round 16)
ROUND17 = {"round17", "round18"}  # and SHORT_DOCUMENTS (round 17)
ROUND18 = {"round18"}  # and RARE_STRICT (round 18)
# every label with a small index (ROUND12): a query whose any-term scores are alike fused as in a large index
SCORES_ALIKE_BY_RANK = ROUND12
TODAYS_KEYWORD_EVIDENCE = fusion_module.keyword_evidence  # round11_keyword_evidence's way back to it, when patched
QUESTION_TESTS = {"round7": ends_with_question_mark}  # as planned, questions told as then (today: is_question)


def without(lists: dict, *names: str) -> dict:
    """Each query's candidates without ``names`` (KEYWORD_PHRASE: what defaults before round 4 fused; QUESTION:
    what defaults before round 7 knew)."""
    return {query_id: {name: value for name, value in candidates.items() if name not in names}
            for query_id, candidates in lists.items()}


@contextmanager
def earlier_rules(label: str):
    """The adaptive side as an earlier default had it: no AGREED kind ("round1": the semantic page never counts as
    agreeing), no score fusion (a standing-out BM25 match, or a kNN match far ahead, never counts as one), phrase
    matches first instead of weighted up (PHRASE_LED: :func:`phrase_matches_first`), round 11's test of rare keyword
    matches in a small index (ROUND11_RARE: :func:`round11_keyword_evidence`), and, for every label before round 12,
    rare keyword matches in BM25's order alone and a query that searches few documents fused as in a large index.
    ROUND12 keeps today's keyword_matches and small-index fusion, with kNN's first leading its tier whatever BM25's
    first scores (TIER_LEAD_RATIO at infinity, as for every earlier label but ROUND14). No label but ROUND15 weighs
    keyword up for a one-term query's best match holding its term throughout (SUBJECT_SATURATION at infinity), none but
    ROUND16 knows a small index of long documents (LONG_DOCUMENT_TERMS at infinity), none but ROUND17 one of short
    documents (SHORT_DOCUMENT_TERMS at 0), none but ROUND18 weighs up a query's rare strict matches
    (RARE_STRICT_MIN_TERMS at infinity), and every label fuses a query whose keyword matches score alike as a large
    index does, by rank (:func:`scores_alike_by_rank`)."""
    share, standout, gap = fusion_module.AGREEMENT_SHARE, fusion_module.STANDOUT_Z, fusion_module.DENSE_GAP_Z
    evidence, matches, small_index = (fusion_module.keyword_evidence, fusion_module.keyword_matches,
                                      fusion_module.SMALL_INDEX_DOCUMENTS)
    fusion_module.keyword_evidence = round11_keyword_evidence if label in ROUND11_RARE else evidence
    fusion_module.keyword_matches = matches if label in ROUND12 else bm25_ordered_matches
    fusion_module.SMALL_INDEX_DOCUMENTS = small_index if label in ROUND12 else 0
    tier_lead, subject = fusion_module.TIER_LEAD_RATIO, fusion_module.SUBJECT_SATURATION
    fusion_module.TIER_LEAD_RATIO = tier_lead if label in ROUND14 else math.inf
    fusion_module.SUBJECT_SATURATION = subject if label in ROUND15 else math.inf
    long_documents, short_documents = fusion_module.LONG_DOCUMENT_TERMS, fusion_module.SHORT_DOCUMENT_TERMS
    fusion_module.LONG_DOCUMENT_TERMS = long_documents if label in ROUND16 else math.inf
    rare_strict_terms = fusion_module.RARE_STRICT_MIN_TERMS
    fusion_module.SHORT_DOCUMENT_TERMS = short_documents if label in ROUND17 else 0.0
    fusion_module.RARE_STRICT_MIN_TERMS = rare_strict_terms if label in ROUND18 else math.inf
    fusion_reason = fusion_module.score_fusion_reason
    fusion_module.score_fusion_reason = (scores_alike_by_rank(fusion_reason) if label in SCORES_ALIKE_BY_RANK
                                         else fusion_reason)
    weighted = fusion_module.fuse_adapted
    fusion_module.AGREEMENT_SHARE = math.inf if label in NEVER_AGREED else share
    fusion_module.STANDOUT_Z = math.inf if label in NEVER_BY_SCORE else standout
    fusion_module.DENSE_GAP_Z = math.inf if label in NEVER_DENSE_LEAD else gap
    fusion_module.fuse_adapted = phrase_matches_first if label in PHRASE_LED else weighted
    try:
        yield
    finally:
        fusion_module.AGREEMENT_SHARE, fusion_module.STANDOUT_Z, fusion_module.DENSE_GAP_Z = share, standout, gap
        fusion_module.fuse_adapted = weighted
        fusion_module.keyword_evidence, fusion_module.keyword_matches = evidence, matches
        fusion_module.SMALL_INDEX_DOCUMENTS, fusion_module.TIER_LEAD_RATIO = small_index, tier_lead
        fusion_module.SUBJECT_SATURATION, fusion_module.LONG_DOCUMENT_TERMS = subject, long_documents
        fusion_module.SHORT_DOCUMENT_TERMS, fusion_module.RARE_STRICT_MIN_TERMS = short_documents, rare_strict_terms
        fusion_module.score_fusion_reason = fusion_reason


def scores_alike_by_rank(reason: Callable[..., str | None]) -> Callable[..., str | None]:
    """``score_fusion_reason`` as it was before round 19: a query whose any-term scores are all alike (one hit, or
    equal scores) is asked about as in a large index (its document count unknown), whatever it searched."""
    def before_round19(kind, any_term, semantic, question=False, documents=None, terms=None, document_terms=None):
        alike = fusion_module.scores_alike(any_term)
        return reason(kind, any_term, semantic, question, None if alike else documents, terms, document_terms)
    return before_round19


def bm25_ordered_matches(strict, any_term, semantic, lead_ratio=None) -> list[Ranked]:
    """What EXHAUSTIVE and AGREED fused before round 12: the strict matches, then the other any-term ones, in BM25's
    order (kNN's first not put first, whatever ``lead_ratio``)."""
    held = {hit.id for hit in strict}
    return list(strict) + [hit for hit in any_term if hit.id not in held]


def round11_keyword_evidence(strict, any_term, window, documents, semantic=(), lead_ratio=None
                             ) -> tuple[str, list[Ranked]]:
    """Round 11's keyword evidence: where fewer than ROUND11_SMALL_INDEX documents are searched, rare matches count as
    rare only when kNN's first ROUND11_DENSE_MISS_PAGE hold none of them (withdrawn in round 12)."""
    if any_term and documents is not None and documents < ROUND11_SMALL_INDEX:
        matched = {hit.id for hit in any_term}
        if any(hit.id in matched for hit in semantic[:ROUND11_DENSE_MISS_PAGE]):
            return fusion_module.strict_or_fallback(strict, any_term)
    return TODAYS_KEYWORD_EVIDENCE(strict, any_term, window, documents, semantic, lead_ratio)


def phrase_matches_first(chosen: dict, fusion: FusionConfig) -> list[Fused]:
    """What rounds 4 to 9 returned: the fusion without the phrase list, the phrase matches moved to the top in their
    order (each one's score 1 above the next, the last 1 above the best of the rest)."""
    phrase = [hit.id for hit in chosen.get(KEYWORD_PHRASE) or []]
    fused = fusion_module.fuse(chosen, FusionConfig(fusion.method, {name: fusion.weight(name) for name in chosen
                                                                    if name != KEYWORD_PHRASE}, fusion.rrf_k))
    if not phrase:
        return fused
    by_id, leading = {item.id: item for item in fused}, set(phrase)
    rest = [item for item in fused if item.id not in leading]
    base = rest[0].score if rest else 0.0
    led = [Fused(doc_id, base + len(phrase) - place, {**by_id[doc_id].contributions,
                                                      KEYWORD_PHRASE: base + len(phrase) - place - by_id[doc_id].score})
           for place, doc_id in enumerate(phrase)]
    return led + rest


def dump(index: str, collection: str, out: Path, folder: Path | None = None) -> None:
    from semsearch import Searcher

    folder = folder or folder_of(collection)
    queries, qrels = load_queries(folder / "queries.jsonl"), load_qrels(folder / "test.tsv")
    searcher = Searcher()
    saved = {}
    for number, query_id in enumerate(judged_ids(queries, qrels), start=1):
        lists = searcher.candidates(queries[query_id], index=index, window=DEFAULT_WINDOW)
        saved[query_id] = {"text": queries[query_id],
                           "lists": {name: value if name in NOT_LISTS else [[h.id, h.score] for h in value]
                                     for name, value in lists.items()}}
        if number % 50 == 0:
            print(f"{collection}: {number} queries", file=sys.stderr)
    out.write_text(json.dumps({"collection": collection, "index": index, "folder": str(folder), "queries": saved,
                               "qrels": {q: qrels[q] for q in saved}}))


def load(path: Path) -> tuple[dict, dict, dict]:
    """A dump's candidate lists and judgments per query, and each query's text. Dumps made before round 16 hold no
    document length (DOCUMENT_TERMS): it is counted from the dump's corpus (:func:`corpus_document_terms`)."""
    data = json.loads(path.read_text())
    lists = {query_id: {name: value if name in NOT_LISTS else [Ranked(i, s) for i, s in value]
                        for name, value in entry["lists"].items()}
             for query_id, entry in data["queries"].items()}
    if any(DOCUMENT_TERMS not in candidates for candidates in lists.values()):
        mean = corpus_document_terms(Path(data["folder"]) / "corpus.jsonl")
        for candidates in lists.values():
            candidates.setdefault(DOCUMENT_TERMS, mean)
    return lists, data["qrels"], {query_id: entry["text"] for query_id, entry in data["queries"].items()}


def corpus_document_terms(corpus: Path) -> float:
    """How many terms a corpus's documents hold on average over title and text, counted as the english analyzer
    counts them (``query_terms``: English stop words dropped), what the cluster's term statistics give for the dumped
    indexes (746 for perlmods' on OpenSearch; this count, 747)."""
    counts = [query_terms(document.get("title") or "", []) + query_terms(document.get("text") or "", [])
              for document in map(json.loads, corpus.open(encoding="utf-8"))]
    return sum(counts) / len(counts)


def as_planned(lists: dict, texts: dict, asks: Callable[[str], bool] = is_question,
               phrase: Callable[[str, list], bool] = wants_phrase) -> dict:
    """Each query's lists as today's plan gives them: the phrase matches only where it asks for them
    (``phrase``: today's ``wants_phrase``, two to four terms since round 6 and no question since round 9; lists dumped
    before then hold them for every query of two terms or more), and whether the query is a question (``asks``:
    today's ``is_question`` unless told otherwise), and how many terms it searches for (``query_terms``). The dumped
    indexes' text fields all search with English stop words (OpenSearch's english analyzer, or the one semsearch
    installs on Elasticsearch), what ``wants_phrase`` and ``query_terms`` assume when they know no analyzer."""
    return {query_id: {**{name: value for name, value in candidates.items()
                          if name != KEYWORD_PHRASE or phrase(texts[query_id], [])},
                       QUESTION: asks(texts[query_id]), TERMS: query_terms(texts[query_id], [])}
            for query_id, candidates in lists.items()}


def per_query_ndcg(rankings: dict[str, list[str]], qrels: dict) -> dict[str, float]:
    return {q: ndcg_at_k(ranked, qrels[q]) for q, ranked in rankings.items()}


def figures(path: Path, fusions: dict[str, FusionConfig]) -> dict[str, float]:
    lists, qrels, texts = load(path)
    per_mode = {mode: per_query_ndcg({q: [h.id for h in c[name]] for q, c in lists.items()}, qrels)
                for mode, name in (("keyword", KEYWORD_ANY), ("semantic", SEMANTIC))}
    planned = as_planned(lists, texts)
    per_mode["hybrid"] = per_query_ndcg({q: [f.id for f in fuse_hybrid(c, fusions["hybrid"], DEFAULT_WINDOW)[:10]]
                                         for q, c in planned.items()}, qrels)
    row = {mode: sum(values.values()) / len(values) for mode, values in per_mode.items()}
    for label, fusion in fusions.items():
        if label != "hybrid":
            with earlier_rules(label):
                dropped = (KEYWORD_PHRASE, QUESTION) if label in WITHOUT_PHRASE else (QUESTION,)
                if label in QUESTION_TESTS:
                    fused = as_planned(lists, texts, QUESTION_TESTS[label], phrase_sized)
                elif label in AS_PLANNED_TODAY:
                    fused = planned
                else:
                    fused = without(as_planned(lists, texts, phrase=phrase_sized) if label in AS_PLANNED else lists,
                                    *dropped)
                row[label] = score_fusion(fusion, fused, qrels, DEFAULT_WINDOW).ndcg
    # The margin, and how far it is from noise: its standard error over these queries (as semsearch eval says).
    margin = hybrid_margin(per_mode)
    row["hybrid_minus_best"], row["margin_se"] = margin["margin"], margin["standard_error"]
    return {name: round(value, 4) for name, value in row.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dumping = commands.add_parser("dump")
    dumping.add_argument("--index", required=True)
    dumping.add_argument("--collection", required=True)
    dumping.add_argument("--out", type=Path, required=True)
    dumping.add_argument("--folder", type=Path, help="read queries.jsonl and test.tsv from here instead (the same "
                         "corpus: e.g. build.py --all-queries --out DIR)")
    scoring = commands.add_parser("score")
    scoring.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.index, args.collection, args.out, args.folder)
        return
    fusions = {"hybrid": DEFAULT_FUSION, **PREVIOUS}
    rows = {path.stem: figures(path, fusions) for path in args.files}
    columns = list(next(iter(rows.values())))
    print(f"{'lists':28}" + "".join(f"{c[:10]:>11}" for c in columns))
    for name, row in rows.items():
        print(f"{name:28}" + "".join(f"{row[c]:11.4f}" for c in columns))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
