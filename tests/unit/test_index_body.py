import pytest

from semsearch.errors import ConfigurationError
from semsearch.engines.index_body import build_index_body, load_template, space_type_for

META = {"fingerprint": {"dimension": 384}}


def body(**overrides):
    args = dict(dimension=384, text_fields=["title", "text"], vector_field="embedding", engine="lucene",
                normalized=True, meta=META)
    args.update(overrides)
    return build_index_body(**args)


def test_template_ships_in_the_package():
    template = load_template("opensearch-knn")
    assert template["settings"]["index"]["knn"] is True


def test_vector_field_sized_for_the_model():
    props = body(dimension=768)["mappings"]["properties"]
    assert props["embedding"]["type"] == "knn_vector"
    assert props["embedding"]["dimension"] == 768
    assert props["embedding"]["method"]["engine"] == "lucene"
    assert props["title"]["type"] == props["text"]["type"] == "text"
    assert "__VECTOR_FIELD__" not in props and "__TEXT_FIELD__" not in props


def test_meta_and_analyzer():
    result = body(analyzer="english", replicas=0)
    assert result["mappings"]["_meta"] == {"semsearch": META}
    assert result["mappings"]["properties"]["text"]["analyzer"] == "english"
    assert result["settings"]["index"]["number_of_replicas"] == 0


def test_template_is_not_mutated_between_calls():
    body(dimension=8)
    assert body(dimension=16)["mappings"]["properties"]["embedding"]["dimension"] == 16
    assert load_template("opensearch-knn")["mappings"]["properties"]["__VECTOR_FIELD__"]["dimension"] == 0


def test_space_type_follows_engine_and_normalisation():
    assert space_type_for("lucene", True) == "cosinesimil"
    assert space_type_for("faiss", True) == "innerproduct"
    assert space_type_for("faiss", False) == "cosinesimil"


@pytest.mark.parametrize("overrides, message", [
    ({"engine": "nmslib2"}, "choose one of lucene, faiss"),
    ({"dimension": 0}, "positive"),
    ({"text_fields": []}, "text field"),
    ({"text_fields": ["embedding"]}, "cannot also be a text field"),
])
def test_bad_arguments_are_named(overrides, message):
    with pytest.raises(ConfigurationError, match=message):
        body(**overrides)


def test_the_index_info_names_each_text_fields_search_analyzer():
    # What decides whether hybrid asks for phrase matches (semsearch.query.plan.wants_phrase).
    from semsearch.index.manage import index_info_from_mappings, search_analyzer

    mappings = body(analyzer="english", meta={**META, "vector_field": "embedding",
                                              "text_fields": ["title", "text"]})["mappings"]
    info = index_info_from_mappings("docs", {"docs-v1": {"mappings": mappings}})
    assert info.text_analyzers == ("english", "english")
    # search_analyzer wins over analyzer; dotted paths reach object fields; no analyzer named: the standard one.
    mapping = {"properties": {"a": {"type": "text", "analyzer": "english", "search_analyzer": "simple"},
                              "meta": {"properties": {"summary": {"type": "text"}}}}}
    assert search_analyzer(mapping, "a") == "simple"
    assert search_analyzer(mapping, "meta.summary") is None and search_analyzer(mapping, "missing") is None
