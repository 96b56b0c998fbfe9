"""The pure parts of semsearch serve: the neural → knn rewrite, the micro-batcher, metrics, proxy headers."""

import asyncio
import json
import threading
from contextlib import asynccontextmanager

import numpy as np
import pytest

from semsearch.errors import ConfigurationError, IndexMismatchError
from semsearch.service import neural
from semsearch.service.batching import QueryBatcher
from semsearch.service.metrics import Counter, Histogram
from semsearch.service.proxy import upstream_headers

FINGERPRINT = {"model": "m", "weights": "abc", "dimension": 3, "pooling": ["mean"], "normalize": True}


def fake_vector(text):
    return [float(len(text)), 0.5, -1.0]


def test_search_paths_are_recognised():
    assert neural.search_endpoint("/docs/_search") == ("docs", "_search")
    assert neural.search_endpoint("/_search") == (None, "_search")
    assert neural.search_endpoint("/a,b/_msearch") == ("a,b", "_msearch")
    assert neural.search_endpoint("/docs/_doc/1") is None
    assert neural.search_endpoint("/_cat/indices") is None


def test_a_neural_clause_becomes_a_knn_clause_with_its_parameters():
    body = {"size": 5, "query": {"neural": {"embedding": {"query_text": "moon", "k": 7, "model_id": "x",
                                                          "filter": {"term": {"lang": "en"}}}}}}
    out = neural.rewrite(body, fake_vector)
    assert out == {"size": 5, "query": {"knn": {"embedding": {"vector": [4.0, 0.5, -1.0], "k": 7,
                                                              "filter": {"term": {"lang": "en"}}}}}}
    assert "neural" in body["query"]  # the caller's body is left as it was


def test_a_neural_clause_without_k_asks_for_ten_as_the_plugin_does():
    knn = neural.rewrite({"query": {"neural": {"embedding": {"query_text": "moon"}}}}, fake_vector)["query"]["knn"]
    assert knn["embedding"]["k"] == 10
    radial = neural.rewrite({"query": {"neural": {"embedding": {"query_text": "moon", "min_score": 0.8}}}},
                            fake_vector)["query"]["knn"]["embedding"]
    assert radial["min_score"] == 0.8 and "k" not in radial  # a radial search names no k


def test_numbers_the_cluster_reads_pass_as_they_are():
    for k in (5, "5", 5.0, 2.5):  # the k-NN plugin 2.19 answers each of them (2.5 as 2)
        assert neural.neural_clauses({"query": {"neural": {"embedding": {"query_text": "x", "k": k}}}})
    assert neural.neural_clauses({"query": {"neural": {"embedding": {"query_text": "x", "min_score": "0.5"}}}})


def test_neural_clauses_inside_bool_and_hybrid_are_all_rewritten():
    body = {"query": {"hybrid": {"queries": [
        {"match": {"text": "moon"}},
        {"bool": {"should": [{"neural": {"embedding": {"query_text": "moon landing", "k": 3}}}]}}]}}}
    assert [field for field, _ in neural.neural_clauses(body)] == ["embedding"]
    out = neural.rewrite(body, fake_vector)
    assert out["query"]["hybrid"]["queries"][0] == {"match": {"text": "moon"}}
    assert out["query"]["hybrid"]["queries"][1]["bool"]["should"][0] == {
        "knn": {"embedding": {"vector": [12.0, 0.5, -1.0], "k": 3}}}
    assert "neural" not in json.dumps(out)


@pytest.mark.parametrize("clause, message", [
    ({"embedding": {"k": 3}}, "query_text"),
    ({"embedding": {"query_image": "…", "k": 3}}, "query_text"),
    ({"embedding": {"query_text": "x", "k": 3, "weird": 1}}, "unsupported parameter"),
    ({"a": {"query_text": "x", "k": 1}, "b": {"query_text": "y", "k": 1}}, "one field"),
    ({"embedding": {"query_text": "x", "k": None}}, "k must be a number of at least 1, not null"),
    ({"embedding": {"query_text": "x", "k": 0}}, "k must be a number of at least 1, not 0"),
    ({"embedding": {"query_text": "x", "k": "ten"}}, 'k must be a number of at least 1, not "ten"'),
    ({"embedding": {"query_text": "x", "k": True}}, "k must be a number of at least 1, not true"),
    ({"embedding": {"query_text": "x", "min_score": "high"}}, 'min_score must be a number, not "high"'),
    ({"embedding": {"query_text": "x", "k": 5, "max_distance": 2.0}}, "one of k, min_score and max_distance"),
])
def test_malformed_neural_clauses_are_refused_with_the_reason(clause, message):
    with pytest.raises(ConfigurationError, match=message):
        neural.neural_clauses({"query": {"neural": clause}})


def test_msearch_bodies_round_trip_and_name_their_indexes():
    raw = b'{"index": "docs"}\n{"query": {"neural": {"embedding": {"query_text": "a", "k": 1}}}}\n{}\n{"query": {"match_all": {}}}\n'
    items = neural.msearch_items(raw)
    assert [header for header, _ in items] == [{"index": "docs"}, {}]
    assert neural.indices_of("fallback", items[0][0]) == ["docs"]
    assert neural.indices_of("a,b", items[1][0]) == ["a", "b"]
    assert neural.msearch_items(neural.msearch_bytes(items)) == items
    with pytest.raises(ConfigurationError, match="name its index"):
        neural.indices_of(None, {})
    with pytest.raises(ConfigurationError, match="pairs of lines"):
        neural.msearch_items(b'{"index": "docs"}\n')
    with pytest.raises(ConfigurationError, match="search 1: its header line must be a JSON object, not list"):
        neural.msearch_items(b'["neural"]\n{"query": {"neural": {"embedding": {"query_text": "a"}}}}\n')
    with pytest.raises(ConfigurationError, match="search 2: its body line must be a JSON object, not str"):
        neural.msearch_items(b'{}\n{}\n{}\n"neural"\n')


def test_the_index_model_must_be_the_services_and_both_are_named():
    neural.check_model("docs", {"semsearch": {"fingerprint": FINGERPRINT}}, FINGERPRINT)
    other = {**FINGERPRINT, "model": "BAAI/bge-small-en-v1.5", "weights": "fff"}
    with pytest.raises(IndexMismatchError) as caught:
        neural.check_model("docs", {"semsearch": {"fingerprint": other}}, FINGERPRINT)
    assert "BAAI/bge-small-en-v1.5" in str(caught.value) and "m (3-d, weights abc)" in str(caught.value)
    with pytest.raises(ConfigurationError, match="no semsearch model fingerprint"):
        neural.check_model("plain", {}, FINGERPRINT)


def _batched(texts, max_batch):
    calls, sizes = [], []

    def encode(batch):
        calls.append(list(batch))
        return np.array([fake_vector(t) for t in batch], dtype=np.float32)

    async def run():
        batcher = QueryBatcher(encode, max_batch=max_batch, max_wait=0.01, on_batch=sizes.append)
        vectors = await asyncio.gather(*(batcher.encode(t) for t in texts))
        await batcher.close()
        return vectors

    return asyncio.run(run()), calls, sizes


def test_concurrent_queries_share_a_batch_and_each_gets_its_own_vector():
    texts = [f"query {'x' * i}" for i in range(20)] + ["query "]  # the last repeats the first
    vectors, calls, sizes = _batched(texts, max_batch=32)
    assert all(v[0] == len(t) for t, v in zip(texts, vectors))
    assert sizes == [20] and len(calls) == 1  # one encoder call; the repeated text encoded once


def test_a_batch_never_exceeds_the_cap():
    texts = [f"q{i}" for i in range(20)]
    vectors, calls, sizes = _batched(texts, max_batch=8)
    assert max(sizes) <= 8 and sum(sizes) == 20 and len(calls) == 3
    assert all(v[0] == len(t) for t, v in zip(texts, vectors))


def test_an_encoder_error_reaches_every_waiting_caller():
    def encode(texts):
        raise RuntimeError("CUDA out of memory")

    async def run():
        batcher = QueryBatcher(encode, max_wait=0.005)
        results = await asyncio.gather(batcher.encode("a"), batcher.encode("b"), return_exceptions=True)
        await batcher.close()
        return results

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(run()))


def test_one_batch_runs_at_a_time():
    running, peak, lock = [0], [0], threading.Lock()

    def encode(texts):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        threading.Event().wait(0.02)
        with lock:
            running[0] -= 1
        return np.zeros((len(texts), 3), dtype=np.float32)

    async def run():
        batcher = QueryBatcher(encode, max_batch=2, max_wait=0)
        await asyncio.gather(*(batcher.encode(str(i)) for i in range(10)))
        await batcher.close()

    asyncio.run(run())
    assert peak[0] == 1


def test_metrics_render_in_prometheus_text_format():
    counter = Counter("c_total", "help", ("path",))
    counter.inc('/v1/"x"')
    histogram = Histogram("h_seconds", "help", (0.1, 1.0), ("mode",))
    histogram.observe(0.05, "hybrid")
    histogram.observe(5.0, "hybrid")
    text = "\n".join(counter.render() + histogram.render())
    assert 'c_total{path="/v1/\\"x\\""} 1' in text
    assert 'h_seconds_bucket{mode="hybrid",le="0.1"} 1' in text
    assert 'h_seconds_bucket{mode="hybrid",le="+Inf"} 2' in text
    assert 'h_seconds_count{mode="hybrid"} 2' in text and "# TYPE h_seconds histogram" in text


def test_the_clients_authorization_wins_and_hop_by_hop_headers_stay_behind():
    headers = {"Host": "proxy:8600", "Connection": "keep-alive", "Content-Type": "application/json",
               "Content-Length": "12"}
    assert upstream_headers(headers, "Basic c2VjcmV0") == {"Content-Type": "application/json",
                                                          "Authorization": "Basic c2VjcmV0"}
    own = upstream_headers({**headers, "authorization": "Basic b3du"}, "Basic c2VjcmV0")
    assert own["Authorization"] == "Basic b3du"


def test_behind_a_token_only_its_holder_gets_the_services_credentials():
    service = "Basic c2VjcmV0"
    assert "Authorization" not in upstream_headers({}, service, token="t0k")  # a stranger: none
    holder = upstream_headers({"authorization": "Bearer t0k"}, service, token="t0k")
    assert holder["Authorization"] == service  # and the token itself never reaches the cluster
    assert upstream_headers({"Authorization": "Basic b3du"}, service, token="t0k")["Authorization"] == "Basic b3du"


def test_a_field_or_aggregation_called_neural_is_not_a_clause():
    body = {"query": {"match": {"neural": {"query": "networks"}}}, "aggs": {"neural": {"terms": {"field": "x"}}},
            "_source": {"includes": ["neural"]}}
    assert neural.neural_clauses(body) == []
    assert neural.rewrite(body, fake_vector) == body


def test_counters_keep_every_digit():
    counter = Counter("big_total", "help")
    counter.inc(amount=1_234_567)
    counter.inc(amount=0.5)
    assert counter.render()[-1] == "big_total 1234567.5"


def test_closing_the_batcher_fails_waiting_callers_instead_of_leaving_them():
    async def run():
        started = asyncio.Event()

        def slow(texts):
            return np.zeros((len(texts), 3), dtype=np.float32)

        batcher = QueryBatcher(slow, max_wait=5.0)  # the batch would wait 5 s for company
        waiting = asyncio.ensure_future(batcher.encode("q"))
        await asyncio.sleep(0.05)
        started.set()
        await batcher.close()
        return await asyncio.gather(waiting, return_exceptions=True)

    (result,) = asyncio.run(run())
    assert isinstance(result, RuntimeError) and "shutting down" in str(result)


def test_the_proxy_passes_over_a_node_that_refuses_connections():
    import socket

    from aiohttp import web

    from semsearch.service.proxy import ClusterProxy
    from semsearch.settings import Settings

    with socket.socket() as closed:  # a port that nothing listens on: a node that is down
        closed.bind(("127.0.0.1", 0))
        down = closed.getsockname()[1]

    async def run():
        app = web.Application()
        app.router.add_get("/", lambda request: web.json_response({"node": "up"}))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        up = site._server.sockets[0].getsockname()[1]
        proxy = ClusterProxy(Settings(opensearch_url=f"http://127.0.0.1:{down},http://127.0.0.1:{up}"))
        answers = [await proxy.read("GET", "/", {}) for _ in range(4)]  # round-robin starts at each node in turn
        lone = ClusterProxy(Settings(opensearch_url=f"http://127.0.0.1:{down}"))
        try:
            await lone.read("GET", "/", {})
            refused = None
        except Exception as exc:  # noqa: BLE001 - the error is the point
            refused = exc
        await proxy.close()
        await lone.close()
        await runner.cleanup()
        return answers, refused

    import aiohttp

    answers, refused = asyncio.run(run())
    assert answers == [(200, b'{"node": "up"}')] * 4
    assert isinstance(refused, aiohttp.ClientConnectorError)  # no node left to try: the refusal itself


@asynccontextmanager
async def _node(handler):
    """A stand-in cluster node on a free local port, answering every request with ``handler``: its port."""
    from aiohttp import web

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]
    finally:
        await runner.cleanup()


def test_credentials_in_the_url_follow_the_token_rules_and_never_ride_along():
    """A node whose URL holds user:password@: the proxy strips them and applies them as the service's credentials,
    only for a client without its own and, behind a token, only for the token's holder; the service's own reads
    for a client (an index's mapping) get what that client's request would get."""
    from aiohttp import web

    from semsearch.service.proxy import ClusterProxy, node_credentials
    from semsearch.settings import Settings

    assert node_credentials("https://ops:p%40ss@node1:9200/base") == ("https://node1:9200/base",
                                                                       "Basic b3BzOnBAc3M=")  # ops:p@ss
    assert node_credentials("http://node1:9200") == ("http://node1:9200", None)
    seen = []

    async def record(request):
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"ok": True})

    async def run():
        async with _node(record) as port:
            return await through(port)

    async def through(port):
        settings = Settings(opensearch_url=f"http://ops:s3cret-pw@127.0.0.1:{port}")
        guarded, open_service = ClusterProxy(settings), ClusterProxy(settings)
        statuses = []
        for proxy, headers, token in ((guarded, {}, "t0k"),  # a stranger behind the token
                                      (guarded, {"Authorization": "Bearer t0k"}, "t0k"),  # its holder
                                      (guarded, {"Authorization": "Basic b3du"}, "t0k"),  # a client's own
                                      (open_service, {}, None)):  # no token: anyone
            status, _, chunks = await proxy.send("GET", "/_cat/indices", "", headers, b"", token=token)
            statuses.append(status)
            [chunk async for chunk in chunks]
            statuses.append((await proxy.read("GET", "/idx/_mapping", headers, token=token))[0])
        # Credentials in the URL and in the settings: the URL's win, as in the Python client (/v1/search's).
        both = ClusterProxy(Settings(opensearch_url=f"http://ops:s3cret-pw@127.0.0.1:{port}", opensearch_user="svc",
                                     opensearch_password="other-pw"))
        statuses.append((await both.read("GET", "/idx/_mapping", {}))[0])
        await both.close()
        await guarded.close()
        await open_service.close()
        return statuses

    assert asyncio.run(run()) == [200] * 9  # a client's own Authorization beside URL credentials: no failure
    service = "Basic b3BzOnMzY3JldC1wdw=="  # ops:s3cret-pw
    assert seen == [None, None, service, service, "Basic b3du", "Basic b3du", service, service, service]


def test_what_counts_as_a_json_body_and_how_invalid_fields_read():
    from semsearch.service.app import is_json, validation_message

    assert is_json("application/json") and is_json("Application/JSON; charset=utf-8")
    assert is_json("application/vnd.api+json")
    assert not is_json(None) and not is_json("application/x-www-form-urlencoded") and not is_json("text/plain")
    errors = [{"loc": ("body", "k"), "msg": "Input should be less than or equal to 1000"},
              {"loc": ("body", "fusion", "rrf_k"), "msg": "Input should be greater than or equal to 1"},
              {"loc": ("body",), "msg": "Value error, offset + k must be at most 10,000 (got 10,005)"}]
    assert validation_message(errors) == ("k: Input should be less than or equal to 1000; fusion.rrf_k: Input should "
                                          "be greater than or equal to 1; Value error, offset + k must be at most "
                                          "10,000 (got 10,005)")


class _StubEncoder:
    """What the service asks of an encoder for a neural query: its fingerprint and query vectors."""

    dimension = 3

    class fingerprint:  # noqa: N801 - stands for a Fingerprint instance
        @staticmethod
        def as_dict():
            return dict(FINGERPRINT)

    def __init__(self):
        self.encoded = []

    def encode_query(self, texts):
        texts = [texts] if isinstance(texts, str) else list(texts)
        self.encoded.extend(texts)
        return np.array([fake_vector(text) for text in texts], dtype=np.float32)


async def _asgi(app, method: str, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    """One request through an ASGI app, in-process: (status, body)."""
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    given, answer = False, {"status": 0, "body": b""}

    async def receive():
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer["status"], answer["body"]


def test_a_client_without_the_token_never_gets_what_the_services_credentials_read():
    """The service reads an index's mapping to check a neural query's model: with the credentials the client's own
    request gets, and what it read for the token's holder is never what a stranger is answered from (the cache)."""
    from aiohttp import web

    from semsearch.service.app import create_app
    from semsearch.settings import Settings

    seen = []
    mapping = {"idx": {"mappings": {"_meta": {"semsearch": {"fingerprint": FINGERPRINT, "vector_field": "embedding",
                                                            "text_fields": ["text"]}},
                                    "properties": {"embedding": {"type": "knn_vector", "dimension": 3}}}}}

    async def node(request):
        authorization = request.headers.get("Authorization")
        seen.append((request.path, authorization))
        if authorization != "Basic c3ZjOnB3LXNlY3JldA==":  # svc:pw-secret
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response(mapping if request.path.endswith("/_mapping") else {"hits": {"hits": []}})

    async def run():
        async with _node(node) as port:
            return await through(port)

    async def through(port):
        encoder = _StubEncoder()
        app = create_app(Settings(opensearch_url=f"http://127.0.0.1:{port}", opensearch_user="svc",
                                  opensearch_password="pw-secret"), encoder=encoder, token="t0k")
        search = json.dumps({"query": {"neural": {"embedding": {"query_text": "moon", "k": 3}}}}).encode()
        json_type = {"Content-Type": "application/json"}
        answers = [await _asgi(app, "POST", "/idx/_search", search, json_type),  # a stranger
                   await _asgi(app, "POST", "/idx/_search", search, {**json_type, "Authorization": "Bearer t0k"}),
                   await _asgi(app, "POST", "/idx/_search", search, json_type)]  # a stranger after the holder
        await app.service.close()
        return answers, encoder.encoded

    answers, encoded = asyncio.run(run())
    assert [status for status, _ in answers] == [401, 200, 401]
    assert all(b"pw-secret" not in body for _, body in answers)
    service = "Basic c3ZjOnB3LXNlY3JldA=="
    # Each stranger's mapping read went without credentials, and was refused: nothing was encoded for it.
    assert seen == [("/idx/_mapping", None), ("/idx/_mapping", service), ("/idx/_search", service),
                    ("/idx/_mapping", None)]
    assert encoded == ["moon"]


def test_the_token_is_recognised_in_any_case_of_its_scheme_and_connection_named_headers_stay_behind():
    service = "Basic c2VjcmV0"
    assert upstream_headers({"authorization": "bearer t0k"}, service, token="t0k")["Authorization"] == service
    other = upstream_headers({"authorization": "Bearer t0k-not"}, service, token="t0k")
    assert other["Authorization"] == "Bearer t0k-not"  # not the token: the client's own, as any other
    asked = upstream_headers({"Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c", "HTTP2-Settings": "AAMA",
                              "Accept": "application/json"}, None)
    assert asked == {"Accept": "application/json"}


def test_invalid_fields_come_back_without_the_values_given():
    from semsearch.service.app import validation_detail

    errors = [{"type": "finite_number", "loc": ("body", "fusion", "keyword_weight"), "msg": "Input should be a finite "
               "number", "input": float("nan"), "ctx": {"error": ValueError("x")}}]
    detail = validation_detail(errors)
    assert detail == [{"type": "finite_number", "loc": ["body", "fusion", "keyword_weight"],
                       "msg": "Input should be a finite number"}]
    json.dumps(detail, allow_nan=False)  # what JSONResponse needs


def test_a_chunked_body_is_read_up_to_its_limit_then_replayed_whole():
    from semsearch.service.app import BodyTooLarge, read_body, replayed

    def messages(*parts):
        queue = [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
                 for i, part in enumerate(parts)] + [{"type": "http.disconnect"}]

        async def receive():
            return queue.pop(0)
        return receive

    async def run():
        body = await read_body(messages(b"ab", b"cd"), limit=4)
        with pytest.raises(BodyTooLarge):
            await read_body(messages(b"ab", b"cde"), limit=4)
        again = replayed(body, messages())
        return body, await again(), await again()

    body, first, then = asyncio.run(run())
    assert body == b"abcd" and first == {"type": "http.request", "body": b"abcd", "more_body": False}
    assert then == {"type": "http.disconnect"}  # then the original receive's own messages


def test_a_blank_msearch_header_line_is_an_empty_header():
    items = neural.msearch_items(b'\n{"query": {"match_all": {}}}\n{"index": "b"}\n{"size": 1}\n\n')
    assert items == [({}, {"query": {"match_all": {}}}), ({"index": "b"}, {"size": 1})]


def test_a_pattern_that_matches_no_index_is_no_such_index():
    from semsearch.errors import IndexNotFoundError
    from semsearch.index.manage import index_info_from_mappings

    with pytest.raises(IndexNotFoundError, match="'logs-\\*' does not exist"):
        index_info_from_mappings("logs-*", {})


def test_a_request_target_that_is_no_path_never_reaches_another_host():
    """'GET @other-host:port/x' glued to the node's URL would be a request to other-host: refused, as "*" is."""
    from aiohttp import web

    from semsearch.service.app import create_app
    from semsearch.service.proxy import ClusterProxy
    from semsearch.settings import Settings

    reached = []

    async def other_host(request):
        reached.append(request.path)
        return web.json_response({"secret": True})

    async def run():
        async with _node(other_host) as port:
            app = create_app(Settings(opensearch_url="http://127.0.0.1:9"), encoder=_StubEncoder())
            answers = [await _asgi(app, "GET", target, b"", {}) for target in (f"@127.0.0.1:{port}/secret", "*")]
            proxy = ClusterProxy(Settings(opensearch_url="http://127.0.0.1:9"))
            with pytest.raises(ValueError, match="starts with /"):
                await proxy.send("GET", f"@127.0.0.1:{port}/secret", "", {}, b"")
            await proxy.close()
            await app.service.close()
            return answers

    answers = asyncio.run(run())
    assert [status for status, _ in answers] == [400, 400] and reached == []
    assert json.loads(answers[0][1])["error"]["reason"] == "the request target must be a path (it starts with /)"
