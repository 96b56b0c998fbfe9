"""semsearch.query.plan: request validation, the bodies per retriever, and hits from hand-made answers."""

import dataclasses
import statistics

import pytest

from semsearch.errors import ConfigurationError
from semsearch.query.fusion import (
    AGREED,
    DENSE_LEAD,
    EXHAUSTIVE,
    FALLBACK,
    KEYWORD_ANY,
    KEYWORD_MATCHES,
    QUESTION,
    STANDOUT,
    STRICT,
    FusionChoice,
    FusionConfig,
    describe_choice,
)
from semsearch.query.steps import settle
from semsearch.index.manage import IndexInfo
from semsearch.query.bodies import HYBRID_KEYWORD_MINIMUM_SHOULD_MATCH
from semsearch.query.plan import (
    DEFAULT_EF_SEARCH,
    DEFAULT_FUSION,
    DEFAULT_WINDOW,
    CandidateWithoutId,
    Hit,
    SearchRequest,
    candidate_id,
    candidate_lists,
    hits_from,
    hydrate,
    hydrate_body,
    plan_bodies,
    server_hits_from,
    vector_excludes,
    wants_phrase,
)

VECTOR = [0.5, -0.25, 0.125]
FIELDS = ["title", "text"]
INFO = IndexInfo(name="docs", text_fields=FIELDS, vector_field="embedding", fingerprint={}, dimension=3,
                 index="docs")
INFO_PASSAGES = IndexInfo(name="docs", text_fields=FIELDS, vector_field="embedding", fingerprint={}, dimension=3,
                          index="docs", meta={"passages": {"field": "passages", "overlap": 32}})
# An index semsearch created: the keyword copy of the id is mapped, and _meta records the kNN breadth.
INFO_ID = IndexInfo(name="docs", text_fields=FIELDS, vector_field="embedding", fingerprint={}, dimension=3,
                    index="docs", meta={"knn": {"ef_search": 100}}, id_field="semsearch_id")


def with_ef_search(info, ef_search):
    return dataclasses.replace(info, meta={**info.meta, "knn": {"ef_search": ef_search}})


def multi_match(body):
    return body["query"]["bool"]["must"][0]["multi_match"]


def knn_clause(body, field="embedding"):
    query = body["query"]
    if "dis_max" in query:
        query = query["dis_max"]["queries"][0]
    return query["knn"][field]


# --- SearchRequest.validate ------------------------------------------------------------------------


def test_defaults_are_the_documented_ones():
    request = SearchRequest("q")
    assert request.mode == "hybrid" and request.k == 10 and request.offset == 0
    assert request.window == DEFAULT_WINDOW == 100
    assert request.fusion == DEFAULT_FUSION
    assert DEFAULT_FUSION.method == "rrf" and DEFAULT_FUSION.rrf_k == 20 and DEFAULT_FUSION.adaptive
    assert DEFAULT_EF_SEARCH == 100
    assert DEFAULT_FUSION.weight("keyword") == 0.25 and DEFAULT_FUSION.weight("semantic") == 1.0


def test_validate_returns_the_request_itself():
    request = SearchRequest("q", k=5, offset=10, mode="semantic")
    assert request.validate() is request


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"mode": "fuzzy"}, "unknown mode"),
    ({"mode": "Hybrid"}, "unknown mode"),
    ({"text": ""}, "empty"),
    ({"text": "   \n\t"}, "empty"),
    ({"k": 0}, "k must be positive"),
    ({"k": -3}, "k must be positive"),
    ({"offset": -1}, "offset"),
    ({"fusion": FusionConfig(method="borda")}, "unknown fusion method"),
    ({"offset": 95, "k": 10}, "window"),
    ({"offset": 0, "k": 101}, "window"),
    ({"offset": 5, "k": 5, "window": 9}, "window"),
])
def test_validate_refuses(kwargs, message):
    request = SearchRequest(**{"text": "some query", **kwargs})
    with pytest.raises(ConfigurationError, match=message):
        request.validate()


def test_validate_names_the_valid_modes():
    with pytest.raises(ConfigurationError) as info:
        SearchRequest("q", mode="vector").validate()
    for mode in ("hybrid", "semantic", "keyword"):
        assert mode in str(info.value)


def test_window_error_says_which_window_would_do():
    with pytest.raises(ConfigurationError, match=r"window=105"):
        SearchRequest("q", k=10, offset=95).validate()


def test_non_string_text_is_refused():
    with pytest.raises(ConfigurationError):
        SearchRequest(None).validate()  # type: ignore[arg-type]


@pytest.mark.parametrize(("offset", "k", "window"), [(90, 10, 100), (0, 100, 100), (0, 1, 1), (15, 5, 20)])
def test_hybrid_page_ending_at_the_window_is_fine(offset, k, window):
    SearchRequest("q", k=k, offset=offset, window=window).validate()


@pytest.mark.parametrize("mode", ["semantic", "keyword"])
def test_single_retriever_modes_page_beyond_the_window(mode):
    # Only hybrid pages are slices of a fused list of fixed depth.
    SearchRequest("q", k=10, offset=500, window=100, mode=mode).validate()


# --- plan_bodies ------------------------------------------------------------------------------------


def test_hybrid_plans_both_retrievers_with_the_window():
    request = SearchRequest("solar eclipse", k=5, offset=10, window=40).validate()
    bodies = plan_bodies(request, INFO, VECTOR)
    assert list(bodies) == ["keyword", "keyword_any", "keyword_phrase", "semantic", "documents"]
    keyword, semantic = bodies["keyword"], bodies["semantic"]
    # Every retriever returns the window from the top; paging happens after fusion.
    assert all(bodies[name]["size"] == 40 and "from" not in bodies[name]
               for name in ("keyword", "keyword_any", "keyword_phrase", "semantic"))
    # Documents holding the two words in the query's order, field by field: they lead the fused list.
    assert multi_match(bodies["keyword_phrase"])["type"] == "phrase"
    assert multi_match(bodies["keyword_phrase"])["query"] == "solar eclipse"
    assert "minimum_should_match" not in multi_match(bodies["keyword_phrase"])
    # The count of documents searched (what "rare terms" is relative to), under the same filters.
    assert bodies["documents"] == {"size": 0, "track_total_hits": True, "query": {"bool": {"filter": []}}}
    # The adaptive keyword side's second list: any of the query's terms (fallback and rarity).
    assert "minimum_should_match" not in multi_match(bodies["keyword_any"])
    assert multi_match(bodies["keyword_any"])["query"] == "solar eclipse"
    # The graph search collects at least ef_search neighbours (100 when _meta does not say), of which
    # the window is returned.
    assert knn_clause(semantic)["k"] == DEFAULT_EF_SEARCH == 100
    assert knn_clause(semantic)["vector"] == VECTOR
    match = multi_match(keyword)
    assert match["query"] == "solar eclipse"
    assert match["fields"] == FIELDS
    assert match["minimum_should_match"] == HYBRID_KEYWORD_MINIMUM_SHOULD_MATCH == "2<75%"


@pytest.mark.parametrize(("text", "wanted"), [
    ("abbreviations for months", True), ("B. F. Skinner", True), ("Create a TCP server.", True),
    ("disk", False), ("the beatles", False), ("to be or not to be", False), ("", False), ("  ", False),
    # One token each for the standard tokenizer: a phrase of one term would be every document holding it.
    ("user's", False), ("node.js", False), ("os.path", False), ("3.14", False), ("O'Brien", False),
    ("the user's guide", True),
    # Four terms at most: a longer query found word for word elsewhere is quoted there, not answered.
    ("relationships among files in a makefile", True), ("closures in Perl programs", True),
    ("list open files and network sockets", False), ("How do I set the default printer?", False),
    ("How do I make Emacs display the line number?", False),
    # No question, however short: its terms in order are found where the topic is mentioned, not answered.
    ("What is a closure in Perl programs?", False), ("What is a Virtual Package?", False),
    ("is python slow", False), ("python slow", True)])
def test_a_phrase_needs_two_to_four_terms_the_english_analyzer_keeps(text, wanted):
    assert wants_phrase(text, ["english", "english"]) is wanted
    assert wants_phrase(text, ["semsearch_text"]) is wanted  # Elasticsearch without the english analyzer
    assert wants_phrase(text, []) is wanted  # analyzers unknown: semsearch's default, english


def test_which_analyzers_drop_what():
    # No stop words in the standard analyzer: "the beatles" is a phrase of two terms there.
    assert wants_phrase("the beatles", [None, "standard"]) and wants_phrase("the beatles", ["whitespace"])
    # Every field must keep two terms: the english one drops "the".
    assert not wants_phrase("the beatles", ["standard", "english"])
    # Another language's or a custom analyzer: its stop words are unknown, so no phrase search at all.
    assert not wants_phrase("le chat noir", ["french"]) and not wants_phrase("solar eclipse", ["english", "mine"])


def test_hybrid_asks_for_phrase_matches_only_with_two_words_an_analyzer_keeps():
    assert "keyword_phrase" not in plan_bodies(SearchRequest("eclipse").validate(), INFO, VECTOR)
    assert "keyword_phrase" not in plan_bodies(SearchRequest("the eclipse").validate(), INFO, VECTOR)
    plain = SearchRequest("solar eclipse", fusion=FusionConfig("rrf")).validate()
    assert "keyword_phrase" not in plan_bodies(plain, INFO, VECTOR)  # a plain fusion has no use for it
    assert "keyword_phrase" not in plan_bodies(SearchRequest("solar eclipse", mode="keyword").validate(), INFO, VECTOR)


@pytest.mark.parametrize("info", [INFO, INFO_PASSAGES], ids=["plain", "passages"])
@pytest.mark.parametrize("request_kwargs", [{}, {"source": ["title"]}, {"source": False}, {"highlight": True},
                                            {"explain": True}],
                         ids=["default", "fields", "none", "highlight", "explain"])
def test_hybrid_candidates_are_ids_and_scores_only(info, request_kwargs):
    # No mapped id keyword: ids are the stored _id, and no source or highlight is fetched for 2 x window candidates.
    bodies = plan_bodies(SearchRequest("solar eclipse", **request_kwargs).validate(), info, VECTOR)
    bodies.pop("documents")  # a count: no hits
    assert "keyword_phrase" in bodies
    for name, body in bodies.items():
        assert body["_source"] is False, name
        assert "highlight" not in body, name
        assert "stored_fields" not in body and "docvalue_fields" not in body, name


@pytest.mark.parametrize("request_kwargs", [{}, {"source": ["title"]}, {"highlight": True}])
def test_hybrid_candidates_read_the_id_from_doc_values_when_it_is_mapped(request_kwargs):
    bodies = plan_bodies(SearchRequest("solar eclipse", **request_kwargs).validate(), INFO_ID, VECTOR)
    assert list(bodies) == ["keyword", "keyword_any", "keyword_phrase", "semantic", "documents"]
    assert bodies.pop("documents")["size"] == 0
    for name, body in bodies.items():
        assert body["stored_fields"] == "_none_", name
        assert body["docvalue_fields"] == ["semsearch_id"], name
        assert "_source" not in body and "highlight" not in body, name


def test_hybrid_candidates_fall_back_to_the_stored_id_when_asked():
    request = SearchRequest("q").validate()
    with_doc_values = plan_bodies(request, INFO_ID, VECTOR)
    fallback = plan_bodies(request, INFO_ID, VECTOR, ids_from_doc_values=False)
    assert fallback.pop("documents") == with_doc_values.pop("documents")
    for name, body in fallback.items():
        assert "stored_fields" not in body and "docvalue_fields" not in body, name
        assert body["_source"] is False, name
        # Otherwise the same search: same query, size and no count.
        same = {key: value for key, value in with_doc_values[name].items()
                if key not in ("stored_fields", "docvalue_fields")}
        assert {key: value for key, value in body.items() if key != "_source"} == same, name


@pytest.mark.parametrize("mode", ["keyword", "semantic"])
def test_single_retriever_modes_never_read_doc_values(mode):
    # Their hits are the page itself: sources and highlights come with the search, ids are _id.
    for flag in (True, False):
        (body,) = plan_bodies(SearchRequest("q", mode=mode, highlight=True).validate(), INFO_ID, VECTOR,
                              ids_from_doc_values=flag).values()
        assert "stored_fields" not in body and "docvalue_fields" not in body
        assert body["_source"] == {"excludes": ["embedding", "semsearch_hash", "semsearch_id"]}
        assert "highlight" in body


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
@pytest.mark.parametrize("info", [INFO, INFO_ID, INFO_PASSAGES], ids=["plain", "id-field", "passages"])
def test_no_body_counts_every_match(mode, info):
    bodies = plan_bodies(SearchRequest("q", mode=mode).validate(), info, VECTOR)
    # Only the count of documents searched (hybrid's "documents") counts, and it fetches no hit.
    assert bodies.pop("documents", {"size": 0})["size"] == 0
    for body in bodies.values():
        assert body["track_total_hits"] is False


def test_keyword_mode_is_plain_or_bm25_paged_by_from():
    request = SearchRequest("solar eclipse", k=5, offset=10, mode="keyword").validate()
    bodies = plan_bodies(request, INFO, None)  # keyword mode needs no vector
    assert list(bodies) == ["keyword"]
    body = bodies["keyword"]
    assert "minimum_should_match" not in multi_match(body)
    assert body["size"] == 5 and body["from"] == 10


def test_keyword_mode_first_page_has_no_from():
    body = plan_bodies(SearchRequest("q", k=7, mode="keyword").validate(), INFO, None)["keyword"]
    assert body["size"] == 7 and "from" not in body


@pytest.mark.parametrize(("ef_search", "offset", "k", "expected_k"), [
    (None, 0, 5, 100),      # no ef_search in _meta: DEFAULT_EF_SEARCH
    (None, 90, 10, 100),
    (None, 95, 10, 105),    # beyond the breadth: offset + size
    (100, 30, 10, 100),
    (16, 0, 5, 16),
    (16, 5, 5, 16),
    (16, 15, 5, 20),
    (16, 30, 10, 40),
    (256, 0, 10, 256),
])
def test_semantic_knn_k_is_offset_plus_size_or_ef_search_whichever_is_larger(ef_search, offset, k, expected_k):
    info = INFO if ef_search is None else with_ef_search(INFO, ef_search)
    body = plan_bodies(SearchRequest("q", k=k, offset=offset, mode="semantic").validate(), info, VECTOR)["semantic"]
    assert knn_clause(body)["k"] == expected_k == max(offset + k, ef_search or DEFAULT_EF_SEARCH)
    assert body["size"] == k
    assert body.get("from", 0) == offset
    if offset == 0:
        assert "from" not in body


@pytest.mark.parametrize(("ef_search", "window", "expected_k"), [(None, 40, 100), (None, 150, 150), (16, 40, 40),
                                                                 (512, 40, 512)])
def test_hybrid_knn_k_is_the_window_or_ef_search_whichever_is_larger(ef_search, window, expected_k):
    info = INFO_ID if ef_search is None else with_ef_search(INFO_ID, ef_search)
    body = plan_bodies(SearchRequest("q", k=5, window=window).validate(), info, VECTOR)["semantic"]
    assert knn_clause(body)["k"] == expected_k
    assert body["size"] == window


def test_semantic_paging_with_passages_asks_both_knn_queries_for_the_same_k():
    for ef_search, expected in ((None, 100), (8, 20)):
        info = INFO_PASSAGES if ef_search is None else with_ef_search(INFO_PASSAGES, ef_search)
        request = SearchRequest("q", k=5, offset=15, mode="semantic").validate()
        body = plan_bodies(request, info, VECTOR)["semantic"]
        document_knn, nested = body["query"]["dis_max"]["queries"]
        assert document_knn["knn"]["embedding"]["k"] == expected
        assert nested["nested"]["path"] == "passages"
        assert nested["nested"]["query"]["knn"]["passages.embedding"]["k"] == expected
        assert body["from"] == 15 and body["size"] == 5


@pytest.mark.parametrize("mode", ["semantic", "hybrid"])
def test_modes_with_a_semantic_side_need_the_vector(mode):
    with pytest.raises(ValueError, match="vector"):
        plan_bodies(SearchRequest("q", mode=mode).validate(), INFO, None)


@pytest.mark.parametrize("mode", ["keyword", "semantic"])
@pytest.mark.parametrize("info", [INFO, INFO_PASSAGES], ids=["plain", "passages"])
def test_vectors_are_never_in_source(mode, info):
    bodies = plan_bodies(SearchRequest("q", mode=mode).validate(), info, VECTOR)
    expected = ["embedding"] + (["passages"] if info.passages_field else [])
    assert vector_excludes(info) == expected
    for body in bodies.values():  # nor semsearch's bookkeeping: a hit holds what the application wrote
        assert body["_source"] == {"excludes": [*expected, "semsearch_hash", "semsearch_id"]}


@pytest.mark.parametrize("mode", ["keyword", "semantic"])
def test_source_fields_are_included_and_vectors_still_excluded(mode):
    request = SearchRequest("q", mode=mode, source=["title", "year"]).validate()
    for body in plan_bodies(request, INFO_PASSAGES, VECTOR).values():
        assert body["_source"] == {"includes": ["title", "year"], "excludes": ["embedding", "passages", "semsearch_hash", "semsearch_id"]}


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_source_false_asks_for_no_source(mode):
    bodies = plan_bodies(SearchRequest("q", mode=mode, source=False).validate(), INFO, VECTOR)
    bodies.pop("documents", None)  # a count: no hits
    for body in bodies.values():
        assert body["_source"] is False


@pytest.mark.parametrize("mode", ["keyword", "semantic"])
def test_highlight_only_when_asked(mode):
    plain = plan_bodies(SearchRequest("red giant", mode=mode).validate(), INFO, VECTOR)
    assert all("highlight" not in body for body in plain.values())
    marked = plan_bodies(SearchRequest("red giant", mode=mode, highlight=True).validate(), INFO, VECTOR)
    for name, body in marked.items():
        spec = body["highlight"]
        assert set(spec["fields"]) == set(FIELDS), name
        assert spec["pre_tags"] == ["<em>"] and spec["post_tags"] == ["</em>"]
        # kNN hits are marked with the query's keyword terms too.
        assert spec["highlight_query"]["multi_match"]["query"] == "red giant"


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
@pytest.mark.parametrize("filters", [{"term": {"category": "space"}},
                                     [{"term": {"category": "space"}}, {"range": {"year": {"gte": 2000}}}]])
@pytest.mark.parametrize("info", [INFO, INFO_ID], ids=["plain", "id-field"])
def test_filters_go_to_every_retriever(mode, filters, info):
    clauses = filters if isinstance(filters, list) else [filters]
    bodies = plan_bodies(SearchRequest("q", mode=mode, filters=filters).validate(), info, VECTOR)
    if "keyword" in bodies:
        assert bodies["keyword"]["query"]["bool"]["filter"] == clauses
    if "semantic" in bodies:
        # Inside the knn clause: efficient filtering, not a post-filter on k neighbours.
        assert knn_clause(bodies["semantic"])["filter"] == {"bool": {"filter": clauses}}
        assert "post_filter" not in bodies["semantic"]


def test_filters_reach_the_nested_passages_query():
    flt = {"term": {"category": "space"}}
    body = plan_bodies(SearchRequest("q", mode="semantic", filters=flt).validate(), INFO_PASSAGES, VECTOR)["semantic"]
    document_knn, nested = body["query"]["dis_max"]["queries"]
    assert document_knn["knn"]["embedding"]["filter"] == {"bool": {"filter": [flt]}}
    assert nested["bool"]["filter"] == [flt]


# --- candidate_id -----------------------------------------------------------------------------------------


def test_candidate_id_prefers_the_stored_id():
    assert candidate_id({"_id": "a", "_score": 1.0}) == "a"
    assert candidate_id({"_id": "a", "_score": 1.0, "fields": {"semsearch_id": ["b"]}}) == "a"


def test_candidate_id_reads_the_doc_values_id():
    assert candidate_id({"_score": 1.0, "fields": {"semsearch_id": ["doc-7"]}}) == "doc-7"
    # A numeric-looking id is still a string.
    assert candidate_id({"_score": 1.0, "fields": {"semsearch_id": [42]}}) == "42"


@pytest.mark.parametrize("raw", [{"_score": 1.0}, {"_score": 1.0, "fields": {}},
                                 {"_score": 1.0, "fields": {"semsearch_id": []}}, {"_score": 1.0, "fields": None}],
                         ids=["no-fields", "empty-fields", "empty-values", "null-fields"])
def test_candidate_without_an_id_is_reported(raw):
    with pytest.raises(CandidateWithoutId):
        candidate_id(raw)
    assert issubclass(CandidateWithoutId, ValueError)


# --- hits_from ----------------------------------------------------------------------------------------


def raw(doc_id, score, source=None, highlight=None):
    hit = {"_id": doc_id, "_score": score, "_source": source if source is not None else {"title": doc_id}}
    if highlight:
        hit["highlight"] = highlight
    return hit


KEYWORD = [raw("a", 12.0, highlight={"text": ["<em>x</em> a"]}), raw("b", 8.0), raw("c", 2.0)]
SEMANTIC = [raw("c", 0.9, highlight={"title": ["<em>x</em> c"]}), raw("a", 0.8), raw("d", 0.5), raw("e", 0.4)]
RESPONSES = {"keyword": KEYWORD, "semantic": SEMANTIC}


def test_single_mode_hits_keep_the_retrievers_order_and_scores():
    request = SearchRequest("q", k=2, mode="keyword").validate()
    hits = hits_from(request, {"keyword": KEYWORD})
    assert [h.id for h in hits] == ["a", "b"]  # never more than k
    assert [h.score for h in hits] == [12.0, 8.0]
    assert hits[0].contributions == {"keyword": 12.0}
    assert hits[0].source == {"title": "a"}
    assert hits[0].highlights == {"text": ["<em>x</em> a"]}
    assert hits[0].explanation is None


def test_single_mode_explanation_ranks_count_from_the_offset():
    request = SearchRequest("q", k=3, offset=20, mode="semantic", explain=True).validate()
    hits = hits_from(request, {"semantic": SEMANTIC[:3]})
    assert [h.explanation["semantic"]["rank"] for h in hits] == [21, 22, 23]
    for h in hits:
        assert h.explanation == {"semantic": {"rank": h.explanation["semantic"]["rank"], "raw_score": h.score,
                                              "contribution": h.score}}


def test_hybrid_default_fusion_is_weighted_rrf():
    hits = hits_from(SearchRequest("q", k=10).validate(), RESPONSES)
    by_id = {h.id: h for h in hits}
    assert set(by_id) == {"a", "b", "c", "d", "e"}
    # Σ weight / (20 + rank), keyword at a quarter of semantic's weight (no any-term list here: nothing adapts).
    assert by_id["a"].score == pytest.approx(0.25 / 21 + 1.0 / 22)
    assert by_id["c"].score == pytest.approx(0.25 / 23 + 1.0 / 21)
    assert by_id["b"].contributions == pytest.approx({"keyword": 0.25 / 22, "semantic": 0.0})
    assert by_id["e"].contributions == pytest.approx({"keyword": 0.0, "semantic": 1.0 / 24})
    assert [h.id for h in hits] == ["c", "a", "d", "e", "b"]


@pytest.mark.parametrize("fusion", [DEFAULT_FUSION, FusionConfig("rrf"), FusionConfig("minmax"),
                                    FusionConfig("zscore", {"keyword": 0.4, "semantic": 0.6})],
                         ids=["default", "rrf", "minmax", "zscore"])
def test_hybrid_contributions_add_up_and_hits_are_sorted(fusion):
    hits = hits_from(SearchRequest("q", k=10, fusion=fusion).validate(), RESPONSES)
    assert len(hits) == 5
    for hit in hits:
        assert set(hit.contributions) == {"keyword", "semantic"}
        assert sum(hit.contributions.values()) == pytest.approx(hit.score)
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_a_question_is_fused_by_z_scores_with_the_dense_side_far_the_heavier():
    import statistics

    responses = {**RESPONSES, "keyword_any": KEYWORD}  # as the default fusion asks for it
    assert candidate_lists(responses, "why so?")["question"] and not candidate_lists(responses, "q")["question"]
    assert candidate_lists(responses, "q")["terms"] == 1 and candidate_lists(responses, "why so?")["terms"] == 2
    statement = {h.id: h for h in hits_from(SearchRequest("q", k=10).validate(), responses)}
    assert statement["a"].score == pytest.approx(0.25 / 21 + 1.0 / 22)  # rank fusion (too few hits for anything else)
    question = {h.id: h for h in hits_from(SearchRequest("q?", k=10).validate(), responses)}

    def z(scores, score):
        return (score - statistics.fmean(scores)) / statistics.pstdev(scores)

    keyword, semantic = [12.0, 8.0, 2.0], [0.9, 0.8, 0.5, 0.4]
    assert question["a"].contributions == pytest.approx({"keyword": 0.1 * z(keyword, 12.0),
                                                         "semantic": z(semantic, 0.8)})
    assert question["d"].contributions["keyword"] == pytest.approx(0.1 * z(keyword, 2.0))  # missing: the floor
    assert set(question) == set(statement)


def test_hybrid_minmax_scores():
    fusion = FusionConfig("minmax", {"keyword": 0.3, "semantic": 0.7})
    by_id = {h.id: h for h in hits_from(SearchRequest("q", fusion=fusion).validate(), RESPONSES)}
    assert by_id["a"].score == pytest.approx(0.3 * 1.0 + 0.7 * 0.8)
    assert by_id["b"].score == pytest.approx(0.3 * 0.6)  # missing from semantic: 0
    assert by_id["e"].score == pytest.approx(0.0)


def test_hybrid_pages_are_slices_of_one_fused_list():
    full = hits_from(SearchRequest("q", k=5).validate(), RESPONSES)
    pages = [hits_from(SearchRequest("q", k=2, offset=offset).validate(), RESPONSES) for offset in (0, 2, 4)]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [(h.id, h.score) for page in pages for h in page] == [(h.id, h.score) for h in full]
    assert hits_from(SearchRequest("q", k=2, offset=6).validate(), RESPONSES) == []


def test_hybrid_ties_are_broken_by_id():
    responses = {"keyword": [raw("z", 5.0)], "semantic": [raw("m", 0.9)]}
    hits = hits_from(SearchRequest("q", fusion=FusionConfig("rrf")).validate(), responses)
    assert [h.id for h in hits] == ["m", "z"]
    assert hits[0].score == hits[1].score


def test_hybrid_explanation_gives_rank_raw_score_and_contribution():
    request = SearchRequest("q", k=10, explain=True).validate()
    by_id = {h.id: h for h in hits_from(request, RESPONSES)}
    a = by_id["a"].explanation
    assert a["keyword"] == {"rank": 1, "raw_score": 12.0, "contribution": pytest.approx(0.25 / 21)}
    assert a["semantic"] == {"rank": 2, "raw_score": 0.8, "contribution": pytest.approx(1.0 / 22)}
    d = by_id["d"].explanation
    assert d["keyword"] == {"rank": None, "raw_score": None, "contribution": 0.0}
    assert d["semantic"]["rank"] == 3 and d["semantic"]["raw_score"] == 0.5
    for hit in by_id.values():
        assert sum(part["contribution"] for part in hit.explanation.values()) == pytest.approx(hit.score)
        assert {name: part["contribution"] for name, part in hit.explanation.items()} == \
            pytest.approx(hit.contributions)


def test_hybrid_explanation_gives_a_rare_strict_matchs_place_in_the_strict_list():
    # 400 documents searched (a small index); one holds most of the query's three terms, 60 hold one of them.
    any_term = [raw(f"k{i}", 6.0 - 0.05 * i) for i in range(3)] + [raw("entry", 5.8)]
    any_term += [raw(f"k{i}", 5.0 - 0.05 * i) for i in range(3, 60)]
    semantic = [raw("entry" if i == 25 else f"s{i}", 0.70 - 0.005 * i) for i in range(100)]
    responses = {"keyword": [raw("entry", 5.8)], "keyword_any": any_term, "semantic": semantic, "documents": 400}
    request = SearchRequest("quixotic zeugma patch", k=10, explain=True).validate()
    hits = hits_from(request, responses)
    assert hits[0].id == "entry" and hits.fusion.rare_strict_matches == 1
    assert hits[0].explanation["keyword"]["rare_strict_rank"] == 1
    for hit in hits:
        assert set(hit.explanation) == {"keyword", "semantic"}
        assert sum(part["contribution"] for part in hit.explanation.values()) == pytest.approx(hit.score)
        if hit.id != "entry":
            assert hit.explanation["keyword"]["rare_strict_rank"] is None
    # Filtered, the query's term count is unknown (TERMS): no rare strict match is weighted up.
    filtered = SearchRequest("quixotic zeugma patch", k=10, explain=True, filters={"term": {"lang": "en"}}).validate()
    hits = hits_from(filtered, responses)
    assert hits.fusion.rare_strict_matches == 0
    assert all("rare_strict_rank" not in hit.explanation["keyword"] for hit in hits)


def test_hybrid_explanation_ranks_are_in_the_retrievers_lists_not_the_page():
    request = SearchRequest("q", k=1, offset=3, explain=True).validate()
    (hit,) = hits_from(request, RESPONSES)
    assert hit.id == "e"
    assert hit.explanation["semantic"]["rank"] == 4


def test_hybrid_without_explain_has_no_explanation():
    assert all(h.explanation is None for h in hits_from(SearchRequest("q").validate(), RESPONSES))


def test_hybrid_hits_take_sources_and_highlights_from_hydrate_only():
    # Candidates are ids and scores: whatever a candidate carries is not the page's source. The final
    # page gets its sources and highlights from the ids query (hydrate).
    responses = {"keyword": [raw("a", 3.0, highlight={"text": ["<em>t</em>"]})],
                 "semantic": [raw("a", 0.9, highlight={"title": ["<em>T</em>"]}), raw("b", 0.5)]}
    request = SearchRequest("q", highlight=True).validate()
    hits = hits_from(request, responses)
    assert [h.id for h in hits] == ["a", "b"]
    assert all(h.source == {} and h.highlights == {} for h in hits)
    assert hydrate_body(request, INFO, hits)["query"] == {"ids": {"values": ["a", "b"]}}
    hydrate(hits, [raw("b", 1.0, {"title": "B"}), raw("a", 1.0, {"title": "A"}, {"text": ["<em>t</em>"]})])
    assert [(h.source, h.highlights) for h in hits] == [({"title": "A"}, {"text": ["<em>t</em>"]}),
                                                        ({"title": "B"}, {})]


def test_hits_without_source_have_an_empty_source():
    responses = {"keyword": [{"_id": "a", "_score": 1.0}], "semantic": [{"_id": "b", "_score": 0.5}]}
    for hit in hits_from(SearchRequest("q", source=False).validate(), responses):
        assert hit.source == {}
    (hit,) = hits_from(SearchRequest("q", mode="keyword").validate(), {"keyword": responses["keyword"]})
    assert hit.source == {}


def test_hybrid_with_one_empty_list_still_ranks_the_other():
    responses = {"keyword": [], "semantic": SEMANTIC}
    hits = hits_from(SearchRequest("q", k=3).validate(), responses)
    assert [h.id for h in hits] == ["c", "a", "d"]
    assert all(h.contributions["keyword"] == 0.0 for h in hits)


# --- server_hits_from -------------------------------------------------------------------------------------


def test_server_hits_are_the_servers_order_paged():
    fused = [raw(x, s) for x, s in (("c", 0.9), ("a", 0.7), ("d", 0.4), ("b", 0.1))]
    hits = server_hits_from(SearchRequest("q", k=2, offset=1).validate(), fused)
    assert [(h.id, h.score) for h in hits] == [("a", 0.7), ("d", 0.4)]
    assert all(isinstance(h, Hit) and h.explanation is None for h in hits)
    # The server returns fused scores only: no per-retriever contributions (documented on Hit).
    assert all(h.contributions == {} for h in hits)
    assert hits[0].source == {"title": "a"}
    assert server_hits_from(SearchRequest("q", k=2, offset=4).validate(), fused) == []


def test_server_hits_read_the_doc_values_id():
    fused = [doc_values_hit("c", 0.9), doc_values_hit("a", 0.7)]
    hits = server_hits_from(SearchRequest("q", k=5).validate(), fused)
    assert [(h.id, h.score, h.source, h.contributions) for h in hits] == [("c", 0.9, {}, {}), ("a", 0.7, {}, {})]


def test_server_hit_without_an_id_on_the_page_is_reported():
    fused = [doc_values_hit("c", 0.9), {"_score": 0.5}]
    with pytest.raises(CandidateWithoutId):
        server_hits_from(SearchRequest("q", k=5).validate(), fused)
    # Beyond the page it is never looked at.
    assert [h.id for h in server_hits_from(SearchRequest("q", k=1).validate(), fused)] == ["c"]


# --- hits from doc-values candidates ---------------------------------------------------------------------------


def doc_values_hit(doc_id, score):
    """A candidate as a stored_fields=_none_ search returns it: no _id, no _source, the id in ``fields``."""
    return {"_score": score, "fields": {"semsearch_id": [doc_id]}}


def test_hybrid_from_doc_values_ids_ranks_as_from_stored_ids():
    as_doc_values = {name: [doc_values_hit(h["_id"], h["_score"]) for h in hits] for name, hits in RESPONSES.items()}
    as_stored = {name: [{"_id": h["_id"], "_score": h["_score"]} for h in hits] for name, hits in RESPONSES.items()}
    for fusion, order in ((DEFAULT_FUSION, ["c", "a", "d", "e", "b"]),
                          (FusionConfig("minmax", {"keyword": 0.3, "semantic": 0.7}), ["a", "c", "b", "d", "e"])):
        request = SearchRequest("q", k=10, fusion=fusion, explain=True).validate()
        got, expected = hits_from(request, as_doc_values), hits_from(request, as_stored)
        assert [h.id for h in got] == order
        assert [(h.id, h.score, h.contributions, h.explanation) for h in got] == \
            [(h.id, h.score, h.contributions, h.explanation) for h in expected]
        assert all(h.source == {} and h.highlights == {} for h in got)


def test_hybrid_candidate_without_an_id_is_reported():
    responses = {"keyword": [doc_values_hit("a", 3.0), {"_score": 2.0}], "semantic": [doc_values_hit("a", 0.9)]}
    with pytest.raises(CandidateWithoutId):
        hits_from(SearchRequest("q").validate(), responses)


# --- hydrate_body / hydrate ------------------------------------------------------------------------------------


HITS = [Hit("c", 0.5), Hit("a", 0.4), Hit("d", 0.3)]


def fresh_hits():
    return [Hit(h.id, h.score, contributions={"keyword": h.score / 2, "semantic": h.score / 2}) for h in HITS]


def test_hydrate_body_is_none_when_nothing_is_to_fetch():
    assert hydrate_body(SearchRequest("q", source=False).validate(), INFO, HITS) is None
    assert hydrate_body(SearchRequest("q").validate(), INFO, []) is None
    assert hydrate_body(SearchRequest("q", highlight=True).validate(), INFO_ID, []) is None


def test_hydrate_body_fetches_the_final_hits_by_id():
    body = hydrate_body(SearchRequest("q").validate(), INFO_PASSAGES, HITS)
    assert body["query"] == {"ids": {"values": ["c", "a", "d"]}}
    assert body["size"] == 3
    assert body["track_total_hits"] is False
    assert body["_source"] == {"excludes": ["embedding", "passages", "semsearch_hash", "semsearch_id"]}
    assert "highlight" not in body and "from" not in body
    assert "stored_fields" not in body and "docvalue_fields" not in body  # the answer is read by _id


def test_hydrate_body_asks_for_the_callers_fields_and_never_the_vectors():
    body = hydrate_body(SearchRequest("q", source=["title", "embedding"]).validate(), INFO, HITS)
    assert body["_source"] == {"includes": ["title", "embedding"], "excludes": ["embedding", "semsearch_hash", "semsearch_id"]}


def test_hydrate_body_highlights_the_keyword_terms():
    body = hydrate_body(SearchRequest("red giant", highlight=True).validate(), INFO, HITS)
    spec = body["highlight"]
    assert set(spec["fields"]) == set(FIELDS)
    assert spec["highlight_query"]["multi_match"]["query"] == "red giant"
    assert spec["highlight_query"]["multi_match"]["fields"] == FIELDS
    assert spec["pre_tags"] == ["<em>"] and spec["post_tags"] == ["</em>"]
    # Highlights only: no source wanted, yet a request is still needed.
    only = hydrate_body(SearchRequest("red giant", highlight=True, source=False).validate(), INFO, HITS)
    assert only["_source"] is False and only["highlight"] == spec


def test_hydrate_fills_sources_and_highlights_in_the_fused_order():
    hits = fresh_hits()
    # The ids query answers in its own order, not the fused one.
    answer = [raw("d", 1.0, {"title": "D", "year": 4}), raw("c", 1.0, {"title": "C"}, {"text": ["<em>c</em>"]}),
              raw("a", 1.0, {"title": "A"})]
    got = hydrate(hits, answer)
    assert got is hits
    assert [h.id for h in got] == ["c", "a", "d"]
    assert [h.source for h in got] == [{"title": "C"}, {"title": "A"}, {"title": "D", "year": 4}]
    assert [h.highlights for h in got] == [{"text": ["<em>c</em>"]}, {}, {}]
    # Scores and contributions are the fusion's, not the ids query's.
    assert [(h.score, h.contributions) for h in got] == [(h.score, h.contributions) for h in fresh_hits()]


def test_hydrate_leaves_a_document_gone_since_the_candidate_search_empty():
    hits = fresh_hits()
    hits[1].source, hits[1].highlights = {"stale": True}, {"text": ["stale"]}
    got = hydrate(hits, [raw("c", 1.0, {"title": "C"}), raw("d", 1.0, {"title": "D"})])
    assert [h.id for h in got] == ["c", "a", "d"]  # still listed, in place
    assert got[1].source == {} and got[1].highlights == {}
    assert got[0].source == {"title": "C"} and got[2].source == {"title": "D"}


def test_hydrate_copies_the_answers_source():
    answer = [raw("c", 1.0, {"title": "C"})]
    (hit,) = hydrate([Hit("c", 0.5)], answer)
    hit.source["title"] = "changed"
    assert answer[0]["_source"] == {"title": "C"}


# --- choosing the server-side route (SearcherBase, no cluster involved) ------------------------------------


def _base(server_side=None):
    from semsearch import Settings
    from semsearch.query.search import SearcherBase

    return SearcherBase(Settings(), encoder=None, fusion=DEFAULT_FUSION, window=100, server_side=server_side)


def test_the_route_depends_on_the_engine_and_what_the_cluster_lacks():
    from semsearch.query.server_hybrid import NEEDS_RRF_LICENCE, RRF_RETRIEVER, SUM

    base = _base()
    request = SearchRequest("moon", fusion=FusionConfig("rrf")).validate()
    info = dataclasses.replace(INFO, backend="elasticsearch")
    route, forced = base._server_route(request, info, None)
    assert (route.kind, route.needs, forced) == (RRF_RETRIEVER, NEEDS_RRF_LICENCE, False)
    assert settle(route, False, "licence is basic") is None  # the client fuses
    with pytest.raises(ConfigurationError, match="licence is basic"):
        settle(route, True, "licence is basic")
    summed = SearchRequest("moon", fusion=FusionConfig("sum")).validate()
    assert base._server_route(summed, info, None)[0].kind == SUM
    assert base._server_route(summed, info, False) == (None, False)
    assert base._server_route(request, dataclasses.replace(INFO, backend="opensearch"), None)[0].kind == "pipeline"


def test_a_route_the_cluster_refuses_is_remembered_or_reported():
    from semsearch.query.steps import ServerRouteRefused
    from semsearch.query.server_hybrid import NEEDS_RRF_LICENCE, RRF_RETRIEVER, ServerRoute

    base = _base()
    route = ServerRoute(RRF_RETRIEVER, NEEDS_RRF_LICENCE, "elasticsearch")
    assert base._refused(route, False, ServerRouteRefused("refused (security_exception)")) is None
    assert base._missing[NEEDS_RRF_LICENCE] == "refused (security_exception)"  # later searches go to the client
    with pytest.raises(ConfigurationError, match="security_exception"):
        base._refused(route, True, ServerRouteRefused("refused (security_exception)"))


def test_a_plain_fusion_plans_no_any_term_list():
    request = SearchRequest("q", fusion=FusionConfig("rrf", {"keyword": 1.0, "semantic": 1.0})).validate()
    assert list(plan_bodies(request, INFO, VECTOR)) == ["keyword", "semantic"]


def _raw(ids):
    return [{"_id": doc_id, "_score": 10.0 - rank} for rank, doc_id in enumerate(ids)]


def test_hybrid_falls_back_to_the_any_term_list_when_the_strict_one_is_empty():
    # As many any-term matches as the window: not rare, so the fallback's weight (0.6 against 1).
    request = SearchRequest("a long report style query", k=6, window=6, explain=True).validate()
    hits = hits_from(request, {"keyword": [], "keyword_any": _raw(["k1", "k2", "k3", "k4", "k5", "k6"]),
                               "semantic": _raw(["s1", "s2", "s3"]), "documents": 1000})
    by_id = {h.id: h for h in hits}
    assert by_id["k1"].explanation["keyword"] == {"rank": 1, "raw_score": 10.0,
                                                  "contribution": pytest.approx(0.6 / 21)}
    assert [h.id for h in hits] == ["s1", "s2", "s3", "k1", "k2", "k3"]


def test_rare_keyword_matches_lead_the_hybrid_page():
    # 2 of 1,000 documents match any term (fewer than the window, under 5%): they lead, strict match first.
    request = SearchRequest("qmail apop", k=4, window=10).validate()
    hits = hits_from(request, {"keyword": _raw(["k2"]), "keyword_any": _raw(["k1", "k2"]),
                               "semantic": _raw(["s1", "s2", "k1"]), "documents": 1000})
    assert [h.id for h in hits] == ["k2", "k1", "s1", "s2"]


def test_adaptive_is_refused_with_a_score_based_fusion():
    with pytest.raises(ConfigurationError, match="rrf fusion only"):
        SearchRequest("q", fusion=FusionConfig("minmax", adaptive=True)).validate()


def test_a_phrase_match_is_weighted_up_and_its_share_is_the_keyword_retrievers():
    # "b" holds the query as a phrase: kNN never found it and BM25 ranked it second.
    responses = {**RESPONSES, "keyword_any": KEYWORD + [raw("f", 1.0)], "keyword_phrase": [raw("b", 3.0)]}
    request = SearchRequest("solar eclipse", k=10, explain=True).validate()
    hits = hits_from(request, responses)
    without = hits_from(request, {name: value for name, value in responses.items() if name != "keyword_phrase"})
    order, before = [h.id for h in hits], [h.id for h in without]
    # It rises, by 1 / (rrf_k + 1) (the first place of a list as heavy as the semantic one); the rest keep their order.
    assert order.index("b") < before.index("b")
    assert [i for i in order if i != "b"] == [i for i in before if i != "b"]
    b, b_before = hits[order.index("b")], without[before.index("b")]
    assert b.score == pytest.approx(b_before.score + 1.0 / (DEFAULT_FUSION.rrf_k + 1))
    assert b.contributions["keyword"] == pytest.approx(b_before.contributions["keyword"] + 1.0 / (DEFAULT_FUSION.rrf_k + 1))
    for hit in hits:  # two retrievers, as ever: the phrase search is keyword evidence
        assert set(hit.contributions) == {"keyword", "semantic"}
        assert sum(hit.contributions.values()) == pytest.approx(hit.score)
        assert {name: part["contribution"] for name, part in hit.explanation.items()} == \
            pytest.approx(hit.contributions)
    assert b.explanation["keyword"]["phrase_rank"] == 1
    assert all(hit.explanation["keyword"]["phrase_rank"] is None for hit in hits if hit.id != "b")


def _scored(ids_and_scores):
    return [{"_id": doc_id, "_score": score} for doc_id, score in ids_and_scores]


def test_a_standing_out_bm25_match_is_fused_by_score_and_a_phrase_match_is_weighted_up_on_every_page():
    # k0 scores far above 99 bunched any-term matches (z > 9); kNN has none of them. By score, k0 comes first;
    # by rank (the strict list at 0.25 against kNN's 1.0), kNN's first would. "k50" holds the query as a phrase.
    any_term = [("k0", 60.0)] + [(f"k{i}", 10.0 - 0.01 * i) for i in range(1, 100)]
    responses = {"keyword": _scored(any_term[:5]), "keyword_any": _scored(any_term),
                 "semantic": _scored([(f"s{i}", 0.9 - 0.001 * i) for i in range(100)]),
                 "keyword_phrase": _scored([("k50", 4.0)]), "documents": 10**6}
    request = SearchRequest("the chapter covering it", k=5, explain=True).validate()
    hits = hits_from(request, responses)
    assert hits[0].id == "k0" and hits[0].explanation["keyword"]["phrase_rank"] is None
    # k50 gains one standard deviation (the semantic list's weight) as its keyword contribution: it rises.
    deep = SearchRequest("the chapter covering it", k=100, explain=True).validate()
    weighted, without = hits_from(deep, responses), hits_from(deep, {**responses, "keyword_phrase": []})
    k50 = next(hit for hit in weighted if hit.id == "k50")
    assert "k50" not in {hit.id for hit in without}  # it rises into the window's page from beyond it
    assert k50.explanation["keyword"]["phrase_rank"] == 1 and k50.explanation["keyword"]["rank"] == 51
    scores = [score for _, score in any_term]
    z50 = (dict(any_term)["k50"] - statistics.fmean(scores)) / statistics.pstdev(scores)
    assert k50.contributions["keyword"] == pytest.approx(0.75 * z50 + 1.0)  # the any-term list at 0.75, and 1
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    for hit in hits:
        assert set(hit.contributions) == {"keyword", "semantic"}
        assert sum(hit.contributions.values()) == pytest.approx(hit.score)
        assert {name: part["contribution"] for name, part in hit.explanation.items()} == \
            pytest.approx(hit.contributions)
    # The next page continues the same order (no phrase match again, no gap).
    page_two = hits_from(SearchRequest("the chapter covering it", k=5, offset=5).validate(), responses)
    whole = hits_from(SearchRequest("the chapter covering it", k=10).validate(), responses)
    assert [h.id for h in hits] + [h.id for h in page_two] == [h.id for h in whole]
    # Bunched BM25 scores: rank fusion, and kNN's first leads.
    bunched = {**responses, "keyword_any": _scored([(doc_id, 10.0 - 0.01 * i) for i, (doc_id, _) in
                                                    enumerate(any_term)]), "keyword_phrase": []}
    assert hits_from(request, bunched)[0].id == "s0"


def test_explain_says_how_hybrid_fused_the_lists():
    # The same candidates as above: BM25's best match stands out (z-scores), a phrase match is weighted up.
    any_term = [("k0", 60.0)] + [(f"k{i}", 10.0 - 0.01 * i) for i in range(1, 100)]
    responses = {"keyword": _scored(any_term[:5]), "keyword_any": _scored(any_term),
                 "semantic": _scored([(f"s{i}", 0.9 - 0.001 * i) for i in range(100)]),
                 "keyword_phrase": _scored([("k50", 4.0)]), "documents": 10**6}
    hits = hits_from(SearchRequest("the chapter covering it", k=5, explain=True).validate(), responses)
    assert hits.fusion == FusionChoice("zscore", {"keyword": 0.75, "semantic": 1.0}, STRICT, STANDOUT, 1, KEYWORD_ANY,
                                       100, 20, 1.0)
    assert hits.fusion.as_json()["phrase_matches"] == 1 and hits.fusion.as_json()["phrase_weight"] == 1.0
    assert hits.fusion.description == describe_choice(hits.fusion) == (
        "fused by standardised scores (z-scores), the best keyword match stands out; weights keyword 0.75, semantic 1; "
        "keyword side: documents holding any term; 1 phrase match weighted up (weight 1)")
    # Asked as a question, the same lists are fused with the semantic list far the heavier.
    asked = hits_from(SearchRequest("which chapter covers it", k=5, explain=True).validate(), responses)
    assert (asked.fusion.reason, asked.fusion.weights) == (QUESTION, {"keyword": 0.1, "semantic": 1.0})
    assert (asked.fusion.keyword_list, asked.fusion.keyword_hits) == (KEYWORD_ANY, 100)
    # By rank where nothing calls for scores; a plain fusion adapts nothing; only explain says it.
    bunched = {**responses, "keyword_any": _scored([(doc_id, 10.0 - 0.01 * i) for i, (doc_id, _) in
                                                    enumerate(any_term)]), "keyword_phrase": []}
    by_rank = hits_from(SearchRequest("the chapter covering it", k=5, explain=True).validate(), bunched).fusion
    assert by_rank == FusionChoice("rrf", {"keyword": 0.25, "semantic": 1.0}, STRICT, None, 0, "keyword", 5, 20)
    assert by_rank.description == ("fused by rank (RRF, k=20); weights keyword 0.25, semantic 1; keyword side: "
                                   "documents holding most of the query's terms")
    plain = SearchRequest("the chapter covering it", k=5, explain=True, fusion=FusionConfig("minmax")).validate()
    assert hits_from(plain, responses).fusion == FusionChoice("minmax", {"keyword": 1.0, "semantic": 1.0},
                                                              keyword_hits=5)
    assert hits_from(SearchRequest("the chapter covering it", k=5).validate(), responses).fusion is None
    semantic = SearchRequest("the chapter covering it", k=5, mode="semantic", explain=True).validate()
    assert hits_from(semantic, responses).fusion is None
    # No keyword match at all: the line says semantic ranked alone.
    nothing = {**responses, "keyword": [], "keyword_any": [], "keyword_phrase": []}
    alone = hits_from(SearchRequest("the chapter covering it", k=5, explain=True).validate(), nothing).fusion
    assert alone.keyword_hits == 0 and "keyword side: no match (semantic alone)" in alone.description


@pytest.mark.parametrize("choice,line", [
    (FusionChoice("rrf", {"keyword": 0.6, "semantic": 1.0}, FALLBACK, None, 0, KEYWORD_ANY, 40, 20),
     "fused by rank (RRF, k=20); weights keyword 0.6, semantic 1; keyword side: documents holding any term (none "
     "holds most)"),
    (FusionChoice("zscore", {"keyword": 0.5, "semantic": 1.0}, STRICT, DENSE_LEAD, 2, "keyword", 7, 20, 1.0),
     "fused by standardised scores (z-scores), the best semantic match is far ahead; weights keyword 0.5, semantic 1; "
     "keyword side: documents holding most of the query's terms; 2 phrase matches weighted up (weight 1)"),
    (FusionChoice("rrf", {"keyword": 250.0, "semantic": 1.0}, EXHAUSTIVE, None, 0, KEYWORD_MATCHES, 3, 20),
     "fused by rank (RRF, k=20); keyword matches first, then semantic; keyword side: every keyword match, those "
     "holding most terms first (rare terms)"),
    (FusionChoice("rrf", {"keyword": 0.6, "semantic": 1.0}, AGREED, None, 0, KEYWORD_MATCHES, 4, 20),
     "fused by rank (RRF, k=20); weights keyword 0.6, semantic 1; keyword side: every keyword match, those holding "
     "most terms first (rare terms, which semantic agrees on)"),
    (FusionChoice("sum", {"keyword": 0.003, "semantic": 1.0}, keyword_hits=100),
     "fused by the raw scores' sum; weights keyword 0.003, semantic 1; keyword side: documents holding most of the "
     "query's terms"),
])
def test_every_fusion_choice_reads_as_one_line(choice, line):
    assert describe_choice(choice) == line == choice.description
    assert len({choice, dataclasses.replace(choice)}) == 1  # hashable, and equal to its copy


def test_a_query_counts_the_terms_no_fields_analyzer_drops():
    from semsearch.query.plan import query_terms

    assert query_terms("add", []) == 1
    assert query_terms("the add", ["english"]) == 1  # "the": an English stop word
    assert query_terms("the add", [None]) == 2  # the standard analyzer drops none
    assert query_terms("File::Temp", []) == 2
    assert query_terms("add", ["my_custom_analyzer"]) is None  # its stop words unknown
    responses = {**RESPONSES, "keyword_any": KEYWORD}
    assert candidate_lists(responses, "the add", ["english", "english"])["terms"] == 1
    assert candidate_lists(responses, "the add", [None])["terms"] == 2


def test_candidates_carry_the_index_documents_mean_length():
    responses = {**RESPONSES, "keyword_any": KEYWORD}
    assert candidate_lists(responses, "add", document_terms=747.0)["document_terms"] == 747.0
    assert candidate_lists(responses, "add")["document_terms"] is None  # not known


@pytest.mark.parametrize("backend", ["opensearch", "elasticsearch"])
@pytest.mark.parametrize("info", [INFO, INFO_PASSAGES, INFO_ID], ids=["plain", "passages", "id-keyword"])
def test_a_single_mode_s_top_100_asks_what_its_candidate_list_asks(info, backend):
    # semsearch eval ranks keyword and semantic search from the candidate lists (evaluation.ranked_from_candidates)
    # only because, at a window of 100, each single mode's request is its list's request.
    from semsearch.query.search import CANDIDATES_FUSION

    info = dataclasses.replace(info, backend=backend)
    text = "the lamp of the lighthouse"
    lists = plan_bodies(SearchRequest(text, k=1, window=100, fusion=CANDIDATES_FUSION, source=False).validate(), info,
                        VECTOR, ids_from_doc_values=False)
    for mode, name in (("keyword", KEYWORD_ANY), ("semantic", "semantic")):
        single = plan_bodies(SearchRequest(text, k=100, mode=mode, source=False).validate(), info, VECTOR)
        assert single == {mode: lists[name]}
    # A deeper window asks for more: its top 100 is another request's (a kNN search's breadth grows with it).
    deeper = plan_bodies(SearchRequest(text, k=1, window=150, fusion=CANDIDATES_FUSION, source=False).validate(), info,
                         VECTOR, ids_from_doc_values=False)
    assert deeper["semantic"] != lists["semantic"] and deeper[KEYWORD_ANY] != lists[KEYWORD_ANY]


def test_a_failed_search_of_an_msearch_names_its_root_cause_and_whether_the_request_was_at_fault():
    from semsearch.errors import ClusterError, QueryRejectedError
    from semsearch.query.search import msearch_error

    refused = msearch_error("keyword", "docs", {"status": 400, "error": {
        "type": "search_phase_execution_exception", "reason": "all shards failed",
        "root_cause": [{"type": "parsing_exception", "reason": "unknown query [bogus]"}]}})
    assert isinstance(refused, QueryRejectedError)
    assert str(refused) == "keyword search on 'docs' failed: all shards failed: unknown query [bogus]"
    failed = msearch_error("semantic", "docs", {"status": 503, "error": {"type": "x", "reason": "no shard"}})
    assert type(failed) is ClusterError and str(failed) == "semantic search on 'docs' failed: no shard"
    assert str(msearch_error("keyword", "docs", {"error": "a proxy's string"})).endswith("failed: a proxy's string")


def test_a_negative_weight_is_refused_naming_it():
    from semsearch.errors import ConfigurationError
    from semsearch.query.plan import fusion_from_options

    with pytest.raises(ConfigurationError, match="the keyword weight must be 0 or more, not -1"):
        fusion_from_options("minmax", keyword_weight=-1)
    with pytest.raises(ConfigurationError, match="semantic weight must be 0 or more, not nan"):
        fusion_from_options(semantic_weight=float("nan"))
    assert fusion_from_options(keyword_weight=0).weight("keyword") == 0
    with pytest.raises(ConfigurationError, match="both 0"):
        fusion_from_options("minmax", keyword_weight=0, semantic_weight=0)
    # However the fusion came (Python, an index's stored one): a hybrid search refuses it, naming why.
    from semsearch.query.fusion import FusionConfig
    from semsearch.query.plan import SearchRequest

    zero = FusionConfig("minmax", {"keyword": 0.0, "semantic": 0.0})
    with pytest.raises(ConfigurationError, match="both 0"):
        SearchRequest("moon", fusion=zero).validate()
    SearchRequest("moon", mode="semantic", fusion=zero).validate()  # no fusion in a single mode
