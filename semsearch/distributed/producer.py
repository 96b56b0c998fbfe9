"""The producer side of Celery ingest: batches out to the workers, results back, nothing lost.

Documents carry deterministic ids, so sending a batch twice writes the same documents: a batch
whose result does not come back in time (its worker died, Redis lost it) is simply sent again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from celery import Celery
from celery.result import AsyncResult
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from semsearch.distributed.payloads import document_payload, result_from_payload
from semsearch.errors import ClusterError
from semsearch.writing.bulk import BulkResult, BulkWriter
from semsearch.writing.documents import DeadLetterFile, Document, Rejection
from semsearch.writing.pipeline import IngestReport, read_batches, skipping_existing

log = logging.getLogger(__name__)
BROKER_ERRORS = (OperationalError, RedisConnectionError, RedisTimeoutError, ConnectionError)


@dataclass
class _Pending:
    docs: list[Document]
    result: AsyncResult
    sent_at: float
    attempts: int = 1
    payload: dict = field(default_factory=dict)


class BrokerRetry:
    """Calls that wait out a broker outage (Redis restarting) for up to ``max_wait`` seconds."""

    def __init__(self, on_wait: Callable[[str], None], max_wait: float = 300.0) -> None:
        self.on_wait = on_wait
        self.max_wait = max_wait

    def __call__(self, call: Callable[[], object]):
        started = time.monotonic()
        delay = 0.5
        while True:
            try:
                return call()
            except BROKER_ERRORS as exc:
                waited = time.monotonic() - started
                if waited > self.max_wait:
                    raise ClusterError(f"the ingest queue (Redis) stayed unreachable for {waited:.0f}s: {exc}") from exc
                self.on_wait(f"Redis unreachable ({type(exc).__name__}); retrying in {delay:.1f}s")
                time.sleep(delay)
                delay = min(delay * 2, 10.0)


# Documents per queued task: small enough that a lost worker costs little work to redo, and that
# several workers share a file; a worker sorts them by length as one batch and writes it in parts.
TASK_BATCH_DOCS = 256


def warn_if_no_workers(app: Celery, say: Callable[[str], None]) -> None:
    """Batches wait in the queue until a worker takes them: say so rather than wait in silence."""
    try:
        replies = app.control.ping(timeout=1.0)
    except BROKER_ERRORS:
        return  # the send below waits for the broker and says so
    if not replies:
        say("no semsearch worker answers on the ingest queue yet; batches wait in Redis until one starts "
            "('semsearch worker'), or unset SEMSEARCH_BROKER_URL to ingest in this process")


def run_distributed(items: Iterable[Document | Rejection], *, app: Celery, index: str, vector_field: str,
                    dead_letter: DeadLetterFile, batch_docs: int = TASK_BATCH_DOCS, batch_bytes: int = 1 << 20,
                    max_in_flight: int = 8, resend_after: float = 360.0, max_attempts: int = 3,
                    progress: Callable[[int], None] | None = None,
                    on_wait: Callable[[str], None] | None = None,
                    existing: BulkWriter | None = None, id_field: str = "_id", writes: str = "documents",
                    on_result: Callable[[BulkResult], None] | None = None) -> IngestReport:
    """Ingest through the workers; returns when every batch has a final outcome.

    ``existing``: a writer for the index, to skip documents it already holds with the same content.
    ``writes``: ``documents`` (whole), or ``vectors`` (updates of documents read from the index: a backfill).
    ``on_result``: sees each batch's result as it comes back (a backfill counts its lost updates there).
    """
    report = IngestReport(dead_letter=str(dead_letter.path), id_field=id_field)
    started = time.monotonic()
    retry = BrokerRetry(on_wait or (lambda message: log.warning("%s", message)))
    pending: list[_Pending] = []

    def send(docs: list[Document], attempts: int = 1) -> _Pending:
        payload = {"index": index, "vector_field": vector_field, "docs": [document_payload(d, writes) for d in docs]}
        if writes != "documents":  # an ingest's message stays as before: workers of an older release take it
            payload["writes"] = writes
        result = retry(lambda: app.send_task("semsearch.encode_batch", kwargs=payload))
        return _Pending(docs, result, time.monotonic(), attempts, payload)

    def settle_ready() -> None:
        for item in list(pending):
            state = retry(lambda item=item: item.result.state)
            if state == "SUCCESS":
                pending.remove(item)
                outcome = result_from_payload(retry(lambda item=item: item.result.result), item.docs)
                item.result.forget()
                report.add(outcome, dead_letter)
                if on_result is not None:
                    on_result(outcome)
                if progress is not None:
                    progress(outcome.indexed)
            elif state == "FAILURE" or time.monotonic() - item.sent_at > resend_after:
                pending.remove(item)
                reason = (f"worker error: {item.result.result!r}" if state == "FAILURE"
                          else f"no result after {resend_after:.0f}s")
                if item.attempts >= max_attempts:
                    for doc in item.docs:
                        report.fail(doc, f"{reason} (after {item.attempts} attempts)", dead_letter)
                    continue
                log.warning("batch of %d documents: %s; sending it again", len(item.docs), reason)
                report.retried += len(item.docs)
                pending.append(send(item.docs, item.attempts + 1))

    warn_if_no_workers(app, on_wait or (lambda message: log.warning("%s", message)))
    batches = read_batches(items, report, dead_letter, batch_docs, batch_bytes)
    if existing is not None:
        batches = skipping_existing(batches, existing, report, progress)
    for batch in batches:
        # Backpressure: a bounded number of batches in flight, so memory does not grow with the file.
        while len(pending) >= max_in_flight:
            settle_ready()
            if len(pending) >= max_in_flight:
                time.sleep(0.05)
        pending.append(send(batch))
    while pending:
        settle_ready()
        if pending:
            time.sleep(0.05)
    report.elapsed = time.monotonic() - started
    if dead_letter.count == 0:
        report.dead_letter = None
    return report
