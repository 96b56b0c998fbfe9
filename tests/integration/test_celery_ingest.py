"""Ingest through the Celery queue on real Redis with real worker processes."""

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from opensearchpy.exceptions import TransportError

import semsearch
from semsearch import Settings
from semsearch.engines.opensearch import make_client

from .conftest import BROKER, free_port, services_sh


def corpus_slice(data_dir, tmp_path, count: int) -> Path:
    path = tmp_path / f"corpus-{count}.jsonl"
    with open(data_dir / "dbpedia-entity" / "corpus.jsonl", encoding="utf-8") as src:
        path.write_text("".join(line for _, line in zip(range(count), src)), encoding="utf-8")
    return path


def ingest_env(**extra) -> dict:
    return {"SEMSEARCH_BROKER_URL": BROKER, **extra}


def assert_exactly_indexed(client, index, path: Path) -> None:
    client.indices.refresh(index=index)
    ids = {json.loads(line)["_id"] for line in path.read_text().splitlines()}
    assert client.count(index=index)["count"] == len(ids)
    assert client.count(index=index, body={"query": {"exists": {"field": "embedding"}}})["count"] == len(ids)
    found = set()
    body = {"size": 1000, "_source": False, "sort": ["_doc"], "query": {"match_all": {}}}
    response = client.search(index=index, body=body, scroll="1m")
    while response["hits"]["hits"]:
        found.update(h["_id"] for h in response["hits"]["hits"])
        response = client.scroll(scroll_id=response["_scroll_id"], scroll="1m")
    assert found == ids


@pytest.mark.slow
def test_dbpedia_through_two_workers(client, dbpedia, data_dir):
    # The session's dbpedia index (conftest.dbpedia) is this ingest: 5,000 documents through two workers.
    assert dbpedia.result.returncode == 0, dbpedia.result.stderr
    assert "indexed 5000 of 5000" in dbpedia.result.stderr
    assert_exactly_indexed(client, dbpedia.name, data_dir / "dbpedia-entity" / "corpus.jsonl")
    assert all("semsearch.encode_batch" in log for log in dbpedia.worker_logs), "both workers should have taken batches"


@pytest.mark.slow
def test_worker_killed_mid_run(client, index_name, workers, data_dir, tmp_path):
    workers.start(2)
    path = corpus_slice(data_dir, tmp_path, 1200)
    proc = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "ingest", str(path), "--index", index_name,
                             "--batch-size", "50"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **ingest_env(SEMSEARCH_TASK_RESEND_AFTER="30")})
    victim = workers.procs[0]
    deadline = time.monotonic() + 300
    while "semsearch.encode_batch" not in Path(victim.log_path).read_text():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    workers.kill(victim)  # SIGKILL to the worker and its pool process, mid-batch
    _, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr
    assert "indexed 1200 of 1200" in stderr
    assert_exactly_indexed(client, index_name, path)


def documents_in(client, index: str) -> int:
    """Documents searchable in ``index``; 0 before it exists and while its new shard starts (503)."""
    try:
        return client.count(index=index)["count"] if client.indices.exists(index=index) else 0
    except TransportError as exc:
        if exc.status_code != 503:
            raise
        return 0


@dataclass
class OwnService:
    name: str  # redis or opensearch
    services_env: dict  # services.sh's environment for it (its run folder, its ports)
    semsearch_env: dict  # what points semsearch at it

    def restart(self) -> None:
        restarted = services_sh("restart", self.name, env=self.services_env)
        assert restarted.returncode == 0, restarted.stderr


def free_ports(count: int) -> list[str]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return [str(port) for port in ports]


@pytest.fixture()
def own_service(request):
    """The service the test restarts, its own: started by services.sh on free ports just as the shared one
    (Redis with its append-only file, so queued work survives a restart; OpenSearch with the k-NN plugin),
    so that restarting it disturbs no other test. Its run folder is beside the shared services' (the
    unprivileged node user has a way into the cache folder, not into this process's temporary folders)."""
    name, (port, transport) = request.param, free_ports(2)
    cache = Path(os.environ.get("SEMSEARCH_CACHE") or Path.home() / ".cache" / "semsearch")
    run = cache / "run" / f"test-{name}-{uuid.uuid4().hex[:8]}"
    services_env = {"SEMSEARCH_RUN_DIR": str(run)}
    if name == "redis":
        services_env["SEMSEARCH_REDIS_PORT"] = port
        semsearch_env = {"SEMSEARCH_BROKER_URL": f"redis://127.0.0.1:{port}/0"}
    else:
        services_env.update(SEMSEARCH_OS_PORT=port, SEMSEARCH_OS_TRANSPORT_PORT=transport, SEMSEARCH_OS_HEAP="512m")
        semsearch_env = {"SEMSEARCH_OPENSEARCH_URL": f"http://127.0.0.1:{port}"}
    service = OwnService(name, services_env, semsearch_env)
    try:
        service.restart()  # started: restart starts what is not running
        yield service
    finally:  # also when it failed to start: a node still starting is stopped
        services_sh("down", env=services_env)
        shutil.rmtree(run, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("own_service", ["redis", "opensearch"], indirect=True)
def test_service_restarted_mid_run(client, index_name, workers, data_dir, tmp_path, own_service):
    if own_service.name == "opensearch":
        client = make_client(Settings(opensearch_url=own_service.semsearch_env["SEMSEARCH_OPENSEARCH_URL"]))
    workers.env.update(own_service.semsearch_env)
    workers.start(1)
    path = corpus_slice(data_dir, tmp_path, 800)
    proc = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "ingest", str(path), "--index", index_name,
                             "--batch-size", "50"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **ingest_env(SEMSEARCH_TASK_RESEND_AFTER="60"),
                                 **own_service.semsearch_env})
    deadline = time.monotonic() + 300
    while documents_in(client, index_name) == 0:
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else ""
        time.sleep(0.3)
    own_service.restart()
    _, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr
    assert "indexed 800 of 800" in stderr
    if own_service.name == "redis":  # the producer talks to Redis throughout, and says when it waits for it
        assert "waiting: Redis unreachable" in stderr, stderr
    assert_exactly_indexed(client, index_name, path)


@pytest.mark.slow
def test_single_document_submits_are_micro_batched(client, index_name, workers, broker, data_dir, vector_cache):
    settings = Settings(broker_url=BROKER)
    workers.env["SEMSEARCH_VECTOR_CACHE"] = vector_cache  # what is measured is the batching, not the encoding
    lines = (data_dir / "dbpedia-entity" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:1000]
    docs = [json.loads(line) for line in lines]
    ids = []
    for doc in docs:  # one document per call, as an application pushing changes does
        result = semsearch.submit(doc, index=index_name, settings=settings)
        assert not result.rejected
        ids.extend(result.ids)
    workers.start(1)  # started after the submits, and also works while they arrive (next test)
    deadline = time.monotonic() + 600
    while True:
        client.indices.refresh(index=index_name)
        if client.count(index=index_name)["count"] >= 1000 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert client.count(index=index_name)["count"] == 1000
    assert client.count(index=index_name, body={"query": {"exists": {"field": "embedding"}}})["count"] == 1000
    stats = {k.decode(): int(v) for k, v in broker.hgetall(f"semsearch:stream:{index_name}:stats").items()}
    assert stats["documents"] == 1000
    assert stats["documents"] / stats["batches"] > 1, stats


def test_submits_while_worker_runs_and_deletes_keep_order(client, index_name, workers, broker):
    workers.start(1)
    settings = Settings(broker_url=BROKER)
    for i in range(200):
        semsearch.submit({"_id": f"doc-{i}", "text": f"document number {i} about topic {i % 7}"},
                         index=index_name, settings=settings)
        if i % 10 == 9:
            semsearch.delete([f"doc-{i}"], index=index_name, settings=settings)
    # A submit after its delete comes back; a delete after its submit stays deleted.
    semsearch.delete("doc-0", index=index_name, settings=settings)
    semsearch.submit({"_id": "doc-9", "text": "written again after the delete"}, index=index_name, settings=settings)
    deadline = time.monotonic() + 300
    expected = 200 - 20 - 1 + 1
    while time.monotonic() < deadline:
        client.indices.refresh(index=index_name)
        if broker.llen(f"semsearch:stream:{index_name}") == 0 and client.count(index=index_name)["count"] == expected:
            break
        time.sleep(1)
    client.indices.refresh(index=index_name)
    assert client.count(index=index_name)["count"] == expected
    assert not client.exists(index=index_name, id="doc-0")
    assert not client.exists(index=index_name, id="doc-19")
    assert client.get(index=index_name, id="doc-9")["_source"]["text"] == "written again after the delete"


def test_submit_rejects_bad_documents_and_keeps_the_rest(index_name, broker):
    settings = Settings(broker_url=BROKER)
    result = semsearch.submit([{"_id": "ok", "text": "fine"}, {"_id": "bad", "text": 3}, "not an object"],
                              index=index_name, settings=settings)
    assert result.ids == ["ok"]
    assert [(r.line, r.field) for r in result.rejected] == [(2, "text"), (3, None)]
    assert broker.llen(f"semsearch:stream:{index_name}") == 1


def test_pickled_message_is_refused():
    from ingest.app import celery_config

    config = celery_config(BROKER)
    assert config["accept_content"] == ["json"] and config["task_serializer"] == "json"
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1
    assert config["broker_transport_options"]["visibility_timeout"] > config["task_time_limit"]


def test_ingest_without_workers_says_so(broker):
    from ingest.app import make_app
    from semsearch.distributed.producer import warn_if_no_workers

    said: list[str] = []
    warn_if_no_workers(make_app(Settings(broker_url=BROKER)), said.append)
    assert len(said) == 1 and "no semsearch worker" in said[0] and "semsearch worker" in said[0]
