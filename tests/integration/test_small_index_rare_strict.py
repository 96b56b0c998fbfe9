"""Round 18 (RARE_STRICT, semsearch.query.fusion): in an index of under 500 documents, a query of several terms whose
strict matches (documents holding most of its terms) are rare has each of them weighted up, on the real node:
PostgreSQL's reference pages' one-line purposes ("define a new rewrite rule") over the first paragraphs of their
descriptions (benchmarks/collections/pgreference, 275 short documents), built blind and scored only after round 18's
rule was committed."""

import math

import semsearch.query.fusion as fusion
from semsearch import Searcher
from semsearch.query.evaluation import candidate_health
from semsearch.query.plan import DEFAULT_WINDOW

from .conftest import collection_index, judged_candidates, mean_ndcg, mode_ndcgs

pgreference = collection_index("pgreference")


def test_purposes_over_short_descriptions_weigh_their_rare_strict_matches_up(pgreference, encoder, monkeypatch):
    candidates, qrels = judged_candidates(pgreference, "pgreference", encoder)
    keyword, semantic, with_rare_strict = mode_ndcgs(candidates, qrels)
    assert semantic > keyword, (keyword, semantic)  # not vacuous: the dense side is the stronger here
    assert with_rare_strict >= max(keyword, semantic), (keyword, semantic, with_rare_strict)
    health = candidate_health(candidates, DEFAULT_WINDOW)  # what semsearch eval counts
    assert health["with_rare_strict_matches"] >= 100, health  # most purposes: several terms, few pages hold most
    # The same candidates fused as round 17 did (no rare strict match weighted up) rank lower: the rule, not a change
    # of lists, is what it adds.
    monkeypatch.setattr(fusion, "RARE_STRICT_MIN_TERMS", math.inf)
    assert mean_ndcg(candidates, qrels, "hybrid") < with_rare_strict - 0.005


def test_explain_names_the_rare_strict_matches_weighted_up(pgreference, encoder):
    searcher = Searcher(encoder=encoder)
    text = "define a new rewrite rule"
    strict = [hit.id for hit in searcher.candidates(text, index=pgreference)["keyword"]]
    hits = searcher.search(text, index=pgreference, k=20, explain=True)
    assert 0 < len(strict) <= fusion.RARE_MATCH_FRACTION * 275, strict
    assert hits.fusion.rare_strict_matches == len(strict) and hits.fusion.rare_strict_weight == 1.0
    assert "holding most terms weighted up" in hits.fusion.description
    for hit in hits:
        assert set(hit.explanation) == {"keyword", "semantic"}
        assert (hit.explanation["keyword"]["rare_strict_rank"] is not None) == (hit.id in strict)
    assert hits[0].id == "pgreference-sql-createrule"
