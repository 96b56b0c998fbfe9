"""Writing documents with their vectors through the bulk API: chunked, retried, nothing dropped."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import get_args

import numpy as np
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, SSLError, TransportError

from semsearch.engines import smile
from semsearch.engines.index_body import CONTENT_HASH_FIELD, ID_FIELD
from semsearch.engines.opensearch import cluster_error
from semsearch.errors import ClusterError
from semsearch.settings import BulkFormat, Settings
from semsearch.writing.documents import Document

log = logging.getLogger(__name__)

# Statuses that mean "try again later": back-pressure and gateways, never a bad document.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# Errors of a cluster that is moving a shard's primary (a node left or came back): retried like a 503,
# whatever status they come with (retry_on_primary_exception is a 500).
TRANSIENT_ERRORS = frozenset({"retry_on_primary_exception", "unavailable_shards_exception",
                              "no_shard_available_action_exception", "primary_missing_action_exception",
                              "node_not_connected_exception", "node_closed_exception",
                              "shard_not_in_primary_mode_exception"})


def is_transient(exc: TransportError) -> bool:
    """Whether a failed request is worth sending again as it was."""
    return exc.status_code in RETRYABLE_STATUSES or exc.error in TRANSIENT_ERRORS
# Seven decimals keep every float32 component to within 5e-8 and halve the JSON size of a vector.
VECTOR_DECIMALS = 7


BODY_FORMATS: tuple[str, ...] = get_args(BulkFormat)
# Answers stay JSON whatever the request's body is.
SMILE_HEADERS = {"content-type": smile.CONTENT_TYPE, "accept": "application/json"}


class SmileRefused(Exception):
    """The server (or a proxy before it) does not take Smile bulk bodies."""


def _refuses_smile(exc: TransportError) -> bool:
    """406/415, or a 400 about the content type: how servers and proxies refuse a body format (pure)."""
    if exc.status_code in (406, 415):
        return True
    return exc.status_code == 400 and "content-type" in str(exc.info or exc.error).lower()


def _is_write_block(outcome: dict) -> bool:
    """A write block (403) is temporary here: semsearch sets one while a blue/green copy catches up."""
    return outcome.get("status") == 403 and _error_type(outcome) == "cluster_block_exception"


def _error_type(outcome: dict) -> str | None:
    error = outcome.get("error")
    return error.get("type") if isinstance(error, dict) else None


def item_reason(outcome: dict) -> str:
    """Why the engine did not write one bulk item, as it said: ``type: reason (cause)``, or its status."""
    error = outcome.get("error") or {}
    if not isinstance(error, dict):  # a plain-text error: as it came
        return str(error)
    reason = f"{error.get('type', outcome.get('status', ''))}: {error.get('reason', '')}".strip().rstrip(":")
    caused = (error.get("caused_by") or {}).get("reason")
    return f"{reason} ({caused})" if caused else reason


def vector_to_json(vector: np.ndarray) -> str:
    return json.dumps(np.round(vector.astype(np.float64), VECTOR_DECIMALS).tolist(), separators=(",", ":"))


# A chunked document's windows: (vector, (start, end) character span in the document's text).
PassageVectors = list[tuple[np.ndarray, tuple[int, int]]]


def passages_json(doc: Document, passages: PassageVectors, vector_field: str) -> str:
    """The nested passages of a chunked document: position, text and vector of each window (pure)."""
    items = []
    for position, (vector, (start, end)) in enumerate(passages):
        head = json.dumps({"position": position, "text": doc.text[start:end]}, ensure_ascii=False,
                          separators=(",", ":"))
        items.append(f'{head[:-1]},"{vector_field}":{vector_to_json(vector)}}}')
    return "[" + ",".join(items) + "]"


def stored_source(doc: Document) -> dict:
    """The document's source with what semsearch keeps beside it: its content hash and its id (pure)."""
    return {**doc.source, CONTENT_HASH_FIELD: doc.content_hash, ID_FIELD: doc.id}


def write_action(index: str, doc_id: str, routing: str | None = None) -> dict:
    """Where a bulk operation goes: the index, the id, and the document's custom routing where it has one (pure)."""
    action = {"_index": index, "_id": doc_id}
    if routing is not None:
        action["routing"] = routing
    return action


def bulk_entry(index: str, doc: Document, vector: np.ndarray, vector_field: str,
               passages: PassageVectors | None = None, passages_field: str | None = None) -> str:
    """The two NDJSON lines that index one document with its vector, and its passages if chunked (pure). A
    document read from an index keeps its custom routing (the shard the application's reads look in)."""
    action = json.dumps({"index": write_action(index, doc.id, doc.routing)}, ensure_ascii=False)
    body = json.dumps(stored_source(doc), ensure_ascii=False, separators=(",", ":"))
    # Splice the vectors in as text: no float→str round trip per component through json.dumps.
    extra = f'"{vector_field}":{vector_to_json(vector)}'
    if passages and passages_field:
        extra += f',"{passages_field}":{passages_json(doc, passages, vector_field)}'
    body = f'{body[:-1]}{"," if len(body) > 2 else ""}{extra}}}'
    return f"{action}\n{body}\n"


def smile_bulk_entry(index: str, doc: Document, vector: np.ndarray, vector_field: str,
                     passages: PassageVectors | None = None, passages_field: str | None = None) -> bytes:
    """The two Smile documents that index one document with its vector (and passages): what
    :func:`bulk_entry` says, with each vector as raw float32 (pure; :class:`SmileUnsupported` when the
    source holds what Smile cannot carry here)."""
    source = stored_source(doc)
    source[vector_field] = np.asarray(vector, dtype=np.float32)
    if passages and passages_field:
        source[passages_field] = [{"position": position, "text": doc.text[start:end],
                                   vector_field: np.asarray(window, dtype=np.float32)}
                                  for position, (window, (start, end)) in enumerate(passages)]
    return smile.dumps({"index": write_action(index, doc.id, doc.routing)}) + smile.dumps(source)


def chunk_entries(entries: Sequence[str | bytes], max_docs: int, max_bytes: int) -> Iterator[list[int]]:
    """Positions of entries grouped so each request stays under both limits (pure)."""
    chunk: list[int] = []
    size = 0
    for i, entry in enumerate(entries):
        entry_bytes = len(entry) if isinstance(entry, bytes) else len(entry.encode("utf-8"))
        if chunk and (len(chunk) >= max_docs or size + entry_bytes > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(i)
        size += entry_bytes
    if chunk:
        yield chunk


@dataclass
class BulkResult:
    indexed: int = 0
    retried: int = 0
    failed: list[tuple[Document, str]] = field(default_factory=list)
    chunked: int = 0  # documents longer than the model's window, stored as several passages
    # Vector updates only (a backfill): ids whose update lost to a concurrent write, and documents deleted meanwhile.
    conflicts: list[str] = field(default_factory=list)
    gone: int = 0

    def add(self, other: BulkResult) -> None:
        self.indexed += other.indexed
        self.retried += other.retried
        self.failed.extend(other.failed)
        self.chunked += other.chunked
        self.conflicts.extend(other.conflicts)
        self.gone += other.gone


class BulkWriter:
    """Sends documents with vectors to one index.

    Items that fail with 429/502/503/504, and whole requests that fail to connect, are retried
    with bounded exponential backoff and jitter for up to ``max_wait`` seconds; only the failed
    items are sent again. Other per-item errors are permanent and come back in ``BulkResult.failed``.

    ``body_format``: ``smile`` (default) sends vectors as raw float32 in Smile bodies; a server or
    proxy that refuses Smile gets JSON from then on (vectors as decimal text), as does ``json``.
    """

    def __init__(self, client: OpenSearch, index: str, vector_field: str, *, max_docs: int = 500,
                 max_bytes: int = 8 * 1024 * 1024, max_wait: float = 300.0, initial_backoff: float = 0.5,
                 max_backoff: float = 30.0, refresh: bool | str = False,
                 on_wait: Callable[[str], None] | None = None, passages_field: str | None = None,
                 body_format: BulkFormat = "smile") -> None:
        if body_format not in BODY_FORMATS:
            raise ValueError(f"unknown bulk body format {body_format!r}; choose one of {', '.join(BODY_FORMATS)}")
        self.body_format = body_format
        self.client = client
        self.index = index
        self.vector_field = vector_field
        self.max_docs = max_docs
        self.max_bytes = max_bytes
        self.max_wait = max_wait
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.refresh = refresh
        self.passages_field = passages_field  # set: the index stores long documents as nested passages
        self.on_wait = on_wait or (lambda message: log.warning("%s", message))

    @classmethod
    def from_settings(cls, client: OpenSearch, index: str, vector_field: str, settings: Settings,
                      **options) -> BulkWriter:
        """A writer with the request sizes and body format ``settings`` give; ``options`` as for the constructor."""
        return cls(client, index, vector_field, max_docs=settings.bulk_max_docs, max_bytes=settings.bulk_max_bytes,
                   body_format=settings.bulk_format, **options)

    def write(self, docs: Sequence[Document], vectors: np.ndarray,
              passages: Sequence[PassageVectors | None] | None = None) -> BulkResult:
        if len(docs) != len(vectors):
            raise ValueError(f"{len(docs)} documents but {len(vectors)} vectors")
        passages = passages or [None] * len(docs)
        result = BulkResult(chunked=sum(1 for p in passages if p))
        result.add(self._write_chunks(docs, vectors, passages))
        return result

    def _write_chunks(self, docs: Sequence[Document], vectors: np.ndarray,
                      passages: Sequence[PassageVectors | None]) -> BulkResult:
        result = BulkResult()
        entries = self._entries(docs, vectors, passages)
        for positions in chunk_entries(entries, self.max_docs, self.max_bytes):
            try:
                result.add(self._send([docs[i] for i in positions], [entries[i] for i in positions]))
            except SmileRefused as refused:
                # Refused whole, so nothing of this request was written: from here on, JSON, in chunks
                # sized for JSON (its vectors are larger than Smile's).
                log.warning("%s refused a Smile bulk body (%s); sending JSON from now on", self.index, refused)
                self.body_format = "json"
                first = positions[0]
                result.add(self._write_chunks(docs[first:], vectors[first:], passages[first:]))
                break
        return result

    def _entries(self, docs: Sequence[Document], vectors: np.ndarray,
                 passages: Sequence[PassageVectors | None]) -> list[str] | list[bytes]:
        """Bulk entries of ``docs`` in this writer's body format."""
        if self.body_format == "smile":
            try:
                return [smile_bulk_entry(self.index, d, v, self.vector_field, p, self.passages_field)
                        for d, v, p in zip(docs, vectors, passages)]
            except smile.SmileUnsupported as exc:  # e.g. an integer beyond 64 bits: JSON carries it
                log.info("sending a batch of %s as JSON: %s", self.index, exc)
        return [bulk_entry(self.index, d, v, self.vector_field, p, self.passages_field)
                for d, v, p in zip(docs, vectors, passages)]

    def stored_hashes(self, ids: Sequence[str], routings: Mapping[str, str | None] | None = None) -> dict[str, str]:
        """Content hashes semsearch stored with these ids (absent ids are left out; ``routings``: the custom routing
        of those that have one); waits out outages."""
        started = time.monotonic()
        attempt = 0
        routings = routings or {}
        body = ({"docs": [write_action(self.index, i, routings.get(i)) for i in ids]} if any(routings.values())
                else {"ids": list(ids)})
        while True:
            try:
                response = self.client.mget(index=self.index, body=body, _source_includes=CONTENT_HASH_FIELD)
                break
            except (OSConnectionError, ConnectionTimeout) as exc:
                if isinstance(exc, SSLError):
                    raise cluster_error(exc, f"reading {self.index!r}") from exc
                self._wait(started, attempt, f"OpenSearch unreachable ({type(exc).__name__})")
            except TransportError as exc:
                if not is_transient(exc):
                    raise cluster_error(exc, f"reading {self.index!r}") from exc
                self._wait(started, attempt, f"OpenSearch answered {exc.status_code}")
            attempt += 1
        return {d["_id"]: d["_source"][CONTENT_HASH_FIELD] for d in response["docs"]
                if d.get("found") and CONTENT_HASH_FIELD in (d.get("_source") or {})}

    def delete(self, ids: Sequence[str], routings: Mapping[str, str | None] | None = None) -> BulkResult:
        """Delete documents by id (``routings``: the custom routing of those that have one); an id already gone counts
        as deleted."""
        docs = [Document(id=i, source={}, text="", content_hash="") for i in ids]
        entries = [json.dumps({"delete": write_action(self.index, i, (routings or {}).get(i))}, ensure_ascii=False)
                   + "\n" for i in ids]
        result = BulkResult()
        for positions in chunk_entries(entries, self.max_docs, self.max_bytes):
            result.add(self._send([docs[i] for i in positions], [entries[i] for i in positions]))
        return result

    def _post(self, entries: list[str] | list[bytes]) -> dict:
        """One bulk request; Smile entries go as raw bytes with their content type."""
        if not isinstance(entries[0], bytes):
            return self.client.bulk(body="".join(entries), refresh=self.refresh)
        params = {"refresh": str(self.refresh).lower()} if self.refresh else None
        perform = getattr(self.client, "perform_request", None) or self.client.transport.perform_request
        try:
            return perform("POST", "/_bulk", params=params, body=b"".join(entries), headers=SMILE_HEADERS)
        except TransportError as exc:
            if _refuses_smile(exc):
                raise SmileRefused(f"{exc.status_code} {exc.error}") from exc
            raise

    def _send(self, docs: list[Document], entries: list[str] | list[bytes]) -> BulkResult:
        result = BulkResult()
        started = time.monotonic()
        attempt = 0
        while docs:
            try:
                response = self._post(entries)
            except (OSConnectionError, ConnectionTimeout) as exc:
                if isinstance(exc, SSLError):  # a certificate problem does not go away by waiting
                    raise cluster_error(exc, f"bulk request to {self.index!r}") from exc
                self._wait(started, attempt, f"OpenSearch unreachable ({type(exc).__name__})")
                attempt += 1
                continue
            except TransportError as exc:
                if is_transient(exc):
                    self._wait(started, attempt, f"OpenSearch answered {exc.status_code}")
                    attempt += 1
                    continue
                raise cluster_error(exc, f"bulk request to {self.index!r}") from exc
            retry_docs: list[Document] = []
            retry_entries: list[str] = []
            pushback = ""  # the first item's reason, so that a wait that goes on says what it waits for
            for doc, entry, item in zip(docs, entries, response["items"]):
                operation, outcome = next(iter(item.items()))
                status = outcome.get("status", 0)
                if 200 <= status < 300 or (operation == "delete" and status == 404):
                    result.indexed += 1
                elif (status in RETRYABLE_STATUSES or _is_write_block(outcome)
                      or _error_type(outcome) in TRANSIENT_ERRORS):
                    retry_docs.append(doc)
                    retry_entries.append(entry)
                    pushback = pushback or item_reason(outcome)
                else:
                    result.failed.append((doc, item_reason(outcome)))
            if retry_docs:
                result.retried += len(retry_docs)
                self._wait(started, attempt, f"{len(retry_docs)} documents pushed back (429/5xx): {pushback}")
                attempt += 1
            docs, entries = retry_docs, retry_entries
        return result

    def _wait(self, started: float, attempt: int, why: str) -> None:
        waited = time.monotonic() - started
        if waited >= self.max_wait:
            raise ClusterError(f"{why}; gave up after {waited:.0f}s of retries")
        delay = min(self.max_backoff, self.initial_backoff * 2**attempt) * random.uniform(0.5, 1.0)
        self.on_wait(f"{why}; retrying in {delay:.1f}s")
        time.sleep(delay)
