import pytest

from semsearch.fusion import FusionConfig, Ranked, fuse

LISTS = {
    "keyword": [Ranked("a", 12.0), Ranked("b", 8.0), Ranked("c", 2.0)],
    "semantic": [Ranked("c", 0.9), Ranked("a", 0.8), Ranked("d", 0.5)],
}


def test_rrf_scores_and_order():
    fused = fuse(LISTS, FusionConfig(method="rrf", rrf_k=60))
    scores = {f.id: f.score for f in fused}
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["d"] == pytest.approx(1 / 63)
    assert [f.id for f in fused] == ["a", "c", "b", "d"]


def test_minmax_weighted():
    fused = fuse(LISTS, FusionConfig(method="minmax", weights={"keyword": 0.25, "semantic": 0.75}))
    scores = {f.id: f.score for f in fused}
    assert scores["a"] == pytest.approx(0.25 * 1.0 + 0.75 * 0.75)
    assert scores["c"] == pytest.approx(0.25 * 0.0 + 0.75 * 1.0)
    assert scores["b"] == pytest.approx(0.25 * 0.6)  # missing from semantic: 0
    assert fused[0].id == "a"


def test_zscore_missing_gets_lowest_of_list():
    fused = {f.id: f for f in fuse(LISTS, FusionConfig(method="zscore"))}
    low_semantic = min(fused[x].contributions["semantic"] for x in "acd")
    assert fused["b"].contributions["semantic"] == pytest.approx(low_semantic)


def test_sum_adds_weighted_raw_scores():
    fused = fuse(LISTS, FusionConfig(method="sum", weights={"keyword": 0.05, "semantic": 1.0}))
    scores = {f.id: f.score for f in fused}
    assert scores["a"] == pytest.approx(0.05 * 12.0 + 0.8)
    assert scores["c"] == pytest.approx(0.05 * 2.0 + 0.9)
    assert scores["b"] == pytest.approx(0.05 * 8.0)  # missing from semantic: 0
    assert [f.id for f in fused] == ["a", "c", "d", "b"]


def test_sum_without_weights_keeps_bm25_from_drowning_knn():
    assert FusionConfig("sum").weight("keyword") == 0.003 and FusionConfig("sum").weight("semantic") == 1.0
    assert FusionConfig("rrf").weight("keyword") == 1.0


@pytest.mark.parametrize("method", ["rrf", "minmax", "zscore", "sum"])
def test_contributions_add_up_to_score(method):
    for f in fuse(LISTS, FusionConfig(method=method)):
        assert sum(f.contributions.values()) == pytest.approx(f.score)
        assert set(f.contributions) == {"keyword", "semantic"}


def test_ties_are_broken_by_id():
    tied = {"keyword": [Ranked("z", 1.0)], "semantic": [Ranked("y", 1.0)]}
    assert [f.id for f in fuse(tied, FusionConfig())] == ["y", "z"]


def test_unknown_method_names_choices():
    with pytest.raises(ValueError, match="rrf, minmax, zscore, sum"):
        fuse(LISTS, FusionConfig(method="borda"))
