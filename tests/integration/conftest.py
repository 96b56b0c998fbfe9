"""Integration tests run against the real services started by scripts/services.sh.

They fail, never skip, when a service is missing: a skipped integration test proves nothing.
"""

import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from semsearch import Settings
from semsearch.engines.opensearch import make_client
from semsearch.query.bodies import keyword_body

from .cli_process import CommandLine

pytestmark = pytest.mark.integration

# The Elasticsearch node of scripts/services.sh up --engine elasticsearch (issue 8).
ES_URL = os.environ.get("SEMSEARCH_TEST_ES_URL", "http://127.0.0.1:9201")
ES_ENV = {"SEMSEARCH_BACKEND": "elasticsearch", "SEMSEARCH_OPENSEARCH_URL": ES_URL}


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session", autouse=True)
def services(settings):
    client = make_client(settings)
    try:
        plugins = client.cat.plugins(format="json")
    except Exception as exc:  # noqa: BLE001 - any failure means the node is not usable
        pytest.fail(f"OpenSearch not reachable at {settings.opensearch_url} ({exc}); run scripts/services.sh up",
                    pytrace=False)
    assert any(p["component"] == "opensearch-knn" for p in plugins), "the k-NN plugin is not installed"
    broker = os.environ.get("SEMSEARCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(broker).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis not reachable at {broker} ({exc}); run scripts/services.sh up", pytrace=False)
    return client


@pytest.fixture(scope="session")
def encoder(vector_cache):
    """The default model on the CPU, loaded once for every test that encodes in the test process. It shares the
    session's vector cache: texts the session already encoded (dbpedia-entity) are read back, not recomputed."""
    from semsearch import Encoder  # noqa: PLC0415

    return Encoder(device="cpu", vector_cache=vector_cache)


@pytest.fixture(scope="session")
def es_settings() -> Settings:
    return Settings(backend="elasticsearch", opensearch_url=ES_URL)


@pytest.fixture(scope="session")
def es(es_settings):
    """A client of the Elasticsearch node; fails (never skips) when it is not running."""
    client = make_client(es_settings)
    try:
        version = client.info()["version"]
    except Exception as exc:  # noqa: BLE001 - any failure means the node is not usable
        pytest.fail(f"Elasticsearch not reachable at {ES_URL} ({exc}); run scripts/services.sh up --engine "
                    "elasticsearch", pytrace=False)
    assert version.get("distribution") in (None, "elasticsearch"), version
    return client


@pytest.fixture()
def client(services):
    return services


@pytest.fixture()
def index_name(client):
    """A unique index per test, deleted afterwards (never a wildcard delete)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


def versioned_names(client, prefix: str = "test_"):
    """Yields a maker of unique index names, then deletes each name made, its versions (NAME-v1…) and what
    an alias of that name points at: by name, never by wildcard. For ``yield from`` in a fixture."""
    made: list[str] = []

    def make() -> str:
        made.append(f"{prefix}{uuid.uuid4().hex[:12]}")
        return made[-1]

    yield make
    for base in made:
        if client.indices.exists_alias(name=base):
            for concrete in client.indices.get_alias(name=base):
                client.indices.delete(index=concrete, ignore_unavailable=True)
        for index in (base, *(f"{base}-v{version}" for version in range(1, 5))):
            client.indices.delete(index=index, ignore_unavailable=True)


COMMAND_LINE = CommandLine()


@pytest.fixture(scope="session", autouse=True)
def command_line():
    """The forking server behind run_cli, started with the session (so it takes the session's environment,
    never one a test has patched) and stopped with it."""
    COMMAND_LINE.start()
    yield COMMAND_LINE
    COMMAND_LINE.close()


def run_cli(*args: str, input: str | None = None, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """The real command line, each command in its own process, as a user runs it: forked from a process that
    has imported semsearch already (cli_zygote.py), so that a command costs its work, not seconds of imports."""
    return COMMAND_LINE.run(list(args), input=input, env={**os.environ, **(env or {})}, cwd=cwd, timeout=1800)


def last_json_line(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


COLLECTIONS = Path(__file__).resolve().parents[2] / "benchmarks" / "collections"


ENCODING_SOURCES = Path(__file__).resolve().parents[2] / "semsearch" / "encoding"
COLLECTION_VECTORS_KEPT_DAYS = 30


def encoding_digest() -> str:
    """What a vector depends on beyond the cache's own key (model fingerprint, precision, device kind, token ids): the
    code that computes it (semsearch/encoding) and the versions of torch and transformers (pure but for reading them)."""
    from importlib.metadata import version  # noqa: PLC0415

    digest = hashlib.blake2b(digest_size=8)
    for path in sorted(ENCODING_SOURCES.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for package in ("torch", "transformers"):
        digest.update(f"{package}=={version(package)}\0".encode())
    return digest.hexdigest()


@pytest.fixture(scope="session")
def collection_vectors() -> str:
    """The SEMSEARCH_VECTOR_CACHE file of the benchmark collections' ingests, kept between runs on this machine (under
    SEMSEARCH_CACHE/test-vectors, one file per encoding_digest): their tests are about fusion, ranking and the node's
    statistics, and the same texts through the same model and code give the same vectors. Any change to the encoding
    code, torch or transformers names a new file, so what a change computes is never masked by an older vector (the
    model's weights are in the cache's own key). Every other ingest of the tests (dbpedia-entity through the workers
    first) runs the model. SEMSEARCH_TEST_COLLECTION_VECTORS names another file; removing the folder makes a cold run."""
    given = os.environ.get("SEMSEARCH_TEST_COLLECTION_VECTORS")
    if given:
        return given
    folder = Path(os.environ.get("SEMSEARCH_CACHE") or Path.home() / ".cache" / "semsearch") / "test-vectors"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.sqlite*"):  # one not used for a month: an encoding long since changed
        try:
            if time.time() - old.stat().st_mtime > COLLECTION_VECTORS_KEPT_DAYS * 86400:
                old.unlink()
        except OSError:
            pass  # another part removed it first
    path = folder / f"{encoding_digest()}.sqlite"
    if path.exists():
        path.touch()
    return str(path)


def collection_index(collection: str):
    """A module fixture: the benchmark collection ``collection`` (benchmarks/collections) ingested with ``semsearch
    ingest`` into a fresh index on the real node, its name; deleted after. Its vectors come from the collections'
    cache where an earlier run computed them (collection_vectors)."""

    @pytest.fixture(scope="module")
    def index(services, tmp_path_factory, collection_vectors):
        name = f"test_{collection.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        result = run_cli("ingest", str(COLLECTIONS / collection / "corpus.jsonl"), "--index", name,
                         env={"SEMSEARCH_VECTOR_CACHE": collection_vectors}, cwd=tmp_path_factory.mktemp(collection))
        assert result.returncode == 0, result.stderr
        yield name
        services.indices.delete(index=name, ignore_unavailable=True)

    return index


def judged_candidates(index: str, collection: str, encoder) -> tuple[dict, dict]:
    """Each judged query of the benchmark collection ``collection`` with its candidate lists from the node's ``index``,
    asked once (what semsearch eval scores), and the judgments."""
    from semsearch import Searcher
    from semsearch.query.evaluation import judged_ids, load_qrels, load_queries

    folder = COLLECTIONS / collection
    queries, qrels = load_queries(folder / "queries.jsonl"), load_qrels(folder / "test.tsv")
    searcher = Searcher(encoder=encoder)
    return {query_id: searcher.candidates(queries[query_id], index=index)
            for query_id in judged_ids(queries, qrels)}, qrels


def eval_rankings_unlike_search(searcher, index: str, texts) -> dict[str, dict[str, int]]:
    """Per mode, the query texts for which what `semsearch eval` scores from the query's candidate lists
    (semsearch.query.evaluation.ranked_from_candidates) is not the ranking that mode's search gives on the node, each
    with the first place (0: the top) where the two differ."""
    from semsearch.query.evaluation import EVALUATED_DEPTH, ranked_from_candidates

    info = searcher.index_info(index)
    assert searcher.fuses_on_client(info)  # the default fusion: eval ranks hybrid from the lists
    fusion = searcher.fusion_for(info)
    unlike: dict[str, dict[str, int]] = {"keyword": {}, "semantic": {}, "hybrid": {}}
    for text in texts:
        lists = searcher.candidates(text, index=index, window=EVALUATED_DEPTH)
        for mode, texts_unlike in unlike.items():
            hits = searcher.search(text, index=index, k=EVALUATED_DEPTH, mode=mode, window=EVALUATED_DEPTH,
                                   source=False)
            searched = [hit.id for hit in hits]
            ranked = ranked_from_candidates(lists, mode, fusion, EVALUATED_DEPTH)
            if mode == "keyword" and ranked != searched:
                # BM25 ties come in the order of the segments' documents, which a merge in between may change
                scores = {hit.id: hit.score for hit in lists["keyword_any"]}
                if tie_free([(scores[i], i) for i in ranked]) == tie_free([(h.score, h.id) for h in hits]):
                    continue
            if ranked != searched:
                texts_unlike[text] = next((place for place, (a, b) in enumerate(zip(ranked, searched)) if a != b),
                                          min(len(ranked), len(searched)))
    return unlike


def corpus_document_terms(corpus: Path) -> float:
    """How many terms a corpus's documents hold on average over title and text, counted as the node's english analyzer
    (or the one semsearch installs on Elasticsearch) counts them: every token but English stop words."""
    from semsearch.query.plan import query_terms

    with corpus.open(encoding="utf-8") as lines:
        counts = [query_terms(document.get("title") or "", []) + query_terms(document.get("text") or "", [])
                  for document in map(json.loads, lines)]
    return sum(counts) / len(counts)


def mean_ndcg(candidates: dict, qrels: dict, mode: str) -> float:
    """Mean nDCG@10 of ``mode`` over :func:`judged_candidates`, as semsearch eval scores it: keyword mode is the
    any-term list, semantic mode the kNN list, hybrid their default fusion (as the fusion module's rules are now)."""
    from semsearch.query import fusion
    from semsearch.query.evaluation import ndcg_at_k
    from semsearch.query.plan import DEFAULT_FUSION, DEFAULT_WINDOW

    def ranking(lists) -> list[str]:
        if mode == "hybrid":
            return [item.id for item in fusion.fuse_hybrid(lists, DEFAULT_FUSION, DEFAULT_WINDOW)[:10]]
        return [hit.id for hit in lists["keyword_any" if mode == "keyword" else "semantic"][:10]]

    return sum(ndcg_at_k(ranking(lists), qrels[query_id]) for query_id, lists in candidates.items()) / len(candidates)


def mode_ndcgs(candidates: dict, qrels: dict) -> tuple[float, float, float]:
    """Keyword, semantic and hybrid mode's mean nDCG@10 over :func:`judged_candidates` (:func:`mean_ndcg` of each)."""
    keyword, semantic, hybrid = (mean_ndcg(candidates, qrels, mode) for mode in ("keyword", "semantic", "hybrid"))
    return keyword, semantic, hybrid


def keyword_ids(client, name, text, k=10):
    """Keyword mode's top k on either engine's ``client``, as :func:`tie_free` gives it."""
    body = keyword_body(text, ["title", "text"], k)  # what Searcher sends in keyword mode
    return tie_free([(h["_score"], h["_id"]) for h in client.search(index=name, body=body)["hits"]["hits"]])


def tie_free(ranked):
    """A top k of (score, id): its scores, and the ids above its last score in score order, a tie in id order. BM25
    breaks a tie by Lucene's document number, which a reindex renumbers: the order within a tie (dbpedia's
    near-identical river stubs), and which of the documents tied at the last score make the top k, change with it."""
    ranked = [(round(score, 5), doc_id) for score, doc_id in ranked]
    last = ranked[-1][0] if ranked else None
    return [score for score, _ in ranked], sorted((-score, doc_id) for score, doc_id in ranked if score != last)


BROKER = os.environ.get("SEMSEARCH_TEST_BROKER_URL", "redis://127.0.0.1:6379/1")


class Workers:
    """Real `semsearch worker` processes, each in its own process group (so it can be killed whole)."""

    def __init__(self, tmp_path: Path, env: dict | None = None) -> None:
        self.tmp_path = tmp_path
        self.env = env or {}  # on top of this process's environment
        self.procs: list[subprocess.Popen] = []

    def start(self, count: int = 1) -> None:
        # CPU workers on one machine share its cores: each takes its part, as a deployment would set it
        # (OMP_NUM_THREADS), rather than every worker running a thread per core against the others. The cores
        # are this test process's share where it has one (scripts/test.sh runs several at once): OpenMP threads
        # on cores another process holds wait at barriers.
        share = os.environ.get("OMP_NUM_THREADS", "").split(",")[0]  # OpenMP also allows "4,2" (nested)
        cores = int(share) if share.isdigit() else os.cpu_count() or 1
        threads = str(max(1, cores // count))
        for _ in range(count):
            log = open(self.tmp_path / f"worker-{len(self.procs)}.log", "w")
            proc = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "worker", "--device", "cpu",
                                     "--concurrency", "1"], stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, "SEMSEARCH_BROKER_URL": BROKER, "OMP_NUM_THREADS": threads,
                                         **self.env},
                                    start_new_session=True)
            proc.log_path = log.name
            self.procs.append(proc)
        deadline = time.monotonic() + 120
        for proc in self.procs:
            while "ready." not in Path(proc.log_path).read_text():
                assert proc.poll() is None, Path(proc.log_path).read_text()
                assert time.monotonic() < deadline, "worker not ready after 120s"
                time.sleep(0.5)

    def kill(self, proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture()
def broker():
    client = redis.Redis.from_url(BROKER)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture()
def workers(tmp_path, broker):
    pool = Workers(tmp_path)
    yield pool
    pool.stop()


@dataclass
class IngestedIndex:
    name: str
    result: subprocess.CompletedProcess  # the `semsearch ingest` run that filled it
    worker_logs: list[str]


@pytest.fixture(scope="session")
def vector_cache(tmp_path_factory) -> str:
    """One SEMSEARCH_VECTOR_CACHE file for the session. The first ingest of dbpedia-entity runs the model on
    every document and fills it; the later ingests of the same texts that name it (another engine, the
    multi-node clusters) read those vectors back, so they spend their time on what they test: writing.
    SEMSEARCH_TEST_VECTOR_CACHE names a file kept between runs (while working on those tests alone)."""
    return os.environ.get("SEMSEARCH_TEST_VECTOR_CACHE") or str(tmp_path_factory.mktemp("vector-cache") / "vectors.sqlite")


@pytest.fixture(scope="session")
def dbpedia(services, data_dir, tmp_path_factory, vector_cache) -> IngestedIndex:
    """dbpedia-entity (5,000 documents) ingested once per session through the ingest queue by two real
    Celery workers, with the real CLI. Tests that only read it share it; test_celery_ingest checks the ingest."""
    name = f"test_dbpedia_{uuid.uuid4().hex[:8]}"
    queue = redis.Redis.from_url(BROKER)
    queue.flushdb()
    pool = Workers(tmp_path_factory.mktemp("dbpedia-workers"), env={"SEMSEARCH_VECTOR_CACHE": vector_cache})
    try:
        pool.start(2)
        result = run_cli("ingest", str(data_dir / "dbpedia-entity" / "corpus.jsonl"), "--index", name,
                         env={"SEMSEARCH_BROKER_URL": BROKER}, cwd=tmp_path_factory.mktemp("dbpedia"))
        logs = [Path(proc.log_path).read_text() for proc in pool.procs]
    finally:
        pool.stop()
        queue.flushdb()
    yield IngestedIndex(name, result, logs)
    services.indices.delete(index=name, ignore_unavailable=True)


SERVICES_SH = Path(__file__).resolve().parents[2] / "scripts" / "services.sh"


def services_sh(*args: str, env: dict | None = None, timeout: float = 420) -> subprocess.CompletedProcess:
    """scripts/services.sh with ``args``, its output captured; ``env`` on top of this process's environment.
    The default timeout covers a restart: up to 60 s for the process to stop and 240 s to be healthy."""
    return subprocess.run(["bash", str(SERVICES_SH), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


SERVE_TOKEN = "test-serve-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    def __init__(self, url: str, proc: subprocess.Popen, log_path: str) -> None:
        self.url, self.proc, self.log_path = url, proc, log_path

    def call(self, method: str, path: str, body=None, *, token: str | None = SERVE_TOKEN, headers=None,
             raw: bytes | None = None):
        """(status, headers, body bytes) of one request."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as failed:
            return failed.code, dict(failed.headers), failed.read()


    def declared_only(self, method: str, path: str, length: int) -> tuple[int, bytes]:
        """(status, body) of a request that declares a body of ``length`` bytes and sends none. A size refused
        on its header alone is answered at once; sending the body would race the server closing the connection
        (a broken pipe in place of its answer)."""
        host, port = self.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.putrequest(method, path)
            for name, value in (("Content-Type", "application/json"), ("Content-Length", str(length)),
                                ("Authorization", f"Bearer {SERVE_TOKEN}")):
                conn.putheader(name, value)
            conn.endheaders()
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()


@contextmanager
def serving(folder: Path, env: dict | None = None) -> Iterator[Served]:
    """`semsearch serve` (a real uvicorn process) with a bearer token, on this session's cluster or the one
    ``env`` names; stopped after, and its log checked for the token."""
    port = free_port()
    log = folder / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "serve", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "SEMSEARCH_SERVE_TOKEN": SERVE_TOKEN, **(env or {})})
    server = Served(f"http://127.0.0.1:{port}", proc, str(log))
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if server.call("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "semsearch serve not ready after 120 s:\n" + log.read_text()
            time.sleep(0.5)
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert SERVE_TOKEN not in log.read_text()  # the token is never logged


@pytest.fixture(scope="session")
def served(services, tmp_path_factory):
    """`semsearch serve` on the session's services, shared by the tests of the service."""
    with serving(tmp_path_factory.mktemp("serve")) as server:
        yield server
