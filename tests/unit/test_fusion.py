import pytest

from semsearch.query.fusion import (
    AGREED,
    DENSE_GAP_Z,
    DENSE_LEAD,
    DENSE_LEAD_WEIGHT_FACTOR,
    EXHAUSTIVE,
    FALLBACK,
    KEYWORD_MATCHES,
    KEYWORD_WEIGHT_FACTORS,
    PHRASE_WEIGHT_FACTOR,
    QUESTION,
    QUESTION_WEIGHT_FACTOR,
    SMALL_INDEX,
    SMALL_INDEX_DOCUMENTS,
    STANDOUT,
    STANDOUT_WEIGHT_FACTOR,
    STRICT,
    Fused,
    FusionConfig,
    Ranked,
    adapt,
    bm25_leads_tier,
    dense_leads,
    fuse,
    fuse_adapted,
    fuse_hybrid,
    fusion_choice,
    keyword_evidence,
    keyword_matches,
    keyword_stands_out,
    phrase_order,
    score_fusion_reason,
    weigh_matches,
)

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


# --- the adaptive keyword side (issue 15) -------------------------------------------------------------

def ranked(*ids):
    return [Ranked(doc_id, float(len(ids) - i)) for i, doc_id in enumerate(ids)]


def test_keyword_evidence_kinds():
    many = ranked(*(f"d{i}" for i in range(5)))
    assert keyword_evidence(ranked("a"), many, window=5, documents=1000) == (STRICT, ranked("a"))
    # Nothing holds most of the terms: the any-term list stands in.
    assert keyword_evidence([], many, window=5, documents=1000) == (FALLBACK, many)
    # Fewer any-term matches than the window, and at most 5% of the documents: the terms are rare; those
    # holding most of the terms lead, and the other matches follow in their order (no kNN list here, so no first of
    # its to lead a tier).
    assert keyword_evidence(many[2:3], many[:3], window=5, documents=60) == (EXHAUSTIVE, [many[2], many[0], many[1]])
    assert keyword_evidence([], many[:3], window=5, documents=60) == (EXHAUSTIVE, many[:3])
    # No document holds any term: nothing to adapt.
    assert keyword_evidence([], [], window=5, documents=60) == (STRICT, [])


def test_rare_terms_are_agreed_when_the_semantic_page_lies_among_the_keyword_matches():
    matches = ranked(*(f"m{i}" for i in range(12)))
    # 9 of the semantic list's top 10 are keyword matches: the dense model ranks the same documents.
    agreeing = ranked(*(f"m{i}" for i in range(9)), "x1", "x2")
    assert keyword_evidence([], matches, window=100, documents=1000, semantic=agreeing) == (AGREED, matches)
    # 8 of 10: it strays from these terms, and the keyword matches lead as before.
    straying = ranked(*(f"m{i}" for i in range(8)), "x1", "x2", "x3")
    assert keyword_evidence([], matches, window=100, documents=1000, semantic=straying) == (EXHAUSTIVE, matches)
    # A shorter semantic list is judged on what it has; none at all agrees with nothing.
    assert keyword_evidence([], matches, window=100, documents=1000, semantic=ranked("m3", "m9"))[0] == AGREED
    assert keyword_evidence([], matches, window=100, documents=1000)[0] == EXHAUSTIVE


def test_bm25s_first_keeps_the_lead_of_its_tier_where_it_stands_out():
    # One term's matches, kNN's first (k3) among them. Bunched BM25 scores (each about as often as the next: a
    # term's citations): kNN's first leads.
    bunched = [Ranked("k1", 5.0), Ranked("k2", 4.6), Ranked("k3", 4.4)]
    knn_first_k3 = ranked("k3", "s1", "s2")
    assert [hit.id for hit in keyword_matches([], bunched, knn_first_k3)] == ["k3", "k1", "k2"]
    # BM25's first scores 1.3 times its second or more (a name repeated throughout its own page): it keeps the lead.
    standing_out = [Ranked("k1", 1.3 * 4.6), Ranked("k2", 4.6), Ranked("k3", 4.4)]
    assert bm25_leads_tier(standing_out) and not bm25_leads_tier(bunched)
    assert keyword_matches([], standing_out, knn_first_k3) == standing_out
    # Per tier: the strict tier's first stands out and keeps its place; in the bunched rest kNN's first leads.
    strict = [Ranked("a1", 9.0), Ranked("a2", 4.0)]
    assert [hit.id for hit in keyword_matches(strict, strict + bunched, knn_first_k3)] == ["a1", "a2", "k3", "k1", "k2"]
    # A tier of one has nothing to reorder; scores of 0 (a constant-score clause) stand out nowhere.
    assert not bm25_leads_tier(bunched[:1])
    assert not bm25_leads_tier([Ranked("z1", 0.0), Ranked("z2", 0.0)])


def test_agreed_rare_terms_are_fused_as_equals_not_keyword_led():
    config = FusionConfig("rrf", {"keyword": 0.25, "semantic": 1.0}, rrf_k=20, adaptive=True)
    keyword = ranked(*(f"m{i}" for i in range(10)))
    semantic = ranked("m9", "m8", "m7", "m6", "m5", "m4", "m3", "m2", "m1", "x1")
    lists = {"keyword": [], "keyword_any": keyword, "semantic": semantic, "documents": 1000}
    chosen, fusion, kind, *_ = adapt(lists, config, window=100)
    assert kind == AGREED and chosen["keyword"] == keyword[9:] + keyword[:9]  # kNN's first, m9, leads its tier
    assert fusion.weight("keyword") == 0.25 * KEYWORD_WEIGHT_FACTORS[AGREED] < fusion.weight("semantic")
    fused = [f.id for f in fuse_hybrid(lists, config, window=100)]
    # The semantic list's order counts: m8, the keyword list's 9th and kNN's second, comes second; were the
    # semantic page to stray (EXHAUSTIVE), the keyword order would lead instead (after kNN's first, a match).
    assert fused[:2] == ["m9", "m8"]
    strayed = {**lists, "semantic": ranked("m9", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9")}
    assert [f.id for f in fuse_hybrid(strayed, config, window=100)][:10] == ["m9"] + [h.id for h in keyword[:9]]


def test_rare_matches_lead_in_an_index_of_any_size_with_knns_first_leading_its_tier():
    # 3 of 400 documents match (under 5%, fewer than the window): rare, in a small index as in a large one (round 11's
    # test, which needed kNN's first 10 to miss them all under 500 documents, was withdrawn in round 12).
    matches = [Ranked("k1", 3.0), Ranked("k2", 2.8), Ranked("k3", 2.6)]  # bunched: no BM25 first stands out
    sees_one = ranked("s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "k2", "s10")  # k2 is 10th
    for documents in (400, 5000):
        assert keyword_evidence([], matches, window=100, documents=documents, semantic=sees_one) == (EXHAUSTIVE,
                                                                                                     matches)
    # kNN's first is a match: it leads its tier, the strict matches (documents holding most terms) ...
    knn_first_k2 = ranked("k2", "s1", "s2")
    kind, keyword = keyword_evidence(matches[:2], matches, window=100, documents=400, semantic=knn_first_k2)
    assert (kind, [hit.id for hit in keyword]) == (EXHAUSTIVE, ["k2", "k1", "k3"])
    # ... or, holding fewer terms, the rest, after every strict match.
    kind, keyword = keyword_evidence(matches[:1], matches, window=100, documents=400, semantic=knn_first_k2)
    assert [hit.id for hit in keyword] == ["k1", "k2", "k3"]
    knn_first_k3 = ranked("k3", "s1")
    assert [hit.id for hit in keyword_matches(matches[:1], matches, knn_first_k3)] == ["k1", "k3", "k2"]
    # Not a match, or no kNN list: BM25's order, the strict matches first.
    assert keyword_matches(matches[:1], matches, sees_one) == matches
    assert keyword_matches(matches[2:], matches, ()) == [matches[2], matches[0], matches[1]]
    # A kNN page that agrees (9 of its 10 are matches) makes 12 matches AGREED in a small index as in a large one.
    twelve = ranked(*(f"m{i}" for i in range(12)))
    agreeing = ranked(*(f"m{i}" for i in range(9)), "x1")
    for documents in (400, 5000):
        assert keyword_evidence([], twelve, window=100, documents=documents, semantic=agreeing)[0] == AGREED
    # In adapt and fuse_hybrid: the matches lead, kNN's first among them first.
    config = FusionConfig("rrf", {"keyword": 0.25, "semantic": 1.0}, rrf_k=20, adaptive=True)
    small = {"keyword": [], "keyword_any": matches, "semantic": ranked("k3", "s1", "s2", "k1"), "documents": 400}
    assert adapt(small, config, window=100).kind == EXHAUSTIVE
    assert [f.id for f in fuse_hybrid(small, config, window=100)][:4] == ["k3", "k1", "k2", "s1"]


def test_matching_few_documents_of_a_small_index_is_not_rare():
    # 3 of 12 documents (25%) match: fewer than the window, but not rare; and an unknown corpus is never rare.
    three = ranked("a", "b", "c")
    assert keyword_evidence(three[:1], three, window=100, documents=12) == (STRICT, three[:1])
    assert keyword_evidence([], three, window=100, documents=12) == (FALLBACK, three)
    assert keyword_evidence(three[:1], three, window=100, documents=None) == (STRICT, three[:1])


def test_adapt_scales_only_the_keyword_weight_and_drops_the_any_term_list():
    config = FusionConfig("rrf", {"keyword": 0.25, "semantic": 1.0}, rrf_k=30, adaptive=True)
    lists = {"keyword": [], "keyword_any": ranked(*(f"k{i}" for i in range(4))), "semantic": ranked("s"),
             "documents": 1000}
    chosen, fusion, kind, *_ = adapt(lists, config, window=4)
    assert kind == FALLBACK and set(chosen) == {"keyword", "semantic"}
    assert [h.id for h in chosen["keyword"]] == ["k0", "k1", "k2", "k3"]
    assert fusion.weight("keyword") == 0.25 * KEYWORD_WEIGHT_FACTORS[FALLBACK]
    assert fusion.weight("semantic") == 1.0 and fusion.rrf_k == 30 and not fusion.adaptive


def test_rare_terms_lead_and_the_semantic_list_fills_the_rest():
    config = FusionConfig("rrf", {"keyword": 0.25, "semantic": 1.0}, rrf_k=30, adaptive=True)
    lists = {"keyword": ranked("rare"), "keyword_any": ranked("rare", "other"),
             "semantic": ranked("s1", "s2", "s3", "other"), "documents": 1000}
    fused = [f.id for f in fuse_hybrid(lists, config, window=10)]
    assert fused[0] == "rare" and set(fused) == {"rare", "s1", "s2", "s3", "other"}
    # The same lists fused plainly: the semantic list's top outranks the lone keyword match.
    plain = [f.id for f in fuse_hybrid(lists, FusionConfig("rrf", config.weights, rrf_k=30), window=10)]
    assert plain[0] == "s1"


def test_a_plain_config_ignores_the_any_term_list():
    config = FusionConfig("rrf", {"keyword": 1.0, "semantic": 1.0})
    lists = {"keyword": ranked("a"), "keyword_any": ranked("b"), "semantic": ranked("c")}
    chosen, fusion, kind, *_ = adapt(lists, config, window=10)
    assert kind is None and fusion is config and set(chosen) == {"keyword", "semantic"}
    assert "b" not in {f.id for f in fuse_hybrid(lists, config, window=10)}


@pytest.mark.parametrize("keyword_weight,window", [(0.25, 100), (0.01, 5000), (0.001, 100)])
def test_rare_keyword_matches_lead_whatever_the_weights_and_window(keyword_weight, window):
    config = FusionConfig("rrf", {"keyword": keyword_weight, "semantic": 3.0}, rrf_k=30, adaptive=True)
    any_term = ranked(*(f"k{i}" for i in range(window - 1)))
    lists = {"keyword": [], "keyword_any": any_term, "semantic": ranked("s1", "s2"), "documents": 10**9}
    fused = [f.id for f in fuse_hybrid(lists, config, window=window)]
    assert fused[:window - 1] == [h.id for h in any_term] and fused[window - 1:] == ["s1", "s2"]


# --- phrase matches -----------------------------------------------------------------------------------


@pytest.mark.parametrize("keyword_weight,window", [(0.25, 100), (4.0, 100), (0.25, 5000)])
def test_phrase_matches_count_as_one_more_list_as_heavy_as_the_semantic_one(keyword_weight, window):
    config = FusionConfig("rrf", {"keyword": keyword_weight, "semantic": 1.0}, rrf_k=20, adaptive=True)
    lists = {"keyword": ranked("k1", "k2", "p2"), "keyword_any": ranked("k1", "k2", "p2", "k3", "p1"),
             "semantic": ranked("s1", "k1", "s2"), "keyword_phrase": ranked("p1", "p2")}  # no count: nothing is rare
    chosen, fusion, kind, *_ = adapt(lists, config, window=window)
    assert kind == STRICT and set(chosen) == {"keyword", "semantic", "keyword_phrase"}
    assert [hit.id for hit in chosen["keyword_phrase"]] == ["p2", "p1"]  # the any-term list has p2 third, p1 fifth
    assert fusion.weight("keyword_phrase") == fusion.weight("semantic") * PHRASE_WEIGHT_FACTOR
    fused = fuse_adapted(chosen, fusion)
    # Under rank fusion that is plain RRF with the phrase list among the others.
    assert [(f.id, f.score) for f in fused] == [(f.id, pytest.approx(f.score)) for f in fuse(chosen, fusion)]
    without = [f.id for f in fuse_hybrid({n: v for n, v in lists.items() if n != "keyword_phrase"}, config, window)]
    order = [f.id for f in fused]
    assert order.index("p2") < without.index("p2") and "p1" in order
    # What hybrid mode returns: the phrase list's share counts as the keyword retriever's, and they still add up.
    hybrid = fuse_hybrid(lists, config, window)
    assert [f.id for f in hybrid] == order
    assert next(f for f in fused if f.id == "p2").contributions["keyword_phrase"] == pytest.approx(1 / 21)
    for item in hybrid:
        assert set(item.contributions) == {"keyword", "semantic"}
        assert sum(item.contributions.values()) == pytest.approx(item.score, rel=1e-12)


def test_a_phrase_cited_elsewhere_does_not_put_its_citation_above_what_both_retrievers_rank_first():
    # "as given in Permissions and owners": x cites the heading; a, the section itself, is first in both lists.
    config = FusionConfig("rrf", {"keyword": 0.25, "semantic": 1.0}, rrf_k=20, adaptive=True)
    lists = {"keyword": ranked("a", "b", "x"), "keyword_any": ranked("a", "b", "x", "c"),
             "semantic": ranked("a", "c", "b", "d"), "keyword_phrase": ranked("x")}
    order = [f.id for f in fuse_hybrid(lists, config, window=100)]
    assert order[:2] == ["a", "x"]  # x rises from fourth to second, but a keeps the first place


def test_an_empty_phrase_list_changes_nothing():
    config = FusionConfig("rrf", {"keyword": 0.25, "semantic": 1.0}, rrf_k=20, adaptive=True)
    lists = {"keyword": ranked("a", "b"), "keyword_any": ranked("a", "b", "c"), "semantic": ranked("c", "a"),
             "documents": 10**6}
    assert fuse_hybrid({**lists, "keyword_phrase": []}, config, 100) == fuse_hybrid(lists, config, 100)
    chosen, *_ = adapt({**lists, "keyword_phrase": []}, config, 100)
    assert "keyword_phrase" not in chosen


def test_a_plain_config_ignores_phrase_matches():
    config = FusionConfig("rrf", {"keyword": 1.0, "semantic": 1.0})
    lists = {"keyword": ranked("a"), "semantic": ranked("c"), "keyword_phrase": ranked("p")}
    chosen, *_ = adapt(lists, config, window=10)
    assert set(chosen) == {"keyword", "semantic"}


def test_phrase_matches_take_the_any_term_order_and_the_rest_keep_the_phrase_order():
    # A phrase search scores how often the phrase occurs; BM25 over all terms and fields orders the matches better.
    phrase = ranked("x", "a", "y", "b")
    any_term = ranked("b", "c", "a")
    assert [hit.id for hit in phrase_order(phrase, any_term)] == ["b", "a", "x", "y"]
    assert phrase_order([], any_term) == [] and [h.id for h in phrase_order(phrase, [])] == ["x", "a", "y", "b"]


def test_the_phrase_list_weighs_as_the_semantic_list_whatever_the_keyword_weight():
    for keyword_weight, semantic_weight in ((4.0, 1.0), (0.25, 3.0), (50.0, 0.5)):
        config = FusionConfig("rrf", {"keyword": keyword_weight, "semantic": semantic_weight}, rrf_k=20,
                              adaptive=True)
        lists = {"keyword": ranked("p2", "x"), "keyword_any": ranked("p1", "p2", "x"), "semantic": ranked("p2"),
                 "keyword_phrase": ranked("p2", "p1")}
        _, fusion, *_ = adapt(lists, config, window=100)
        assert fusion.weight("keyword_phrase") == semantic_weight * PHRASE_WEIGHT_FACTOR


# --- a BM25 match that stands out: score fusion (round 5) ---------------------------------------------


def bunched(prefix, count, top=20.0, step=0.1):
    """A list whose scores fall evenly: no hit stands out."""
    return [Ranked(f"{prefix}{i}", top - step * i) for i in range(count)]


def standing_out(prefix, count):
    """A list whose first hit scores far above the rest (z > 9 over 100 hits)."""
    return [Ranked(f"{prefix}0", 60.0)] + bunched(prefix, count, top=10.0, step=0.01)[1:]


def test_a_bm25_hit_far_above_the_rest_stands_out_and_bunched_scores_do_not():
    assert keyword_stands_out(standing_out("k", 100))
    assert not keyword_stands_out(bunched("k", 100))
    # z of the top hit over n scores is at most sqrt(n - 1): 17 hits can never reach STANDOUT_Z = 4.
    assert not keyword_stands_out(standing_out("k", 17)) and keyword_stands_out(standing_out("k", 18))
    assert not keyword_stands_out([]) and not keyword_stands_out([Ranked("k", 5.0)] * 50)


def test_a_standing_out_query_fuses_z_scores_of_the_any_term_list():
    config = FusionConfig("rrf", {"keyword": 0.25, "semantic": 1.0}, rrf_k=20, adaptive=True)
    any_term = standing_out("k", 100)
    for strict in ([], any_term[3:5]):  # FALLBACK and STRICT alike
        lists = {"keyword": strict, "keyword_any": any_term, "semantic": bunched("s", 100, top=0.9, step=0.001),
                 "documents": 10**6}
        chosen, fusion, kind, *_ = adapt(lists, config, window=100)
        assert kind == (STRICT if strict else FALLBACK)
        assert fusion.method == "zscore" and chosen["keyword"] == any_term
        assert fusion.weight("keyword") == 0.25 * STANDOUT_WEIGHT_FACTOR and fusion.weight("semantic") == 1.0
        # The standout leads though kNN does not have it; rank fusion of the same lists puts kNN's first on top.
        fused = fuse_hybrid(lists, config, window=100)
        assert fused[0].id == "k0"
        assert fuse_hybrid({**lists, "keyword_any": bunched("k", 100)}, config, window=100)[0].id == "s0"
        for item in fused:
            assert set(item.contributions) == {"keyword", "semantic"}
            assert sum(item.contributions.values()) == pytest.approx(item.score)


def dense_leading(prefix, count, gap):
    """A kNN list whose first hit is ``gap`` above the second, the rest 0.001 apart."""
    rest = bunched(prefix, count, top=0.8, step=0.001)[1:]
    return [Ranked(f"{prefix}0", 0.8 - 0.001 + gap)] + rest


def gap_in_deviations(hits):
    scores = [hit.score for hit in hits]
    mean = sum(scores) / len(scores)
    return (scores[0] - scores[1]) / (sum((s - mean) ** 2 for s in scores) / len(scores)) ** 0.5


def test_a_knn_hit_far_ahead_of_its_second_leads_and_an_even_list_does_not():
    assert dense_leads(dense_leading("s", 100, gap=0.1))
    assert not dense_leads(bunched("s", 100, top=0.9, step=0.001))
    assert not dense_leads([]) and not dense_leads([Ranked("s", 0.5)] * 50)
    # Fewer hits than a page never lead: two are always 2 deviations apart.
    assert not dense_leads(dense_leading("s", 9, gap=0.1)) and dense_leads(dense_leading("s", 10, gap=0.1))
    # The deviation is of the first 100 scores (ZSCORE_DEPTH): a deeper window, as for a later page, decides alike.
    deeper = dense_leading("s", 100, gap=0.03) + [Ranked(f"t{i}", 0.1) for i in range(50)]
    assert dense_leads(deeper) and dense_leads(deeper[:100])
    assert gap_in_deviations(deeper) < DENSE_GAP_Z  # the whole list's deviation would not lead
    # The bound is in the list's own deviations: either side of DENSE_GAP_Z.
    near = [dense_leading("s", 100, gap=g) for g in (0.02, 0.03)]
    below, above = sorted(near, key=gap_in_deviations)
    assert gap_in_deviations(below) < DENSE_GAP_Z <= gap_in_deviations(above)
    assert not dense_leads(below) and dense_leads(above)


def test_a_query_whose_knn_first_is_far_ahead_fuses_z_scores_of_its_own_keyword_list():
    config = FusionConfig("rrf", {"keyword": 0.25, "semantic": 1.0}, rrf_k=20, adaptive=True)
    semantic = dense_leading("s", 100, gap=0.1)
    both = semantic[1]  # held by both lists: BM25's first, kNN's second
    any_term = [Ranked(both.id, 20.0)] + bunched("k", 100, top=19.9, step=0.1)[1:]
    for strict in ([], any_term[:3]):  # FALLBACK (the any-term list stands in) and STRICT alike
        lists = {"keyword": strict, "keyword_any": any_term, "semantic": semantic, "documents": 10**6}
        chosen, fusion, kind, reason, keyword_list = adapt(lists, config, window=100)
        assert kind == (STRICT if strict else FALLBACK) and reason == DENSE_LEAD
        assert keyword_list == ("keyword" if strict else "keyword_any")  # the kind's own list
        assert fusion.method == "zscore" and chosen["keyword"] == (strict or any_term)
        assert fusion.weight("keyword") == 0.25 * DENSE_LEAD_WEIGHT_FACTOR and fusion.weight("semantic") == 1.0
        # kNN's clear first leads; rank fusion of the same lists puts the document both hold first.
        fused = fuse_hybrid(lists, config, window=100)
        assert fused[0].id == "s0"
        even = {**lists, "semantic": [Ranked("s0", 0.8)] + semantic[1:]}
        assert adapt(even, config, window=100)[1].method == "rrf"
        assert fuse_hybrid(even, config, window=100)[0].id == both.id
        for item in fused:
            assert sum(item.contributions.values()) == pytest.approx(item.score)
    # BM25's standout comes first: its any-term list at its own weight; rare terms keep ranks.
    standout = {"keyword": [], "keyword_any": standing_out("k", 100), "semantic": semantic, "documents": 10**6}
    assert adapt(standout, config, window=100)[1].weight("keyword") == 0.25 * STANDOUT_WEIGHT_FACTOR
    assert adapt(standout, config, window=100).reason == STANDOUT
    rare = {"keyword": [], "keyword_any": bunched("k", 60), "semantic": semantic, "documents": 10**6}
    adapted = adapt(rare, config, window=100)
    assert adapted.fusion.method == "rrf" and adapted.reason is None
    assert (adapted.kind, adapted.keyword_list) == (EXHAUSTIVE, KEYWORD_MATCHES)


def test_a_question_fuses_z_scores_of_the_any_term_list_with_the_dense_side_far_the_heavier():
    config = FusionConfig("rrf", {"keyword": 0.25, "semantic": 1.0}, rrf_k=20, adaptive=True)
    semantic = dense_leading("s", 100, gap=0.015)  # kNN's first ahead, but by less than DENSE_GAP_Z
    assert not dense_leads(semantic)
    any_term = [Ranked("s2", 20.0)] + bunched("k", 100)[1:]  # BM25's first is kNN's third; nothing stands out
    for strict in ([], any_term[:3]):  # FALLBACK and STRICT alike
        lists = {"keyword": strict, "keyword_any": any_term, "semantic": semantic, "documents": 10**6}
        asked = {**lists, QUESTION: True}
        chosen, fusion, kind, reason, keyword_list = adapt(asked, config, window=100)
        assert kind == (STRICT if strict else FALLBACK) and QUESTION not in chosen
        assert reason == QUESTION and keyword_list == "keyword_any"  # whatever the kind
        assert fusion.method == "zscore" and chosen["keyword"] == any_term
        assert fusion.weight("keyword") == pytest.approx(0.25 * QUESTION_WEIGHT_FACTOR) == pytest.approx(0.1)
        # Rank fusion of the statement puts the document both lists hold first; the question keeps kNN's first.
        assert adapt(lists, config, window=100)[1].method == "rrf"
        assert fuse_hybrid(lists, config, window=100)[0].id == "s2"
        fused = fuse_hybrid(asked, config, window=100)
        assert [item.id for item in fused[:2]] == ["s0", "s2"] and "k1" in {item.id for item in fused}
        for item in fused:
            assert set(item.contributions) == {"keyword", "semantic"}
            assert sum(item.contributions.values()) == pytest.approx(item.score)
    # A question is asked first, before BM25's standout; rare terms (EXHAUSTIVE) keep ranks, and a plain config
    # ignores it.
    standout = standing_out("k", 100)
    assert score_fusion_reason(FALLBACK, standout, semantic) == STANDOUT
    assert score_fusion_reason(FALLBACK, standout, semantic, question=True) == QUESTION
    assert score_fusion_reason(EXHAUSTIVE, standout, semantic, question=True) is None
    rare = {"keyword": [], "keyword_any": bunched("k", 60), "semantic": semantic, "documents": 10**6, QUESTION: True}
    assert adapt(rare, config, window=100)[1].method == "rrf"
    plain = FusionConfig("rrf", {"keyword": 0.25, "semantic": 1.0}, rrf_k=20)
    assert fuse_hybrid({"keyword": any_term, "semantic": semantic, QUESTION: True}, plain, 100) == \
        fuse_hybrid({"keyword": any_term, "semantic": semantic}, plain, 100)


def test_rare_terms_stay_rank_fused_even_when_one_stands_out():
    config = FusionConfig("rrf", {"keyword": 0.25, "semantic": 1.0}, rrf_k=20, adaptive=True)
    lists = {"keyword": [], "keyword_any": standing_out("k", 60), "semantic": ranked("s1", "s2"), "documents": 10**6}
    chosen, fusion, kind, *_ = adapt(lists, config, window=100)
    assert kind == EXHAUSTIVE and fusion.method == "rrf"


def test_phrase_matches_are_weighted_up_as_one_more_list_under_score_fusion():
    config = FusionConfig("rrf", {"keyword": 0.25, "semantic": 1.0}, rrf_k=20, adaptive=True)
    any_term = standing_out("k", 100)
    # p1 is in no other list; k50 is low in the any-term list, k7 above it: the phrase order is k7, k50, p1.
    lists = {"keyword": [], "keyword_any": any_term, "semantic": bunched("s", 100, top=0.9, step=0.001),
             "keyword_phrase": [Ranked("p1", 9.0), Ranked("k50", 3.0), Ranked("k7", 2.0)], "documents": 10**6}
    chosen, fusion, *_ = adapt(lists, config, window=100)
    assert [hit.id for hit in chosen["keyword_phrase"]] == ["k7", "k50", "p1"]
    assert fusion.method == "zscore" and fusion.weight("keyword_phrase") == 1.0 * PHRASE_WEIGHT_FACTOR
    without = fuse_hybrid({n: v for n, v in lists.items() if n != "keyword_phrase"}, config, 100)
    fused = fuse_hybrid(lists, config, window=100)
    before = {item.id: item for item in without}
    for item in fused:
        assert set(item.contributions) == {"keyword", "semantic"}
        assert sum(item.contributions.values()) == pytest.approx(item.score)
        if item.id in {"k7", "k50"}:  # one standard deviation more, as the keyword contribution
            assert item.score == pytest.approx(before[item.id].score + 1.0)
            assert item.contributions["keyword"] == pytest.approx(before[item.id].contributions["keyword"] + 1.0)
        elif item.id != "p1":
            assert item.score == pytest.approx(before[item.id].score)
    order = [item.id for item in fused]
    # k0, BM25's standout, stays first: a phrase match is weighted up, not put first whatever the rest say.
    assert order[0] == "k0" and order.index("k7") < [i.id for i in without].index("k7")
    assert order.index("k50") < [i.id for i in without].index("k50")
    assert [f.score for f in fused] == sorted((f.score for f in fused), reverse=True)


def test_weighing_phrase_matches_adds_the_weight_as_their_share_and_resorts():
    fused = [Fused("a", 0.5, {"keyword": 0.1, "semantic": 0.4}), Fused("b", 0.4, {"keyword": 0.4}),
             Fused("c", 0.3, {"semantic": 0.3})]
    weighed = weigh_matches(fused, ["c", "b"], 0.15, "keyword_phrase")
    # Every match gets the weight whatever its place: c 0.45, b 0.55; a unchanged.
    assert [f.id for f in weighed] == ["b", "a", "c"]
    assert [f.score for f in weighed] == pytest.approx([0.55, 0.5, 0.45])
    assert weighed[2].contributions == {"semantic": 0.3, "keyword_phrase": pytest.approx(0.15)}
    assert weighed[1] == fused[0]
    assert weigh_matches(fused, [], 1.0, "keyword_phrase") == fused
    # Ties sort by id, as fuse() sorts.
    assert [f.id for f in weigh_matches(fused, ["c"], 0.2, "keyword_phrase")] == ["a", "c", "b"]


def test_a_plain_fusion_of_chosen_lists_weighs_every_list_as_its_config_says():
    # fuse_adapted with weights None (every list 1.0) keeps the other lists' weights, the phrase list's too.
    chosen = {"keyword": ranked("a", "b"), "semantic": ranked("b", "a"), "keyword_phrase": ranked("a")}
    assert fuse_adapted(chosen, FusionConfig("rrf")) == fuse(chosen, FusionConfig("rrf"))
    by_score = fuse_adapted(chosen, FusionConfig("zscore"))
    assert [f.id for f in by_score] == ["a", "b"] and by_score[0].contributions["keyword_phrase"] == 1.0
    assert by_score[0].contributions["keyword"] != 0.0 and by_score[0].contributions["semantic"] != 0.0


def test_sixteen_hits_never_stand_out():
    # The best of n z-scores is at most sqrt(n - 1): however far ahead one of 16 hits is, it stays below 4.
    assert not keyword_stands_out([Ranked("k0", 1e9)] + [Ranked(f"k{i}", 1.0) for i in range(1, 16)])
    assert keyword_stands_out([Ranked("k0", 1e9)] + [Ranked(f"k{i}", 1.0) for i in range(1, 18)])


def test_agreed_rare_terms_stay_rank_fused_even_when_one_stands_out():
    config = FusionConfig("rrf", {"keyword": 0.25, "semantic": 1.0}, rrf_k=20, adaptive=True)
    matches = standing_out("m", 60)
    lists = {"keyword": [], "keyword_any": matches, "semantic": matches[:10], "documents": 10**6}
    chosen, fusion, kind, *_ = adapt(lists, config, window=100)
    assert kind == AGREED and fusion.method == "rrf"


def test_z_scores_take_their_statistics_from_the_first_hundred_hits():
    # A deeper window (a later page) adds hits below; the top documents keep their z-scores.
    hits = standing_out("k", 100)
    deeper = hits + [Ranked(f"d{i}", 1.0) for i in range(400)]
    first = {f.id: f.score for f in fuse({"keyword": hits}, FusionConfig("zscore"))}
    again = {f.id: f.score for f in fuse({"keyword": deeper}, FusionConfig("zscore"))}
    assert all(again[doc_id] == pytest.approx(score) for doc_id, score in first.items())
    assert keyword_stands_out(hits) == keyword_stands_out(deeper)


def test_a_deeper_window_keeps_the_z_fused_order_of_the_first_and_ranks_what_it_adds_after():
    # The REST service grows the window to offset + k for a page beyond it: the documents of the first window's
    # lists keep their scores (the floor of a missing document comes from the first 100 hits too), and what the
    # deeper window adds scores no higher than the lowest of them (it ties only with documents at both floors).
    keyword = [Ranked(f"k{i}", 30.0 - 0.2 * i) for i in range(150)]
    semantic = [Ranked(f"s{i}", 0.9 - 0.002 * i) for i in range(150)]
    semantic[120] = Ranked("k10", 0.6)  # a document of the first window met again deeper in the other list
    config = FusionConfig("zscore", {"keyword": 0.75, "semantic": 1.0})
    first = fuse({"keyword": keyword[:100], "semantic": semantic[:100]}, config)
    deeper = {f.id: f.score for f in fuse({"keyword": keyword, "semantic": semantic}, config)}
    assert all(deeper[f.id] == pytest.approx(f.score) for f in first)
    lowest = min(f.score for f in first)
    added = set(deeper) - {f.id for f in first}
    assert len(added) == 99 and all(deeper[doc_id] <= lowest + 1e-9 for doc_id in added)


# Round 12 (SMALL_INDEX): where fewer than SMALL_INDEX_DOCUMENTS documents are searched, a STRICT or FALLBACK query that
# is no question is fused by z-scores of the any-term list at the configured weight, its phrase matches not weighted up.
def _cited_term_lists(documents: int) -> dict:
    """A glossary-like query: kNN's first holds no query term; the keyword matches (33, more than 5% of 500, so never
    rare) are documents kNN ranks 12th and lower, one of them citing the term as a phrase."""
    from semsearch.query.fusion import DOCUMENTS, KEYWORD, KEYWORD_ANY, KEYWORD_PHRASE, SEMANTIC

    semantic = [Ranked("first", 0.80)] + [Ranked(f"s{i}", 0.78 - 0.01 * i) for i in range(1, 30)]
    any_term = [Ranked("s12", 9.0), Ranked("s15", 8.9), Ranked("s17", 8.8)]
    any_term += [Ranked(f"k{i}", 8.7 - 0.05 * i) for i in range(30)]
    return {KEYWORD: any_term[:3], KEYWORD_ANY: any_term, SEMANTIC: semantic, DOCUMENTS: documents,
            "question": False, KEYWORD_PHRASE: [Ranked("s17", 1.0)]}


def test_a_query_searching_few_documents_is_fused_by_z_scores_without_phrase_weighting():
    from semsearch.query.fusion import KEYWORD, KEYWORD_ANY, KEYWORD_PHRASE
    from semsearch.query.plan import DEFAULT_FUSION

    small = adapt(_cited_term_lists(SMALL_INDEX_DOCUMENTS - 1), DEFAULT_FUSION, window=100)
    assert (small.kind, small.reason, small.fusion.method, small.keyword_list) == (STRICT, SMALL_INDEX, "zscore",
                                                                                   KEYWORD_ANY)
    assert small.fusion.weights == {"keyword": 0.25, "semantic": 1.0}  # the configured weights, as they are
    assert [hit.id for hit in small.lists[KEYWORD]] == [hit.id for hit in _cited_term_lists(1)[KEYWORD_ANY]]
    assert KEYWORD_PHRASE not in small.lists
    choice = fusion_choice(small)
    assert choice.phrase_matches == 0 and "few documents searched" in choice.description
    large = adapt(_cited_term_lists(SMALL_INDEX_DOCUMENTS), DEFAULT_FUSION, window=100)
    assert (large.kind, large.reason, large.fusion.method) == (STRICT, None, "rrf")
    assert KEYWORD_PHRASE in large.lists


def test_in_a_small_index_knn_order_is_kept_where_rank_fusion_lets_a_citation_lead():
    from semsearch.query.plan import DEFAULT_FUSION

    small = [hit.id for hit in fuse_hybrid(_cited_term_lists(SMALL_INDEX_DOCUMENTS - 1), DEFAULT_FUSION, 100)]
    large = [hit.id for hit in fuse_hybrid(_cited_term_lists(SMALL_INDEX_DOCUMENTS), DEFAULT_FUSION, 100)]
    assert small[:5] == ["first", "s1", "s2", "s3", "s4"]  # the keyword matches are 12th and lower in kNN's order
    assert large[0] == "s17" and large.index("first") == 1  # rank fusion: the phrase match (a citation) leads


def test_small_index_reason_comes_after_question_and_before_standout():
    from semsearch.query.plan import DEFAULT_FUSION

    standout = [Ranked("top", 60.0)] + [Ranked(f"d{i}", 20.0 - 0.1 * i) for i in range(1, 100)]
    semantic = [Ranked(f"s{i}", 0.9 - 0.001 * i) for i in range(100)]
    few = SMALL_INDEX_DOCUMENTS - 1
    assert score_fusion_reason(STRICT, standout, semantic, documents=few) == SMALL_INDEX
    assert score_fusion_reason(FALLBACK, standout, semantic, documents=few) == SMALL_INDEX
    assert score_fusion_reason(STRICT, standout, semantic, question=True, documents=few) == QUESTION
    assert score_fusion_reason(STRICT, standout, semantic, documents=SMALL_INDEX_DOCUMENTS) == STANDOUT
    assert score_fusion_reason(STRICT, standout, semantic) == STANDOUT  # documents unknown: as a large index
    assert score_fusion_reason(EXHAUSTIVE, standout, semantic, documents=few) is None  # rare terms keep ranks
    # One keyword hit, or hits of equal scores, add nothing to the z-scores (all 0), and are fused for the small index
    # all the same (round 19), not by rank as in a large index.
    assert score_fusion_reason(STRICT, standout[:1], semantic, documents=few) == SMALL_INDEX
    assert score_fusion_reason(STRICT, [Ranked("a", 3.0), Ranked("b", 3.0)], semantic, documents=few) == SMALL_INDEX
    assert score_fusion_reason(STRICT, [Ranked("a", 3.0), Ranked("b", 2.0)], semantic, documents=few) == SMALL_INDEX
    assert score_fusion_reason(STRICT, standout[:1], semantic, documents=SMALL_INDEX_DOCUMENTS) is None
    # A question in a small index keeps the question's weight (0.1), not the configured one.
    lists = {**_cited_term_lists(few), "question": True}
    assert adapt(lists, DEFAULT_FUSION, 100).fusion.weights["keyword"] == 0.25 * QUESTION_WEIGHT_FACTOR


# Round 15 (SUBJECT): in a small index, a one-term query whose best BM25 match holds the term throughout (BM25's
# term-frequency factor at SUBJECT_SATURATION or more) is fused by the same z-scores, keyword weighted up.
def _command_page_lists(saturation: float, terms: int | None = 1, documents: int = 69) -> dict:
    """A query of one term over man-page-like documents (git's "add": 38 of 69 pages hold it): BM25's first holds
    the term with the factor ``saturation``, the others less; kNN's first is another page, BM25's first its third."""
    import math

    from semsearch.query.fusion import BM25_TERM_CEILING, DOCUMENTS, KEYWORD, KEYWORD_ANY, SEMANTIC, TERMS

    idf = math.log(1 + (documents - 38 + 0.5) / (38 + 0.5))
    factors = [saturation] + [0.85 - 0.01 * i for i in range(37)]  # best first
    any_term = [Ranked("add" if i == 0 else f"p{i}", BM25_TERM_CEILING * idf * f) for i, f in enumerate(factors)]
    semantic = [Ranked("p5", 0.62), Ranked("p9", 0.60), Ranked("add", 0.59)]
    semantic += [Ranked(f"p{i}", 0.58 - 0.005 * i) for i in range(10, 40)]
    return {KEYWORD: any_term, KEYWORD_ANY: any_term, SEMANTIC: semantic, DOCUMENTS: documents, "question": False,
            TERMS: terms}


def test_term_saturation_is_bm25s_term_frequency_factor_of_the_best_match():
    from semsearch.query.fusion import term_saturation

    # git-add's page on the local OpenSearch node (explain): "add" 51 times, 38 of 69 pages hold it, score 1.2880822
    # = 2.2 (k1 + 1) × idf 0.597837 × tf factor 0.97935.
    add = [Ranked("add", 1.2880822)] + [Ranked(f"p{i}", 1.0) for i in range(37)]
    assert term_saturation(add, 69) == pytest.approx(0.97935, abs=1e-4)
    # A list cut at the window holds fewer than all the documents holding the term: the idf it gives is too high, so
    # the factor too low.
    cut = add[:20]
    assert term_saturation(cut, 69) < term_saturation(add, 69)
    assert term_saturation([], 69) == 0.0
    assert term_saturation([Ranked("only", 0.1)], 1) > 0  # every document holds the term: a small idf, still > 0


def test_a_one_term_query_whose_best_match_holds_it_throughout_weighs_keyword_up_in_a_small_index():
    from semsearch.query.fusion import (
        SUBJECT, SUBJECT_SATURATION, SUBJECT_WEIGHT_FACTOR, adapt, fusion_choice, phrases_weighed)
    from semsearch.query.plan import DEFAULT_FUSION

    held = _command_page_lists(0.98)
    subject = adapt(held, DEFAULT_FUSION, 100)
    assert (subject.kind, subject.reason, subject.fusion.method) == (STRICT, SUBJECT, "zscore")
    assert subject.fusion.weights == {"keyword": 0.25 * SUBJECT_WEIGHT_FACTOR, "semantic": 1.0}
    assert "holds the query's one term throughout" in fusion_choice(subject).description
    assert not phrases_weighed({**held, "keyword_phrase": held["keyword"][:1]}, SUBJECT)
    assert [hit.id for hit in fuse_hybrid(held, DEFAULT_FUSION, 100)][0] == "add"
    # The same query without the term held throughout (a term cited in passing), of two terms, of terms unknown, or
    # in a large index: the small index's light keyword side (kNN's first leads), or what a large index does.
    for lists in (_command_page_lists(SUBJECT_SATURATION - 0.01), _command_page_lists(0.98, terms=2),
                  _command_page_lists(0.98, terms=None)):
        assert adapt(lists, DEFAULT_FUSION, 100).reason == SMALL_INDEX
        assert [hit.id for hit in fuse_hybrid(lists, DEFAULT_FUSION, 100)][0] == "p5"
    assert adapt(_command_page_lists(0.98, documents=SMALL_INDEX_DOCUMENTS), DEFAULT_FUSION, 100).reason != SUBJECT
    assert adapt({**held, "question": True}, DEFAULT_FUSION, 100).reason == QUESTION
    assert score_fusion_reason(STRICT, held["keyword_any"], held["semantic"], documents=69, terms=1) == SUBJECT
    assert score_fusion_reason(EXHAUSTIVE, held["keyword_any"], held["semantic"], documents=69, terms=1) is None


# Round 16 (LONG_DOCUMENTS): in a small index whose documents average LONG_DOCUMENT_TERMS terms or more (pages), a
# query fused for the small index weighs keyword up as SUBJECT does, and BM25's first keeps its tier's lead at
# LONG_TIER_LEAD_RATIO.
def test_a_small_index_of_long_documents_weighs_keyword_up():
    from semsearch.query.fusion import (
        DOCUMENT_TERMS, LONG_DOCUMENT_TERMS, LONG_DOCUMENTS, LONG_DOCUMENTS_WEIGHT_FACTOR, SUBJECT, adapt,
        fusion_choice, long_documents, phrases_weighed)
    from semsearch.query.plan import DEFAULT_FUSION

    # Two terms (a module's name, File::Temp), so not SUBJECT; pages of 747 terms on average (perlmods).
    pages = {**_command_page_lists(0.98, terms=2), DOCUMENT_TERMS: 747.0}
    chosen = adapt(pages, DEFAULT_FUSION, 100)
    assert (chosen.kind, chosen.reason, chosen.fusion.method) == (STRICT, LONG_DOCUMENTS, "zscore")
    assert chosen.fusion.weights == {"keyword": 0.25 * LONG_DOCUMENTS_WEIGHT_FACTOR, "semantic": 1.0}
    assert "long ones" in fusion_choice(chosen).description
    assert not phrases_weighed({**pages, "keyword_phrase": pages["keyword"][:1]}, LONG_DOCUMENTS)
    assert [hit.id for hit in fuse_hybrid(pages, DEFAULT_FUSION, 100)][0] == "add"  # BM25's first, kNN's third
    # Documents of a middling length (an FAQ's answers, 100 terms), a length not known, or a large index: as before.
    for document_terms in (100.0, LONG_DOCUMENT_TERMS - 0.5, None):
        lists = {**pages, DOCUMENT_TERMS: document_terms}
        assert adapt(lists, DEFAULT_FUSION, 100).reason == SMALL_INDEX
        assert [hit.id for hit in fuse_hybrid(lists, DEFAULT_FUSION, 100)][0] == "p5"
    assert adapt({**pages, DOCUMENT_TERMS: LONG_DOCUMENT_TERMS}, DEFAULT_FUSION, 100).reason == LONG_DOCUMENTS
    large = _command_page_lists(0.98, terms=2, documents=SMALL_INDEX_DOCUMENTS)
    assert adapt({**large, DOCUMENT_TERMS: 747.0}, DEFAULT_FUSION, 100).reason not in (LONG_DOCUMENTS, SMALL_INDEX)
    # SUBJECT and a question are asked first.
    assert adapt({**_command_page_lists(0.98), DOCUMENT_TERMS: 747.0}, DEFAULT_FUSION, 100).reason == SUBJECT
    assert adapt({**pages, "question": True}, DEFAULT_FUSION, 100).reason == QUESTION
    assert long_documents(69, 747.0) and not long_documents(None, 747.0) and not long_documents(69, None)
    assert not long_documents(SMALL_INDEX_DOCUMENTS, 747.0)


def test_in_a_small_index_of_long_documents_bm25s_first_keeps_its_tiers_lead_sooner():
    from semsearch.query.fusion import (
        DOCUMENT_TERMS, DOCUMENTS, KEYWORD, KEYWORD_ANY, LONG_TIER_LEAD_RATIO, SEMANTIC, TIER_LEAD_RATIO,
        query_evidence)

    # A rare name (iconv: 3 of 450 pages hold it) whose page BM25 puts 1.1 times above the next; kNN's first is a
    # neighbouring page (iconv_open).
    matches = [Ranked("iconv", 1.1 * 8.0), Ranked("iconv_open", 8.0), Ranked("iconvconfig", 7.5)]
    semantic = ranked("iconv_open", "s1", "iconv", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9")
    lists = {KEYWORD: matches, KEYWORD_ANY: matches, SEMANTIC: semantic, DOCUMENTS: 450}
    assert LONG_TIER_LEAD_RATIO < 1.1 < TIER_LEAD_RATIO
    kind, keyword = query_evidence({**lists, DOCUMENT_TERMS: 316.0}, window=100)  # cfuncs' pages
    assert kind == EXHAUSTIVE and [hit.id for hit in keyword] == ["iconv", "iconv_open", "iconvconfig"]
    for short_or_large in ({DOCUMENT_TERMS: 24.0}, {DOCUMENT_TERMS: None}, {DOCUMENT_TERMS: 316.0, DOCUMENTS: 4500}):
        kind, keyword = query_evidence({**lists, **short_or_large}, window=100)
        assert kind == EXHAUSTIVE and [hit.id for hit in keyword][0] == "iconv_open"  # kNN's first leads its tier
    assert bm25_leads_tier(matches, LONG_TIER_LEAD_RATIO) and not bm25_leads_tier(matches)


# Round 17 (SHORT_DOCUMENTS): in a small index whose documents average fewer than SHORT_DOCUMENT_TERMS terms
# (definitions), a query fused for the small index weighs keyword down, and a one-term query is never keyword-led.
def _glossary_term_lists(terms: int | None = 1, document_terms: float | None = 24.0, documents: int = 480) -> dict:
    """A glossary term that 3 of 480 definitions cite (rare: EXHAUSTIVE) and its own definition, which does not hold
    it, kNN's first."""
    from semsearch.query.fusion import DOCUMENT_TERMS, DOCUMENTS, KEYWORD, KEYWORD_ANY, SEMANTIC, TERMS

    citing = [Ranked("cites1", 6.0), Ranked("cites2", 5.0), Ranked("cites3", 4.0)]
    semantic = [Ranked("defines", 0.80)] + [Ranked(f"s{i}", 0.70 - 0.01 * i) for i in range(1, 30)]
    semantic.insert(12, Ranked("cites1", 0.55))
    return {KEYWORD: citing, KEYWORD_ANY: citing, SEMANTIC: semantic, DOCUMENTS: documents, "question": False,
            TERMS: terms, DOCUMENT_TERMS: document_terms}


def test_a_small_index_of_short_documents_never_lets_a_one_term_querys_citations_lead():
    from semsearch.query.fusion import (
        QUESTION_WEIGHT_FACTOR, SHORT_DOCUMENT_TERMS, SHORT_DOCUMENTS, SHORT_DOCUMENTS_WEIGHT_FACTOR, adapt,
        fusion_choice, phrases_weighed, query_evidence, short_documents)
    from semsearch.query.plan import DEFAULT_FUSION

    glossary = _glossary_term_lists()
    assert query_evidence(glossary, 100)[0] == STRICT  # not EXHAUSTIVE: the citations do not lead
    chosen = adapt(glossary, DEFAULT_FUSION, 100)
    assert (chosen.kind, chosen.reason, chosen.fusion.method) == (STRICT, SHORT_DOCUMENTS, "zscore")
    assert chosen.fusion.weights == {"keyword": 0.25 * SHORT_DOCUMENTS_WEIGHT_FACTOR, "semantic": 1.0}
    assert SHORT_DOCUMENTS_WEIGHT_FACTOR == QUESTION_WEIGHT_FACTOR
    assert "short ones" in fusion_choice(chosen).description
    assert not phrases_weighed({**glossary, "keyword_phrase": glossary["keyword"][:1]}, SHORT_DOCUMENTS)
    assert [item.id for item in fuse_hybrid(glossary, DEFAULT_FUSION, 100)][0] == "defines"
    # Two terms (a known item's rare words, which its own document holds), a middling or unknown length, or a large
    # index: the rare matches lead, as before.
    for lists in (_glossary_term_lists(terms=2), _glossary_term_lists(document_terms=SHORT_DOCUMENT_TERMS),
                  _glossary_term_lists(document_terms=None), _glossary_term_lists(terms=None),
                  _glossary_term_lists(documents=SMALL_INDEX_DOCUMENTS)):
        assert query_evidence(lists, 100)[0] == EXHAUSTIVE
        assert [item.id for item in fuse_hybrid(lists, DEFAULT_FUSION, 100)][0] == "cites1"
    # A query that is no rare-term one is weighed down there too, of any number of terms.
    cited = _cited_term_lists(SMALL_INDEX_DOCUMENTS - 1)
    assert adapt({**cited, "document_terms": 24.0}, DEFAULT_FUSION, 100).reason == SHORT_DOCUMENTS
    assert adapt({**cited, "document_terms": 100.0}, DEFAULT_FUSION, 100).reason == SMALL_INDEX
    assert short_documents(480, 49.9) and not short_documents(480, 50.0) and not short_documents(None, 24.0)
    assert not short_documents(SMALL_INDEX_DOCUMENTS, 24.0) and not short_documents(480, None)


def test_a_one_term_query_no_longer_keyword_led_in_short_documents_may_still_be_a_subject():
    import math

    from semsearch.query.fusion import SUBJECT, adapt
    from semsearch.query.plan import DEFAULT_FUSION

    # The first of its 3 matches holds the term throughout (its score at the term's ceiling, 2.2 × idf): fused as any
    # one-term STRICT query of a small index whose best match does, SUBJECT, keyword weighted up.
    lists = _glossary_term_lists()
    idf = math.log(1 + (480 - 3 + 0.5) / (3 + 0.5))
    saturated = [Ranked("cites1", 2.2 * idf * 0.97), Ranked("cites2", 5.0), Ranked("cites3", 4.0)]
    chosen = adapt({**lists, "keyword": saturated, "keyword_any": saturated}, DEFAULT_FUSION, 100)
    assert (chosen.kind, chosen.reason) == (STRICT, SUBJECT)


# Round 18 (RARE_STRICT): in a small index, a query of several terms whose strict matches are rare (at most
# RARE_MATCH_FRACTION of the documents searched) has each of them weighted up as a phrase match is elsewhere.
def _recalled_entry_lists(strict: int = 1, terms: int | None = 3, documents: int = 400,
                          document_terms: float | None = 24.0) -> dict:
    """A changelog entry recalled by three of its words: it alone holds most of them (the strict list), but one word
    is common (60 entries hold it, BM25 ranks the entry 4th of them), and kNN ranks it 26th."""
    from semsearch.query.fusion import DOCUMENT_TERMS, DOCUMENTS, KEYWORD, KEYWORD_ANY, SEMANTIC, TERMS

    any_term = [Ranked(f"k{i}", 6.0 - 0.05 * i) for i in range(3)] + [Ranked("entry", 5.8)]
    any_term += [Ranked(f"k{i}", 5.0 - 0.05 * i) for i in range(3, 60)]
    held = [Ranked("entry", 5.8)] + [hit for hit in any_term if hit.id != "entry"][:strict - 1]
    semantic = [Ranked("entry" if i == 25 else f"s{i}", 0.70 - 0.005 * i) for i in range(100)]
    return {KEYWORD: held, KEYWORD_ANY: any_term, SEMANTIC: semantic, DOCUMENTS: documents, "question": False,
            TERMS: terms, DOCUMENT_TERMS: document_terms}


def test_a_small_index_weighs_up_a_querys_rare_strict_matches_as_phrase_matches(monkeypatch):
    import semsearch.query.fusion as fusion_module
    from semsearch.query.fusion import KEYWORD, KEYWORD_RARE_STRICT, SHORT_DOCUMENTS, per_retriever
    from semsearch.query.plan import DEFAULT_FUSION

    lists = _recalled_entry_lists()
    chosen = adapt(lists, DEFAULT_FUSION, 100)
    assert (chosen.kind, chosen.reason) == (STRICT, SHORT_DOCUMENTS)
    assert [hit.id for hit in chosen.lists[KEYWORD_RARE_STRICT]] == ["entry"]
    assert chosen.fusion.weight(KEYWORD_RARE_STRICT) == 1.0 * PHRASE_WEIGHT_FACTOR  # as heavy as a phrase match
    fused = fuse_hybrid(lists, DEFAULT_FUSION, 100)
    monkeypatch.setattr(fusion_module, "RARE_STRICT_MIN_TERMS", float("inf"))
    without = fuse_hybrid(lists, DEFAULT_FUSION, 100)
    before = {item.id: item for item in without}
    order, order_without = [item.id for item in fused], [item.id for item in without]
    assert order[0] == "entry" and order_without.index("entry") > 9  # below kNN's neighbours without the rule
    for item in fused:  # one deviation of kNN's scores more, as the keyword retriever's share; the rest as before
        assert set(item.contributions) <= {KEYWORD, "semantic"}
        assert sum(item.contributions.values()) == pytest.approx(item.score)
        assert item.score == pytest.approx(before[item.id].score + (1.0 if item.id == "entry" else 0.0))
    assert per_retriever({KEYWORD: 0.5, KEYWORD_RARE_STRICT: 1.0, "semantic": 0.2}) == {KEYWORD: 1.5, "semantic": 0.2}
    choice = fusion_choice(chosen)
    assert (choice.rare_strict_matches, choice.rare_strict_weight, choice.phrase_matches) == (1, 1.0, 0)
    assert KEYWORD_RARE_STRICT not in choice.weights
    assert "1 rare document holding most terms weighted up (weight 1)" in choice.description


def test_rare_strict_matches_only_for_several_terms_rare_in_a_small_index():
    from semsearch.query.fusion import (
        QUESTION, RARE_MATCH_FRACTION, SHORT_DOCUMENTS, SMALL_INDEX_REASONS, query_fusion_reason, rare_strict_matches)

    def weighed(lists: dict, window: int = 100) -> list[str]:
        return [hit.id for hit in rare_strict_matches(lists, query_fusion_reason(lists, STRICT), window)]

    assert RARE_MATCH_FRACTION * 400 == 20
    assert len(weighed(_recalled_entry_lists(strict=20))) == 20  # 5% of 400
    assert weighed(_recalled_entry_lists(strict=21)) == []  # more than 5%: not rare
    assert weighed(_recalled_entry_lists(terms=2)) == ["entry"]
    # A strict list as long as the window may be the first of more: not known to be rare.
    assert len(weighed(_recalled_entry_lists(strict=9), window=10)) == 9
    assert weighed(_recalled_entry_lists(strict=10), window=10) == []
    # One term, or unknown (a filtered search: TERMS is None there), no strict match, a large index: none.
    for lists in (_recalled_entry_lists(terms=1), _recalled_entry_lists(terms=None),
                  _recalled_entry_lists(strict=0), _recalled_entry_lists(documents=SMALL_INDEX_DOCUMENTS)):
        assert weighed(lists) == []
    # Any small-index reason (long, middling or unknown lengths too), never a question or a large index's reason.
    for document_terms in (747.0, 100.0, None):
        assert weighed(_recalled_entry_lists(document_terms=document_terms)) == ["entry"]
    lists = _recalled_entry_lists()
    assert all(rare_strict_matches(lists, reason, 100) for reason in SMALL_INDEX_REASONS)
    assert not rare_strict_matches(lists, QUESTION, 100) and not rare_strict_matches(lists, None, 100)
    assert rare_strict_matches(lists, SHORT_DOCUMENTS, 100) == lists["keyword"]


# Round 19: in a small index, a one-term query whose keyword matches score alike (one description citing an
# identifier) is fused by the small index's z-scores, where the citation adds nothing, not by rank.
def test_a_citation_scoring_alone_does_not_pass_knns_first_in_a_small_index():
    from semsearch.query.fusion import DOCUMENT_TERMS, DOCUMENTS, KEYWORD, KEYWORD_ANY, SEMANTIC, SHORT_DOCUMENTS, TERMS
    from semsearch.query.plan import DEFAULT_FUSION

    # gitconfig's core.fileMode: one other description cites it (BM25's only match), kNN ranks that one 2nd.
    semantic = [Ranked("defines", 0.80), Ranked("cites", 0.79)] + [Ranked(f"s{i}", 0.7 - 0.005 * i) for i in range(60)]
    lists = {KEYWORD: [Ranked("cites", 7.5)], KEYWORD_ANY: [Ranked("cites", 7.5)], SEMANTIC: semantic,
             DOCUMENTS: 400, "question": False, TERMS: 1, DOCUMENT_TERMS: 41.7}
    chosen = adapt(lists, DEFAULT_FUSION, 100)
    assert (chosen.kind, chosen.reason, chosen.fusion.method) == (STRICT, SHORT_DOCUMENTS, "zscore")
    fused = fuse_hybrid(lists, DEFAULT_FUSION, 100)
    assert [item.id for item in fused] == [hit.id for hit in semantic]  # semantic search's order
    assert fused[1].contributions["keyword"] == 0.0  # one hit: its z-score is 0
    # Not knowing how many documents it searched (as a large index, where one match is no rare one), rank fusion:
    # both lists hold the citation, which passes kNN's first.
    unknown = {**lists, DOCUMENTS: None}
    assert adapt(unknown, DEFAULT_FUSION, 100)[2:4] == (STRICT, None)
    assert [item.id for item in fuse_hybrid(unknown, DEFAULT_FUSION, 100)][:2] == ["cites", "defines"]


def test_which_queries_are_fused_for_a_small_index():
    from semsearch.query.fusion import RARE_MATCH_FRACTION, fused_for_small_index
    from semsearch.query.plan import DEFAULT_FUSION

    one, alike, differ = [Ranked("a", 3.0)], [Ranked("a", 3.0), Ranked("b", 3.0)], [Ranked("a", 3.0), Ranked("b", 2.0)]
    few = SMALL_INDEX_DOCUMENTS - 1
    assert fused_for_small_index(differ, few) and fused_for_small_index(one, few) and fused_for_small_index(alike, few)
    assert not fused_for_small_index(differ, SMALL_INDEX_DOCUMENTS) and not fused_for_small_index(differ, None)
    # No keyword match: as a large index (kNN's lead asked about, or rank fusion of kNN's list alone).
    assert not fused_for_small_index([], few)
    assert score_fusion_reason(STRICT, [], ranked(*"abcdefghijkl"), documents=few) != SMALL_INDEX
    # Under 1 / RARE_MATCH_FRACTION documents no single match is rare: matches scoring alike keep rank fusion there,
    # where a lone exact match in a handful of documents rises by being in both lists.
    tiny = int(1 / RARE_MATCH_FRACTION)
    assert fused_for_small_index(one, tiny) and not fused_for_small_index(one, tiny - 1)
    assert not fused_for_small_index(alike, 4) and fused_for_small_index(differ, 4)
    semantic = ranked("d0", "d1", "d2", "d3")
    lone = {"keyword": [Ranked("d3", 1.2)], "keyword_any": [Ranked("d3", 1.2)], "semantic": semantic,
            "documents": 4, "question": False, "terms": 1}
    assert fuse_hybrid(lone, DEFAULT_FUSION, 100)[0].id == "d3"
