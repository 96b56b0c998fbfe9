import pytest

from semsearch.query.fusion import FusionConfig, Ranked
from semsearch.query.tuning import fusion_grid, score_fusion, tune


def _lists(keyword, semantic):
    return {"keyword": [Ranked(d, 10.0 - i) for i, d in enumerate(keyword)],
            "semantic": [Ranked(d, 1.0 - i / 10) for i, d in enumerate(semantic)]}


# Query 1: only the keyword list ranks the relevant document first; query 2: only the semantic list.
CANDIDATES = {"q1": _lists(["rel1", "x", "y"], ["y", "x", "z", "rel1"]),
              "q2": _lists(["a", "b"], ["rel2", "a", "b"])}
QRELS = {"q1": {"rel1": 1}, "q2": {"rel2": 1}}


def test_grid_covers_methods_and_weights():
    grid = fusion_grid(keyword_weights=(0.5, 1.0), rank_constants=(60,), sum_keyword_weights=(0.05,))
    assert {(f.method, f.weight("keyword"), f.rrf_k if f.method == "rrf" else None, f.adaptive) for f in grid} == {
        ("rrf", 0.5, 60, True), ("rrf", 1.0, 60, True), ("rrf", 0.5, 60, False), ("rrf", 1.0, 60, False),
        ("minmax", 0.5, None, False), ("minmax", 1.0, None, False),
        ("zscore", 0.5, None, False), ("zscore", 1.0, None, False), ("sum", 0.05, None, False)}


def test_score_is_mean_ndcg_over_queries():
    keyword_only = FusionConfig("rrf", {"keyword": 1.0, "semantic": 0.0})
    scored = score_fusion(keyword_only, CANDIDATES, QRELS)
    # q1: relevant first (1.0); q2: rel2 only in the semantic list, weight 0 -> ranked last of 3 (1/log2(4)).
    assert scored.ndcg == (1.0 + 0.5) / 2
    assert scored.recall == 1.0


def test_tune_orders_best_first():
    # Here the keyword list is right on both queries and the semantic list on neither.
    candidates = {"q1": _lists(["rel1", "x"], ["x", "y", "rel1"]), "q2": _lists(["rel2", "a"], ["a", "rel2"])}
    qrels = {"q1": {"rel1": 1}, "q2": {"rel2": 1}}
    grid = [FusionConfig("rrf", {"keyword": 0.1, "semantic": 1.0}), FusionConfig("rrf", {"keyword": 1.0, "semantic": 0.1}),
            FusionConfig("minmax", {"keyword": 0.1, "semantic": 1.0})]
    ranking = tune(candidates, qrels, grid)
    assert [s.ndcg for s in ranking] == sorted((score_fusion(f, candidates, qrels).ndcg for f in grid), reverse=True)
    assert ranking[0].describe() == "method=rrf keyword_weight=1 semantic_weight=0.1 rrf_k=60"
    assert ranking[0].ndcg == 1.0 and ranking[-1].ndcg < 1.0


def test_adaptive_configs_are_scored_with_the_any_term_list():
    # The strict list is empty: only the adaptive config falls back to the any-term list, which holds rel.
    lists = {"q": {"keyword": [], "keyword_any": [Ranked("rel", 5.0), Ranked("x", 4.0)],
                   "semantic": [Ranked("y", 0.9), Ranked("z", 0.8), Ranked("rel", 0.7)]}}
    qrels = {"q": {"rel": 1}}
    adaptive = FusionConfig("rrf", {"keyword": 1.0, "semantic": 1.0}, rrf_k=60, adaptive=True)
    plain = FusionConfig("rrf", {"keyword": 1.0, "semantic": 1.0}, rrf_k=60)
    assert score_fusion(adaptive, lists, qrels, window=2).ndcg == 1.0
    assert score_fusion(plain, lists, qrels, window=2).ndcg < 1.0
    assert score_fusion(adaptive, lists, qrels).describe().endswith(" rrf_k=60 adaptive=true")


def test_cross_check_scores_each_folds_choice_on_queries_it_did_not_see():
    from semsearch.query.tuning import cross_check

    # Four queries the keyword list gets right, four the semantic list does: folds (ids in order, dealt in turn)
    # hold two of each, so each fold's complement prefers neither side and ties go to the grid's first setting.
    candidates, qrels = {}, {}
    for n in range(4):
        candidates[f"k{n}"] = _lists([f"rel{n}", "x"], ["x", "y", f"rel{n}"])
        candidates[f"s{n}"] = _lists(["x", f"sel{n}"], [f"sel{n}", "x"])
        qrels[f"k{n}"], qrels[f"s{n}"] = {f"rel{n}": 1}, {f"sel{n}": 1}
    keyword_led = FusionConfig("rrf", {"keyword": 1.0, "semantic": 0.1})
    semantic_led = FusionConfig("rrf", {"keyword": 0.1, "semantic": 1.0})
    check = cross_check(candidates, qrels, [keyword_led, semantic_led], semantic_led, folds=2)
    assert check.queries == 8 and len(check.choices) == 2
    assert check.gain == pytest.approx(0.0)  # each fold chose the first setting; it ties the current on its fold
    # Where every query favours keywords, the choice carries to the unseen fold and beats a semantic-led current.
    keyword_only = {q: c for q, c in candidates.items() if q.startswith("k")}
    carried = cross_check(keyword_only, qrels, [semantic_led, keyword_led], semantic_led, folds=2)
    assert carried.gain > 0.1
    assert set(carried.choices) == {"method=rrf keyword_weight=1 semantic_weight=0.1 rrf_k=60"}
    assert cross_check({"k0": candidates["k0"]}, qrels, [keyword_led], semantic_led, folds=2) is None
