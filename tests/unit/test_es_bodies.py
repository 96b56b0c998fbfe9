"""Elasticsearch bodies and the elasticsearch-py adapter's error translation (pure parts)."""

import builtins

import pytest
from opensearchpy import exceptions as os_exceptions

from semsearch import Settings
from semsearch.errors import ConfigurationError
from semsearch.engines.es_bodies import ENGLISH_FALLBACK, es_index_body, es_knn_query
from semsearch.query.bodies import knn_body

META = {"fingerprint": {"dimension": 4}}


def test_index_body_maps_dense_vector_text_fields_and_meta():
    body = es_index_body(dimension=4, text_fields=["title", "text"], vector_field="embedding", meta=META,
                         analyzer="english", replicas=0, passages="passages")
    properties = body["mappings"]["properties"]
    assert properties["embedding"] == {"type": "dense_vector", "dims": 4, "index": True, "similarity": "cosine",
                                       "index_options": {"type": "hnsw", "m": 16, "ef_construction": 128}}
    assert properties["title"] == {"type": "text", "analyzer": "english"} == properties["text"]
    assert properties["passages"]["type"] == "nested"
    assert properties["passages"]["properties"]["embedding"]["dims"] == 4
    assert properties["semsearch_id"] == {"type": "keyword"}
    assert body["mappings"]["_meta"] == {"semsearch": META}
    assert body["settings"]["index"]["number_of_replicas"] == 0


def test_analyzer_definition_is_installed_under_its_own_name():
    body = es_index_body(dimension=4, text_fields=["text"], vector_field="v", meta=META, analyzer=ENGLISH_FALLBACK)
    assert body["settings"]["index"]["analysis"]["analyzer"]["semsearch_text"] == ENGLISH_FALLBACK
    assert body["mappings"]["properties"]["text"]["analyzer"] == "semsearch_text"


def test_compact_modes_by_version():
    body = es_index_body(dimension=4, text_fields=["t"], vector_field="v", meta=META, compact="int8",
                         server_version=(8, 19, 4))
    assert body["mappings"]["properties"]["v"]["index_options"]["type"] == "int8_hnsw"
    with pytest.raises(ConfigurationError, match="8.18.0"):
        es_index_body(dimension=4, text_fields=["t"], vector_field="v", meta=META, compact="bbq",
                      server_version=(8, 15, 0))
    with pytest.raises(ConfigurationError, match="unknown compact mode"):
        es_index_body(dimension=4, text_fields=["t"], vector_field="v", meta=META, compact="fp16")


def test_field_clashes_are_refused():
    with pytest.raises(ConfigurationError, match="vector field"):
        es_index_body(dimension=4, text_fields=["v"], vector_field="v", meta=META)
    with pytest.raises(ConfigurationError, match="passages"):
        es_index_body(dimension=4, text_fields=["t"], vector_field="v", meta=META, passages="t")


def test_knn_query_with_filters_and_passages():
    flt = [{"term": {"lang": "en"}}]
    plain = es_knn_query([1, 0], "v", 10, flt)
    assert plain == {"knn": {"field": "v", "query_vector": [1.0, 0.0], "k": 10, "num_candidates": 100,
                             "filter": flt}}
    with_passages = es_knn_query([1, 0], "v", 80, flt, passages_field="p")
    first, nested = with_passages["dis_max"]["queries"]
    assert first["knn"]["num_candidates"] == 160
    assert nested["bool"]["filter"] == flt
    assert nested["bool"]["must"][0]["nested"]["query"]["knn"]["field"] == "p.v"


def test_knn_body_dispatches_on_backend():
    es = knn_body([1, 0], "v", 5, backend="elasticsearch", candidates=100)
    assert es["query"]["knn"]["k"] == 100 and es["query"]["knn"]["field"] == "v"
    opensearch = knn_body([1, 0], "v", 5, candidates=100)
    assert opensearch["query"]["knn"]["v"]["k"] == 100


def test_missing_extra_names_it(monkeypatch):
    real_import = builtins.__import__

    def no_elasticsearch(name, *args, **kwargs):
        if name == "elasticsearch" or name.startswith("elasticsearch."):
            raise ImportError("No module named 'elasticsearch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_elasticsearch)
    from semsearch.engines.opensearch import make_client

    with pytest.raises(ConfigurationError, match=r"semsearch\[elasticsearch\]"):
        make_client(Settings(backend="elasticsearch", opensearch_url="http://127.0.0.1:1"))


def test_errors_become_opensearch_py_errors():
    import elasticsearch
    from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig

    from semsearch.engines.elasticsearch import translate

    meta = ApiResponseMeta(status=404, http_version="1.1", headers=HttpHeaders(), duration=0.0,
                           node=NodeConfig("http", "localhost", 9200))
    body = {"error": {"type": "index_not_found_exception", "reason": "no such index [x]"}, "status": 404}
    error = translate(elasticsearch.NotFoundError("not found", meta, body))
    assert isinstance(error, os_exceptions.NotFoundError)
    assert error.status_code == 404 and error.error == "index_not_found_exception"
    assert isinstance(translate(elasticsearch.ConnectionError("refused")), os_exceptions.ConnectionError)


def test_options_keep_verification_off_when_asked_and_default_the_port():
    import ssl

    from semsearch.engines.opensearch import connection_kwargs
    from semsearch.engines.elasticsearch import elasticsearch_options

    settings = Settings(backend="elasticsearch", opensearch_url="https://es.internal", verify_certs=False,
                        opensearch_user="elastic", opensearch_password="s3cret")
    options = elasticsearch_options(connection_kwargs(settings))
    assert options["hosts"] == ["https://es.internal:9200"]
    assert options["verify_certs"] is False and options["ssl_context"].verify_mode == ssl.CERT_NONE
    assert options["basic_auth"] == ("elastic", "s3cret") and "http_auth" not in options
    verified = elasticsearch_options(connection_kwargs(Settings(backend="elasticsearch",
                                                                opensearch_url="https://es.internal:9243")))
    assert "verify_certs" not in verified and verified["hosts"] == ["https://es.internal:9243"]


def test_unparsable_url_error_hides_the_password():
    from semsearch.engines.opensearch import make_client

    with pytest.raises(ConfigurationError) as raised:
        make_client(Settings(backend="elasticsearch", opensearch_url="http://elastic:s3c#ret@es:9200"))
    assert "s3c" not in str(raised.value)


def test_knn_beyond_elasticsearchs_limit_is_refused():
    with pytest.raises(ConfigurationError, match="at most 10000"):
        es_knn_query([1, 0], "v", 10_001, [])
    assert es_knn_query([1, 0], "v", 6000, [])["knn"]["num_candidates"] == 10_000
