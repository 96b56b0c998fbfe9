"""Pure builders of the index lifecycle: templates and knobs, capabilities, lifecycle bodies, passages."""

import json

import numpy as np
import pytest

from semsearch.lifecycle.backfill import _cut, document_from_hit
from semsearch.engines.capabilities import (
    Capabilities,
    capabilities_from,
    compact_modes_for,
    engines_for,
    modules_from_nodes,
    parse_version,
)
from semsearch.writing.documents import DocumentSchema, validate
from semsearch.errors import ClusterError, ConfigurationError, IndexMismatchError
from semsearch.index.manage import IndexInfo, check_fingerprint
from semsearch.engines.index_body import build_index_body, knn_meta, knn_settings, knn_vector_field
from semsearch.lifecycle.bodies import (
    BY_SHARD_DOC,
    NO_VECTOR,
    backfill_query,
    check_text_fields,
    checkpoint_id,
    copyable_settings,
    lookup_body,
    merge_diff,
    next_version_name,
    paged_diff,
    scan_body,
    source_digest,
    swap_actions,
    vector_mapping_update,
    version_of,
    versioned_index_body,
)
from semsearch.index.passages import chunking_meta, nested_knn_body
from semsearch.writing.vector_updates import update_entry

META = {"fingerprint": {"dimension": 384}}
V2_19 = (2, 19, 1)


def vector(**overrides):
    args = dict(dimension=384, engine="lucene", normalized=True)
    args.update(overrides)
    return knn_vector_field(**args)


# -- templates and knobs --------------------------------------------------------------------------------

def test_hnsw_knobs_and_defaults():
    default = vector()
    assert default["method"]["parameters"] == {"m": 16, "ef_construction": 128}
    tuned = vector(m=32, ef_construction=256)
    assert tuned["method"]["parameters"] == {"m": 32, "ef_construction": 256}
    assert knn_settings(ef_search=64)["knn.algo_param.ef_search"] == 64
    assert knn_settings()["knn"] is True
    with pytest.raises(ConfigurationError, match="m must be an integer above 1"):
        vector(m=1)
    with pytest.raises(ConfigurationError, match="ef_search must be a positive integer"):
        knn_settings(ef_search=0)


@pytest.mark.parametrize("engine, normalized, given, expected", [
    ("lucene", True, None, "cosinesimil"),
    ("faiss", True, None, "innerproduct"),
    ("faiss", False, None, "cosinesimil"),
    ("lucene", True, "innerproduct", "innerproduct"),
    ("lucene", False, "l2", "l2"),
])
def test_space_type_matches_normalisation(engine, normalized, given, expected):
    assert vector(engine=engine, normalized=normalized, space_type=given)["method"]["space_type"] == expected


def test_inner_product_on_unnormalised_vectors_is_refused():
    with pytest.raises(ConfigurationError, match="needs normalised vectors"):
        vector(normalized=False, space_type="innerproduct")
    with pytest.raises(ConfigurationError, match="choose one of cosinesimil, innerproduct, l2"):
        vector(space_type="dot")


def test_compact_modes_per_engine():
    sq = vector(compact="sq", server_version=V2_19)
    assert sq["method"]["parameters"]["encoder"] == {"name": "sq", "parameters": {"bits": 7}}
    fp16 = vector(engine="faiss", compact="fp16", server_version=V2_19)
    assert fp16["method"]["parameters"]["encoder"] == {"name": "sq", "parameters": {"type": "fp16"}}
    on_disk = vector(engine="faiss", compact="on_disk")
    assert on_disk["mode"] == "on_disk" and on_disk["compression_level"] == "32x"
    with pytest.raises(ConfigurationError, match="lucene offers: sq"):
        vector(compact="fp16")
    with pytest.raises(ConfigurationError, match="choose one of fp16, on_disk, sq"):
        vector(compact="byte")


def test_compact_modes_follow_the_server_version():
    with pytest.raises(ConfigurationError, match=r"needs OpenSearch 2\.16\.0 or later; this cluster runs 2\.15\.0"):
        vector(compact="sq", server_version=(2, 15, 0))
    with pytest.raises(ConfigurationError, match="2.13.0"):
        vector(engine="faiss", compact="fp16", server_version=(2, 11, 0))
    assert compact_modes_for("faiss", (2, 13, 0)) == ("fp16",)
    assert compact_modes_for("faiss", (2, 17, 0)) == ("fp16", "on_disk")
    assert compact_modes_for("lucene", (2, 19, 1)) == ("sq",)


def test_engine_refused_by_the_server_version():
    with pytest.raises(ConfigurationError, match="does not accept new lucene indexes"):
        vector(server_version=(2, 1, 0))


def test_build_index_body_keeps_its_signature_and_takes_knobs():
    body = build_index_body(dimension=384, text_fields=["title", "text"], vector_field="embedding", engine="lucene",
                            normalized=True, meta=META, analyzer="english", m=24, ef_construction=200, ef_search=80,
                            compact="sq", server_version=V2_19)
    props = body["mappings"]["properties"]
    assert props["embedding"]["method"]["parameters"]["m"] == 24
    assert props["embedding"]["method"]["parameters"]["encoder"]["name"] == "sq"
    assert body["settings"]["index"]["knn.algo_param.ef_search"] == 80
    assert props["title"]["analyzer"] == "english"


def test_nested_passages_variant():
    body = build_index_body(dimension=8, text_fields=["title", "text"], vector_field="embedding", engine="lucene",
                            normalized=True, meta=META, analyzer="english", passages="passages")
    passages = body["mappings"]["properties"]["passages"]
    assert passages["type"] == "nested"
    assert passages["properties"]["embedding"] == body["mappings"]["properties"]["embedding"]
    assert passages["properties"]["text"] == {"type": "text", "analyzer": "english"}
    with pytest.raises(ConfigurationError, match="clashes"):
        build_index_body(dimension=8, text_fields=["passages"], vector_field="embedding", engine="lucene",
                         normalized=True, meta=META, passages="passages")
    with pytest.raises(ConfigurationError, match="nested passages need OpenSearch 2.12.0"):
        build_index_body(dimension=8, text_fields=["text"], vector_field="embedding", engine="lucene",
                         normalized=True, meta=META, passages="passages", server_version=(2, 11, 0))
    with pytest.raises(ConfigurationError, match="on_disk"):
        build_index_body(dimension=8, text_fields=["text"], vector_field="embedding", engine="faiss",
                         normalized=True, meta=META, passages="passages", compact="on_disk")


def test_knn_meta_records_effective_knobs():
    assert knn_meta(engine="lucene", space_type="cosinesimil", m=None, ef_construction=None, ef_search=None,
                    compact=None) == {"engine": "lucene", "space_type": "cosinesimil", "m": 16,
                                      "ef_construction": 128, "ef_search": 100, "compact": None}


# -- capabilities ------------------------------------------------------------------------------------------

def test_parse_version():
    assert parse_version("2.19.1") == (2, 19, 1)
    assert parse_version("3.0.0-beta1") == (3, 0, 0)
    assert parse_version("2.19.1.0") == (2, 19, 1)
    assert parse_version("8") == (8, 0, 0)


def test_engines_by_version_never_nmslib_on_3():
    assert engines_for((2, 19, 1)) == ("nmslib", "faiss", "lucene")
    assert engines_for((3, 0, 0)) == ("faiss", "lucene")
    assert engines_for((3, 2, 0)) == ("faiss", "lucene")
    assert engines_for((2, 1, 0)) == ("nmslib", "faiss")


ROOT = {"version": {"distribution": "opensearch", "number": "2.19.1"}}


def test_capabilities_from_root_and_plugins():
    plugins = [{"name": "n1", "component": "opensearch-knn", "version": "2.19.1.0"},
               {"name": "n1", "component": "opensearch-neural-search", "version": "2.19.1.0"}]
    caps = capabilities_from(ROOT, plugins, modules=["reindex", "lang-painless"])
    assert caps.engines == ("nmslib", "faiss", "lucene") and caps.default_engine == "lucene"
    info = caps.as_dict()
    assert info["neural_search_plugin"] == "2.19.1.0" and info["reindex_module"] is True
    assert info["compact_modes"] == {"faiss": ["fp16", "on_disk"], "lucene": ["sq"]}
    assert info["nested_knn"] is True
    caps.require_knn()


def test_capabilities_refuse_what_cannot_hold_vectors():
    no_knn = capabilities_from(ROOT, [{"name": "n1", "component": "analysis-icu", "version": "2.19.1"}])
    assert no_knn.engines == () and not no_knn.nested_knn
    with pytest.raises(ClusterError, match="k-NN plugin"):
        no_knn.require_knn()
    partial = capabilities_from(ROOT, [{"name": "n1", "component": "opensearch-knn", "version": "2.19.1.0"},
                                       {"name": "n2"}])
    with pytest.raises(ClusterError, match="on 1 of 2 nodes"):
        partial.require_knn()
    elastic = capabilities_from({"version": {"number": "8.15.0"}}, [])
    assert elastic.distribution == "elasticsearch" and elastic.engines == ()
    elastic.require_knn()  # dense_vector and the knn query are built in
    assert elastic.as_dict()["compact_modes"] == ["int8", "int4"] and elastic.as_dict()["knn_query"] is True
    too_old = capabilities_from({"version": {"number": "8.11.4"}}, [])
    with pytest.raises(ClusterError, match="8.12.0 or later"):
        too_old.require_knn()
    with pytest.raises(ClusterError, match="OpenSearch .* and Elasticsearch"):
        capabilities_from({"version": {"number": "7.10.2", "distribution": "other"}}, []).require_knn()
    assert Capabilities("opensearch", (2, 19, 1), "2.19.1.0", None, modules=None).reindex is None


def test_modules_present_on_every_node():
    answer = {"nodes": {"a": {"modules": [{"name": "reindex"}, {"name": "x"}]}, "b": {"modules": [{"name": "x"}]}}}
    assert modules_from_nodes(answer) == ["x"]


# -- lifecycle bodies ----------------------------------------------------------------------------------------

def test_version_names_are_never_reused():
    assert next_version_name("docs", []) == "docs-v1"
    assert next_version_name("docs", ["docs-v1", "docs-v3", "docs-v2x", "other-v9"]) == "docs-v4"
    assert version_of("docs", "docs-v12") == 12 and version_of("docs", "docs-v") is None
    assert version_of("a.b", "aXb-v1") is None


def test_copyable_settings_drop_what_the_cluster_sets():
    flat = {"index.uuid": "u", "index.version.created": "1", "index.creation_date": "1", "index.provided_name": "x",
            "index.blocks.write": "true", "index.knn": "false", "index.resize.source.name": "y",
            "index.routing.allocation.initial_recovery._id": None, "index.number_of_shards": "2",
            "index.number_of_replicas": "0", "index.analysis.analyzer.my.type": "english",
            "index.similarity.default.type": "BM25", "index.refresh_interval": "5s"}
    assert copyable_settings(flat) == {"index.number_of_shards": "2", "index.number_of_replicas": "0",
                                       "index.analysis.analyzer.my.type": "english",
                                       "index.similarity.default.type": "BM25", "index.refresh_interval": "5s"}


MAPPING = {"dynamic": "strict", "_meta": {"owner": "app"},
           "properties": {"title": {"type": "text", "analyzer": "my"}, "text": {"type": "text"},
                          "tag": {"type": "keyword"}, "body": {"type": "text"}}}


def test_text_fields_checked_against_the_mapping():
    assert check_text_fields(MAPPING, None, ("title", "text")) == ["title", "text"]
    assert check_text_fields(MAPPING, ["body"], ("title", "text")) == ["body"]
    with pytest.raises(ConfigurationError, match="not top-level text fields of this index: tag; its text fields are: "
                                                 "title, text, body$"):
        check_text_fields(MAPPING, ["tag"], ("title", "text"))
    with pytest.raises(ConfigurationError, match="--text-field"):
        check_text_fields({"properties": {"name": {"type": "text"}}}, None, ("title", "text"))
    # Only one default beside other text fields: the text may be in those, so the fields are asked for.
    title_body = {"properties": {"title": {"type": "text"}, "body": {"type": "text"}}}
    with pytest.raises(ConfigurationError, match="has only title, and other text fields too \\(body\\): name the "
                                                 "fields to encode with --text-field, e.g. --text-field title "
                                                 "--text-field body"):
        check_text_fields(title_body, None, ("title", "text"))
    assert check_text_fields({"properties": {"title": {"type": "text"}}}, None, ("title", "text")) == ["title"]
    # The body default present: other text fields (dynamic mapping's url, lang) are left out, as before.
    dynamic = {"properties": {"text": {"type": "text"}, "lang": {"type": "text"}, "url": {"type": "text"}}}
    assert check_text_fields(dynamic, None, ("title", "text")) == ["text"]
    # Text inside objects and nested fields is not encoded: said where it would matter, never ignored in silence.
    nested = {"properties": {"title": {"type": "text"}, "sections": {"type": "nested", "properties": {
        "text": {"type": "text"}, "meta": {"properties": {"note": {"type": "text"}}}}}}}
    with pytest.raises(ConfigurationError, match=r"other text fields too \(sections\.text, sections\.meta\.note\).*"
                                                 r"--text-field title; text inside object or nested fields"):
        check_text_fields(nested, None, ("title", "text"))
    with pytest.raises(ConfigurationError, match=r"not top-level text fields of this index: sections\.text; its text "
                                                 r"fields are: title; text inside object or nested fields"):
        check_text_fields(nested, ["sections.text"], ("title", "text"))
    assert check_text_fields(nested, ["title"], ("title", "text")) == ["title"]


def test_a_clone_keeps_its_sources_replica_count():
    from semsearch.lifecycle.bodies import clone_body

    assert clone_body({"index.number_of_replicas": "0", "index.number_of_shards": "1"}) == {
        "settings": {"index.number_of_replicas": "0"}}
    assert clone_body({}) == {}


def test_versioned_index_body_keeps_analysers_mapping_and_meta():
    vec = vector(dimension=8)
    body = versioned_index_body({"index.analysis.analyzer.my.type": "english", "index.uuid": "u",
                                 "index.number_of_shards": "1"}, MAPPING, vector_field="embedding", vector=vec,
                                knn_settings=knn_settings(), meta={"fingerprint": {}})
    assert body["settings"]["index.analysis.analyzer.my.type"] == "english"
    assert body["settings"]["index.knn"] is True and "index.uuid" not in body["settings"]
    props = body["mappings"]["properties"]
    assert props["title"] == {"type": "text", "analyzer": "my"} and props["embedding"] == vec
    assert props["semsearch_hash"] == {"type": "keyword"} and body["mappings"]["dynamic"] == "strict"
    assert body["mappings"]["_meta"] == {"owner": "app", "semsearch": {"fingerprint": {}}}
    assert "embedding" not in MAPPING["properties"]  # the input is not mutated
    with pytest.raises(ConfigurationError, match="already has a field 'tag'"):
        versioned_index_body({}, MAPPING, vector_field="tag", vector=vec, knn_settings={}, meta={})
    replaced = versioned_index_body({}, {"properties": {"embedding": {"type": "knn_vector", "dimension": 4}}},
                                    vector_field="embedding", vector=vec, knn_settings={}, meta={},
                                    replace_vector=True)
    assert replaced["mappings"]["properties"]["embedding"]["dimension"] == 8


def test_in_place_mapping_update():
    body = vector_mapping_update(MAPPING, vector_field="embedding", vector=vector(dimension=8), meta={"x": 1})
    assert set(body["properties"]) == {"embedding", "semsearch_hash", "semsearch_id"}
    assert body["properties"]["semsearch_id"] == {"type": "keyword"}
    assert body["_meta"] == {"owner": "app", "semsearch": {"x": 1}}


def test_swap_actions_are_one_atomic_call():
    replace = swap_actions("docs", "docs", "docs-v1", delete_old=True,
                           other_aliases={"docs-read": {"filter": {"term": {"a": 1}}}})
    assert replace["actions"] == [{"remove_index": {"index": "docs"}}, {"add": {"index": "docs-v1", "alias": "docs"}},
                                  {"add": {"index": "docs-v1", "alias": "docs-read", "filter": {"term": {"a": 1}}}}]
    move = swap_actions("docs", "docs-v1", "docs-v2", delete_old=False, other_aliases={"docs": {}})
    assert move["actions"] == [{"remove": {"index": "docs-v1", "alias": "docs"}},
                               {"add": {"index": "docs-v2", "alias": "docs"}}]
    # A filtered or routed name keeps its definition where it moves (a tenant's view stays that tenant's).
    tenant = {"filter": {"term": {"tenant": "a"}}, "index_routing": "a", "search_routing": "a"}
    scoped = swap_actions("docs", "docs-v2", "docs-v1", delete_old=False, other_aliases={"docs": tenant})
    assert scoped["actions"][1] == {"add": {"index": "docs-v1", "alias": "docs", **tenant}}


def test_scan_and_backfill_queries():
    body = scan_body("PIT", size=100, after=["<dbpedia:X>"], query=backfill_query("embedding"),
                     source_excludes=["embedding"], seq_no=True)
    assert body["sort"] == [{"_id": "asc"}] and body["search_after"] == ["<dbpedia:X>"]
    assert body["pit"] == {"id": "PIT", "keep_alive": "5m"} and body["seq_no_primary_term"] is True
    named = body["query"]["bool"]["should"][0]["bool"]
    assert named["_name"] == NO_VECTOR and named["must_not"] == [{"exists": {"field": "embedding"}}]
    catch_up = backfill_query("embedding", only_missing=True, ids=["a"])
    assert catch_up["bool"]["should"][1] == {"ids": {"values": ["a"]}}
    assert checkpoint_id("copy", "u1", "u2") == "copy:u1:u2"


def test_update_entry_sets_only_vector_hash_and_id_under_optimistic_concurrency():
    head, doc, end = update_entry("idx", "a\"b", np.array([0.5, -0.25], dtype=np.float32), vector_field="embedding",
                                  content_hash="h1", seq_no=7, primary_term=2).split("\n")
    assert json.loads(head) == {"update": {"_index": "idx", "_id": "a\"b", "if_seq_no": 7, "if_primary_term": 2}}
    assert json.loads(doc) == {"doc": {"semsearch_hash": "h1", "semsearch_id": 'a"b', "embedding": [0.5, -0.25]}}
    assert end == ""
    plain = update_entry("idx", "1", np.zeros(2), vector_field="v", content_hash="h")
    assert "if_seq_no" not in plain and "passages" not in plain
    # An index with passages: each update sets them anew (an array is replaced whole), none for a short text.
    short = json.loads(update_entry("idx", "1", np.zeros(2), vector_field="v", content_hash="h",
                                    passages_field="passages").split("\n")[1])
    assert short["doc"]["passages"] == []
    windows = '[{"position":0,"text":"a b","v":[1.0,0.0]},{"position":1,"text":"b c","v":[0.0,1.0]}]'
    chunked = json.loads(update_entry("idx", "1", np.zeros(2), vector_field="v", content_hash="h",
                                      passages_field="passages", passages_json=windows).split("\n")[1])
    assert chunked["doc"]["passages"] == json.loads(windows) and chunked["doc"]["v"] == [0.0, 0.0]


def test_source_digest_ignores_key_order_and_vectors():
    a = {"title": "x", "n": 1, "embedding": [1.0], "semsearch_hash": "h"}
    b = {"n": 1, "title": "x", "embedding": [2.0]}
    assert source_digest(a, ["embedding", "semsearch_hash"]) == source_digest(b, ["embedding", "semsearch_hash"])
    assert source_digest(a, []) != source_digest(b, [])


def test_merge_diff_of_sorted_streams():
    source = [("a", "1", "A"), ("b", "2", "B"), ("d", "4", "D")]
    target = [("a", "1", None), ("b", "X", None), ("c", "3", None)]
    assert [(op, item[0]) for op, item in merge_diff(source, target)] == [
        ("same", "a"), ("copy", "b"), ("delete", "c"), ("copy", "d")]
    with pytest.raises(ValueError, match="out of order"):
        list(merge_diff([("b", "", None), ("a", "", None)], []))


def test_paged_diff_looks_pages_up_in_the_other_index():
    source_pages = [[("d", "4", "D"), ("a", "1", "A")], [("b", "2", "B")]]
    target_pages = [[("c", "3", None), ("b", "X", None)], [("a", "1", None)]]
    target = {"a": "1", "b": "X", "c": "3"}
    asked: list[list[str]] = []

    def target_digests(ids):
        asked.append(ids)
        return {i: target[i] for i in ids if i in target}

    ops = list(paged_diff(source_pages, target_digests, target_pages,
                          lambda ids: {i for i in ids if i in {"a", "b", "d"}}))
    assert [(op, item[0]) for op, item in ops] == [("copy", "d"), ("same", "a"), ("copy", "b"), ("delete", "c")]
    assert asked == [["d", "a"], ["b"]]  # one lookup per page


def test_scan_in_shard_doc_order_and_lookup_by_ids():
    body = scan_body("PIT", size=50, order=BY_SHARD_DOC)
    assert body["sort"] == [{"_shard_doc": "asc"}] and "search_after" not in body
    assert lookup_body(["a", "b"], source_excludes=["embedding"]) == {
        "size": 2, "query": {"ids": {"values": ["a", "b"]}}, "track_total_hits": False,
        "_source": {"excludes": ["embedding"]}}
    assert lookup_body(["a"], with_source=False)["_source"] is False


# -- documents read back -------------------------------------------------------------------------------------

def test_document_from_hit_hashes_like_ingest():
    source = {"title": "Moon", "text": " Apollo 11 landed. ", "n": 3}
    ingested = validate({"_id": "m", **source}, DocumentSchema(), "f", 1)
    hit = {"_id": "m", "_index": "i", "_seq_no": 4, "_primary_term": 1, "matched_queries": [NO_VECTOR],
           "_source": {**source, "semsearch_hash": "old"}}
    doc = document_from_hit(hit, ["title", "text"], "embedding")
    assert doc.content_hash == ingested.content_hash and doc.text == ingested.text
    assert doc.source == source and doc.stored_hash == "old" and not doc.has_vector
    assert (doc.seq_no, doc.primary_term) == (4, 1)
    listed = document_from_hit({"_id": "l", "_source": {"title": ["a", "b"], "text": 5}}, ["title", "text"], "v")
    assert listed.text == "a b" and listed.has_vector
    assert document_from_hit({"_id": "e", "_source": {"title": "  "}}, ["title", "text"], "v") is None


def test_batches_carry_the_last_scanned_id():
    items = [(str(i), object() if i % 2 else None) for i in range(7)]
    batches = list(_cut(items, 2))
    assert [(len(docs), last) for docs, last in batches] == [(2, "3"), (1, "6")]


# -- fingerprint messages --------------------------------------------------------------------------------------

def test_dimension_mismatch_says_expected_given_and_the_fix():
    info = IndexInfo(name="docs", text_fields=["text"], vector_field="embedding", dimension=384,
                     fingerprint={"model": "mini", "dimension": 384, "weights": "w", "pooling": ["mean"],
                                  "normalize": True, "max_seq_length": 256})
    with pytest.raises(IndexMismatchError) as caught:
        check_fingerprint(info, {**info.fingerprint, "model": "big", "dimension": 768})
    message = str(caught.value)
    assert "expected 384-d vectors (model 'mini'), given 768-d vectors (model 'big')" in message
    assert "semsearch migrate docs --model" in message and "SEMSEARCH_MODEL=<the path of its folder 'mini'>" in message
    hub = IndexInfo(name="docs", text_fields=["text"], vector_field="embedding", dimension=384,
                    fingerprint={**info.fingerprint, "model": "sentence-transformers/all-MiniLM-L6-v2"})
    with pytest.raises(IndexMismatchError, match="SEMSEARCH_MODEL=sentence-transformers/all-MiniLM-L6-v2\\)"):
        check_fingerprint(hub, {**info.fingerprint, "model": "big", "dimension": 768})


# -- passages --------------------------------------------------------------------------------------------------

def test_chunking_meta_records_token_windows():
    assert chunking_meta("passages", window=256, overlap=32) == {
        "field": "passages", "text_field": "text", "unit": "tokens", "window": 256, "overlap": 32}


def test_nested_knn_body_scores_by_best_passage():
    body = nested_knn_body([0.1, 0.2], path="passages", vector_field="embedding", k=5, source_excludes=["embedding"])
    nested = body["query"]["nested"]
    assert nested["score_mode"] == "max" and nested["path"] == "passages"
    assert nested["query"]["knn"]["passages.embedding"]["k"] == 5
    assert body["_source"]["excludes"] == ["embedding", "passages"] and nested["inner_hits"]["size"] == 1


def test_through_the_workers_the_checkpoint_moves_between_segments(monkeypatch, tmp_path):
    """With a broker, documents go out in bounded segments; the checkpoint moves only after each one."""
    import semsearch.distributed.producer as distributed
    from semsearch.lifecycle.backfill import BackfillReport, _run_batches
    from semsearch.writing.bulk import BulkResult
    from semsearch.writing.pipeline import IngestReport

    monkeypatch.chdir(tmp_path)
    sent: list[list[str]] = []

    def fake_run_distributed(items, *, app, index, vector_field, dead_letter, batch_docs, writes, on_result):
        assert writes == "vectors"  # updates under the version read, never whole documents from the scan
        ids = [d.id for d in items]
        sent.append(ids)
        on_result(BulkResult(indexed=len(ids) - 1, conflicts=ids[:1]))  # the application changed one meanwhile
        return IngestReport(read=len(ids), indexed=len(ids) - 1)

    monkeypatch.setattr(distributed, "run_distributed", fake_run_distributed)
    docs = [document_from_hit({"_id": f"{i:03}", "_source": {"text": f"t{i}"}}, ["text"], "v") for i in range(40)]
    batches = [(docs[i:i + 4], docs[i + 3].id) for i in range(0, 40, 4)]
    report = BackfillReport(index="idx")
    moved: list[str] = []
    _run_batches(batches, encoder=None, writer=None, app=object(), index="idx", vector_field="v", batch_docs=2,
                 report=report, done=moved.append)
    assert [len(s) for s in sent] == [16, 16, 8]  # segments of batch_docs × 8
    assert moved == ["015", "031", "039"] and report.encoded == 40 and report.written == 37
    assert report.conflicts == 3 and report.retry_ids == ["000", "016", "032"]  # read again in the next pass


def test_in_process_the_updates_that_lost_to_the_application_are_read_again_in_the_next_pass(monkeypatch):
    import semsearch.lifecycle.backfill as backfill_module
    from semsearch.lifecycle.backfill import BackfillReport, _run_batches
    from semsearch.writing.bulk import BulkResult

    def fake_encode_and_write(batches, encoder, writer, write_while_encoding=True, chunk_overlap=0):
        for docs in batches:  # the first of each batch lost to the application's write; the second was deleted
            yield docs, BulkResult(indexed=len(docs) - 2, conflicts=[docs[0].id], gone=1)

    monkeypatch.setattr(backfill_module, "encode_and_write", fake_encode_and_write)
    docs = [document_from_hit({"_id": f"{i:03}", "_source": {"text": f"t{i}"}}, ["text"], "v") for i in range(12)]
    report = BackfillReport(index="idx")
    moved: list[str] = []
    _run_batches([(docs[:6], "005"), (docs[6:], "011")], encoder=object(), writer=object(), app=None, index="idx",
                 vector_field="v", batch_docs=6, report=report, done=moved.append)
    assert moved == ["005", "011"] and report.encoded == 12 and report.written == 8
    assert (report.conflicts, report.gone, report.retry_ids) == (2, 2, ["000", "006"])


def _shard_stats(max_seq_no: int, retaining: int) -> dict:
    return {"routing": {"primary": True}, "seq_no": {"max_seq_no": max_seq_no},
            "retention_leases": {"leases": [{"id": "peer_recovery/n1", "retaining_seq_no": retaining}]}}


class _StatsClient:
    """Shard stats whose retention lease moves forward after a few reads (the cluster's periodic sync)."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.reads = 0

        class Indices:
            def stats(inner, **_):
                retaining = self.answers[min(self.reads, len(self.answers) - 1)]
                self.reads += 1
                return {"indices": {"idx": {"shards": {"0": [_shard_stats(41, retaining)]}}}}

        self.indices = Indices()


def test_the_merge_waits_until_retention_leases_let_replaced_versions_go():
    from semsearch.lifecycle.backfill import history_marks, wait_for_history_release

    client = _StatsClient([0, 0, 42])
    assert history_marks(client, "idx") == {"0": 41}
    heard: list[str] = []
    assert wait_for_history_release(client, "idx", {"0": 41}, poll=0, on_wait=heard.append) is True
    assert client.reads == 3
    assert len(heard) == 1 and "retention leases on 'idx'" in heard[0] and "--keep-deletes" in heard[0]  # said once
    heard.clear()
    assert wait_for_history_release(_StatsClient([42]), "idx", {"0": 41}, poll=0, on_wait=heard.append) is True
    assert heard == []  # no wait, nothing said
    stuck = _StatsClient([0])
    assert wait_for_history_release(stuck, "idx", {"0": 41}, timeout=0.05, poll=0.01) is False
    assert wait_for_history_release(_StatsClient([0]), "idx", {"0": -1}, poll=0) is True  # nothing old to wait for


class _PitClient:
    """Answers point-in-time searches from pages; the first search of ``expire_at`` raises 404 once."""

    backend = "elasticsearch"

    def __init__(self, pages: list[list[dict]], expire_at: int | None = None, failed_shards: int = 0,
                 failing_searches: int | None = None, backend: str = "elasticsearch") -> None:
        from opensearchpy.exceptions import NotFoundError

        self.pages, self.expire_at, self.failed_shards = pages, expire_at, failed_shards
        # Searches (counted from 1) after which shards answer again; None: they never do.
        self.failing_searches = failing_searches
        self.backend = backend
        self.searches, self.opened, self.refreshed, self.health_waits = [], 0, 0, []
        self._not_found = NotFoundError
        outer = self

        class Indices:
            def refresh(self, index):
                outer.refreshed += 1

        class Cluster:
            def health(self, **params):
                outer.health_waits.append(params)
                return {"status": "yellow"}

        self.indices = Indices()
        self.cluster = Cluster()

    def create_pit(self, index, keep_alive, **params):
        self.opened += 1
        self.pit_params = params
        return {"pit_id": f"pit{self.opened}"}

    def delete_pit(self, body):
        pass

    def search(self, body):
        self.searches.append(body)
        if self.expire_at is not None and len(self.searches) == self.expire_at:
            raise self._not_found(404, "search_context_missing_exception", {})
        after = body["search_after"][0] if "search_after" in body else None
        page = next((p for p in self.pages if after is None or p[0]["sort"][0] > after), [])
        failing = self.failing_searches is None or len(self.searches) in self.failing_searches
        return {"hits": {"hits": page},
                "_shards": {"failed": self.failed_shards if failing else 0, "failures": [{"reason": "boom"}]}}


def _hit(i: int) -> dict:
    return {"_id": f"d{i}", "sort": [i]}


def test_an_expired_shard_doc_scan_refreshes_reopens_and_restarts_from_the_top():
    from semsearch.lifecycle.backfill import PointInTime

    client = _PitClient([[_hit(0), _hit(1)], [_hit(2)]], expire_at=2)
    with PointInTime(client, "idx", page_size=2) as pit:
        ids = [h["_id"] for h in pit.hits()]
    assert ids == ["d0", "d1", "d0", "d1", "d2"]  # the restart re-reads the top (finished ones are skipped)
    assert client.opened == 2 and client.refreshed == 1
    assert client.searches[0]["sort"] == [{"_shard_doc": "asc"}] and "search_after" not in client.searches[2]
    with pytest.raises(ValueError, match="cannot start after an id"):
        list(PointInTime(client, "idx").pages(after=["d1"]))


def test_a_scan_page_missing_a_shard_is_an_error_not_the_end():
    from semsearch.lifecycle.backfill import MAX_SHARD_RECOVERIES, PointInTime

    client = _PitClient([[_hit(0)]], failed_shards=1)
    with PointInTime(client, "idx") as pit:
        with pytest.raises(ClusterError, match="shards did not answer"):
            list(pit.hits())
    # Each failure waited for the index's shards and reopened; then it gave up instead of ending the scan.
    assert len(client.health_waits) == MAX_SHARD_RECOVERIES and client.opened == MAX_SHARD_RECOVERIES + 1
    assert client.health_waits[0]["wait_for_status"] == "yellow" and client.health_waits[0]["index"] == "idx"


def test_a_scan_that_lost_a_node_goes_on_from_its_last_page_under_a_new_point_in_time():
    from semsearch.lifecycle.backfill import PointInTime

    # By id (OpenSearch): page 2 loses a shard once (a node restarted); the scan waits, reopens, asks for
    # page 2 again after the same id, and reads nothing twice.
    client = _PitClient([[_hit(0), _hit(1)], [_hit(2), _hit(3)], [_hit(4)]], failed_shards=1,
                        failing_searches={2}, backend="opensearch")
    with PointInTime(client, "idx", page_size=2) as pit:
        ids = [h["_id"] for h in pit.hits()]
    assert ids == ["d0", "d1", "d2", "d3", "d4"]
    assert client.opened == 2 and len(client.health_waits) == 1 and client.refreshed == 0
    assert client.searches[1]["search_after"] == client.searches[2]["search_after"] == [1]
    assert client.searches[2]["pit"]["id"] == "pit2"
    assert client.pit_params == {"allow_partial_pit_creation": "false"}  # never a point in time without a shard


def test_a_pass_remembers_the_ids_it_sent_within_its_limit():
    from semsearch.lifecycle.backfill import RecentIds

    sent = RecentIds(3)
    for doc_id in ("a", "b", "c"):
        sent.add(doc_id)
    assert "a" in sent and "d" not in sent
    sent.add("d")  # the oldest goes: long since written, a rescan sees its vector
    assert "a" not in sent and all(x in sent for x in "bcd")


def test_a_resumed_run_says_how_old_its_checkpoint_is():
    import time as clock

    from semsearch.cli.lifecycle import _duration
    from semsearch.lifecycle.backfill import checkpoint_age

    assert 3599 <= checkpoint_age({"after": "d9", "updated_at": clock.time() - 3600}) <= 3610
    assert checkpoint_age({}) is None and checkpoint_age({"after": "d9"}) is None
    assert [_duration(s) for s in (42, 1020, 5.2 * 3600, 3 * 86400)] == ["42 s", "17 min", "5.2 h", "3.0 days"]


def test_an_index_whose_source_leaves_fields_out_is_refused_before_anything_changes():
    from semsearch.lifecycle.bodies import check_source_kept

    fields = {"title": {"type": "text"}, "body": {"type": "text"},
              "notes": {"properties": {"private": {"type": "text"}}},
              "embedding": {"type": "knn_vector", "dimension": 3},
              "passages": {"type": "nested", "properties": {"text": {"type": "text"},
                                                            "embedding": {"type": "knn_vector", "dimension": 3}}}}

    def mapping(**source):
        return {"_source": source, "properties": fields} if source else {"properties": fields}

    vectors = ("embedding", "passages")
    check_source_kept(mapping(), "docs", vectors)
    check_source_kept(mapping(enabled=True), "docs", vectors)
    # The vectors may be left out, by name or pattern: semsearch writes them itself (passages with their subfields).
    check_source_kept(mapping(excludes=["embedding", "passages", "passages.*"]), "docs", vectors)
    check_source_kept(mapping(excludes=["emb*", "passages.embedding"]), "docs", vectors)
    check_source_kept(mapping(includes=["*"]), "docs", vectors)
    check_source_kept(mapping(includes=["title", "body", "notes"], excludes=["embedding"]), "docs", vectors)
    with pytest.raises(ConfigurationError, match=r"'docs' keeps part .*excludes embedding, b\*, notes\.\*: body, "
                                                 r"notes\.private left out.*lose their indexed"):
        check_source_kept(mapping(excludes=["embedding", "b*", "notes.*"]), "docs", vectors)
    with pytest.raises(ConfigurationError, match=r"includes title: body, notes left out"):
        check_source_kept(mapping(includes=["title"]), "docs", ("embedding",) + ("passages",))
    with pytest.raises(ConfigurationError, match=r"'docs' stores no _source"):
        check_source_kept(mapping(enabled=False), "docs")
    with pytest.raises(ConfigurationError, match=r"'docs' stores no _source"):  # Elasticsearch 8's ways too
        check_source_kept(mapping(mode="disabled"), "docs")
    with pytest.raises(ConfigurationError, match=r"'docs' stores no _source"):
        check_source_kept(mapping(), "docs", vectors, {"index.mapping.source.mode": "disabled"})
    with pytest.raises(ConfigurationError, match=r"synthetic _source"):
        check_source_kept(mapping(), "docs", vectors, {"index.mapping.source.mode": "synthetic"})


def test_an_index_that_refuses_writes_is_refused_with_the_call_that_lifts_the_block():
    from semsearch.lifecycle.bodies import check_writable

    check_writable({"index.blocks.write": "false", "index.number_of_shards": "1"}, "docs")
    with pytest.raises(ConfigurationError) as refused:
        check_writable({"index.blocks.read_only": "true", "index.blocks.write": "true"}, "docs")
    message = str(refused.value)
    assert "'docs' refuses writes (index.blocks.write=true, index.blocks.read_only=true)" in message
    assert 'PUT docs/_settings {"index.blocks.write": null, "index.blocks.read_only": null}' in message


def test_writes_since_the_swap_are_counted_from_the_marks_and_unknown_without_them():
    from semsearch.lifecycle.migrate import writes_since_swap

    client = _StatsClient([0])  # max_seq_no 41 on shard 0 now
    assert writes_since_swap(client, "idx", {"swap_marks": {"0": 41}}) == 0
    assert writes_since_swap(client, "idx", {"swap_marks": {"0": 38}}) == 3
    assert writes_since_swap(client, "idx", {}) is None  # a migration that kept no marks: a rollback asks for --force
