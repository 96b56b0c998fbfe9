"""Index lifecycle on the real Elasticsearch node (issue 8): enable-vectors in place, backfill killed and
rerun, migrate and roll back, a migration's catch-up — the commands of test_lifecycle.py, on the other engine.

Elasticsearch adds a dense_vector field to any index in place (no versioned copy), and cannot scan in
``_id`` order: a backfill or copy that is interrupted rescans and skips what is done, without encoding
it again. Indexes here have two shards, so that per-shard refreshes and ``_shard_doc`` order are exercised.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from semsearch import Encoder, Searcher
from semsearch.lifecycle.backfill import CheckpointStore, backfill, copy_with_vectors
from semsearch.lifecycle.lease import LEASE_SECONDS, Holder, held, lease_id
from semsearch.errors import ConfigurationError, IndexMismatchError
from semsearch.index.manage import create_index, get_index_info

from .conftest import ES_ENV, keyword_ids, last_json_line, run_cli, versioned_names

VECTOR = "embedding"
QUERIES = ("airline crash", "American jazz musician", "river in Europe")


@pytest.fixture(scope="module")
def corpus(data_dir):
    with open(data_dir / "dbpedia-entity" / "corpus.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for _, line in zip(range(600), handle)]


@pytest.fixture(scope="module")
def other_model(tmp_path_factory):
    from tests.unit.test_encoder import model_copy

    return model_copy(tmp_path_factory.mktemp("cls-model"), {"pooling_mode": "cls"})


@pytest.fixture()
def names(es):
    """Unique index names for one test; each (and its versions) deleted after, by name."""
    yield from versioned_names(es, "test_es_")


def bulk(es, name, docs, **extra):
    lines = []
    for i, doc in enumerate(docs):
        lines += [{"index": {"_index": name, "_id": doc["_id"]}},
                  {"title": doc["title"], "text": doc["text"], "rank": i, **extra}]
    answer = es.bulk(body=lines, refresh=True)
    assert not answer["errors"]


def write_plain(es, name, docs):
    """An application's own index: its analyser, a keyword field, two shards, documents without vectors."""
    es.indices.create(index=name, body={
        "settings": {"number_of_shards": 2, "number_of_replicas": 0,
                     "analysis": {"analyzer": {"app_text": {"type": "standard", "stopwords": "_english_"}}}},
        "mappings": {"properties": {"title": {"type": "text", "analyzer": "app_text"},
                                    "text": {"type": "text", "analyzer": "app_text"}, "rank": {"type": "integer"}}}})
    bulk(es, name, docs)


def semsearch_index(es, name, encoder, docs, *, with_vectors=True):
    create_index(es, name, fingerprint=encoder.fingerprint.as_dict(), text_fields=["title", "text"],
                 vector_field=VECTOR, engine="lucene", replicas=0, shards=2, backend="elasticsearch")
    bulk(es, name, docs)
    if with_vectors:
        # No keyword ranking is compared here: skip the merge (and its wait for the retention leases).
        done = backfill(es, name, fingerprint=encoder.fingerprint.as_dict(), encoder=encoder, expunge_deletes=False)
        assert done.ok and done.encoded == len(docs)


def vectors_count(es, name):
    es.indices.refresh(index=name)
    return es.count(index=name, body={"query": {"exists": {"field": VECTOR}}})["count"]


@pytest.mark.slow
def test_enable_vectors_adds_the_field_in_place_and_backfills(es, es_settings, names, corpus, encoder, vector_cache):
    name = names()
    write_plain(es, name, corpus)
    before = {q: keyword_ids(es, name, q) for q in QUERIES}

    # Vectors of dbpedia texts the session encoded already are read back (the switch is tested, not the model).
    result = run_cli("index", "enable-vectors", name, "--batch-size", "128", "--json",
                     env={**ES_ENV, "SEMSEARCH_VECTOR_CACHE": vector_cache})
    assert result.returncode == 0, result.stderr
    summary = last_json_line(result.stdout)
    assert summary["enable"]["mode"] == "in_place" and summary["enable"]["index"] == name
    assert summary["backfill"]["encoded"] == len(corpus) and summary["backfill"]["missing"] == 0
    assert summary["backfill"]["expunged"] is True, result.stderr

    # Same index, same name (no alias), the application's analyser and fields kept, a dense_vector added.
    assert not es.indices.exists_alias(name=name)
    properties = es.indices.get_mapping(index=name)[name]["mappings"]["properties"]
    assert properties["title"]["analyzer"] == "app_text" and properties["rank"]["type"] == "integer"
    assert properties[VECTOR]["type"] == "dense_vector" and properties[VECTOR]["dims"] == 384
    assert vectors_count(es, name) == len(corpus)
    # Keyword queries answer exactly as before (replaced versions merged away); hybrid works under the name.
    assert {q: keyword_ids(es, name, q) for q in QUERIES} == before
    target = corpus[321]
    hits = Searcher(es_settings, encoder=encoder).search(target["title"], index=name, k=5)
    assert hits[0].id == target["_id"] and set(hits[0].contributions) == {"keyword", "semantic"}

    again = run_cli("index", "enable-vectors", name, "--json", env=ES_ENV)
    assert again.returncode == 0, again.stderr
    summary = last_json_line(again.stdout)
    assert summary["enable"]["mode"] == "already" and summary["backfill"]["encoded"] == 0
    info = json.loads(run_cli("index", "info", name, env=ES_ENV).stdout)
    assert info["documents_with_vector"] == len(corpus) and info["cluster"]["distribution"] == "elasticsearch"
    assert "bbq" in info["cluster"]["compact_modes"]


def test_enable_vectors_refuses_an_opensearch_space_type(es, names, corpus, encoder):
    name = names()
    write_plain(es, name, corpus[:5])
    result = run_cli("index", "enable-vectors", name, "--space-type", "l2", env=ES_ENV)
    assert result.returncode != 0 and "cosine" in result.stderr and "Traceback" not in result.stderr
    assert VECTOR not in es.indices.get_mapping(index=name)[name]["mappings"]["properties"]


@pytest.mark.slow
def test_backfill_killed_halfway_reruns_without_re_encoding(es, names, corpus, encoder):
    name = names()
    total = 300
    semsearch_index(es, name, encoder, corpus[:total], with_vectors=False)
    proc = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "backfill", name, "--batch-size", "32"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, **ES_ENV})
    try:
        deadline = time.monotonic() + 120
        while vectors_count(es, name) < 64:
            assert proc.poll() is None, f"backfill ended before it could be killed: {proc.communicate()}"
            assert time.monotonic() < deadline, "no vectors written within 120s"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    time.sleep(0.5)
    done_at_kill = vectors_count(es, name)
    assert 64 <= done_at_kill < total, done_at_kill

    result = run_cli("backfill", name, "--batch-size", "32", "--keep-deletes", "--json", env=ES_ENV)
    assert result.returncode == 0, result.stderr
    report = last_json_line(result.stdout)
    # A rescan, not a checkpoint: every document is read again, only the unfinished ones are encoded.
    assert report["resumed_after"] is None and report["scanned"] == total
    assert report["encoded"] == total - done_at_kill
    assert vectors_count(es, name) == total and report["missing"] == 0

    # A document whose text the application changed (its old vector kept) gets a new vector, alone.
    es.update(index=name, id=corpus[0]["_id"], body={"doc": {"text": "Rewritten by the application."}})
    again = backfill(es, name, fingerprint=encoder.fingerprint.as_dict(), encoder=encoder, expunge_deletes=False)
    assert again.encoded == 1 and again.ok


@pytest.mark.slow
def test_migrate_to_another_model_and_roll_back(es, es_settings, names, corpus, encoder, other_model):
    name = names()
    semsearch_index(es, name, encoder, corpus[:80])
    target = corpus[5]
    other = Encoder(str(other_model), device="cpu")

    result = run_cli("migrate", name, "--model", str(other_model), "--batch-size", "64", "--json", env=ES_ENV)
    assert result.returncode == 0, result.stderr
    report = last_json_line(result.stdout)
    assert report["adopted"] == f"{name}-v1" and report["index"] == f"{name}-v2"
    assert report["documents"] == 80 and report["encoded"] == 80
    assert es.indices.get_alias(name=name) == {f"{name}-v2": {"aliases": {name: {}}}}
    assert get_index_info(es, name).fingerprint == other.fingerprint.as_dict()
    assert get_index_info(es, name).backend == "elasticsearch" and vectors_count(es, name) == 80
    assert Searcher(es_settings, encoder=other).search(target["title"], index=name, k=3)[0].id == target["_id"]
    with pytest.raises(IndexMismatchError, match="pooling"):
        Searcher(es_settings, encoder=encoder).search(target["title"], index=name, mode="semantic")

    marks = get_index_info(es, f"{name}-v2").meta["swap_marks"]  # taken as the name moved: a rollback compares
    assert marks and all(mark >= 0 for mark in marks.values()), marks
    back = run_cli("migrate", name, "--rollback", "--json", env=ES_ENV)
    assert back.returncode == 0, back.stderr
    assert "cannot tell" not in back.stderr and "dropping" not in back.stderr  # no write since: nothing to drop
    assert last_json_line(back.stdout) == {"name": name, "index": f"{name}-v1", "left": f"{name}-v2"}
    hits = Searcher(es_settings, encoder=encoder).search(target["title"], index=name, k=3, mode="semantic")
    assert hits[0].id == target["_id"]
    es.index(index=name, id="after-rollback", body={"title": "t", "text": "x"}, refresh=True)
    assert es.count(index=name)["count"] == 81


def test_migration_catch_up_copies_only_what_changed(es, names, corpus, encoder, other_model):
    name = names()
    semsearch_index(es, name, encoder, corpus[:30])
    other = Encoder(str(other_model), device="cpu")
    green = names()
    create_index(es, green, fingerprint=other.fingerprint.as_dict(), text_fields=["title", "text"],
                 vector_field=VECTOR, engine="lucene", replicas=0, shards=2, backend="elasticsearch")
    info = get_index_info(es, name)
    first = copy_with_vectors(es, info, green, encoder=other, batch_docs=8, page_size=7)
    assert first.encoded == 30 and first.missing == 0
    # Writes while the copy ran, none of them refreshed: one changed, one deleted, one added.
    es.update(index=name, id=corpus[3]["_id"], body={"doc": {"rank": 99}})
    es.delete(index=name, id=corpus[4]["_id"])
    es.index(index=name, id="new-doc", body={"title": "New", "text": "A new document."})
    catch_up = copy_with_vectors(es, info, green, encoder=other, checkpointed=False, page_size=7)
    assert (catch_up.encoded, catch_up.deleted, catch_up.scanned) == (2, 1, 30)
    es.indices.refresh(index=f"{name},{green}")
    assert es.count(index=green)["count"] == es.count(index=name)["count"] == 30
    assert es.get(index=green, id=corpus[3]["_id"])["_source"]["rank"] == 99
    with pytest.raises(ConfigurationError, match="nothing to migrate"):
        from semsearch.lifecycle.migrate import migrate

        migrate(es, name, encoder=encoder)


def test_one_lifecycle_command_at_a_time_on_elasticsearch(es, names, corpus, encoder):
    """The lease (semsearch.lifecycle.lease) through the Elasticsearch client: created once, refused while held,
    taken over once silent past its term, renewed and released conditionally on its sequence number."""
    name = names()
    semsearch_index(es, name, encoder, corpus[:10], with_vectors=False)
    store = CheckpointStore(es)
    with held(es, name, "migrate", renew_every=0.2):
        time.sleep(0.6)  # renewed (conditionally) meanwhile
        result = run_cli("backfill", name, env=ES_ENV)
        assert result.returncode == 2 and f"{name!r} is busy: semsearch migrate (pid {os.getpid()}" in result.stderr, \
            result.stderr
        assert vectors_count(es, name) == 0
    assert store.get(lease_id(name)) is None  # released
    silent = Holder("backfill", "another-host", 4242, 0.0, time.time() - LEASE_SECONDS - 5)
    es.index(index=store.index, id=lease_id(name), body=silent.as_body())
    result = run_cli("backfill", name, "--keep-deletes", env=ES_ENV)
    assert result.returncode == 0 and "took over" in result.stderr, result.stderr
    assert vectors_count(es, name) == 10 and store.get(lease_id(name)) is None
