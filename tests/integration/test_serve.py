"""semsearch serve (issue 17) as a real uvicorn process in front of the real OpenSearch node: the REST API
gives Searcher's hits, the proxy runs neural queries sent by a stock opensearch-py client, and every
other request passes through untouched."""

import dataclasses
import http.client
import json
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
from opensearchpy import OpenSearch

from semsearch import FusionConfig, Searcher
from semsearch.index.manage import create_index

from .conftest import SERVE_TOKEN, Served, last_json_line, run_cli

QUERIES = ["Apollo astronauts who walked on the Moon", "B. F. Skinner", "programming languages of the 1970s"]


@pytest.fixture(scope="module")
def through_proxy(served):
    """A stock opensearch-py client whose only change is the URL: the proxy's."""
    return OpenSearch(hosts=[served.url], timeout=120)


@pytest.mark.parametrize("mode", ["hybrid", "semantic", "keyword"])
def test_v1_search_gives_searchers_hits(served, dbpedia, encoder, mode):
    searcher = Searcher(encoder=encoder)
    for text in QUERIES:
        expected = searcher.search(text, index=dbpedia.name, k=10, mode=mode, explain=True, highlight=True)
        status, _, body = served.call("POST", "/v1/search", {"index": dbpedia.name, "text": text, "k": 10,
                                                             "mode": mode, "explain": True, "highlight": True})
        assert status == 200, body
        got = json.loads(body)["hits"]
        assert [h["id"] for h in got] == [h.id for h in expected]
        assert [h["score"] for h in got] == pytest.approx([h.score for h in expected], rel=1e-5)
        assert [h["source"] for h in got] == [h.source for h in expected]
        assert [h["highlights"] for h in got] == [h.highlights for h in expected]
        assert [h["contributions"] for h in got] == [pytest.approx(h.contributions, rel=1e-5) for h in expected]
        # How hybrid fused the lists (explain): what the searcher says, and nothing in the single modes.
        fusion = json.loads(body)["fusion"]
        if mode == "hybrid":
            assert fusion == {**dataclasses.asdict(expected.fusion), "description": expected.fusion.description}
            assert fusion["keyword_evidence"] and fusion["description"].startswith("fused by"), fusion
        else:
            assert fusion is None


def test_v1_search_takes_fusion_filters_and_paging(served, dbpedia, encoder):
    searcher = Searcher(encoder=encoder)
    text = QUERIES[0]
    expected = searcher.search(text, index=dbpedia.name, k=5, offset=5, fusion=FusionConfig("rrf", rrf_k=60,
                               weights={"keyword": 0.25, "semantic": 1.0}))
    status, _, body = served.call("POST", "/v1/search", {"index": dbpedia.name, "text": text, "k": 5, "offset": 5,
                                                         "fusion": {"method": "rrf", "rrf_k": 60}})
    assert status == 200, body
    assert [h["id"] for h in json.loads(body)["hits"]] == [h.id for h in expected]
    # A filter as one clause, as Searcher takes it, or as a list of clauses: the same hits.
    clause = {"match": {"text": "moon"}}
    filtered = searcher.search(text, index=dbpedia.name, k=5, filters=clause)
    for filters in (clause, [clause]):
        status, _, body = served.call("POST", "/v1/search", {"index": dbpedia.name, "text": text, "k": 5,
                                                             "filters": filters})
        assert status == 200, body
        assert [h["id"] for h in json.loads(body)["hits"]] == [h.id for h in filtered] != []


def test_a_fusion_stored_in_the_index_serves_every_search_that_names_none(served, services, dbpedia, encoder,
                                                                          data_dir):
    """`semsearch index fusion` stores one; the Python searcher, the REST API and eval use it for the index (here
    reached through a new alias, which the running service has not cached); `eval --tune --save` replaces it with
    the best found; --clear gives the default back."""
    from semsearch.query.plan import DEFAULT_FUSION

    alias, stored = f"{dbpedia.name}-tuned", FusionConfig("zscore", {"keyword": 1.5, "semantic": 1.0})
    folder = data_dir / "dbpedia-entity"
    judged = ("--queries", str(folder / "queries.jsonl"), "--qrels", str(folder / "test.tsv"), "--mode", "hybrid")
    services.indices.put_alias(index=dbpedia.name, name=alias)
    try:
        result = run_cli("index", "fusion", alias, "--fusion", "zscore", "--keyword-weight", "1.5")
        assert result.returncode == 0 and dbpedia.name in result.stdout, result.stderr
        shown = json.loads(run_cli("index", "fusion", alias).stdout)
        assert (shown["method"], shown["weights"]) == ("zscore", {"keyword": 1.5, "semantic": 1.0})
        searcher, differs = Searcher(encoder=encoder), False
        for text in QUERIES:
            expected = searcher.search(text, index=dbpedia.name, k=10, fusion=stored)
            got = searcher.search(text, index=alias, k=10)
            assert [h.id for h in got] == [h.id for h in expected], text
            assert [h.score for h in got] == pytest.approx([h.score for h in expected]), text
            status, _, body = served.call("POST", "/v1/search", {"index": alias, "text": text, "k": 10})
            assert status == 200, body
            assert [h["id"] for h in json.loads(body)["hits"]] == [h.id for h in expected], text
            default = searcher.search(text, index=dbpedia.name, k=10, fusion=DEFAULT_FUSION)
            differs |= [h.id for h in default] != [h.id for h in expected]
        assert differs  # the stored fusion ranks otherwise than the default: the checks above could fail
        evaluated = run_cli("eval", "--index", alias, *judged, "--json")
        assert evaluated.returncode == 0, evaluated.stderr
        report = last_json_line(evaluated.stdout)
        assert report["hybrid_fusion"] == {"fusion": "method=zscore keyword_weight=1.5 semantic_weight=1",
                                           "stored_in_index": True}
        explicit = run_cli("eval", "--index", dbpedia.name, *judged, "--json", "--fusion", "zscore",
                           "--keyword-weight", "1.5")
        assert last_json_line(explicit.stdout)["hybrid"] == report["hybrid"]
        tuned = run_cli("eval", "--index", alias, *judged, "--tune", "--save", "--json")
        assert tuned.returncode == 0, tuned.stderr
        tuning = last_json_line(tuned.stdout)["tune"]
        assert tuning["current"]["fusion"] == "method=zscore keyword_weight=1.5 semantic_weight=1"
        assert tuning["saved"] == [dbpedia.name] and tuning["best"]["ndcg@10"] > tuning["current"]["ndcg@10"]
        assert set(tuning["cross_check"]) == {"gain_over_current", "folds", "chosen"}
        now = json.loads(run_cli("index", "fusion", alias).stdout)
        assert now["tuned"]["by"] == "semsearch eval --tune --save" and now["tuned"]["judged_queries"] == 40
        assert now["tuned"]["ndcg@10"] == tuning["best"]["ndcg@10"]
        again = last_json_line(run_cli("eval", "--index", alias, *judged, "--json").stdout)
        assert again["hybrid"]["ndcg@10"] == pytest.approx(tuning["best"]["ndcg@10"], abs=1e-4)
    finally:
        cleared = run_cli("index", "fusion", alias, "--clear")
        services.indices.delete_alias(index=dbpedia.name, name=alias)
    assert cleared.returncode == 0, cleared.stderr
    assert "keeps no fusion" in run_cli("index", "fusion", dbpedia.name).stdout
    text = QUERIES[0]
    assert ([h.id for h in Searcher(encoder=encoder).search(text, index=dbpedia.name, k=10)]
            == [h.id for h in Searcher(encoder=encoder).search(text, index=dbpedia.name, k=10, fusion=DEFAULT_FUSION)])


def test_v1_encode_gives_the_encoders_vectors(served, encoder):
    texts = ["moon landing", "a cat on a mat"]
    status, _, body = served.call("POST", "/v1/encode", {"texts": texts})
    assert status == 200, body
    answer = json.loads(body)
    assert answer["dimension"] == encoder.dimension and answer["model"] == encoder.fingerprint.as_dict()
    np.testing.assert_allclose(np.array(answer["vectors"]), encoder.encode_query(texts), atol=1e-5)


def test_own_endpoints_need_the_token_and_refuse_bad_requests_clearly(served, dbpedia):
    assert served.call("POST", "/v1/search", {"index": dbpedia.name, "text": "x"}, token=None)[0] == 401
    assert served.call("POST", "/v1/search", {"index": dbpedia.name, "text": "x"}, token="wrong")[0] == 401
    status, _, body = served.call("POST", "/v1/search", {"index": dbpedia.name, "text": "x", "k": 100_000})
    assert status == 422 and b"less than or equal to 1000" in body
    status, _, body = served.call("POST", "/v1/search", {"index": "no_such_index_here", "text": "x"})
    assert status == 404 and "no_such_index_here" in json.loads(body)["error"]
    status, body = served.declared_only("POST", "/v1/encode", length=1_200_002)  # over 1 MiB: refused unread
    assert status == 413 and b"limit" in body
    schema = json.loads(served.call("GET", "/openapi.json", token=None)[2])
    assert {"/v1/search", "/v1/encode"} <= set(schema["paths"])
    assert {"400", "404", "415", "422", "502"} <= set(schema["paths"]["/v1/search"]["post"]["responses"])


@pytest.mark.parametrize("body, field", [
    ({"text": "moon", "filter": [{"term": {"title": "x"}}]}, "filter"),  # a misspelt "filters": refused, not ignored
    ({"text": "moon", "fusion": {"method": "minmax", "keyword_weight": -1}}, "fusion.keyword_weight"),
    ({"text": "moon", "fusion": {"keyword_weight": float("nan")}}, "fusion.keyword_weight"),  # not a 500
    ({"text": "moon", "fusion": {"keyword_weight": 0, "semantic_weight": 0}}, "weights are both 0"),
    ({"text": "   "}, "text"),
    ({"text": "moon", "offset": 9_995, "k": 10}, "offset + k must be at most 10,000"),
])
def test_an_invalid_search_body_is_refused_naming_the_field(served, dbpedia, body, field):
    status, _, answer = served.call("POST", "/v1/search", {"index": dbpedia.name, **body})
    assert status == 422, answer
    assert field in json.loads(answer)["error"] and json.loads(answer)["detail"]  # one line, and FastAPI's list


def test_a_body_not_sent_as_json_and_a_filter_the_cluster_cannot_parse_get_clear_errors(served, dbpedia):
    raw = json.dumps({"index": dbpedia.name, "text": "moon"}).encode()
    status, _, answer = served.call("POST", "/v1/search", raw=raw,
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and "Content-Type: application/json" in json.loads(answer)["error"]
    host, port = served.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:  # no Content-Type at all: refused as clearly (FastAPI's strict content type reads no JSON then)
        conn.putrequest("POST", "/v1/search")
        for name, value in (("Authorization", f"Bearer {SERVE_TOKEN}"), ("Content-Length", str(len(raw)))):
            conn.putheader(name, value)
        conn.endheaders(raw)
        answer = conn.getresponse()
        assert answer.status == 415 and "no Content-Type" in json.loads(answer.read())["error"]
    finally:
        conn.close()
    # The cluster refuses the filter (the client's mistake, 400), with its reason; not a gateway failure (502).
    status, _, answer = served.call("POST", "/v1/search", {"index": dbpedia.name, "text": "moon",
                                                           "filters": [{"bogus": {"n": 1}}]})
    assert status == 400 and "bogus" in json.loads(answer)["error"], answer


def test_the_proxys_own_errors_read_as_the_clusters(served, dbpedia):
    neural_body = {"query": {"neural": {"embedding": {"query_text": "moon", "k": 3}}}}
    status, _, answer = served.call("POST", "/no_such_index_here/_search", neural_body, token=None)
    assert status == 404 and json.loads(answer)["error"]["type"] == "index_not_found_exception", answer
    raw = b'["neural"]\n' + json.dumps(neural_body).encode() + b"\n"
    status, _, answer = served.call("POST", f"/{dbpedia.name}/_msearch", raw=raw, token=None)
    error = json.loads(answer)["error"]
    assert status == 400 and error["type"] == "illegal_argument_exception" and "JSON object" in error["reason"]
    assert json.loads(answer)["status"] == 400 and error["root_cause"][0]["reason"] == error["reason"]


def test_health_and_metrics(served, dbpedia):
    status, _, body = served.call("GET", "/healthz", token=None)
    assert status == 200 and json.loads(body)["model"] == "loaded"
    served.call("POST", "/v1/search", {"index": dbpedia.name, "text": "metrics probe query", "mode": "semantic"})
    served.call("POST", "/v1/search", {"index": dbpedia.name, "text": "metrics probe query", "mode": "semantic"})
    assert served.call("GET", "/metrics", token=None)[0] == 401
    status, headers, body = served.call("GET", "/metrics")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert 'semsearch_requests_total{endpoint="/v1/search",status="200"}' in text
    assert 'semsearch_requests_total{endpoint="/metrics",status="401"}' in text  # refusals are counted too
    assert served.call("POST", f"/{dbpedia.name}/_count", token=None)[0] == 200  # sent on to the cluster
    text = served.call("GET", "/metrics")[2].decode()
    assert 'semsearch_requests_total{endpoint="proxy",status="200"}' in text
    assert 'semsearch_search_seconds_count{mode="semantic"}' in text
    assert "semsearch_encoder_batch_size_count" in text
    assert 'semsearch_query_vector_cache_total{result="hit"}' in text  # the second probe came from the cache


def test_a_neural_query_through_the_proxy_returns_what_the_knn_query_returns(through_proxy, services, dbpedia,
                                                                             encoder):
    for text in QUERIES:
        # Without k the neural query asks for 10, as the neural-search plugin's does (the first text).
        clause = {"query_text": text, **({} if text == QUERIES[0] else {"k": 10})}
        neural_body = {"size": 10, "_source": False, "query": {"neural": {"embedding": clause}}}
        knn_body = {"size": 10, "_source": False,
                    "query": {"knn": {"embedding": {"vector": encoder.encode_query(text).tolist(), "k": 10}}}}
        proxied = through_proxy.search(index=dbpedia.name, body=neural_body)
        direct = services.search(index=dbpedia.name, body=knn_body)
        assert [h["_id"] for h in proxied["hits"]["hits"]] == [h["_id"] for h in direct["hits"]["hits"]]
        assert len(proxied["hits"]["hits"]) == 10


def test_neural_clauses_in_msearch_and_bool_are_rewritten(through_proxy, services, dbpedia, encoder):
    text = QUERIES[0]
    vector = encoder.encode_query(text).tolist()
    bool_neural = {"size": 5, "_source": False, "query": {"bool": {
        "must": [{"neural": {"embedding": {"query_text": text, "k": 20}}}],
        "filter": [{"match": {"text": "moon"}}]}}}
    bool_knn = {"size": 5, "_source": False, "query": {"bool": {
        "must": [{"knn": {"embedding": {"vector": vector, "k": 20}}}], "filter": [{"match": {"text": "moon"}}]}}}
    # The same text twice (encoded once), and a body without a neural clause between them.
    answers = through_proxy.msearch(body=[{"index": dbpedia.name}, bool_neural, {"index": dbpedia.name},
                                          {"size": 3, "query": {"match": {"title": "Skinner"}}},
                                          {"index": dbpedia.name}, bool_neural])["responses"]
    direct = services.search(index=dbpedia.name, body=bool_knn)
    assert [h["_id"] for h in answers[0]["hits"]["hits"]] == [h["_id"] for h in direct["hits"]["hits"]]
    assert answers[2]["hits"]["hits"] == answers[0]["hits"]["hits"]
    assert answers[0]["hits"]["hits"] and answers[1]["hits"]["hits"]


def test_a_gzipped_search_body_is_rewritten_too(served, services, dbpedia, encoder):
    # opensearch-py with http_compress=True gzips request bodies.
    compressed = OpenSearch(hosts=[served.url], timeout=120, http_compress=True)
    text = QUERIES[1]
    proxied = compressed.search(index=dbpedia.name, body={"size": 5, "_source": False, "query": {
        "neural": {"embedding": {"query_text": text, "k": 5}}}})
    direct = services.search(index=dbpedia.name, body={"size": 5, "_source": False, "query": {
        "knn": {"embedding": {"vector": encoder.encode_query(text).tolist(), "k": 5}}}})
    assert [h["_id"] for h in proxied["hits"]["hits"]] == [h["_id"] for h in direct["hits"]["hits"]]


def test_index_names_like_the_services_paths_are_the_clusters(served):
    # Only the service's exact paths are its own: /metrics-2024/_search and /v1/_search go to the cluster.
    for path in ("/metrics-2024/_search", "/v1/_search"):
        status, _, body = served.call("GET", path, token=None)
        assert status == 404 and b"index_not_found_exception" in body, (path, body[:200])


def test_a_neural_clause_inside_hybrid_runs_with_a_search_pipeline(through_proxy, services, dbpedia, encoder):
    plugins = {p["component"] for p in services.cat.plugins(format="json")}
    assert "opensearch-neural-search" in plugins  # scripts/services.sh installs it: the hybrid query is its
    pipeline = f"test-serve-{uuid.uuid4().hex[:8]}"
    services.transport.perform_request("PUT", f"/_search/pipeline/{pipeline}", body={
        "phase_results_processors": [{"normalization-processor": {
            "normalization": {"technique": "min_max"}, "combination": {"technique": "arithmetic_mean"}}}]})
    try:
        text = QUERIES[0]
        keyword = {"match": {"text": text}}

        def hybrid(semantic_clause):
            return {"size": 10, "_source": False, "query": {"hybrid": {"queries": [keyword, semantic_clause]}}}

        proxied = through_proxy.search(index=dbpedia.name, body=hybrid(
            {"neural": {"embedding": {"query_text": text, "k": 10}}}), params={"search_pipeline": pipeline})
        direct = services.search(index=dbpedia.name, body=hybrid(
            {"knn": {"embedding": {"vector": encoder.encode_query(text).tolist(), "k": 10}}}),
            params={"search_pipeline": pipeline})
        assert [h["_id"] for h in proxied["hits"]["hits"]] == [h["_id"] for h in direct["hits"]["hits"]]
        assert proxied["hits"]["hits"]
    finally:
        services.transport.perform_request("DELETE", f"/_search/pipeline/{pipeline}")


def test_an_index_of_another_model_is_refused_naming_both(served, services, encoder):
    name = f"test_serve_other_{uuid.uuid4().hex[:8]}"
    other = {**encoder.fingerprint.as_dict(), "model": "BAAI/bge-small-en-v1.5", "weights": "0123456789abcdef"}
    create_index(services, name, fingerprint=other, text_fields=["title", "text"], vector_field="embedding",
                 engine="lucene", analyzer="english", replicas=0)
    try:
        body = {"query": {"neural": {"embedding": {"query_text": "moon", "k": 3}}}}
        status, _, answer = served.call("POST", f"/{name}/_search", body, token=None)
        assert status == 409, answer
        message = json.loads(answer)["error"]["reason"]
        assert "BAAI/bge-small-en-v1.5" in message and "sentence-transformers/all-MiniLM-L6-v2" in message
    finally:
        services.indices.delete(index=name, ignore_unavailable=True)


@pytest.mark.parametrize("method, path", [
    ("GET", "/{index}/_doc/<dbpedia:B._F._Skinner>"),
    ("GET", "/{index}/_mapping"),
    ("GET", "/no_such_index_here/_doc/1"),
    ("POST", "/{index}/_count"),
    ("HEAD", "/{index}"),
])
def test_other_requests_pass_through_byte_for_byte(served, settings, dbpedia, method, path):
    path = path.format(index=dbpedia.name).replace("<", "%3C").replace(">", "%3E").replace(":", "%3A")
    direct_url = settings.opensearch_url
    raw = b'{"query": {"match": {"text": "moon"}}}' if method == "POST" else None
    via_proxy = served.call(method, path, raw=raw, token=None)
    direct = Served(direct_url, None, "").call(method, path, raw=raw, token=None)
    assert via_proxy[0] == direct[0]
    assert via_proxy[2] == direct[2]
    assert via_proxy[1].get("content-type") == direct[1].get("content-type")


def _upgrade_asked(served, method: str, path: str, body: dict, token: str | None) -> tuple[int, bytes]:
    """One request that asks to upgrade to HTTP/2 over plain http ("Upgrade: h2c"), as Java's HttpClient and
    curl --http2 send it: the server may ignore the upgrade, never the body."""
    host, port = served.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        headers = {"Content-Type": "application/json", "Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c",
                   "HTTP2-Settings": "AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=json.dumps(body).encode(), headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def test_a_request_asking_to_upgrade_to_http2_keeps_its_body(served, services, dbpedia, encoder):
    text = QUERIES[0]
    status, body = _upgrade_asked(served, "POST", "/v1/search", {"index": dbpedia.name, "text": text, "k": 5},
                                  SERVE_TOKEN)
    assert status == 200, body
    expected = Searcher(encoder=encoder).search(text, index=dbpedia.name, k=5)
    assert [h["id"] for h in json.loads(body)["hits"]] == [h.id for h in expected]
    # Through the proxy: the neural clause is rewritten and run, not dropped (a body lost is a match_all).
    status, body = _upgrade_asked(served, "POST", f"/{dbpedia.name}/_search", {
        "size": 5, "_source": False, "query": {"neural": {"embedding": {"query_text": text, "k": 5}}}}, None)
    assert status == 200, body
    direct = services.search(index=dbpedia.name, body={"size": 5, "_source": False, "query": {
        "knn": {"embedding": {"vector": encoder.encode_query(text).tolist(), "k": 5}}}})
    assert [h["_id"] for h in json.loads(body)["hits"]["hits"]] == [h["_id"] for h in direct["hits"]["hits"]]


def test_a_java_client_gets_the_searchers_hits(served, services, dbpedia, encoder):
    """An application in another language: Java's own HttpClient, as built by default (tests/integration/clients)."""
    text = QUERIES[2]
    source = Path(__file__).parent / "clients" / "SearchClient.java"
    ran = subprocess.run(["java", str(source), served.url, SERVE_TOKEN, dbpedia.name, text], capture_output=True,
                         text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    answers = {}
    for line in ran.stdout.splitlines():
        label, status, body = line.split(" ", 2)
        answers[label] = (int(status), json.loads(body))
    assert answers["search"][0] == 200 and answers["neural"][0] == 200, answers
    expected = Searcher(encoder=encoder).search(text, index=dbpedia.name, k=5, mode="hybrid")
    assert [h["id"] for h in answers["search"][1]["hits"]] == [h.id for h in expected]
    direct = services.search(index=dbpedia.name, body={"size": 5, "_source": False, "query": {
        "knn": {"embedding": {"vector": encoder.encode_query(text).tolist(), "k": 5}}}})
    assert [h["_id"] for h in answers["neural"][1]["hits"]["hits"]] == [h["_id"] for h in direct["hits"]["hits"]]
