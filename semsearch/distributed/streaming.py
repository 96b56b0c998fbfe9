"""Streaming writes from application code: ``submit`` and ``delete`` one or a few documents at a time.

Operations go, in order, onto a per-index Redis list. One ``drain`` task at a time per index takes
them off in micro-batches (up to ``max_docs`` documents or ``max_wait`` seconds), so the GPU gets
full batches however small the submits are, and operations on one id keep their order. Taken
operations sit in a per-task processing list until written: a drain whose worker dies is
redelivered by Celery and finishes its own list first, so nothing taken is lost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis

from semsearch.distributed.celery_app import make_app
from semsearch.distributed.payloads import document_from_payload, document_payload
from semsearch.errors import ConfigurationError
from semsearch.settings import Settings
from semsearch.writing.documents import RESERVED_FIELDS, Document, DocumentSchema, Rejection, validate

DRAIN_TASK = "semsearch.drain_stream"
# Longer than a drain's run (see ingest/app.py): a lost scheduling flag expires by itself.
SCHEDULED_TTL = 600

# Atomically move up to ARGV[1] entries from the head of KEYS[1] to the tail of KEYS[2].
_TAKE_SCRIPT = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items > 0 then
  redis.call('LTRIM', KEYS[1], #items, -1)
  redis.call('RPUSH', KEYS[2], unpack(items))
end
return #items
"""


def stream_key(index: str) -> str:
    return f"semsearch:stream:{index}"


def scheduled_key(index: str) -> str:
    return f"semsearch:stream:{index}:scheduled"


def processing_key(index: str, task_id: str) -> str:
    return f"semsearch:stream:{index}:processing:{task_id}"


def stats_key(index: str) -> str:
    return f"semsearch:stream:{index}:stats"


def failures_key(index: str) -> str:
    return f"semsearch:stream:{index}:failures"


@dataclass
class SubmitResult:
    """Ids accepted onto the queue, and the documents refused with their reasons."""

    ids: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def _broker(settings: Settings) -> redis.Redis:
    if settings.broker_url is None:
        raise ConfigurationError("submit() and delete() go through the ingest queue: set SEMSEARCH_BROKER_URL "
                                 "(for a file, 'semsearch ingest' also runs without one)")
    return redis.Redis.from_url(settings.broker_url)


_ensured: set[tuple[str, str]] = set()


def _ensure_index_once(index: str, settings: Settings) -> None:
    """The first submit to an index in this process creates it (or checks its fingerprint)."""
    key = (settings.opensearch_url, index)
    if key in _ensured:
        return
    from semsearch.encoding.model_folder import fingerprint_of, load_model_spec  # noqa: PLC0415
    from semsearch.engines.opensearch import make_client  # noqa: PLC0415
    from semsearch.index.manage import ensure_index  # noqa: PLC0415

    ensure_index(make_client(settings), index, fingerprint=fingerprint_of(load_model_spec(settings.model)).as_dict(),
                 settings=settings)
    _ensured.add(key)


def _schedule_drain(client: redis.Redis, index: str, settings: Settings) -> None:
    if client.set(scheduled_key(index), "1", nx=True, ex=SCHEDULED_TTL):
        make_app(settings).send_task(DRAIN_TASK, kwargs={"index": index})


def submit(docs: dict[str, Any] | Iterable[dict[str, Any]], *, index: str, settings: Settings | None = None,
           schema: DocumentSchema | None = None) -> SubmitResult:
    """Queue documents for encoding and indexing; returns at once with their ids.

    Each document is validated as ``semsearch ingest`` validates a line; refused ones come back
    in ``SubmitResult.rejected`` (position in the call as the line number) and are not queued.
    """
    settings = settings or Settings()
    schema = schema or DocumentSchema.from_settings(settings, reserved=RESERVED_FIELDS)
    items = [docs] if isinstance(docs, dict) else list(docs)
    result = SubmitResult()
    entries: list[str] = []
    for position, obj in enumerate(items, start=1):
        checked = validate(obj, schema, "<submit>", position, raw=None)
        if isinstance(checked, Rejection):
            result.rejected.append(checked)
            continue
        entries.append(json.dumps({"op": "index", "doc": document_payload(checked)}, ensure_ascii=False))
        result.ids.append(checked.id)
    if entries:
        _ensure_index_once(index, settings)
        client = _broker(settings)
        client.rpush(stream_key(index), *entries)
        _schedule_drain(client, index, settings)
    return result


def delete(ids: str | Iterable[str], *, index: str, settings: Settings | None = None) -> None:
    """Queue deletes behind earlier submits, so a delete never overtakes the write of the same id."""
    settings = settings or Settings()
    id_list = [ids] if isinstance(ids, str) else [str(i) for i in ids]
    if not id_list:
        return
    client = _broker(settings)
    client.rpush(stream_key(index), *[json.dumps({"op": "delete", "id": i}) for i in id_list])
    _schedule_drain(client, index, settings)


def _groups(entries: list[dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Consecutive operations of the same kind, in order."""
    kind: str | None = None
    group: list[dict[str, Any]] = []
    for entry in entries:
        if entry["op"] != kind and group:
            yield kind, group  # type: ignore[misc]
            group = []
        kind = entry["op"]
        group.append(entry)
    if group:
        yield kind, group  # type: ignore[misc]


def latest_per_id(group: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of consecutive submits, the last one of each id, in the order of those last ones (pure): an
    earlier version of a document resubmitted in the same micro-batch is superseded before it is
    encoded, so the batch's writes (length-sorted, possibly concurrent) cannot reorder the two."""
    last = {entry["doc"]["id"]: position for position, entry in enumerate(group)}
    return [entry for position, entry in enumerate(group) if last[entry["doc"]["id"]] == position]


def drain(index: str, task_id: str, *, client: redis.Redis, write_documents, delete_ids, reschedule,
          max_docs: int = 256, max_wait: float = 0.05, max_run: float = 30.0) -> dict[str, Any]:
    """Take queued operations off the index's list in micro-batches and apply them, in order.

    ``write_documents(list[Document]) -> (indexed, failures)`` and ``delete_ids(list[str])`` do the
    writing (the worker passes its encoder and bulk writer); ``reschedule()`` queues a fresh drain when
    this one has run long enough. Returns counts and batch sizes.
    """
    take = client.register_script(_TAKE_SCRIPT)
    source, processing = stream_key(index), processing_key(index, task_id)
    batches: list[int] = []
    indexed = deleted = superseded = 0
    started = time.monotonic()
    while True:
        if client.llen(processing) == 0:
            # Micro-batch: wait briefly for the list to fill up to a full batch.
            deadline = time.monotonic() + max_wait
            while client.llen(source) < max_docs and time.monotonic() < deadline:
                time.sleep(0.005)
            take(keys=[source, processing], args=[max_docs])
        entries = [json.loads(raw) for raw in client.lrange(processing, 0, -1)]
        if not entries:
            # Nothing left: release the flag, then look once more so a submit racing with us is not stranded.
            client.delete(scheduled_key(index))
            if client.llen(source) == 0 or not client.set(scheduled_key(index), "1", nx=True, ex=SCHEDULED_TTL):
                break
            continue
        index_batches = index_documents = 0
        for kind, group in _groups(entries):
            if kind == "index":
                latest = latest_per_id(group)
                docs: list[Document] = [document_from_payload(e["doc"]) for e in latest]
                written, failures = write_documents(docs)
                indexed += written
                superseded += len(group) - len(latest)
                for doc_id, reason in failures:
                    client.rpush(failures_key(index), json.dumps({"id": doc_id, "reason": reason}))
                batches.append(len(docs))
                index_batches += 1
                index_documents += len(docs)
            else:
                delete_ids([e["id"] for e in group])
                deleted += len(group)
        client.delete(processing)
        client.hincrby(stats_key(index), "batches", index_batches)
        client.hincrby(stats_key(index), "documents", index_documents)
        if time.monotonic() - started > max_run:
            # Give the worker back to other tasks; a fresh drain continues with the rest.
            client.delete(scheduled_key(index))
            if client.llen(source) and client.set(scheduled_key(index), "1", nx=True, ex=SCHEDULED_TTL):
                reschedule()
            break
    return {"indexed": indexed, "deleted": deleted, "superseded": superseded, "batches": batches}
