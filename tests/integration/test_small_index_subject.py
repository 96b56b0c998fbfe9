"""Round 15 (SUBJECT, semsearch.query.fusion): in an index of under 500 documents, a one-term query whose best BM25
match holds the term throughout is fused with the keyword side weighted up, on the real node: Perl's built-in
functions' names over their perlfunc entries without the =item lines that name them (benchmarks/collections/perlfunc,
180 entries), where BM25 is the stronger retriever and, before round 15, hybrid was below keyword search."""

import math

import semsearch.query.fusion as fusion
from semsearch.query.evaluation import candidate_health
from semsearch.query.plan import DEFAULT_WINDOW

from .conftest import collection_index, judged_candidates, mean_ndcg, mode_ndcgs

perlfunc = collection_index("perlfunc")


def test_one_term_queries_whose_best_match_holds_the_name_throughout_weigh_keyword_up(perlfunc, encoder,
                                                                                      monkeypatch):
    candidates, qrels = judged_candidates(perlfunc, "perlfunc", encoder)
    keyword, semantic, with_subject = mode_ndcgs(candidates, qrels)
    assert keyword > semantic, (keyword, semantic)  # not vacuous: BM25 is the stronger here
    assert with_subject >= max(keyword, semantic), (keyword, semantic, with_subject)
    health = candidate_health(candidates, DEFAULT_WINDOW)  # what semsearch eval counts
    assert health["fused_for_subject"] >= 10, health  # of 180 queries, most of one term, in 180 documents
    # The same candidates fused without SUBJECT (round 14's default: the small index's keyword weight, 0.25, for
    # every such query) rank lower: the rule, not a change of lists, is what lifts hybrid above keyword search.
    monkeypatch.setattr(fusion, "SUBJECT_SATURATION", math.inf)
    assert mean_ndcg(candidates, qrels, "hybrid") < with_subject - 0.005
