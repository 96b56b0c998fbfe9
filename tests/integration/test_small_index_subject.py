"""Round 15 (SUBJECT, semsearch.query.fusion): in an index of under 500 documents, a one-term query whose best BM25
match holds the term throughout is fused with the keyword side weighted up, on the real node: Perl's built-in
functions' names over their perlfunc entries without the =item lines that name them (benchmarks/collections/perlfunc,
180 entries), where BM25 is the stronger retriever and, before round 15, hybrid was below keyword search."""

import math

import semsearch.query.fusion as fusion
from semsearch import Searcher
from semsearch.query.evaluation import candidate_health, judged_ids, load_qrels, load_queries, ndcg_at_k
from semsearch.query.plan import DEFAULT_FUSION, DEFAULT_WINDOW

from .conftest import COLLECTIONS, collection_index

perlfunc = collection_index("perlfunc")


def test_one_term_queries_whose_best_match_holds_the_name_throughout_weigh_keyword_up(perlfunc, encoder,
                                                                                      monkeypatch):
    # Each judged query's candidate lists from the node, once (what semsearch eval scores: keyword mode is the
    # any-term list, semantic mode the kNN list, hybrid their default fusion).
    folder = COLLECTIONS / "perlfunc"
    queries, qrels = load_queries(folder / "queries.jsonl"), load_qrels(folder / "test.tsv")
    searcher = Searcher(encoder=encoder)
    candidates = {query_id: searcher.candidates(queries[query_id], index=perlfunc)
                  for query_id in judged_ids(queries, qrels)}

    def mean_ndcg(ranking) -> float:
        return sum(ndcg_at_k(ranking(lists), qrels[query_id])
                   for query_id, lists in candidates.items()) / len(candidates)

    keyword = mean_ndcg(lambda lists: [hit.id for hit in lists["keyword_any"][:10]])
    semantic = mean_ndcg(lambda lists: [hit.id for hit in lists["semantic"][:10]])

    def hybrid() -> float:
        return mean_ndcg(lambda lists: [f.id for f in fusion.fuse_hybrid(lists, DEFAULT_FUSION, DEFAULT_WINDOW)[:10]])

    with_subject = hybrid()
    assert keyword > semantic, (keyword, semantic)  # not vacuous: BM25 is the stronger here
    assert with_subject >= max(keyword, semantic), (keyword, semantic, with_subject)
    health = candidate_health(candidates, DEFAULT_WINDOW)  # what semsearch eval counts
    assert health["fused_for_subject"] >= 10, health  # of 180 queries, most of one term, in 180 documents
    # The same candidates fused without SUBJECT (round 14's default: the small index's keyword weight, 0.25, for
    # every such query) rank lower: the rule, not a change of lists, is what lifts hybrid above keyword search.
    monkeypatch.setattr(fusion, "SUBJECT_SATURATION", math.inf)
    assert hybrid() < with_subject - 0.005
