"""Round 16 (LONG_DOCUMENTS, semsearch.query.fusion): in an index of under 500 documents that average 250 terms or
more, a query fused for the small index weighs the keyword side up, on the real node: Perl's core modules' names
(File::Temp, two terms to the analyzer, so SUBJECT never reaches them) over their pages
(benchmarks/collections/perlmods, 417 pages of 747 terms on average), where BM25 is the stronger retriever and, before
round 16, hybrid was below keyword search."""

import math

import pytest

import semsearch.query.fusion as fusion
from semsearch import Searcher
from semsearch.query.evaluation import candidate_health
from semsearch.query.plan import DEFAULT_WINDOW

from .conftest import COLLECTIONS, collection_index, corpus_document_terms, judged_candidates, mean_ndcg, mode_ndcgs

perlmods = collection_index("perlmods")


def test_the_searcher_reads_the_documents_mean_length_from_the_node(perlmods, encoder):
    # The node's term statistics count as the english analyzer does: every token but English stop words.
    document_terms = Searcher(encoder=encoder).index_info(perlmods).document_terms
    assert document_terms == pytest.approx(corpus_document_terms(COLLECTIONS / "perlmods" / "corpus.jsonl"), rel=0.02)
    assert document_terms >= fusion.LONG_DOCUMENT_TERMS


def test_names_over_their_long_pages_weigh_keyword_up(perlmods, encoder, monkeypatch):
    candidates, qrels = judged_candidates(perlmods, "perlmods", encoder)
    keyword, semantic, with_long_documents = mode_ndcgs(candidates, qrels)
    assert keyword > semantic, (keyword, semantic)  # not vacuous: BM25 is the stronger here
    assert with_long_documents >= max(keyword, semantic), (keyword, semantic, with_long_documents)
    health = candidate_health(candidates, DEFAULT_WINDOW)  # what semsearch eval counts
    assert health["fused_for_long_documents"] >= 50, health  # most names are two terms or more
    # The same candidates fused as round 15 did (no index counts as one of long documents) rank lower: the rule, not
    # a change of lists, is what lifts hybrid above keyword search.
    monkeypatch.setattr(fusion, "LONG_DOCUMENT_TERMS", math.inf)
    assert mean_ndcg(candidates, qrels, "hybrid") < with_long_documents - 0.01
