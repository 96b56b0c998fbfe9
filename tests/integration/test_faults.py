"""Faults injected between semsearch and the real node, without touching the shared node itself.

- OpenSearch under pressure: a small fault proxy in front of 127.0.0.1:9200 answers 429 to whole
  ``_bulk`` requests, then rejects single items with 429 (those items never reach the node, as
  with a full write queue). The bulk writer must retry until every document is indexed exactly once.
- A document the mapping refuses: a permanent per-item error goes to the dead letter, the rest is
  indexed, and the exit status says so.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from semsearch.index.manage import ensure_index
from semsearch.engines.smile import HEADER as SMILE_HEADER
from semsearch.engines.smile import dumps as smile_dumps
from semsearch.encoding.model_folder import fingerprint_of, load_model_spec

from .conftest import run_cli

HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


class FaultProxy:
    """An HTTP proxy to the node that pushes back on ``_bulk`` like a node under pressure.

    The first ``reject_requests`` bulk requests get a whole-request 429; in the next
    ``reject_items_in`` ones every ``reject_every``-th item gets a per-item 429 and is not forwarded;
    everything else passes through unchanged.
    """

    def __init__(self, upstream: str, *, reject_requests: int = 2, reject_items_in: int = 3,
                 reject_every: int = 3) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port or 9200)
        self.reject_requests = reject_requests
        self.reject_items_in = reject_items_in
        self.reject_every = reject_every
        self.lock = threading.Lock()
        self.bulk_requests = 0
        self.rejected_requests = 0
        self.rejected_items = 0
        self.forwarded_items = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                if self.command == "POST" and urlsplit(self.path).path.endswith("/_bulk"):
                    status, content_type, data = proxy.bulk(self.path, body, headers)
                else:
                    status, content_type, data = proxy.forward(self.command, self.path, body, headers)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def forward(self, method: str, path: str, body: bytes, headers: dict) -> tuple[int, str, bytes]:
        connection = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type", "application/json"), response.read()
        finally:
            connection.close()

    def bulk(self, path: str, body: bytes, headers: dict) -> tuple[int, str, bytes]:
        with self.lock:
            self.bulk_requests += 1
            number = self.bulk_requests
        if number <= self.reject_requests:
            with self.lock:
                self.rejected_requests += 1
            error = {"error": {"type": "es_rejected_execution_exception",
                               "reason": "rejected execution of bulk request [fault proxy]"}, "status": 429}
            return 429, "application/json", json.dumps(error).encode()
        operations = _operations(body, headers)
        if number > self.reject_requests + self.reject_items_in:
            with self.lock:
                self.forwarded_items += len(operations)
            return self.forward("POST", path, body, headers)
        rejected = {i for i in range(len(operations)) if i % self.reject_every == 0}
        kept = [op for i, op in enumerate(operations) if i not in rejected]
        items: list[dict] = []
        if kept:
            status, content_type, data = self.forward("POST", path, b"".join(line for op in kept for line in op),
                                                      headers)
            if status != 200:
                return status, content_type, data
            items = json.loads(data)["items"]
        merged, forwarded = [], iter(items)
        for i, op in enumerate(operations):
            if i in rejected:
                # semsearch's Smile bodies only index; the writer reads items by position and status.
                kind, meta = ("index", {}) if op[0].startswith(SMILE_HEADER) else next(iter(json.loads(op[0]).items()))
                merged.append({kind: {"_index": meta.get("_index"), "_id": meta.get("_id"), "status": 429,
                                      "error": {"type": "es_rejected_execution_exception",
                                                "reason": "rejected execution of coordinating operation "
                                                          "[fault proxy]"}}})
            else:
                merged.append(next(forwarded))
        with self.lock:
            self.rejected_items += len(rejected)
            self.forwarded_items += len(kept)
        return 200, "application/json", json.dumps({"took": 1, "errors": True, "items": merged}).encode()

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _operations(body: bytes, headers: dict) -> list[list[bytes]]:
    """A bulk body as operations: [action line] or [action line, source line], separators kept.

    Smile bodies (semsearch's default) are documents ended by 0xFF, each action followed by its source."""
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if "smile" in content_type:
        documents = [part + b"\xff" for part in body.split(b"\xff") if part]
        assert all(d.startswith(SMILE_HEADER) for d in documents) and len(documents) % 2 == 0
        return [documents[i:i + 2] for i in range(0, len(documents), 2)]
    lines = [line + b"\n" for line in body.split(b"\n") if line.strip()]
    operations, i = [], 0
    while i < len(lines):
        kind = next(iter(json.loads(lines[i])))
        if kind == "delete":
            operations.append([lines[i]])
            i += 1
        else:
            operations.append([lines[i], lines[i + 1]])
            i += 2
    return operations


def corpus_slice(data_dir: Path, tmp_path: Path, count: int) -> Path:
    path = tmp_path / f"corpus-{count}.jsonl"
    with open(data_dir / "dbpedia-entity" / "corpus.jsonl", encoding="utf-8") as source:
        path.write_text("".join(line for _, line in zip(range(count), source)), encoding="utf-8")
    return path


def all_hits(client, index: str) -> list[dict]:
    body = {"size": 1000, "version": True, "_source": ["title"], "query": {"match_all": {}},
            "docvalue_fields": [], "sort": ["_doc"]}
    return client.search(index=index, body=body)["hits"]["hits"]


# Both write schedules (semsearch.writing.write_schedule): parts written while the next encodes by one
# thread, and whole batches written by concurrent requests (auto's choice beside a local cluster).
@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["while_encoding", "after_encoding"])
def test_429_under_pressure_is_retried_and_every_document_indexed_once(client, index_name, data_dir, tmp_path,
                                                                         settings, schedule):
    path = corpus_slice(data_dir, tmp_path, 150)
    with FaultProxy(settings.opensearch_url, reject_requests=2, reject_items_in=3, reject_every=3) as proxy:
        result = run_cli("ingest", str(path), "--index", index_name, "--batch-size", "25", cwd=tmp_path,
                         env={"SEMSEARCH_OPENSEARCH_URL": proxy.url, "SEMSEARCH_WRITE_SCHEDULE": schedule})
    assert result.returncode == 0, result.stderr
    assert "indexed 150 of 150" in result.stderr and "rejected 0, failed 0" in result.stderr, result.stderr
    retried = int(re.search(r"retried (\d+)", result.stderr).group(1))
    assert proxy.rejected_requests == 2 and proxy.rejected_items > 0
    assert retried == proxy.rejected_items  # every pushed-back item was sent again, and only those
    assert "waiting: OpenSearch answered 429" in result.stderr
    assert "documents pushed back (429/5xx)" in result.stderr
    assert proxy.forwarded_items == 150  # each document reached the node exactly once
    client.indices.refresh(index=index_name)
    expected = {json.loads(line)["_id"] for line in path.read_text().splitlines()}
    hits = all_hits(client, index_name)
    assert {h["_id"] for h in hits} == expected and len(hits) == 150
    assert {h["_version"] for h in hits} == {1}, "a document was written more than once"
    assert client.count(index=index_name, body={"query": {"exists": {"field": "embedding"}}})["count"] == 150
    print("figures:", json.dumps({"test": "429", "schedule": schedule, "documents": 150, "bulk_requests": proxy.bulk_requests,
                                  "rejected_requests": proxy.rejected_requests, "rejected_items": proxy.rejected_items,
                                  "retried": retried, "indexed": len(hits), "lost": 150 - len(hits)}))


def test_document_refused_by_the_mapping_is_dead_lettered_and_the_rest_indexed(client, index_name, tmp_path,
                                                                                 settings):
    ensure_index(client, index_name, fingerprint=fingerprint_of(load_model_spec(settings.model)).as_dict(),
                 settings=settings)
    client.indices.put_mapping(index=index_name, body={"properties": {"year": {"type": "integer"}}})
    path = tmp_path / "years.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in [
        {"_id": "y1", "title": "First", "text": "a film from 1999", "year": 1999},
        {"_id": "y2", "title": "Second", "text": "a year that is not a number", "year": "nineteen ninety"},
        {"_id": "y3", "title": "Third", "text": "a film from 2001", "year": 2001},
        {"_id": "y4", "title": "Fourth", "text": "no year at all"},
    ]) + "\n")
    dead = tmp_path / "dead.jsonl"
    result = run_cli("ingest", str(path), "--index", index_name, "--dead-letter", str(dead))
    assert result.returncode == 1, result.stderr
    assert "indexed 3 of 4" in result.stderr and "rejected 0, failed 1" in result.stderr, result.stderr
    assert f"{path}:2: refused by OpenSearch: mapper_parsing_exception" in result.stderr
    records = [json.loads(line) for line in dead.read_text().splitlines()]
    assert len(records) == 1
    assert (records[0]["file"], records[0]["line"], records[0]["id"]) == (str(path), 2, "y2")
    assert "mapper_parsing_exception" in records[0]["reason"] and "year" in records[0]["reason"]
    # The document itself is kept, its id where it was: mended, it can be ingested again.
    assert json.loads(records[0]["raw"]) == {"_id": "y2", "title": "Second", "text": "a year that is not a number",
                                             "year": "nineteen ninety"}
    client.indices.refresh(index=index_name)
    ids = {h["_id"] for h in all_hits(client, index_name)}
    assert ids == {"y1", "y3", "y4"}
    assert client.count(index=index_name, body={"query": {"exists": {"field": "embedding"}}})["count"] == 3
    print("figures:", json.dumps({"test": "mapping", "documents": 4, "indexed": len(ids), "dead_lettered": 1,
                                  "exit": result.returncode}))


@pytest.mark.parametrize("body, content_type, expected", [
    (b'{"index":{"_id":"a"}}\n{"x":1}\n{"delete":{"_id":"b"}}\n', "application/json", 2),
    (b"", "application/json", 0),
    (smile_dumps({"index": {"_id": "a"}}) + smile_dumps({"x": 1}) + smile_dumps({"index": {"_id": "b"}})
     + smile_dumps({"x": 2}), "application/smile", 2),
])
def test_fault_proxy_splits_bulk_bodies(body, content_type, expected):
    assert len(_operations(body, {"Content-Type": content_type})) == expected
