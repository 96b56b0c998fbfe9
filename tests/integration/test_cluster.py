"""Node loss on real 3-node clusters (issue 18): ingest, Celery ingest, backfill and hybrid search go on
while a node is killed or restarted, and nothing is lost or passed off as complete.

Each engine's cluster is started by ``scripts/services.sh up --nodes 3`` for this module and stopped after
it (its cores go back to the tests that follow). The client is given every node's URL
(SEMSEARCH_OPENSEARCH_URL as a comma-separated list). Ingests read their vectors from the session's
vector cache, filled by the first real encoding of dbpedia-entity (conftest.vector_cache): the model's
own vectors, so these tests spend their time on what they test, the writes. The backfill encodes for real.
"""

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from semsearch import Searcher, Settings
from semsearch.engines.opensearch import make_client
from semsearch.index.manage import create_index
from semsearch.query.shards import PartialResultsError

from .conftest import BROKER, Workers, run_cli, services_sh, serving

pytestmark = pytest.mark.slow

# The ingests take 2,500 dbpedia-entity documents (lines 1001-3500, B. F. Skinner's among them); the node is
# lost once LOSE_AT are in, a third of the way, with most of the writes still to come.
DOCS, FIRST_LINE, LOSE_AT = 2500, 1000, 800
NODES = 3  # the cluster of `services.sh up --nodes N` the module runs on
RESTARTS = ThreadPoolExecutor(max_workers=2)  # nodes started again while a test goes on


def services(*args: str, engine: str) -> subprocess.CompletedProcess:
    return services_sh(*args, "--engine", engine, timeout=600)


@dataclass
class Cluster:
    engine: str
    urls: str
    indexes: list[str] = field(default_factory=list)
    restarts: list[Future] = field(default_factory=list)

    @property
    def env(self) -> dict:
        env = {"SEMSEARCH_OPENSEARCH_URL": self.urls}
        if self.engine == "elasticsearch":
            env["SEMSEARCH_BACKEND"] = "elasticsearch"
        return env

    @property
    def settings(self) -> Settings:
        return Settings(backend=self.engine, opensearch_url=self.urls)

    @property
    def client(self):
        return make_client(self.settings)

    def new_index(self) -> str:
        self.indexes.append(f"test_cluster_{uuid.uuid4().hex[:10]}")
        return self.indexes[-1]

    def node(self, action: str, number: int) -> None:
        result = services(action, str(number), engine=self.engine)
        assert result.returncode == 0, f"{action} {number}: {result.stderr}"

    def restart_later(self, number: int) -> Future:
        """Start node ``number`` again in the background (it rejoins while the test goes on)."""
        self.restarts.append(RESTARTS.submit(self.node, "start-node", number))
        return self.restarts[-1]

    def settle_restarts(self) -> None:
        """Waits for the nodes being started again (a failure was its test's to report); forgets those that
        ended, keeps one still starting after the wait (the cluster's teardown waits for it again)."""
        for restart in self.restarts:
            try:
                restart.result(timeout=600)
            except Exception:  # noqa: BLE001 - its test said so already
                pass
        self.restarts[:] = [restart for restart in self.restarts if not restart.done()]

    def primary_node(self, index: str) -> int:
        """The number of a node holding a primary shard of ``index`` (losing it makes a replica primary)."""
        shards = self.client.cat.shards(index=index, format="json")
        names = sorted(s["node"] for s in shards if s["prirep"] == "p" and s.get("node"))
        assert names, shards
        return int(names[0].rsplit("-", 1)[1])

    def wait_for_documents(self, index: str, count: int, proc: subprocess.Popen, timeout: float = 300) -> None:
        """Until ``index`` holds ``count`` searchable documents (the job is well under way)."""
        client, deadline = self.client, time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"the job ended before a node could be lost: {proc.communicate()}"
            try:
                if client.indices.exists(index=index) and client.count(index=index)["count"] >= count:
                    return
            except Exception:  # noqa: BLE001 - the index may be mid-creation
                pass
            time.sleep(0.3)
        raise AssertionError(f"{index} did not reach {count} documents in {timeout}s")


@pytest.fixture(scope="module", params=["opensearch", "elasticsearch"])
def cluster(request):
    engine = request.param
    result = services("up", "--nodes", str(NODES), engine=engine)
    if result.returncode != 0:
        pytest.fail(f"the {NODES}-node {engine} cluster did not start: {result.stderr[-3000:]}", pytrace=False)
    urls = next(line.split("=", 1)[1] for line in result.stdout.splitlines()
                if line.startswith("SEMSEARCH_OPENSEARCH_URL="))
    assert len(urls.split(",")) == NODES
    cluster = Cluster(engine, urls)
    yield cluster
    cluster.settle_restarts()  # a node still starting must not outlive the cluster's `down`
    for name in cluster.indexes:
        try:
            cluster.client.indices.delete(index=name, ignore_unavailable=True)
        except Exception:  # noqa: BLE001 - the cluster goes next anyway
            pass
    if not os.environ.get("SEMSEARCH_TEST_KEEP_CLUSTERS"):  # kept only while working on these tests alone
        services("down", "--nodes", str(NODES), engine=engine)


@pytest.fixture(autouse=True)
def whole_cluster(cluster):
    """Every test starts on the whole cluster: a restart still under way finishes, and a node that an earlier
    test left down (its failure said why) is started again, so that one test's failure is not the next one's."""
    cluster.settle_restarts()  # a node that failed to start is started below
    status = services("status", engine=cluster.engine).stdout
    for number in range(1, NODES + 1):
        if f"{cluster.engine} node {number}: stopped" in status:
            cluster.node("start-node", number)
    health = cluster.client.cluster.health(wait_for_nodes=str(NODES), wait_for_status="yellow", timeout="120s",
                                           request_timeout=150)
    assert health["number_of_nodes"] == NODES and not health["timed_out"], health
    return cluster


@pytest.fixture(scope="module")
def corpus(data_dir, tmp_path_factory) -> Path:
    lines = (data_dir / "dbpedia-entity" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    path = tmp_path_factory.mktemp("cluster-corpus") / "corpus.jsonl"
    path.write_text("\n".join(lines[FIRST_LINE:FIRST_LINE + DOCS]) + "\n", encoding="utf-8")
    return path


def corpus_ids(path: Path) -> set[str]:
    return {json.loads(line)["_id"] for line in path.read_text(encoding="utf-8").splitlines()}


def all_ids(client, index: str) -> list[str]:
    """Every _id in ``index`` (duplicates would show twice), in the order of semsearch's id keyword."""
    ids, after = [], None
    while True:
        body = {"size": 2000, "_source": False, "sort": [{"semsearch_id": "asc"}], "query": {"match_all": {}}}
        if after:
            body["search_after"] = after
        hits = client.search(index=index, body=body)["hits"]["hits"]
        if not hits:
            return ids
        ids.extend(h["_id"] for h in hits)
        after = hits[-1]["sort"]


def assert_every_document_once_with_a_vector(cluster: Cluster, index: str, corpus: Path) -> None:
    client = cluster.client
    client.indices.refresh(index=index)
    expected = corpus_ids(corpus)
    assert client.count(index=index)["count"] == len(expected)
    assert client.count(index=index, body={"query": {"exists": {"field": "embedding"}}})["count"] == len(expected)
    ids = all_ids(client, index)
    assert len(ids) == len(set(ids)) == len(expected) and set(ids) == expected


@contextmanager
def cli_job(args: list[str], env: dict, cwd: Path) -> Iterator[subprocess.Popen]:
    """A `semsearch` command running in the background; killed if the test leaves before it ends."""
    proc = subprocess.Popen([sys.executable, "-m", "semsearch.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, env={**os.environ, **env})
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def rejoined(restart: Future) -> None:
    restart.result(timeout=600)  # raises what start-node said, if it failed


def finished(proc: subprocess.Popen, restart: Future | None, timeout: float = 900) -> tuple[str, str]:
    """(stdout, stderr) of ``proc`` once it ends; fails at once if the node ``restart`` brings back could not
    be started (the job would otherwise wait out its timeouts for a node that never comes)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return proc.communicate(timeout=2)
        except subprocess.TimeoutExpired:
            if restart is not None and restart.done() and restart.exception() is not None:
                raise AssertionError(f"the node did not start again: {restart.exception()}") from None
            if time.monotonic() > deadline:
                raise


def ingest_losing_a_node(cluster: Cluster, corpus: Path, env: dict, cwd: Path, *, rejoin_now: bool = True
                         ) -> tuple[str, subprocess.CompletedProcess, int]:
    """`semsearch ingest` of ``corpus`` with node loss: once LOSE_AT documents are in, the node holding the
    index's primary is SIGKILLed. ``rejoin_now``: it is started again while the ingest goes on (else the
    caller starts it). Returns (index, the ingest's run, the node's number)."""
    index = cluster.new_index()
    rejoin = None
    with cli_job(["ingest", str(corpus), "--index", index], {**cluster.env, **env}, cwd) as proc:
        cluster.wait_for_documents(index, LOSE_AT, proc)
        # The ingest created the index with its replicas started (not still recovering, out of sync), so the
        # node lost takes no shard's only copy.
        copies = cluster.client.cat.shards(index=index, format="json")
        assert copies and all(c["state"] in ("STARTED", "RELOCATING") for c in copies), copies
        victim = cluster.primary_node(index)
        cluster.node("kill-node", victim)
        if rejoin_now:
            rejoin = cluster.restart_later(victim)
        stdout, stderr = finished(proc, rejoin)
    if rejoin is not None:
        rejoined(rejoin)
    return index, subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), victim


def assert_ingested(cluster: Cluster, index: str, result: subprocess.CompletedProcess, corpus: Path) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"indexed {DOCS} of {DOCS}" in result.stderr
    assert_every_document_once_with_a_vector(cluster, index, corpus)


QUERIES = {"B. F. Skinner": "<dbpedia:B._F._Skinner>"}


def served_search(server, index: str, text: str, mode: str = "hybrid") -> dict:
    status, _, body = server.call("POST", "/v1/search", {"index": index, "text": text, "mode": mode, "k": 10})
    assert status == 200, body[:2000]
    return json.loads(body)


def proxied(server, method: str, path: str, body: dict) -> dict:
    """A request an application sends the cluster through the service (no token: the proxy's way)."""
    status, _, answer = server.call(method, path, body, token=None)
    assert status == 200, answer[:2000]
    return json.loads(answer)


def assert_serve_answers_with_a_node_down(server, cluster: Cluster, index: str, bare: str) -> None:
    """`semsearch serve`, given every node's URL, answers through a node killed under it: whole answers from the
    replicated index, answers flagged partial from the one that lost a shard. Each kind of request is sent once per
    node and more, so that the node the service tries first (round robin, pooled connections) is the dead one too."""
    for _ in range(NODES + 1):
        for mode in ("hybrid", "semantic", "keyword"):
            answer = served_search(server, index, "B. F. Skinner", mode)
            assert answer["hits"][0]["id"] == QUERIES["B. F. Skinner"] and not answer["partial"], (mode, answer)
        answer = served_search(server, bare, "american film")
        assert answer["hits"] and answer["partial"] and all(h["partial"] for h in answer["hits"]), answer
        keyword = proxied(server, "POST", f"/{index}/_search", {"query": {"match": {"title": "Skinner"}}})
        assert keyword["_shards"]["failed"] == 0 and keyword["hits"]["hits"], keyword
        if cluster.engine == "opensearch":  # the neural query DSL is OpenSearch's
            neural = proxied(server, "POST", f"/{index}/_search", {"_source": False, "query": {"neural": {
                "embedding": {"query_text": "B. F. Skinner", "k": 10}}}})
            assert neural["_shards"]["failed"] == 0, neural
            assert QUERIES["B. F. Skinner"] in [h["_id"] for h in neural["hits"]["hits"]], neural


def test_ingest_and_hybrid_search_through_a_data_node_killed_mid_run(cluster, corpus, vector_cache, encoder,
                                                                       tmp_path):
    with serving(tmp_path, cluster.env) as server:  # started on the whole cluster: it holds connections to each node
        ingest_and_search_through_a_node_killed(cluster, corpus, vector_cache, encoder, tmp_path, server)


def ingest_and_search_through_a_node_killed(cluster, corpus, vector_cache, encoder, tmp_path, server):
    client = cluster.client
    # Beside it, an index without replicas in 3 shards, one per node: whichever node dies takes a shard of it.
    bare = cluster.new_index()
    create_index(client, bare, fingerprint=encoder.fingerprint.as_dict(), text_fields=["title", "text"],
                 vector_field="embedding", engine="lucene", shards=3, replicas=0, backend=cluster.engine)
    sample = tmp_path / "sample.jsonl"
    sample.write_text("\n".join(corpus.read_text(encoding="utf-8").splitlines()[:300]) + "\n", encoding="utf-8")
    loaded = run_cli("ingest", str(sample), "--index", bare, env={**cluster.env, "SEMSEARCH_VECTOR_CACHE": vector_cache},
                     cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    client.indices.refresh(index=bare)
    searcher = Searcher(cluster.settings, encoder=encoder)
    bare_before = searcher.search("american film", index=bare, k=10, mode="keyword")
    assert bare_before and not any(h.partial for h in bare_before)
    for _ in range(NODES):
        assert not served_search(server, bare, "american film")["partial"]

    # The ingest, in-process, with a data node SIGKILLed a third of the way through; it stays down.
    index, result, victim = ingest_losing_a_node(cluster, corpus, {"SEMSEARCH_VECTOR_CACHE": vector_cache}, tmp_path,
                                                 rejoin_now=False)
    try:
        assert_ingested(cluster, index, result, corpus)
        # Created by the ingest on a cluster of 3 data nodes: one replica, so a lost node loses no shard.
        settings = client.indices.get_settings(index=index)[index]["settings"]["index"]
        assert str(settings["number_of_replicas"]) == "1"

        # Search with the node still down. The replicated index: whole answers, the right hits.
        for text, expected_top in QUERIES.items():
            for mode in ("hybrid", "semantic", "keyword"):
                hits = searcher.search(text, index=index, mode=mode)
                assert hits[0].id == expected_top and not hits.partial, (mode, hits[:3])
        # The CLI, given all three URLs, one of them dead, answers too.
        cli = run_cli("search", "B. F. Skinner", "--index", index, "--json", env=cluster.env)
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout.splitlines()[0])["id"] == "<dbpedia:B._F._Skinner>"
        assert "partial" not in cli.stderr

        # The index without replicas lost a shard: its hits say so, in every mode, and never pass for whole.
        for mode in ("keyword", "semantic", "hybrid"):
            hits = searcher.search("american film", index=bare, k=10, mode=mode)
            assert hits and hits.partial and all(h.partial for h in hits), mode
        cli = run_cli("search", "american film", "--index", bare, "--json", env=cluster.env)
        assert cli.returncode == 0, cli.stderr
        assert "partial results" in cli.stderr
        assert all(json.loads(line)["partial"] for line in cli.stdout.splitlines())
        strict = Searcher(Settings(backend=cluster.engine, opensearch_url=cluster.urls, partial_results="fail"),
                          encoder=encoder)
        with pytest.raises(PartialResultsError, match="shards did not answer"):
            strict.search("american film", index=bare)
        refused = run_cli("search", "american film", "--index", bare,
                          env={**cluster.env, "SEMSEARCH_PARTIAL_RESULTS": "fail"})
        assert refused.returncode != 0 and "partial" in refused.stderr
        assert_serve_answers_with_a_node_down(server, cluster, index, bare)
    finally:
        cluster.node("start-node", victim)
    # Back together: whole again.
    client.cluster.health(index=bare, wait_for_status="green", timeout="120s", request_timeout=150)
    hits = searcher.search("american film", index=bare, k=10, mode="hybrid")
    assert hits and not any(h.partial for h in hits)


def test_celery_ingest_loses_nothing_when_a_data_node_is_killed_mid_run(cluster, corpus, vector_cache, tmp_path,
                                                                        broker):
    env = {**cluster.env, "SEMSEARCH_VECTOR_CACHE": vector_cache}
    pool = Workers(tmp_path, env=env)
    try:
        pool.start(2)
        index, result, _ = ingest_losing_a_node(cluster, corpus, {"SEMSEARCH_BROKER_URL": BROKER}, tmp_path)
        logs = [Path(proc.log_path).read_text() for proc in pool.procs]
    finally:
        pool.stop()
    assert_ingested(cluster, index, result, corpus)
    assert all("semsearch.encode_batch" in log for log in logs), "both workers should have taken batches"


def test_backfill_through_a_node_restart_encodes_every_document_once(cluster, data_dir, tmp_path, encoder):
    # Documents written by an application without vectors, in 3 shards with a replica each: every node holds
    # shard copies, so the node restarted holds some the backfill's point in time reads.
    total = 600
    client, index = cluster.client, cluster.new_index()
    create_index(client, index, fingerprint=encoder.fingerprint.as_dict(), text_fields=["title", "text"],
                 vector_field="embedding", engine="lucene", shards=3, replicas=1, backend=cluster.engine)
    lines = (data_dir / "dbpedia-entity" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:total]
    bulk = []
    for line in lines:
        doc = json.loads(line)
        bulk += [json.dumps({"index": {"_index": index, "_id": doc["_id"]}}),
                 json.dumps({"title": doc.get("title", ""), "text": doc["text"]})]
    assert not client.bulk(body="\n".join(bulk) + "\n", refresh="true")["errors"]

    with cli_job(["backfill", index, "--batch-size", "32", "--json"], cluster.env, tmp_path) as proc:
        deadline = time.monotonic() + 300
        while client.count(index=index, body={"query": {"exists": {"field": "embedding"}}})["count"] < 150:
            assert proc.poll() is None, f"the backfill ended before the restart: {proc.communicate()}"
            assert time.monotonic() < deadline, "the backfill made no progress"
            time.sleep(0.3)
        victim = cluster.primary_node(index)
        cluster.node("stop-node", victim)
        rejoin = cluster.restart_later(victim)
        stdout, stderr = finished(proc, rejoin)
    rejoined(rejoin)
    assert proc.returncode == 0, stderr[-3000:]
    report = json.loads(stdout.strip().splitlines()[-1])
    # One run, through the restart: every document encoded exactly once, none left without a vector.
    assert report["encoded"] == total and report["missing"] == 0, report
    client.indices.refresh(index=index)
    assert client.count(index=index, body={"query": {"exists": {"field": "embedding"}}})["count"] == total

