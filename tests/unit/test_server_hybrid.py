"""semsearch.query.server_hybrid: what can run server-side, the search pipeline, its name and the hybrid query."""

import copy
import dataclasses
import re

import pytest

from semsearch.query.fusion import FusionConfig
from semsearch.index.manage import IndexInfo
from semsearch.query.bodies import keyword_body, knn_body
from semsearch.query.plan import DEFAULT_FUSION, SearchRequest, plan_bodies
from semsearch.query.server_hybrid import (
    RETRIEVERS,
    hybrid_body,
    neural_search_present,
    pipeline_body,
    pipeline_id,
    unsupported_reason,
)


def processor(fusion):
    (only,) = pipeline_body(fusion)["phase_results_processors"]
    return only


# --- unsupported_reason --------------------------------------------------------------------------------


@pytest.mark.parametrize("fusion", [
    FusionConfig("rrf"),
    FusionConfig("rrf", rrf_k=10),
    FusionConfig("rrf", {"keyword": 1.0, "semantic": 1.0}),
    FusionConfig("rrf", {"keyword": 0.5, "semantic": 0.5}),
    FusionConfig("minmax"),
    FusionConfig("minmax", {"keyword": 0.3, "semantic": 0.7}),
    FusionConfig("minmax", {"keyword": 2.0, "semantic": 1.0}),
], ids=repr)
def test_server_can_run(fusion):
    assert unsupported_reason(fusion) is None


def test_default_weighted_rrf_cannot_run_server_side():
    assert "adaptive keyword side" in unsupported_reason(DEFAULT_FUSION)
    # Without its adaptive side, the default's weights still differ: neither server's RRF takes weights.
    reason = unsupported_reason(dataclasses.replace(DEFAULT_FUSION, adaptive=False))
    assert reason and "does not take weights" in reason


@pytest.mark.parametrize("weights", [{"keyword": 0.25, "semantic": 1.0}, {"keyword": 1.0},
                                     {"semantic": 2.0, "keyword": 1.0}])
def test_weighted_rrf_cannot_run_server_side(weights):
    # A missing weight is 0: {"keyword": 1.0} weighs the two lists differently.
    assert "weight" in unsupported_reason(FusionConfig("rrf", weights))


@pytest.mark.parametrize("weights", [None, {"keyword": 0.5, "semantic": 0.5}])
def test_zscore_cannot_run_on_2_19(weights):
    reason = unsupported_reason(FusionConfig("zscore", weights))
    assert reason and "z_score" in reason


def test_unknown_method_has_no_server_equivalent():
    assert "borda" in unsupported_reason(FusionConfig("borda"))


# --- pipeline_body ---------------------------------------------------------------------------------------


def test_rrf_pipeline_is_the_score_ranker_with_our_rank_constant():
    for rrf_k in (60, 20, 7):
        assert processor(FusionConfig("rrf", rrf_k=rrf_k)) == {
            "score-ranker-processor": {"combination": {"technique": "rrf", "parameters": {"rank_constant": rrf_k}}}}


def test_minmax_pipeline_normalises_min_max_with_weights_in_retriever_order():
    assert RETRIEVERS == ("keyword", "semantic")  # the hybrid query's sub-query order
    spec = processor(FusionConfig("minmax", {"semantic": 0.7, "keyword": 0.3}))["normalization-processor"]
    assert spec["normalization"] == {"technique": "min_max"}
    assert spec["combination"]["technique"] == "arithmetic_mean"
    assert spec["combination"]["parameters"]["weights"] == pytest.approx([0.3, 0.7])


@pytest.mark.parametrize(("weights", "expected"), [
    (None, [0.5, 0.5]),
    ({"keyword": 1.0, "semantic": 3.0}, [0.25, 0.75]),
    ({"keyword": 2.0, "semantic": 2.0}, [0.5, 0.5]),
    ({"semantic": 1.0}, [0.0, 1.0]),
])
def test_minmax_pipeline_weights_are_normalised_to_sum_one(weights, expected):
    spec = processor(FusionConfig("minmax", weights))["normalization-processor"]
    got = spec["combination"]["parameters"]["weights"]
    assert got == pytest.approx(expected)
    assert sum(got) == pytest.approx(1.0)


def test_pipeline_body_is_json_serialisable_and_described():
    import json

    body = pipeline_body(FusionConfig("minmax", {"keyword": 0.3, "semantic": 0.7}))
    assert json.loads(json.dumps(body)) == body
    assert body["description"]


# --- pipeline_id -------------------------------------------------------------------------------------------


def test_pipeline_id_is_stable_and_a_valid_name():
    first = pipeline_id(FusionConfig("minmax", {"keyword": 0.3, "semantic": 0.7}))
    again = pipeline_id(FusionConfig("minmax", {"semantic": 0.7, "keyword": 0.3}))  # another dict, other order
    assert first == again
    assert re.fullmatch(r"semsearch-hybrid-[0-9a-f]{12}", first)
    assert pipeline_id(FusionConfig("rrf")) == pipeline_id(FusionConfig("rrf", rrf_k=60))


def test_pipeline_id_changes_with_the_settings():
    ids = {
        pipeline_id(FusionConfig("minmax", {"keyword": 0.3, "semantic": 0.7})),
        pipeline_id(FusionConfig("minmax", {"keyword": 0.5, "semantic": 0.5})),
        pipeline_id(FusionConfig("minmax", {"keyword": 0.7, "semantic": 0.3})),
        pipeline_id(FusionConfig("rrf")),
        pipeline_id(FusionConfig("rrf", rrf_k=20)),
    }
    assert len(ids) == 5


def test_pipeline_id_follows_the_pipeline_not_the_spelling_of_the_weights():
    # Proportional weights make the same pipeline (weights are normalised), hence the same name.
    assert pipeline_id(FusionConfig("minmax", {"keyword": 1.0, "semantic": 3.0})) == \
        pipeline_id(FusionConfig("minmax", {"keyword": 0.25, "semantic": 0.75}))
    assert pipeline_id(FusionConfig("minmax")) == pipeline_id(FusionConfig("minmax", {"keyword": 1, "semantic": 1}))


# --- hybrid_body -------------------------------------------------------------------------------------------


def client_bodies(**kwargs):
    flt = kwargs.pop("filters", None)
    kw = keyword_body("red giant", ["title", "text"], 50, flt, ["embedding"], minimum_should_match="2<75%",
                      **kwargs)
    knn = knn_body([0.1, 0.2], "embedding", 50, flt, ["embedding"], highlight_text="red giant",
                   text_fields=["title", "text"], **kwargs)
    return kw, knn


def test_hybrid_body_runs_the_two_client_queries_in_retriever_order():
    kw, knn = client_bodies(filters={"term": {"category": "space"}})
    body = hybrid_body(kw, knn)
    assert body["query"] == {"hybrid": {"queries": [kw["query"], knn["query"]]}}
    assert body["size"] == 50
    assert body["track_total_hits"] is False
    # Whatever else the kNN body asks for (source, highlight) is asked of the hybrid query.
    assert body["_source"] == {"excludes": ["embedding"]}
    assert body["highlight"] == knn["highlight"]
    # The filters stay inside each sub-query.
    assert kw["query"]["bool"]["filter"] == [{"term": {"category": "space"}}]
    assert knn["query"]["knn"]["embedding"]["filter"] == {"bool": {"filter": [{"term": {"category": "space"}}]}}


def test_hybrid_body_never_pages_on_the_server():
    kw, knn = client_bodies(offset=10)
    assert knn["from"] == 10
    body = hybrid_body(kw, knn)
    assert "from" not in body
    assert set(body) == {"size", "query", "_source", "highlight", "track_total_hits"}


def test_hybrid_body_leaves_its_inputs_alone():
    kw, knn = client_bodies(offset=5)
    before = copy.deepcopy((kw, knn))
    hybrid_body(kw, knn)
    assert (kw, knn) == before


INFO_ID = IndexInfo(name="docs", text_fields=["title", "text"], vector_field="embedding", fingerprint={},
                    dimension=2, index="docs", meta={"knn": {"ef_search": 100}}, id_field="semsearch_id")


def server_body(info, **kwargs):
    request = SearchRequest("red giant", k=5, offset=10, window=40,
                            fusion=FusionConfig("minmax", {"keyword": 0.3, "semantic": 0.7}), **kwargs).validate()
    bodies = plan_bodies(request, info, [0.1, 0.2])
    return hybrid_body(bodies["keyword"], bodies["semantic"]), bodies


@pytest.mark.parametrize("request_kwargs", [{}, {"highlight": True}, {"source": ["title"]}],
                         ids=["default", "highlight", "fields"])
def test_server_hybrid_fetches_doc_values_ids_and_scores_only(request_kwargs):
    # What the Searcher sends for an index semsearch created: the window of fused ids, no source or
    # highlight (those are fetched for the final page afterwards), no count of every match.
    body, bodies = server_body(INFO_ID, **request_kwargs)
    assert set(body) == {"size", "query", "track_total_hits", "stored_fields", "docvalue_fields"}
    assert body["size"] == 40
    assert body["stored_fields"] == "_none_" and body["docvalue_fields"] == ["semsearch_id"]
    assert body["track_total_hits"] is False
    keyword, semantic = body["query"]["hybrid"]["queries"]
    assert keyword == bodies["keyword"]["query"]
    assert keyword["bool"]["must"][0]["multi_match"]["minimum_should_match"] == "2<75%"
    assert semantic["knn"]["embedding"]["k"] == 100  # max(window, ef_search)


def test_server_hybrid_without_the_id_keyword_reads_stored_ids():
    no_id_field = dataclasses.replace(INFO_ID, id_field=None)
    for info, flag in ((INFO_ID, False), (no_id_field, True)):
        request = SearchRequest("red giant", fusion=FusionConfig("rrf")).validate()
        bodies = plan_bodies(request, info, [0.1, 0.2], ids_from_doc_values=flag)
        body = hybrid_body(bodies["keyword"], bodies["semantic"])
        assert set(body) == {"size", "query", "track_total_hits", "_source"}
        assert body["_source"] is False


# --- neural_search_present ----------------------------------------------------------------------------------


def test_neural_search_present():
    node = [{"name": "n1", "component": "opensearch-knn", "version": "2.19.1.0"}]
    assert not neural_search_present(node)
    assert not neural_search_present([])
    assert neural_search_present(node + [{"name": "n1", "component": "opensearch-neural-search",
                                          "version": "2.19.1.0"}])


# --- Elasticsearch and the raw-score sum --------------------------------------------------------------------

from semsearch.query import server_hybrid as sh  # noqa: E402


@pytest.mark.parametrize(("fusion", "backend", "kind"), [
    (FusionConfig("sum", {"keyword": 0.05, "semantic": 1.0}), "opensearch", sh.SUM),
    (FusionConfig("sum"), "elasticsearch", sh.SUM),
    (FusionConfig("rrf", rrf_k=20), "elasticsearch", sh.RRF_RETRIEVER),
    (FusionConfig("rrf"), "opensearch", sh.PIPELINE),
    (FusionConfig("minmax"), "opensearch", sh.PIPELINE),
], ids=repr)
def test_each_engine_has_its_server_route(fusion, backend, kind):
    assert unsupported_reason(fusion, backend) is None
    route = sh.server_route(fusion, backend)
    assert route.kind == kind
    assert route.needs == {sh.SUM: None, sh.PIPELINE: sh.NEEDS_NEURAL_SEARCH,
                           sh.RRF_RETRIEVER: sh.NEEDS_RRF_LICENCE}[kind]


def test_normalised_fusions_run_client_side_on_elasticsearch():
    assert "linear retriever" in unsupported_reason(FusionConfig("minmax"), "elasticsearch")
    assert "no server-side equivalent of 'zscore'" in unsupported_reason(FusionConfig("zscore"), "elasticsearch")
    assert "adaptive keyword side" in unsupported_reason(DEFAULT_FUSION, "elasticsearch")
    assert "does not take weights" in unsupported_reason(dataclasses.replace(DEFAULT_FUSION, adaptive=False),
                                                         "elasticsearch")


def test_a_negative_sum_weight_stays_on_the_client():
    assert "negative" in unsupported_reason(FusionConfig("sum", {"keyword": -0.1, "semantic": 1.0}))


def test_sum_body_boosts_each_sub_query_by_its_weight():
    kw, knn = client_bodies(filters={"term": {"category": "space"}})
    body = sh.sum_body(kw, knn, FusionConfig("sum", {"keyword": 0.05, "semantic": 1.0}))
    assert body["query"] == {"bool": {"should": [{"bool": {"must": [kw["query"]], "boost": 0.05}},
                                                 {"bool": {"must": [knn["query"]], "boost": 1.0}}]}}
    assert body["size"] == 50 and "from" not in body and body["_source"] == {"excludes": ["embedding"]}
    # OpenSearch's knn under a bool loses hits to Lucene's skipping: every match is counted there.
    assert body["track_total_hits"] is True
    assert sh.sum_body(kw, knn, FusionConfig("sum"), "elasticsearch")["track_total_hits"] is False


def test_rrf_retriever_body_ranks_the_client_window():
    kw, knn = client_bodies(offset=10)
    body = sh.rrf_retriever_body(kw, knn, FusionConfig("rrf", rrf_k=20))
    assert "query" not in body and "from" not in body
    assert body["retriever"] == {"rrf": {"retrievers": [{"standard": {"query": kw["query"]}},
                                                        {"standard": {"query": knn["query"]}}],
                                         "rank_constant": 20, "rank_window_size": 50}}
    route = sh.server_route(FusionConfig("rrf"), "elasticsearch")
    assert sh.server_body(route, kw, knn, FusionConfig("rrf")) == sh.rrf_retriever_body(kw, knn, FusionConfig("rrf"))


def _licence(kind, status="active"):
    return {"license": {"type": kind, "status": status}}


def _nodes(version="8.19.4", modules=("x-pack-core", "rank-rrf")):
    return {"nodes": {"n1": {"version": version, "modules": [{"name": m} for m in modules]}}}


def test_rrf_retriever_needs_a_paid_licence_the_version_and_its_module():
    assert sh.rrf_licence_missing(_nodes(), _licence("enterprise")) is None
    assert sh.rrf_licence_missing(None, _licence("trial")) is None  # modules unreadable: the licence decides
    assert "licence is basic (active)" in sh.rrf_licence_missing(_nodes(), _licence("basic"))
    # The rank-rrf module's licensed feature asks for Enterprise: Platinum would be refused by the search.
    assert "licence is platinum" in sh.rrf_licence_missing(_nodes(), _licence("platinum"))
    assert "expired" in sh.rrf_licence_missing(_nodes(), _licence("enterprise", "expired"))
    assert "cannot be read" in sh.rrf_licence_missing(_nodes(), None)
    assert "8.14.0 or later" in sh.rrf_licence_missing(_nodes("8.13.4"), _licence("enterprise"))
    assert "(rank-rrf)" in sh.rrf_licence_missing(_nodes(modules=("x-pack-core",)), _licence("enterprise"))


def test_neural_search_missing_says_why():
    assert sh.neural_search_missing([{"component": "opensearch-neural-search"}]) is None
    assert "not installed" in sh.neural_search_missing([{"component": "opensearch-knn"}])
    assert "cannot be read" in sh.neural_search_missing(None)
