"""Security against real services: TLS and authentication through a real TLS endpoint (nginx in front
of the node, scripts/tls-proxy.sh), secrets kept out of every output, JSON-only Celery with a real
worker on a Redis of our own, query text that cannot escape the match query, and hostile input
through the real CLI and ``semsearch.submit``.

The shared OpenSearch and Redis are never stopped: the Redis these tests use (and monitor) is a
``redis-server`` of their own on a free port.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from celery import Celery

import semsearch
from semsearch import Settings
from semsearch.engines.opensearch import connection_kwargs, make_client
from semsearch.writing.documents import DeadLetterFile, DocumentSchema, validate
from semsearch.errors import (
    AuthenticationError,
    CertificateVerificationError,
    ClientCertificateError,
    ClusterUnreachableError,
    ConfigurationError,
    SchemeMismatchError,
)
from semsearch.index.manage import ensure_index
from semsearch.encoding.model_folder import fingerprint_of, load_model_spec

from ..unit.test_hostile_input import line_numbers, write_hostile_file
from .conftest import free_port, run_cli

ROOT = Path(__file__).resolve().parents[2]
WRONG_PASSWORD = "wrong-" + uuid.uuid4().hex  # secrets too: they must not be printed either
WRONG_API_KEY = "wrongkey-" + uuid.uuid4().hex


@dataclass
class TLSProxy:
    folder: Path
    url: str
    mtls_url: str
    ca: str
    user: str
    password: str
    api_key: str
    client_cert: str
    client_key: str

    def env(self, **extra: str) -> dict:
        """Environment for a CLI run through the proxy; no credentials unless given."""
        return {"SEMSEARCH_OPENSEARCH_URL": self.url, "SEMSEARCH_CA_CERTS": self.ca, **extra}

    def settings(self, **extra) -> Settings:
        return Settings(opensearch_url=self.url, ca_certs=self.ca, **extra)


@pytest.fixture(scope="module")
def tls() -> TLSProxy:
    script = ROOT / "scripts" / "tls-proxy.sh"
    up = subprocess.run(["bash", str(script), "up"], capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, f"scripts/tls-proxy.sh up failed:\n{up.stderr}"
    folder = Path(subprocess.run(["bash", str(script), "dir"], capture_output=True, text=True).stdout.strip())
    port, mtls_port = os.environ.get("SEMSEARCH_TLS_PORT", "9443"), os.environ.get("SEMSEARCH_MTLS_PORT", "9444")
    read = lambda name: (folder / name).read_text().strip()  # noqa: E731
    return TLSProxy(folder, f"https://127.0.0.1:{port}", f"https://127.0.0.1:{mtls_port}", str(folder / "ca.pem"),
                    read("user"), read("password"), read("api-key"), str(folder / "client.pem"),
                    str(folder / "client.key"))


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory) -> dict:
    """A CA the proxy does not trust, and a client certificate it signed."""
    folder = tmp_path_factory.mktemp("other-ca")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(folder / "ca.key"), "-out",
            str(folder / "ca.pem"), "-days", "2", "-subj", "/CN=untrusted test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(folder / "client.key"), "-out",
            str(folder / "client.csr"), "-subj", "/CN=intruder")
    openssl("x509", "-req", "-in", str(folder / "client.csr"), "-CA", str(folder / "ca.pem"), "-CAkey",
            str(folder / "ca.key"), "-CAcreateserial", "-out", str(folder / "client.pem"), "-days", "2")
    return {"ca": str(folder / "ca.pem"), "cert": str(folder / "client.pem"), "key": str(folder / "client.key")}


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory):
    """A redis-server of our own on a free port (the shared one is never touched), with every
    command it receives recorded by MONITOR, so the tests can read what Celery sent."""
    folder = tmp_path_factory.mktemp("redis")
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(folder)],
                              stdout=open(folder / "redis.log", "w"), stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 30
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.RedisError:
            assert server.poll() is None and time.monotonic() < deadline, (folder / "redis.log").read_text()
            time.sleep(0.1)
    monitor_log = folder / "monitor.log"
    monitor = subprocess.Popen(["redis-cli", "-p", str(port), "monitor"], stdout=open(monitor_log, "w"),
                               stderr=subprocess.STDOUT)
    yield {"url": url, "monitor_log": monitor_log}
    monitor.terminate()
    monitor.wait(timeout=10)
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def tls_worker(own_redis, tls, tmp_path_factory):
    """One real `semsearch worker` that reaches OpenSearch through the TLS proxy with basic auth,
    logging at DEBUG (which includes the tasks it receives)."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {**os.environ, **tls.env(SEMSEARCH_OPENSEARCH_USER=tls.user, SEMSEARCH_OPENSEARCH_PASSWORD=tls.password,
                                   SEMSEARCH_BROKER_URL=own_redis["url"])}
    proc = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "worker", "--device", "cpu", "--concurrency", "1",
                             "--loglevel", "DEBUG"], stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 180
    while "ready." not in log_path.read_text():
        assert proc.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, "worker not ready after 180s"
        time.sleep(0.5)
    yield {"log": log_path, "proc": proc}
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture()
def fresh_index(client):
    names: list[str] = []

    def make() -> str:
        names.append(f"test_{uuid.uuid4().hex[:12]}")
        return names[-1]

    yield make
    for name in names:
        client.indices.delete(index=name, ignore_unavailable=True)


def fingerprint(settings: Settings) -> dict:
    return fingerprint_of(load_model_spec(settings.model)).as_dict()


def decoded_messages(monitor_log: Path) -> str:
    """The MONITOR record with every base64 run decoded: Celery sends task bodies in base64."""
    text = monitor_log.read_text(errors="replace")
    decoded = []
    for run in re.findall(r"[A-Za-z0-9+/]{24,}={0,2}", text):
        try:
            decoded.append(base64.b64decode(run + "=" * (-len(run) % 4)).decode("utf-8", "replace"))
        except ValueError:
            pass
    return text + "\n" + "\n".join(decoded)


# --- TLS and authentication -----------------------------------------------------------------------

def test_tls_with_basic_auth_api_key_and_client_certificate(tls):
    for settings in (tls.settings(opensearch_user=tls.user, opensearch_password=tls.password),
                     tls.settings(api_key=tls.api_key),
                     Settings(opensearch_url=tls.mtls_url, ca_certs=tls.ca, client_cert=tls.client_cert,
                              client_key=tls.client_key)):
        assert make_client(settings).info()["version"]["number"].startswith("2.")
    kwargs = connection_kwargs(tls.settings(api_key=tls.api_key))
    assert kwargs["headers"] == {"Authorization": f"ApiKey {tls.api_key}"}
    assert kwargs["ssl_context"].verify_mode.name == "CERT_REQUIRED" and kwargs["ssl_context"].check_hostname


def _failure(settings: Settings) -> Exception:
    with pytest.raises(Exception) as caught:
        make_client(settings).info()
    from semsearch.engines.opensearch import explain_transport_error  # noqa: PLC0415

    explained = explain_transport_error(caught.value, settings)
    assert explained is not None, repr(caught.value)
    return explained


def test_each_misconfiguration_gets_its_own_clear_error(tls, other_ca):
    cases = {
        "wrong password": (tls.settings(opensearch_user=tls.user, opensearch_password=WRONG_PASSWORD),
                           AuthenticationError, f"authentication failed (401): {tls.url} refused user 'semsearch'"),
        "no credentials": (tls.settings(), AuthenticationError, "requires credentials; set SEMSEARCH_OPENSEARCH_USER"),
        "wrong API key": (tls.settings(api_key=WRONG_API_KEY), AuthenticationError,
                          "refused the API key (SEMSEARCH_API_KEY)"),
        "wrong CA": (Settings(opensearch_url=tls.url, ca_certs=other_ca["ca"], api_key=tls.api_key),
                     CertificateVerificationError, "TLS certificate verification failed: "),
        "system CAs": (Settings(opensearch_url=tls.url, api_key=tls.api_key), CertificateVerificationError,
                       "set SEMSEARCH_CA_CERTS"),
        "plain HTTP to TLS": (Settings(opensearch_url=tls.url.replace("https", "http"), api_key=tls.api_key),
                              SchemeMismatchError, "speaks TLS: use https://"),
        "TLS to plain HTTP": (Settings(opensearch_url="https://127.0.0.1:9200"), SchemeMismatchError,
                              "does not speak TLS: use http://"),
        "no client certificate": (Settings(opensearch_url=tls.mtls_url, ca_certs=tls.ca), ClientCertificateError,
                                  "requires a client certificate"),
        "untrusted client certificate": (Settings(opensearch_url=tls.mtls_url, ca_certs=tls.ca,
                                                  client_cert=other_ca["cert"], client_key=other_ca["key"]),
                                         ClientCertificateError, "refused the client certificate"),
        "nothing listening": (Settings(opensearch_url=f"http://127.0.0.1:{free_port()}"), ClusterUnreachableError,
                              "connection refused"),
    }
    messages = {}
    for name, (settings, kind, fragment) in cases.items():
        error = _failure(settings)
        assert isinstance(error, kind), (name, error)
        assert fragment in str(error), (name, str(error))
        for secret in (tls.password, tls.api_key, WRONG_PASSWORD, WRONG_API_KEY):
            assert secret not in str(error)
        messages[name] = str(error)
    messages.pop("system CAs")  # the same cause as "wrong CA": a certificate nobody here trusts
    assert len(set(messages.values())) == len(messages), "two causes share a message"
    assert "self-signed certificate" in messages["wrong CA"] or "unable to get local issuer" in messages["wrong CA"]


def test_plain_http_to_a_tls_server_that_just_hangs_up(tls):
    """OpenSearch's own TLS layer closes a plaintext connection without an answer (nginx answers 400):
    semsearch then tries a TLS handshake itself to name the cause."""
    import ssl  # noqa: PLC0415
    import threading  # noqa: PLC0415

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.folder / "server.pem", tls.folder / "server.key")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)

    def serve() -> None:
        for _ in range(8):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True) as tls_conn:
                    tls_conn.recv(1)
            except (ssl.SSLError, OSError):
                pass
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        error = _failure(Settings(opensearch_url=f"http://127.0.0.1:{port}", request_timeout=5))
        assert isinstance(error, SchemeMismatchError) and "speaks TLS: use https://" in str(error), str(error)
    finally:
        listener.close()


def test_configuration_mistakes_are_refused_before_connecting(tls, tmp_path):
    with pytest.raises(ConfigurationError, match="SEMSEARCH_CA_CERTS=.*no such file"):
        connection_kwargs(Settings(opensearch_url=tls.url, ca_certs=str(tmp_path / "missing.pem")))
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="not a PEM file"):
        connection_kwargs(Settings(opensearch_url=tls.url, ca_certs=str(tmp_path / "junk.pem")))
    with pytest.raises(ConfigurationError, match="cannot load the client certificate"):
        connection_kwargs(Settings(opensearch_url=tls.url, ca_certs=tls.ca, client_cert=str(tmp_path / "junk.pem")))
    with pytest.raises(ConfigurationError, match="not both"):
        connection_kwargs(Settings(api_key="k" * 8, opensearch_user="u", opensearch_password="p" * 8))
    with pytest.raises(ConfigurationError, match="SEMSEARCH_OPENSEARCH_USER is not"):
        connection_kwargs(Settings(opensearch_password="p" * 8))
    shown = Settings(api_key=tls.api_key, opensearch_password=tls.password)
    assert tls.api_key not in repr(shown) and tls.password not in str(shown.model_dump())


def test_verification_can_be_switched_off_with_a_warning(tls, caplog, monkeypatch):
    monkeypatch.setattr("semsearch.engines.opensearch._warned", set())
    with caplog.at_level(logging.WARNING, logger="semsearch.engines.opensearch"):
        client = make_client(Settings(opensearch_url=tls.url, verify_certs=False, api_key=tls.api_key))
        assert client.info()["version"]["number"].startswith("2.")
    assert any("TLS certificate verification is off (SEMSEARCH_VERIFY_CERTS=false)" in r.getMessage()
               for r in caplog.records)
    monkeypatch.setenv("SEMSEARCH_VERIFY_CERTS", "false")
    assert Settings().verify_certs is False


def test_cli_prints_each_failure_as_one_line_and_exits_2(tls, other_ca):
    cases = [
        (tls.env(SEMSEARCH_OPENSEARCH_USER=tls.user, SEMSEARCH_OPENSEARCH_PASSWORD=WRONG_PASSWORD),
         "error: authentication failed (401)"),
        (tls.env(SEMSEARCH_API_KEY=WRONG_API_KEY), "error: authentication failed (401)"),
        (tls.env(SEMSEARCH_CA_CERTS=other_ca["ca"], SEMSEARCH_API_KEY=tls.api_key),
         "error: TLS certificate verification failed: "),
        ({"SEMSEARCH_OPENSEARCH_URL": tls.url.replace("https", "http"), "SEMSEARCH_OPENSEARCH_USER": tls.user,
          "SEMSEARCH_OPENSEARCH_PASSWORD": tls.password}, "error: the server at http://127.0.0.1"),
    ]
    lines = []
    for env, start in cases:
        result = run_cli("index", "info", "test_anything", env=env)
        assert result.returncode == 2, (env, result.stderr)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and errors[0].startswith(start), result.stderr
        assert "Traceback" not in result.stderr
        for secret in (tls.password, tls.api_key, WRONG_PASSWORD, WRONG_API_KEY):
            assert secret not in result.stdout + result.stderr
        lines.append(errors[0])
    assert "speaks TLS: use https://" in lines[3]
    assert "SEMSEARCH_CA_CERTS" in lines[2]
    assert len(set(lines)) == len(lines)


@pytest.mark.slow
def test_secrets_never_appear_in_output_logs_or_task_messages(tls, tls_worker, own_redis, client, fresh_index,
                                                                data_dir, tmp_path):
    index = fresh_index()
    path = tmp_path / "docs.jsonl"
    with open(data_dir / "dbpedia-entity" / "corpus.jsonl", encoding="utf-8") as source:
        path.write_text("".join(line for _, line in zip(range(40), source)), encoding="utf-8")
    with_password = tls.env(SEMSEARCH_OPENSEARCH_USER=tls.user, SEMSEARCH_OPENSEARCH_PASSWORD=tls.password)
    with_key = tls.env(SEMSEARCH_API_KEY=tls.api_key)
    host = tls.url.removeprefix("https://")
    runs = {
        "ingest through the workers": run_cli("-v", "ingest", str(path), "--index", index, cwd=tmp_path,
                                              env={**with_password, "SEMSEARCH_BROKER_URL": own_redis["url"]}),
        "search with an API key": run_cli("-v", "search", "fictional airlines", "--index", index, "--json",
                                          env=with_key),
        "index info, password in the URL": run_cli(
            "-v", "index", "info", index,
            env=tls.env(SEMSEARCH_OPENSEARCH_URL=f"https://{tls.user}:{tls.password}@{host}")),
        "wrong password in the URL": run_cli(
            "-v", "index", "info", index,
            env=tls.env(SEMSEARCH_OPENSEARCH_URL=f"https://{tls.user}:{WRONG_PASSWORD}@{host}")),
    }
    ingest = runs["ingest through the workers"]
    assert ingest.returncode == 0 and "indexed 40 of 40" in ingest.stderr, ingest.stderr
    assert runs["search with an API key"].returncode == 0, runs["search with an API key"].stderr
    assert len(runs["search with an API key"].stdout.splitlines()) == 10
    info = runs["index info, password in the URL"]
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["documents"] == 40
    failed = runs["wrong password in the URL"]
    assert failed.returncode == 2 and "authentication failed (401)" in failed.stderr, failed.stderr
    worker_log = tls_worker["log"].read_text()
    messages = decoded_messages(own_redis["monitor_log"])
    assert "semsearch.encode_batch" in worker_log and "Oceanic Airlines" in messages, \
        "the task messages must be readable here, or this check proves nothing"
    outputs = {**{name: r.stdout + r.stderr for name, r in runs.items()}, "worker log": worker_log,
               "Redis traffic (decoded)": messages}
    for secret in (tls.password, tls.api_key, WRONG_PASSWORD):
        for name, text in outputs.items():
            assert secret not in text, f"a secret appears in: {name}"
    print("figures:", json.dumps({"test": "secrets", "outputs": len(outputs),
                                  "bytes_scanned": sum(len(t) for t in outputs.values()), "secrets": 3}))


# --- Celery accepts JSON only -------------------------------------------------------------------

class Exploit:
    """Unpickling this runs a shell command: what a pickled message can do to a worker that accepts it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickled_message_is_refused_by_a_real_worker(tls_worker, own_redis, client, fresh_index, tmp_path,
                                                         settings):
    index = fresh_index()
    ensure_index(client, index, fingerprint=fingerprint(settings), settings=settings)
    marker = tmp_path / "pwned"
    attacker = Celery("attacker", broker=own_redis["url"], backend=own_redis["url"])
    attacker.conf.update(accept_content=["json", "pickle"], result_accept_content=["json", "pickle"])
    doc = {"id": "pickled", "source": {"text": "sent pickled", "payload": Exploit(marker)}, "text": "sent pickled",
           "content_hash": "0" * 32, "origin": "attack:1"}
    pickled = attacker.send_task("semsearch.encode_batch", kwargs={"index": index, "vector_field": "embedding",
                                                                   "docs": [doc]}, serializer="pickle",
                                 queue="encode")
    from ingest.app import make_app  # noqa: PLC0415

    honest = make_app(Settings(broker_url=own_redis["url"]))
    ok = {"id": "json", "source": {"text": "sent as JSON"}, "text": "sent as JSON", "content_hash": "1" * 32,
          "origin": "honest:1"}
    after = honest.send_task("semsearch.encode_batch", kwargs={"index": index, "vector_field": "embedding",
                                                               "docs": [ok]})
    assert after.get(timeout=180)["indexed"] == 1  # the worker is alive and took the next message
    log = tls_worker["log"].read_text()
    assert "untrusted content of type pickle" in log, log[-3000:]
    assert not marker.exists(), "the pickled payload was deserialised: code ran in the worker"
    client.indices.refresh(index=index)
    assert not client.exists(index=index, id="pickled") and client.exists(index=index, id="json")
    assert pickled.state == "PENDING"  # never run, so no result
    assert redis.Redis.from_url(own_redis["url"]).llen("encode") == 0  # not left to be redelivered
    print("figures:", json.dumps({"test": "pickle", "marker_created": marker.exists(), "state": pickled.state}))


# --- query text is text ---------------------------------------------------------------------------

QUERY_DOCS = [
    {"_id": "q1", "title": "Alpha", "text": "alpha bravo charlie"},
    {"_id": "q2", "title": "Delta", "text": "delta echo foxtrot"},
    {"_id": "q3", "title": "Golf", "text": "golf hotel india"},
    {"_id": "q4", "title": "Juliett", "text": "juliett kilo lima"},
]
HOSTILE_QUERIES = ["*:*", "*", "OR", "alpha OR", "NOT alpha", "title:delta", "text:*", "_exists_:text",
                   "\"alpha", "alpha\"", "\\", "\\\\\\", "alpha\\ bravo", "' OR '1'='1", "+golf -hotel",
                   "alpha~ AND charlie*", "(delta) OR (", "/.*/", "text:/.*/",
                   '"}}, "query": {"match_all": {}}, "x": {"y": "', '{"match_all": {}}', "]}}}}",
                   "{{ref}} ${jndi:ldap://x}", "\u0000", "  \t "]


def test_query_text_cannot_escape_the_match_query(tls, client, fresh_index, tmp_path):
    from semsearch.writing.bulk import BulkWriter  # noqa: PLC0415
    from semsearch.encoding.encoder import Encoder  # noqa: PLC0415
    from semsearch.writing.pipeline import run_in_process  # noqa: PLC0415
    from semsearch.query.search import Searcher  # noqa: PLC0415

    index = fresh_index()
    settings = tls.settings(api_key=tls.api_key)  # through the TLS proxy, from application code
    tls_client = make_client(settings)
    encoder = Encoder(device="cpu")
    info, _ = ensure_index(tls_client, index, fingerprint=encoder.fingerprint.as_dict(), settings=settings)
    schema = DocumentSchema(vector_field=info.vector_field)
    items = [validate(d, schema, "queries", i) for i, d in enumerate(QUERY_DOCS, start=1)]
    with DeadLetterFile(tmp_path / "dead.jsonl") as dead:
        report = run_in_process(items, encoder=encoder, writer=BulkWriter(tls_client, index, info.vector_field,
                                                                          refresh="wait_for"), dead_letter=dead)
    assert report.indexed == len(QUERY_DOCS)

    def tokens(text: str) -> set[str]:
        analyzed = client.indices.analyze(index=index, body={"field": "text", "text": text})
        return {t["token"] for t in analyzed["tokens"]}

    doc_tokens = {d["_id"]: tokens(d["title"]) | tokens(d["text"]) for d in QUERY_DOCS}
    searcher = Searcher(settings, client=tls_client, encoder=encoder)
    for query in HOSTILE_QUERIES:
        if not query.strip():  # nothing to search for: refused with a clear error, in every mode
            for mode in ("keyword", "semantic", "hybrid"):
                with pytest.raises(ConfigurationError, match="query text is empty"):
                    searcher.search(query, index=index, k=10, mode=mode)
            continue
        wanted = tokens(query)
        keyword = searcher.search(query, index=index, k=10, mode="keyword")
        assert all(doc_tokens[h.id] & wanted for h in keyword), (query, wanted, [h.id for h in keyword])
        assert len(keyword) == sum(1 for t in doc_tokens.values() if t & wanted), (query, [h.id for h in keyword])
        hybrid = searcher.search(query, index=index, k=10, mode="hybrid", explain=True)
        # The keyword list fused holds what keyword mode found (a contribution can be 0 or below under z-scores).
        from_keyword = [h.id for h in hybrid if h.explanation["keyword"]["rank"] is not None]
        assert sorted(from_keyword) == sorted(h.id for h in keyword), (query, from_keyword)
    assert [h.id for h in searcher.search("NOT alpha", index=index, mode="keyword")] == ["q1"]
    assert searcher.search("*:*", index=index, mode="keyword") == []
    print("figures:", json.dumps({"test": "queries", "queries": len(HOSTILE_QUERIES), "modes": 2}))


# --- hostile input through the CLI and submit -----------------------------------------------------

def test_hostile_file_through_the_cli(client, index_name, tmp_path):
    path = tmp_path / "hostile.jsonl"
    lines = write_hostile_file(path)
    dead = tmp_path / "dead.jsonl"
    result = run_cli("ingest", str(path), "--index", index_name, "--dead-letter", str(dead))
    assert result.returncode == 1, result.stderr
    valid = sum(1 for _, reason, _ in lines if reason is None)
    assert f"indexed {valid} of {len(lines)}" in result.stderr, result.stderr[-2000:]
    assert f"rejected {len(lines) - valid}, failed 0" in result.stderr
    records = [json.loads(line) for line in dead.read_text().splitlines()]
    expected = [(n, reason) for n, (_, reason, _) in zip(line_numbers(lines), lines) if reason is not None]
    assert [r["line"] for r in records] == [n for n, _ in expected]
    for record, (number, reason) in zip(records, expected):
        assert record["file"] == str(path) and reason in record["reason"], (number, record["reason"])
        assert len(record["raw"]) <= 2000
    client.indices.refresh(index=index_name)
    ids = {h["_id"] for h in client.search(index=index_name, body={"size": 50})["hits"]["hits"]}
    assert {"ok-1", "7", "ok-last"} <= ids and len(ids) == valid
    assert client.get(index=index_name, id="ok-1")["_source"]["text"] == "first valid document"  # the first wins
    print("figures:", json.dumps({"test": "hostile file", "lines": len(lines), "valid": valid,
                                  "rejected": len(records), "indexed": len(ids), "lost": valid - len(ids)}))


def test_hostile_submits_are_rejected_and_the_rest_indexed(tls_worker, own_redis, client, fresh_index):
    index = fresh_index()
    settings = Settings(broker_url=own_redis["url"])
    deep: dict = {"text": "deep"}
    current = deep
    for _ in range(100):
        current["n"] = {}
        current = current["n"]
    batch = [
        {"_id": "s1", "text": "a valid submitted document"},
        "not an object",
        {"_id": "s-type", "text": ["list"]},
        {"_id": "s-empty", "title": " ", "text": ""},
        {"_id": "s-huge", "text": "x" * (10 * 1024 * 1024)},
        {"_id": "s-vector", "text": "x", "embedding": [0.5] * 384},
        deep,
        {"_id": "s-nan", "text": "x", "score": float("nan")},
        {"_id": "s-time", "text": "x", "when": __import__("datetime").date(2024, 1, 1)},
        {"_id": "s-surrogate", "text": "\ud800"},
        {"_id": "dup", "text": "first version"},
        {"_id": "dup", "text": "second version"},  # a change stream: the later submit wins
        {"_id": "s2", "title": "Valid", "text": "another valid document"},
    ]
    result = semsearch.submit(batch, index=index, settings=settings)
    assert result.ids == ["s1", "dup", "dup", "s2"]
    reasons = {r.line: r.reason for r in result.rejected}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    for line, fragment in {2: "expected a JSON object", 3: "text field must be a string", 4: "no text",
                           5: "over the limit", 6: "reserved by semsearch", 7: "nested too deeply",
                           8: "nan is not valid JSON", 9: "type date is not JSON",
                           10: "unpaired surrogate"}.items():
        assert fragment in reasons[line], (line, reasons[line])
    assert all(r.file == "<submit>" for r in result.rejected)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        client.indices.refresh(index=index)
        if client.count(index=index)["count"] == 3 and \
                client.get(index=index, id="dup")["_source"]["text"] == "second version":
            break
        time.sleep(1)
    assert {h["_id"] for h in client.search(index=index, body={"size": 10})["hits"]["hits"]} == {"s1", "dup", "s2"}
    assert client.get(index=index, id="dup")["_source"]["text"] == "second version"
    print("figures:", json.dumps({"test": "hostile submit", "objects": len(batch), "rejected": len(result.rejected),
                                  "queued": len(result.ids), "indexed_ids": 3}))


def test_submit_survives_objects_json_cannot_serialise(own_redis, fresh_index):
    cyclic: dict = {"_id": "c", "text": "cycle"}
    cyclic["self"] = cyclic
    result = semsearch.submit([cyclic, {"_id": "t", "text": "x", ("a", "b"): 1}], index=fresh_index(),
                              settings=Settings(broker_url=own_redis["url"]))
    assert [r.line for r in result.rejected] == [1, 2]
