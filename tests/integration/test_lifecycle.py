"""Index lifecycle on the real node: enable-vectors, backfill (killed and resumed), migrate/rollback, templates.

Only lucene indexes are created: the local node's k-NN plugin (from Maven Central) has no native
libraries, and a faiss or nmslib index would take it down. faiss bodies are covered by unit tests.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from opensearchpy import helpers

from semsearch import Encoder, Searcher
from semsearch.lifecycle.backfill import CheckpointStore, copy_with_vectors, index_uuid
from semsearch.writing.bulk import BulkWriter
from semsearch.engines.capabilities import detect
from semsearch.writing.documents import Document, DocumentSchema, validate
from semsearch.errors import BusyError, ConfigurationError, IndexMismatchError
from semsearch.index.manage import create_index, get_index_info
from semsearch.lifecycle.migrate import enable_vectors, migrate
from semsearch.lifecycle.bodies import checkpoint_id
from semsearch.lifecycle.lease import LEASE_SECONDS, Holder, acquire, held, lease_id, this_machine
from semsearch.index.passages import nested_knn_body
from semsearch.writing.pipeline import documents_with_vectors

from .conftest import keyword_ids, last_json_line, run_cli, tie_free, versioned_names

VECTOR = "embedding"


@pytest.fixture(scope="module")
def corpus(data_dir):
    with open(data_dir / "dbpedia-entity" / "corpus.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for _, line in zip(range(2000), handle)]


@pytest.fixture()
def names(client):
    """Unique index names for one test; each (and its versions) deleted after, by name."""
    yield from versioned_names(client)


def write_plain(client, name, docs, *, knn=False):
    """A plain application index: its own analyser, a keyword field, documents written with opensearch-py."""
    settings = {"number_of_shards": 1, "number_of_replicas": 0,
                "analysis": {"analyzer": {"app_text": {"type": "english"}}}}
    if knn:
        settings["knn"] = True
    client.indices.create(index=name, body={"settings": settings, "mappings": {"properties": {
        "title": {"type": "text", "analyzer": "app_text"}, "text": {"type": "text", "analyzer": "app_text"},
        "rank": {"type": "integer"}}}})
    actions = ({"_index": name, "_id": d["_id"], "title": d["title"], "text": d["text"], "rank": i}
               for i, d in enumerate(docs))
    helpers.bulk(client, actions, refresh=True)


def vectors_count(client, name):
    client.indices.refresh(index=name)
    return client.count(index=name, body={"query": {"exists": {"field": VECTOR}}})["count"]


def semsearch_index(client, name, encoder, docs, *, with_vectors=True, **knobs):
    """An index created by semsearch, with ``docs`` written with (or without) their vectors."""
    create_index(client, name, fingerprint=encoder.fingerprint.as_dict(), text_fields=["title", "text"],
                 vector_field=VECTOR, engine="lucene", analyzer="english", replicas=0, **knobs)
    if not with_vectors:
        helpers.bulk(client, ({"_index": name, "_id": d["_id"], "title": d["title"], "text": d["text"]}
                              for d in docs), refresh=True)
        return
    documents = [validate(d, DocumentSchema(), "corpus", i) for i, d in enumerate(docs)]
    vectors = encoder.encode_documents([d.text for d in documents])
    result = BulkWriter(client, name, VECTOR, refresh="wait_for").write(documents, vectors)
    assert result.indexed == len(docs) and not result.failed


# -- enable-vectors ---------------------------------------------------------------------------------------

QUERIES = ("airline crash", "American jazz musician", "river in Europe")


@pytest.mark.slow
def test_enable_vectors_on_a_plain_index_keeps_its_name_and_answers(client, names, corpus, encoder, vector_cache):
    name = names()
    write_plain(client, name, corpus)
    before = {q: keyword_ids(client, name, q) for q in QUERIES}
    assert client.count(index=name)["count"] == 2000

    # Vectors of dbpedia texts the session encoded already are read back: what is tested is the switch and
    # the backfill's bookkeeping (every document once), not the model again.
    result = run_cli("index", "enable-vectors", name, "--batch-size", "128", "--json",
                     env={"SEMSEARCH_VECTOR_CACHE": vector_cache})
    assert result.returncode == 0, result.stderr
    summary = last_json_line(result.stdout)
    assert summary["enable"]["mode"] == "reindexed" and summary["enable"]["previous_deleted"]
    assert summary["backfill"]["encoded"] == 2000 and summary["backfill"]["missing"] == 0
    # The replaced versions were merged away (after the retention leases let them go): exact BM25 again.
    assert summary["backfill"]["expunged"] is True, result.stderr

    # The name is now an alias of the versioned index, which kept the application's analyser.
    assert client.indices.get_alias(name=name) == {f"{name}-v1": {"aliases": {name: {}}}}
    mapping = client.indices.get_mapping(index=name)[f"{name}-v1"]["mappings"]
    assert mapping["properties"]["title"]["analyzer"] == "app_text"
    assert mapping["properties"][VECTOR]["method"]["engine"] == "lucene"
    assert client.count(index=name)["count"] == 2000
    assert vectors_count(client, name) == 2000
    # Keyword queries answer exactly as before; hybrid queries work under the same name.
    assert {q: keyword_ids(client, name, q) for q in QUERIES} == before
    searcher = Searcher(encoder=encoder)
    target = corpus[1234]
    hits = searcher.search(target["title"], index=name, k=5, mode="hybrid")
    assert hits[0].id == target["_id"] and set(hits[0].contributions) == {"keyword", "semantic"}
    keyword = searcher.search(QUERIES[0], index=name, k=10, mode="keyword")
    assert tie_free([(h.score, h.id) for h in keyword]) == before[QUERIES[0]]

    info = run_cli("index", "info", name)
    assert info.returncode == 0, info.stderr
    shown = json.loads(info.stdout)
    assert shown["concrete_index"] == f"{name}-v1" and shown["documents_with_vector"] == 2000
    assert shown["cluster"]["distribution"] == "opensearch" and "lucene" in shown["cluster"]["engines"]
    assert shown["cluster"]["default_engine"] == "lucene" and shown["cluster"]["reindex_module"] is True


def test_enable_vectors_asks_for_the_text_fields_where_the_defaults_miss_the_text(client, names):
    """An index of "title" (often empty) and "body": encoding the title alone would leave most documents without a
    vector, so the fields are asked for; once it has vectors, other fields are refused, not ignored."""
    name = names()
    client.indices.create(index=name, body={"settings": {"number_of_shards": 1, "number_of_replicas": 0, "knn": True},
                                            "mappings": {"properties": {"title": {"type": "text"},
                                                                        "body": {"type": "text"}}}})
    helpers.bulk(client, ({"_index": name, "_id": str(i), "title": "", "body": f"Volcano number {i} erupted."}
                          for i in range(5)), refresh=True)
    asked = run_cli("index", "enable-vectors", name)
    assert asked.returncode == 2 and "--text-field title --text-field body" in asked.stderr, asked.stderr
    assert "_meta" not in client.indices.get_mapping(index=name)[name]["mappings"]  # nothing changed
    # --keep-deletes: the merge after the backfill waits up to a minute for the retention leases, not tested here
    named = run_cli("index", "enable-vectors", name, "--text-field", "title", "--text-field", "body", "--json",
                    "--keep-deletes")
    assert named.returncode == 0, named.stderr
    assert last_json_line(named.stdout)["backfill"]["written"] == 5
    other = run_cli("index", "enable-vectors", name, "--text-field", "title")
    assert other.returncode == 2 and "already has vectors, encoded from title, body" in other.stderr, other.stderr


def test_enable_vectors_in_place_when_the_index_has_knn(client, names, corpus, encoder):
    name = names()
    write_plain(client, name, corpus[:40], knn=True)
    report = enable_vectors(client, name, fingerprint=encoder.fingerprint.as_dict(), vector_field=VECTOR)
    assert report.mode == "in_place" and report.index == name
    assert not client.indices.exists_alias(name=name)
    from semsearch.lifecycle.backfill import backfill

    done = backfill(client, name, fingerprint=encoder.fingerprint.as_dict(), encoder=encoder, batch_docs=16,
                    expunge_deletes=False)
    assert done.ok and done.encoded == 40 and vectors_count(client, name) == 40
    again = enable_vectors(client, name, fingerprint=encoder.fingerprint.as_dict(), vector_field=VECTOR)
    assert again.mode == "already"


def test_enable_vectors_behind_an_alias_moves_it_and_keeps_the_old_index(client, names, corpus, encoder):
    base = names()
    old = f"{base}-v1"  # the application's own versioning; deleted with the test's names
    write_plain(client, old, corpus[:30])
    # The name is a filtered alias (a tenant's view of the index): it keeps its filter on the new index.
    tenant = {"range": {"rank": {"lt": 20}}}
    client.indices.update_aliases(body={"actions": [{"add": {"index": old, "alias": base, "filter": tenant}},
                                                    {"add": {"index": old, "alias": f"{base}-read"}}]})
    assert client.count(index=base)["count"] == 20
    report = enable_vectors(client, base, fingerprint=encoder.fingerprint.as_dict(), vector_field=VECTOR)
    assert (report.mode, report.index, report.previous, report.previous_deleted) == \
        ("reindexed", f"{base}-v2", old, False)
    assert client.indices.get_alias(name=base) == {f"{base}-v2": {"aliases": {base: {"filter": tenant}}}}
    assert client.count(index=base)["count"] == 20
    assert set(client.indices.get_alias(name=f"{base}-read")) == {f"{base}-v2"}  # other aliases follow
    blocks = client.indices.get_settings(index=old, name="index.blocks.write", flat_settings=True)
    assert blocks[old]["settings"]["index.blocks.write"] == "true"  # kept as it was, read-only
    from semsearch.lifecycle.backfill import backfill

    done = backfill(client, base, fingerprint=encoder.fingerprint.as_dict(), encoder=encoder, expunge_deletes=False)
    assert done.ok and vectors_count(client, f"{base}-v2") == 30  # every document of the index, seen or not


# -- backfill, killed and resumed -------------------------------------------------------------------------------

@pytest.mark.slow
def test_backfill_killed_halfway_resumes_without_re_encoding(client, names, corpus, encoder):
    name = names()
    total = 300
    semsearch_index(client, name, encoder, corpus[:total], with_vectors=False)
    key = checkpoint_id("backfill", index_uuid(client, name))
    store = CheckpointStore(client)
    proc = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "backfill", name, "--batch-size", "32"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        checkpoint = None
        while time.monotonic() < deadline:
            checkpoint = store.get(key)
            if checkpoint and checkpoint["written"] >= 64:
                break
            assert proc.poll() is None, f"backfill ended before it could be killed: {proc.communicate()}"
            time.sleep(0.1)
        assert checkpoint and checkpoint["written"] >= 64, "no checkpoint progress within 120s"
        # Meanwhile a second command on the name is refused, naming the running one.
        second = run_cli("backfill", name)
        assert second.returncode == 2 and f"semsearch backfill (pid {proc.pid} " in second.stderr, second.stderr
        assert proc.poll() is None, "backfill ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    time.sleep(0.5)
    done_at_kill = vectors_count(client, name)
    assert 64 <= done_at_kill < total, done_at_kill
    checkpoint = store.get(key)

    result = run_cli("backfill", name, "--batch-size", "32", "--keep-deletes", "--json")
    assert result.returncode == 0, result.stderr
    # The killed run left its lease behind; its process has ended, so the rerun takes the name over at once.
    assert f"took over {name!r} from semsearch backfill (pid {proc.pid} " in result.stderr, result.stderr
    report = last_json_line(result.stdout)
    assert report["resumed_after"] == checkpoint["after"]
    # Only what was not finished got encoded: nothing written before the kill was encoded again.
    assert report["encoded"] == total - done_at_kill
    assert report["encoded"] <= total - checkpoint["written"]
    assert vectors_count(client, name) == total and report["missing"] == 0
    assert store.get(key) is None  # a finished backfill removes its checkpoint

    # A document whose text the application changed gets a new vector on the next backfill, alone.
    client.update(index=name, id=corpus[0]["_id"], body={"doc": {"text": "Rewritten by the application."}},
                  refresh=True)
    from semsearch.lifecycle.backfill import backfill

    again = backfill(client, name, fingerprint=encoder.fingerprint.as_dict(), encoder=encoder, expunge_deletes=False)
    assert again.encoded == 1 and again.ok


# -- migrate and rollback ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def other_model(tmp_path_factory):
    from tests.unit.test_encoder import model_copy

    return model_copy(tmp_path_factory.mktemp("cls-model"), {"pooling_mode": "cls"})


@pytest.mark.slow
def test_migrate_to_another_model_and_roll_back(client, names, corpus, encoder, other_model):
    name = names()
    semsearch_index(client, name, encoder, corpus[:80])
    target = corpus[5]
    other = Encoder(str(other_model), device="cpu")
    old_fp, new_fp = encoder.fingerprint.as_dict(), other.fingerprint.as_dict()
    # A fusion tuned for the old model's lists stays with the old index (semsearch.query.stored_fusion).
    stored = run_cli("index", "fusion", name, "--fusion", "zscore", "--keyword-weight", "0.5")
    assert stored.returncode == 0, stored.stderr
    replicas = client.indices.get_settings(index=name)[name]["settings"]["index"]["number_of_replicas"]

    result = run_cli("migrate", name, "--model", str(other_model), "--batch-size", "64", "--json")
    assert result.returncode == 0, result.stderr
    for version in ("v1", "v2"):  # the clone too keeps the source's replicas (a clone's default is 1)
        kept = client.indices.get_settings(index=f"{name}-{version}")[f"{name}-{version}"]["settings"]["index"]
        assert kept["number_of_replicas"] == replicas
    assert "kept a hybrid fusion tuned for the old model's lists" in result.stderr
    assert f"next: SEMSEARCH_MODEL={other_model} for whatever encodes for {name!r}" in result.stderr
    assert "keeps no fusion" in run_cli("index", "fusion", name).stdout
    report = last_json_line(result.stdout)
    # The concrete index was first put under its name as an alias (clone to -v1), then -v2 encoded.
    assert report["adopted"] == f"{name}-v1" and report["index"] == f"{name}-v2"
    assert report["documents"] == 80 and report["encoded"] == 80
    assert client.indices.get_alias(name=name) == {f"{name}-v2": {"aliases": {name: {}}}}
    assert get_index_info(client, name).fingerprint == new_fp
    assert vectors_count(client, name) == 80
    # Queries with the new encoder work; with the old one they are refused, naming both.
    assert Searcher(encoder=other).search(target["title"], index=name, k=3, mode="hybrid")[0].id == target["_id"]
    with pytest.raises(IndexMismatchError, match="pooling"):
        Searcher(encoder=encoder).search(target["title"], index=name, mode="semantic")
    assert Searcher(encoder=encoder).search(target["title"], index=name, mode="keyword")

    # The application writes through the name: -v1 does not hold that, so a rollback is refused, with the ways out.
    client.index(index=name, id="after-migration", body={"title": "t", "text": "written to -v2"}, refresh=True)
    refused = run_cli("migrate", name, "--rollback")
    assert refused.returncode != 0 and "took 1 write (" in refused.stderr, refused.stderr
    assert f"semsearch migrate {name} --model <the folder of its model {old_fp['model']!r}>" in refused.stderr and "--force" in refused.stderr
    assert client.indices.get_alias(name=name) == {f"{name}-v2": {"aliases": {name: {}}}}
    back = run_cli("migrate", name, "--rollback", "--force", "--json")
    assert back.returncode == 0, back.stderr
    assert "dropping from" in back.stderr and "the 1 write " in back.stderr
    assert last_json_line(back.stdout) == {"name": name, "index": f"{name}-v1", "left": f"{name}-v2"}
    assert get_index_info(client, name).fingerprint == old_fp
    assert client.count(index=f"{name}-v2", body={"query": {"ids": {"values": ["after-migration"]}}})["count"] == 1
    assert json.loads(run_cli("index", "fusion", name).stdout)["method"] == "zscore"  # back with its index
    assert Searcher(encoder=encoder).search(target["title"], index=name, k=3, mode="semantic")[0].id == target["_id"]
    with pytest.raises(IndexMismatchError):
        Searcher(encoder=other).search(target["title"], index=name, mode="semantic")
    # The rolled-back index takes writes again through the name.
    client.index(index=name, id="after-rollback", body={"title": "t", "text": "x"}, refresh=True)
    assert client.count(index=name)["count"] == 81


def test_migration_catch_up_copies_only_what_changed(client, names, corpus, encoder, other_model):
    name = names()
    semsearch_index(client, name, encoder, corpus[:30])
    other = Encoder(str(other_model), device="cpu")
    green = names()
    create_index(client, green, fingerprint=other.fingerprint.as_dict(), text_fields=["title", "text"],
                 vector_field=VECTOR, engine="lucene", replicas=0)
    info = get_index_info(client, name)
    first = copy_with_vectors(client, info, green, encoder=other, batch_docs=8)
    assert first.encoded == 30 and first.missing == 0
    # Writes while the copy ran: one changed, one deleted, one added.
    client.update(index=name, id=corpus[3]["_id"], body={"doc": {"rank": 99}})
    client.delete(index=name, id=corpus[4]["_id"])
    client.index(index=name, id="new-doc", body={"title": "New", "text": "A new document."}, refresh=True)
    catch_up = copy_with_vectors(client, info, green, encoder=other, checkpointed=False)
    assert (catch_up.encoded, catch_up.deleted) == (2, 1)
    client.indices.refresh(index=green)
    assert client.count(index=green)["count"] == client.count(index=name)["count"] == 30
    assert client.get(index=green, id=corpus[3]["_id"])["_source"]["rank"] == 99
    with pytest.raises(ConfigurationError, match="nothing to migrate"):
        migrate(client, name, encoder=encoder)


# -- templates on the real node -------------------------------------------------------------------------------------

VARIANTS = {
    "default": {},
    "innerproduct": {"space_type": "innerproduct"},
    "l2": {"space_type": "l2"},
    "hnsw_knobs": {"m": 8, "ef_construction": 64, "ef_search": 32},
    "lucene_sq": {"compact": "sq"},
}


@pytest.fixture(scope="module")
def sample(corpus, encoder):
    docs = [validate(d, DocumentSchema(), "corpus", i) for i, d in enumerate(corpus[:20])]
    return docs, encoder.encode_documents([d.text for d in docs])


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_template_variant_serves_semantic_queries(client, names, encoder, sample, variant):
    name = names()
    caps = detect(client)
    create_index(client, name, fingerprint=encoder.fingerprint.as_dict(), text_fields=["title", "text"],
                 vector_field=VECTOR, engine="lucene", replicas=0, server_version=caps.version, **VARIANTS[variant])
    field = client.indices.get_mapping(index=name)[name]["mappings"]["properties"][VECTOR]
    expected_space = VARIANTS[variant].get("space_type", "cosinesimil")
    assert field["method"]["space_type"] == expected_space and field["method"]["engine"] == "lucene"
    if variant == "lucene_sq":
        assert field["method"]["parameters"]["encoder"]["name"] == "sq"
    if variant == "hnsw_knobs":
        assert field["method"]["parameters"]["m"] == 8
        assert get_index_info(client, name).meta["knn"]["ef_search"] == 32
    docs, vectors = sample
    assert BulkWriter(client, name, VECTOR, refresh="wait_for").write(docs, vectors).indexed == len(docs)
    target = docs[7]
    hits = Searcher(encoder=encoder).search(target.source["title"], index=name, k=3, mode="semantic")
    assert hits[0].id == target.id, (variant, [h.id for h in hits])


def test_nested_passages_score_a_document_by_its_best_passage(client, names, corpus, encoder):
    name = names()
    create_index(client, name, fingerprint=encoder.fingerprint.as_dict(), text_fields=["title", "text"],
                 vector_field=VECTOR, engine="lucene", replicas=0, passages="passages", passage_overlap=8,
                 server_version=detect(client).version)
    # Documents longer than the model's 256-token window: each abstract repeated past the window.
    docs = []
    for doc in [d for d in corpus if len(d["text"].split()) > 60][:8]:
        text = " ".join([doc["text"]] * 6)
        docs.append(Document(id=doc["_id"], source={"title": doc["title"], "text": text}, text=text,
                             content_hash="h"))
    target_text = "The lighthouse keeper's cat sailed alone to Antarctica on a raft of driftwood."
    # Said three times at the very end: the last window is about it, whatever else that window holds (said
    # once, its best passage beat another document's by only 0.009 cosine, a margin one run lost).
    docs[3].text += " " + " ".join([target_text] * 3)
    docs[3].source["text"] = docs[3].text
    writer = BulkWriter(client, name, VECTOR, refresh="wait_for", passages_field="passages")
    _, vectors, passages = documents_with_vectors(docs, encoder.encode_passages([d.text for d in docs], overlap=8))
    assert all(p and len(p) > 1 for p in passages)
    result = writer.write(docs, vectors, passages)
    assert result.indexed == 8 and result.chunked == 8
    query = encoder.encode_query(target_text)
    response = client.search(index=name, body=nested_knn_body(query, path="passages", vector_field=VECTOR, k=3,
                                                              source_excludes=[VECTOR]))
    top = response["hits"]["hits"][0]
    assert top["_id"] == docs[3].id
    best = top["inner_hits"]["passages"]["hits"]["hits"][0]
    assert best["_nested"]["offset"] == len(passages[3]) - 1  # the last window holds the added sentence
    assert target_text in best["fields"]["passages.text"][0]
    assert "passages" not in top["_source"]
    assert get_index_info(client, name).meta["passages"] == {"field": "passages", "text_field": "text",
                                                             "unit": "tokens", "window": 256, "overlap": 8}

@pytest.mark.slow
def test_migrate_an_ingested_index_with_passages(client, names, corpus, encoder, other_model, tmp_path):
    """An index made by `semsearch ingest` has nested passages: migrate re-encodes them with the new model."""
    name = names()
    late = "The lighthouse keeper's cat sailed alone to Antarctica on a driftwood raft."
    long_doc = {"_id": "long", "title": "Harbour", "text": " ".join([corpus[0]["text"]] * 8) + " " + late}
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in [*corpus[:20], long_doc]) + "\n", encoding="utf-8")
    ingested = run_cli("ingest", str(path), "--index", name)
    assert ingested.returncode == 0 and "chunked 1" in ingested.stderr, ingested.stderr
    old_passages = client.get(index=name, id="long")["_source"]["passages"]

    result = run_cli("migrate", name, "--model", str(other_model), "--json")
    assert result.returncode == 0, result.stderr
    other = Encoder(str(other_model), device="cpu")
    info = get_index_info(client, name)
    assert info.fingerprint == other.fingerprint.as_dict() and info.passages_field == "passages"
    assert client.count(index=name)["count"] == 21
    new_passages = client.get(index=name, id="long")["_source"]["passages"]
    assert [p["text"] for p in new_passages] == [p["text"] for p in old_passages]
    assert not np.allclose(new_passages[-1]["embedding"], old_passages[-1]["embedding"], atol=1e-3)
    expected = other.encode_documents([new_passages[-1]["text"]])[0]
    # The same text through the same model, but in another batch: equal to 1e-5 in fp32; in bf16 (the
    # CPU default where AMX or AVX512-BF16 is present) batch shapes round differently, so compare directions.
    stored = np.asarray(new_passages[-1]["embedding"], dtype=np.float32)
    assert float(stored @ expected / np.linalg.norm(stored) / np.linalg.norm(expected)) >= 0.9999
    assert Searcher(encoder=other).search(late, index=name, k=3, mode="semantic")[0].id == "long"


def test_backfill_re_encodes_the_passages_of_a_changed_long_document(client, names, corpus, encoder, tmp_path):
    """An application rewrites documents that ingest stored as passages: backfill gives them passages of their new
    text (none where it now fits the window), so semantic search no longer finds them by their old text."""
    name = names()
    old = "The lighthouse keeper's cat sailed alone to Antarctica on a driftwood raft."
    filler = " ".join([corpus[0]["text"]] * 8)
    docs = [*corpus[:20], {"_id": "grows", "title": "Harbour", "text": f"{filler} {old}"},
            {"_id": "shrinks", "title": "Harbour", "text": f"{filler} {old}"}]
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n", encoding="utf-8")
    ingested = run_cli("ingest", str(path), "--index", name)
    assert ingested.returncode == 0 and "chunked 2" in ingested.stderr, ingested.stderr
    new = "A volcano on Iceland erupted and its ash grounded flights across northern Europe."
    long_text = " ".join([corpus[1]["text"]] * 8) + " " + new
    client.update(index=name, id="grows", body={"doc": {"text": long_text}}, refresh=True)
    client.update(index=name, id="shrinks", body={"doc": {"text": new}}, refresh=True)

    result = run_cli("backfill", name, "--json", "--keep-deletes")  # the merge's lease wait is not what is tested
    assert result.returncode == 0, result.stderr
    assert last_json_line(result.stdout)["written"] == 2
    grown = client.get(index=name, id="grows")["_source"]
    joined = f"Harbour {long_text}"  # the text fields as ingest joins them
    windows = documents_with_vectors([Document("grows", {}, joined, "")], encoder.encode_passages([joined]))[2][0]
    expected_texts = [joined[start:end] for _, (start, end) in windows]
    assert [p["text"] for p in grown["passages"]] == expected_texts and new in grown["passages"][-1]["text"]
    assert client.get(index=name, id="shrinks")["_source"]["passages"] == []  # fits the window now: none
    last = grown["passages"][-1]  # the new text's last window, encoded by this model
    expected = encoder.encode_documents([last["text"]])[0]
    stored = np.asarray(last["embedding"], dtype=np.float32)
    assert float(stored @ expected / np.linalg.norm(stored) / np.linalg.norm(expected)) >= 0.9999
    searcher = Searcher(encoder=encoder)
    assert {hit.id for hit in searcher.search(old, index=name, k=3, mode="semantic")}.isdisjoint({"grows",
                                                                                                 "shrinks"})
    assert searcher.search(new, index=name, k=1, mode="semantic")[0].id == "shrinks"


def test_backfill_through_the_workers_keeps_the_applications_write_made_meanwhile(client, names, corpus, encoder,
                                                                                   workers, broker):
    """The workers write only vectors, under the version the backfill read: a document the application rewrites
    while its batch waits in the queue keeps the application's text, and the next pass gives it that text's vector
    (it still has its old vector then: only the lost update, not a missing vector, brings it back)."""
    from concurrent.futures import ThreadPoolExecutor

    from semsearch.distributed.celery_app import ENCODE_QUEUE
    from semsearch.writing.documents import content_hash

    from .conftest import BROKER

    name = names()
    docs = corpus[:40]
    semsearch_index(client, name, encoder, docs)
    edited = docs[:20]  # the application changes their text: the backfill has them to encode again
    for doc in edited:
        client.update(index=name, id=doc["_id"], body={"doc": {"text": doc["text"] + " (edited)", "edited": True}})
    client.indices.refresh(index=name)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # No worker runs yet: the backfill reads every document, and its batches wait in Redis.
        job = pool.submit(run_cli, "backfill", name, "--batch-size", "8", "--json", "--keep-deletes",
                          env={"SEMSEARCH_BROKER_URL": BROKER})
        deadline = time.monotonic() + 120
        while broker.llen(ENCODE_QUEUE) == 0:
            assert not job.done(), job.result().stderr
            assert time.monotonic() < deadline, "the backfill queued nothing"
            time.sleep(0.2)
        changed = edited[7]
        text = "An application rewrote this document after the backfill had read it."
        client.update(index=name, id=changed["_id"], body={"doc": {"text": text}}, refresh=True)
        workers.start(1)
        result = job.result(timeout=600)
    assert result.returncode == 0, result.stderr
    report = last_json_line(result.stdout)
    assert report["conflicts"] == 1 and report["passes"] == 2 and report["missing"] == 0, report
    assert report["encoded"] == len(edited) + 1 and report["written"] == len(edited), report
    stored = client.get(index=name, id=changed["_id"])["_source"]
    assert (stored["title"], stored["text"], stored["edited"]) == (changed["title"], text, True)  # the application's
    assert stored["semsearch_hash"] == content_hash([changed["title"], text])
    vector = np.asarray(stored[VECTOR], dtype=np.float32)
    new, old = encoder.encode_documents([f"{changed['title']} {text}", f"{changed['title']} {changed['text']} (edited)"])
    assert float(vector @ new / np.linalg.norm(vector)) >= 0.99 > float(vector @ old / np.linalg.norm(vector))
    other = client.get(index=name, id=edited[8]["_id"])["_source"]  # a vector update leaves the source alone
    assert (other["text"], other["edited"]) == (edited[8]["text"] + " (edited)", True)
    assert other["semsearch_hash"] == content_hash([edited[8]["title"], edited[8]["text"] + " (edited)"])


def test_backfill_all_rewrites_passages_a_plain_backfill_takes_for_done(client, names, corpus, encoder, tmp_path):
    """Passages that no longer match their document (as a backfill before 2026-12-06 left them) under an up-to-date
    content hash: a plain backfill finds nothing to do; --all encodes every document again and writes them anew."""
    name = names()
    long_text = " ".join([corpus[0]["text"]] * 8)
    docs = [*corpus[:10], {"_id": "long", "title": "Harbour", "text": long_text}]
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n", encoding="utf-8")
    assert run_cli("ingest", str(path), "--index", name).returncode == 0
    ingested = client.get(index=name, id="long")["_source"]["passages"]
    assert len(ingested) > 1
    client.update(index=name, id="long", body={"doc": {"passages": ingested[:1]}}, refresh=True)  # stale passages

    plain = run_cli("backfill", name, "--json", "--keep-deletes")
    assert plain.returncode == 0 and last_json_line(plain.stdout)["encoded"] == 0, plain.stderr
    every = run_cli("backfill", name, "--all", "--json", "--keep-deletes")
    assert every.returncode == 0, every.stderr
    report = last_json_line(every.stdout)
    assert report["encoded"] == report["written"] == len(docs) and report["missing"] == 0, report
    rewritten = client.get(index=name, id="long")["_source"]["passages"]
    assert [p["text"] for p in rewritten] == [p["text"] for p in ingested]
    for stored, expected in zip(rewritten, ingested):
        a, b = (np.asarray(p["embedding"], dtype=np.float32) for p in (stored, expected))
        assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) >= 0.999
    assert CheckpointStore(client).get(checkpoint_id("backfill-all", index_uuid(client, name))) is None  # finished


def plain_index(client, name, docs, *, settings=None, mappings=None):
    """An application's index of ``docs`` (title, text), with its own settings and mapping extras."""
    body = {"settings": {"number_of_shards": 1, "number_of_replicas": 0, **(settings or {})},
            "mappings": {"properties": {"title": {"type": "text"}, "text": {"type": "text"}}, **(mappings or {})}}
    client.indices.create(index=name, body=body)
    helpers.bulk(client, ({"_index": name, "_id": d["_id"], "title": d["title"], "text": d["text"]} for d in docs),
                 refresh=True)


def test_enable_vectors_copies_the_writes_acknowledged_but_not_yet_refreshed(client, names, corpus):
    """The copy runs after a refresh: updates the cluster acknowledged just before writes were blocked, not yet
    searchable (an index refreshed every 30 s, or never), are in the copy, whose count alone would not show them."""
    name = names()
    plain_index(client, name, corpus[:50], settings={"refresh_interval": "-1"})
    for doc in corpus[:3]:
        client.index(index=name, id=doc["_id"], body={"title": doc["title"], "text": "rewritten by the application"})
    result = run_cli("index", "enable-vectors", name, "--no-backfill", "--json")
    assert result.returncode == 0, result.stderr
    assert last_json_line(result.stdout)["enable"]["mode"] == "reindexed"
    for doc in corpus[:3]:
        assert client.get(index=name, id=doc["_id"])["_source"]["text"] == "rewritten by the application"
    assert client.count(index=name)["count"] == 50


def test_enable_vectors_refuses_an_index_whose_source_leaves_a_field_out_and_changes_nothing(client, names,
                                                                                           corpus):
    """A field excluded from _source would lose its indexed content in the copy and in every vector update:
    refused, naming the field, before any index is created."""
    name = names()
    plain_index(client, name, corpus[:20], mappings={"_source": {"excludes": ["text"]}})
    word = corpus[3]["text"].split()[0]
    matches = client.count(index=name, body={"query": {"match": {"text": word}}})["count"]
    assert matches >= 1
    result = run_cli("index", "enable-vectors", name)
    assert result.returncode != 0 and "keeps part of each document out of _source" in result.stderr, result.stderr
    assert "excludes text" in result.stderr and "Traceback" not in result.stderr
    assert not client.indices.exists_alias(name=name) and not client.indices.exists(index=f"{name}-v1")
    assert client.count(index=name, body={"query": {"match": {"text": word}}})["count"] == matches


def test_enable_vectors_and_backfill_leave_a_blocked_index_alone(client, names, corpus, encoder):
    """An archive the operator made read-only: refused with the call that lifts the block, no index created, the
    block kept; backfill likewise refuses a blocked index of semsearch's instead of retrying for minutes."""
    name = names()
    plain_index(client, name, corpus[:20])
    client.indices.put_settings(index=name, body={"index.blocks.read_only": True})
    try:
        result = run_cli("index", "enable-vectors", name)
        assert result.returncode != 0, result.stderr
        assert "refuses writes (index.blocks.read_only=true)" in result.stderr and "Traceback" not in result.stderr
        assert not client.indices.exists(index=f"{name}-v1")
        assert client.indices.get_settings(index=name, flat_settings=True)[name]["settings"][
            "index.blocks.read_only"] == "true"
    finally:
        client.indices.put_settings(index=name, body={"index.blocks.read_only": None})
    other = names()
    semsearch_index(client, other, encoder, corpus[:20], with_vectors=False)
    client.indices.put_settings(index=other, body={"index.blocks.write": True})
    try:
        started = time.monotonic()
        result = run_cli("backfill", other)
        assert result.returncode != 0 and "refuses writes (index.blocks.write=true)" in result.stderr, result.stderr
        assert time.monotonic() - started < 60
    finally:
        client.indices.put_settings(index=other, body={"index.blocks.write": None})


def test_documents_with_custom_routing_get_vectors_and_keep_their_routing_through_a_migration(
        client, names, corpus, encoder, other_model):
    """An application that routes its documents (by user, say): each vector update, copy and lookup names the
    document's routing, so backfill writes every vector (none "deleted meanwhile"), and after a migration a read
    with the application's routing finds each document, and a write with it replaces rather than duplicates."""
    name = names()
    docs = corpus[:40]
    client.indices.create(index=name, body={"settings": {"number_of_shards": 3, "number_of_replicas": 0,
                                                         "index.knn": True},
                                            "mappings": {"properties": {"title": {"type": "text"},
                                                                        "text": {"type": "text"}}}})
    helpers.bulk(client, ({"_index": name, "_id": d["_id"], "_routing": f"user{i % 5}", "title": d["title"],
                           "text": d["text"]} for i, d in enumerate(docs)), refresh=True)
    enabled = run_cli("index", "enable-vectors", name, "--json", "--keep-deletes")
    assert enabled.returncode == 0, enabled.stderr
    report = last_json_line(enabled.stdout)["backfill"]
    assert report["written"] == len(docs) and report["gone"] == 0 and report["missing"] == 0, report
    assert vectors_count(client, name) == len(docs)

    migrated = run_cli("migrate", name, "--model", str(other_model), "--json")
    assert migrated.returncode == 0, migrated.stderr
    assert last_json_line(migrated.stdout)["documents"] == len(docs)
    for i, doc in enumerate(docs):
        found = client.get(index=name, id=doc["_id"], routing=f"user{i % 5}")
        assert found["found"] and found["_source"]["title"] == doc["title"], doc["_id"]
    client.index(index=name, id=docs[1]["_id"], routing="user1", body={"title": "t", "text": "x"}, refresh=True)
    assert client.count(index=name)["count"] == len(docs)


# -- one lifecycle command at a time ----------------------------------------------------------------------------------

def test_a_second_lifecycle_command_on_a_name_is_refused_while_one_runs(client, names, corpus, encoder):
    name = names()
    semsearch_index(client, name, encoder, corpus[:20], with_vectors=False)
    with held(client, name, "migrate"):  # what a migration of another process holds while it runs
        result = run_cli("backfill", name)
        assert result.returncode == 2, result.stderr
        holder = f"semsearch migrate (pid {os.getpid()} on {socket.gethostname()})"
        assert f"{name!r} is busy: {holder}" in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert vectors_count(client, name) == 0  # refused before it wrote anything
        rollback = run_cli("migrate", name, "--rollback")
        assert rollback.returncode == 2 and f"{name!r} is busy" in rollback.stderr, rollback.stderr
        other = names()  # another name is not held
        semsearch_index(client, other, encoder, corpus[:5], with_vectors=False)
        assert run_cli("backfill", other, "--keep-deletes").returncode == 0
    result = run_cli("backfill", name, "--keep-deletes")  # released: it runs
    assert result.returncode == 0, result.stderr
    assert vectors_count(client, name) == 20
    assert CheckpointStore(client).get(lease_id(name)) is None  # and released its own lease when done


def test_a_lease_whose_holder_is_gone_is_taken_over(client, names, corpus, encoder):
    name = names()
    semsearch_index(client, name, encoder, corpus[:10], with_vectors=False)
    store = CheckpointStore(client)
    store.ensure()
    host = socket.gethostname()
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    pid, now = int(ended.stdout), time.time()
    try:
        # On another machine that shares this one's host name (a container): its pid says nothing here, so it is not
        # taken for ended while its lease runs.
        twin = Holder("migrate", host, pid, now, now, machine="another-boot:1", token="t1")
        client.index(index=store.index, id=lease_id(name), body=twin.as_body())
        with pytest.raises(BusyError, match=f"pid {pid} on {host}"):
            acquire(client, name, "backfill")
        # Killed on this machine (kill -9, a lost terminal): its process has ended, taken over at once.
        dead = Holder("migrate", host, pid, now, now, machine=this_machine(), token="t2")
        client.index(index=store.index, id=lease_id(name), body=dead.as_body())
        result = run_cli("backfill", name, "--keep-deletes")
        assert result.returncode == 0, result.stderr
        assert (f"took over {name!r} from semsearch migrate (pid {pid} on {host}), which has ended without finishing"
                in result.stderr), result.stderr
        # Left by a lease of this very process whose release was lost: not one it holds now, so taken over too.
        leaked = Holder("backfill", host, os.getpid(), now, time.time(), machine=this_machine(), token="t3")
        client.index(index=store.index, id=lease_id(name), body=leaked.as_body())
        notes = []
        acquire(client, name, "migrate", notify=notes.append).release()
        assert len(notes) == 1 and "which has ended" in notes[0], notes
        # A versioned index shares its base name's lease: a backfill of docs-v2 waits for a migration of docs.
        with held(client, name, "migrate"):
            with pytest.raises(BusyError, match=f"{name}-v2"):
                acquire(client, f"{name}-v2", "backfill")
        # On another host: refused while it renews, taken over once silent for longer than the lease.
        elsewhere = Holder("backfill", "another-host", 4242, now - 600, time.time())
        client.index(index=store.index, id=lease_id(name), body=elsewhere.as_body())
        with pytest.raises(BusyError, match=r"semsearch backfill \(pid 4242 on another-host\)"):
            acquire(client, name, "migrate")
        silent = Holder("backfill", "another-host", 4242, now - 600, time.time() - LEASE_SECONDS - 5)
        client.index(index=store.index, id=lease_id(name), body=silent.as_body())
        notes = []
        lease = acquire(client, name, "migrate", notify=notes.append)
        lease.release()
        assert len(notes) == 1 and "which was last seen 6" in notes[0], notes
    finally:
        store.delete(lease_id(name))


def test_racing_commands_get_a_lease_once_and_a_renewed_lease_outlives_its_term(client, names):
    name = names()
    start = threading.Barrier(8)

    def try_once(_):
        start.wait()
        try:
            return acquire(client, name, "migrate", lease_seconds=2, renew_every=0.5)
        except BusyError:
            return None

    with ThreadPoolExecutor(8) as pool:
        leases = [lease for lease in pool.map(try_once, range(8)) if lease is not None]
    assert len(leases) == 1
    try:
        time.sleep(3)  # past the 2 s term: the renewals keep it
        with pytest.raises(BusyError):
            acquire(client, name, "backfill", lease_seconds=2)
    finally:
        leases[0].release()
    acquire(client, name, "backfill").release()  # released: free again


def test_a_migration_whose_lease_was_taken_over_stops_before_the_swap_and_leaves_the_rest_alone(
        client, names, corpus, encoder, other_model):
    name = names()
    semsearch_index(client, name, encoder, corpus[:40])
    store = CheckpointStore(client)
    other = Encoder(str(other_model), device="cpu")
    taken = []

    def stall_then_lose_the_name(report):  # another host takes the name over while this run stalls (before its
        if not taken:                      # next renewal, 15 s away: the swap's own check must see it)
            now = time.time()
            client.index(index=store.index, id=lease_id(name),
                         body=Holder("migrate", "another-host", 1, now, now, token="theirs").as_body())
            taken.append(now)

    with pytest.raises(BusyError, match="taken over by another command"):
        migrate(client, name, encoder=other, batch_docs=16, on_batch=stall_then_lose_the_name)
    assert taken
    assert list(client.indices.get_alias(name=name)) == [f"{name}-v1"]  # the name was not moved
    # The write block of the catch-up is the other command's now: a run that lost the name does not lift it.
    blocks = client.indices.get_settings(index=f"{name}-v1", flat_settings=True)[f"{name}-v1"]["settings"]
    assert blocks.get("index.blocks.write") == "true"
    assert store.get(lease_id(name))["token"] == "theirs"  # nor release a lease that is no longer its own
    store.delete(lease_id(name))
    client.indices.put_settings(index=f"{name}-v1", body={"index.blocks.write": None})


# -- an enable-vectors killed while it copied ---------------------------------------------------------------------------

def test_enable_vectors_killed_while_it_copies_leaves_nothing_behind_once_rerun(client, names, corpus):
    name = names()
    plain_index(client, name, corpus)
    proc = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "index", "enable-vectors", name, "--no-backfill"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        lines = []
        for line in proc.stderr:  # killed once the copy has started: the server goes on filling it
            lines.append(line)
            if "blocked while its documents are copied" in line:
                break
        assert lines and "blocked while" in lines[-1], lines
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    copy = f"{name}-v1"
    assert client.indices.exists(index=copy)  # the half-made (or finished but unswapped) copy is left
    assert not client.indices.get_alias(index=copy)[copy]["aliases"]
    client.indices.put_settings(index=name, body={"index.blocks.write": None})  # as the refusal says to
    key = checkpoint_id("enable-vectors", index_uuid(client, name))
    assert CheckpointStore(client).get(key) == {"copy": copy, "source": name, "updated_at": pytest.approx(time.time(),
                                                                                                         abs=300)}

    result = run_cli("index", "enable-vectors", name, "--no-backfill")
    assert result.returncode == 0, result.stderr
    assert f"removed {copy!r}, the copy of {name!r} an interrupted enable-vectors left behind" in result.stderr
    versions = sorted(row["index"] for row in client.cat.indices(index=f"{name}-v*", format="json"))
    assert versions == [copy]  # made anew under the same name: no second copy of the index beside it
    assert list(client.indices.get_alias(name=name)) == [copy]
    assert client.count(index=name)["count"] == len(corpus)
    assert CheckpointStore(client).get(key) is None  # done: the copy is no longer named


def test_a_copy_the_server_still_fills_is_cancelled_before_it_is_removed(client, names, corpus):
    from semsearch.lifecycle.migrate import _remove_copy_left_behind

    name = names()
    plain_index(client, name, corpus)
    copy = f"{name}-v1"
    client.indices.create(index=copy, body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    task = client.reindex(body={"source": {"index": name, "size": 10}, "dest": {"index": copy}},
                          wait_for_completion=False, requests_per_second=20)["task"]  # 100 s at this pace
    store = CheckpointStore(client)
    key = checkpoint_id("enable-vectors", index_uuid(client, name))
    store.save(key, {"copy": copy, "source": name})
    notes = []
    try:
        _remove_copy_left_behind(client, store, key, name, notes.append)
        assert notes == [f"removed {copy!r}, the copy of {name!r} an interrupted enable-vectors left behind (its copy "
                         "task, still running, cancelled)"]
        assert client.tasks.get(task_id=task)["completed"]
        time.sleep(1)
        assert not client.indices.exists(index=copy)  # nor made again by the copy
    finally:
        store.delete(key)


def test_a_rollback_after_an_unfinished_migration_refuses_to_undo_the_one_before(client, names, corpus, encoder,
                                                                                   other_model):
    name = names()
    semsearch_index(client, name, encoder, corpus[:40])
    other = Encoder(str(other_model), device="cpu")
    done = migrate(client, name, encoder=other, batch_docs=16)  # name-v1 (the clone) → name-v2
    assert done.index == f"{name}-v2"

    def interrupted(report):
        raise KeyboardInterrupt  # as a Ctrl-C (or kill) mid-copy: name-v3 left half filled

    with pytest.raises(KeyboardInterrupt):
        migrate(client, name, encoder=encoder, batch_docs=16, on_batch=interrupted)
    assert client.indices.exists(index=f"{name}-v3")
    result = run_cli("migrate", name, "--rollback")
    assert result.returncode == 2, result.stderr
    assert (f"a migration of {name!r} from '{name}-v2' into '{name}-v3' did not finish" in result.stderr
            and "to abandon it: DELETE " in result.stderr), result.stderr
    assert list(client.indices.get_alias(name=name)) == [f"{name}-v2"]  # not taken back to name-v1
    # Abandoned as it says: then the rollback undoes the finished migration.
    client.indices.delete(index=f"{name}-v3")
    result = run_cli("migrate", name, "--rollback")
    assert result.returncode == 0, result.stderr
    assert list(client.indices.get_alias(name=name)) == [f"{name}-v1"]


def test_a_backfill_interrupted_with_ctrl_c_says_what_a_rerun_does(client, names, corpus, encoder):
    name = names()
    semsearch_index(client, name, encoder, corpus[:300], with_vectors=False)
    key = checkpoint_id("backfill", index_uuid(client, name))
    proc = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "backfill", name, "--batch-size", "16"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (CheckpointStore(client).get(key) or {}).get("written"):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted: what was written stays, and the same command run again goes on from there" in stderr, stderr
    assert "Traceback" not in stderr and "Aborted!" not in stderr
    assert CheckpointStore(client).get(lease_id(name)) is None  # released on the way out
