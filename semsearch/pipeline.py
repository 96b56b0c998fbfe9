"""The ingest pipeline: documents → batches → encoder → bulk writer, with a report at the end.

The same batch step (:func:`encode_and_write`) runs in-process here and inside Celery workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .bulk import BulkResult, BulkWriter, PassageVectors
from .documents import DeadLetterFile, Document, Rejection
from .encoder import Encoder
from .passages import DEFAULT_OVERLAP


DEFAULT_CHUNK_OVERLAP = DEFAULT_OVERLAP


@dataclass
class IngestReport:
    """The closing summary of an ingest run."""

    read: int = 0
    indexed: int = 0
    rejected: int = 0  # bad input lines
    failed: int = 0  # refused by the cluster for good
    retried: int = 0
    skipped: int = 0  # already in the index with the same content (a resumed run)
    chunked: int = 0  # documents longer than the model's window, stored as several passages
    elapsed: float = 0.0
    dead_letter: str | None = None
    failures: list[str] = field(default_factory=list)  # first few reasons, for the summary

    def reject(self, rejection: Rejection, dead_letter: DeadLetterFile) -> None:
        """Count a bad input line and dead-letter it."""
        self.rejected += 1
        self._dead_letter(rejection, dead_letter)

    def add(self, result: BulkResult, dead_letter: DeadLetterFile) -> None:
        """Count a written batch; documents the cluster refused for good are dead-lettered."""
        self.indexed += result.indexed
        self.retried += result.retried
        self.chunked += result.chunked
        for doc, reason in result.failed:
            self.fail(doc, f"refused by OpenSearch: {reason}", dead_letter)

    def fail(self, doc: Document, reason: str, dead_letter: DeadLetterFile) -> None:
        """Count a document that could not be indexed for good, and dead-letter it."""
        self.failed += 1
        self._dead_letter(rejection_for(doc, reason), dead_letter)

    def _dead_letter(self, rejection: Rejection, dead_letter: DeadLetterFile) -> None:
        dead_letter.write(rejection)
        if len(self.failures) < 20:
            self.failures.append(rejection.describe())

    @property
    def ok(self) -> bool:
        """Every document read was indexed."""
        return self.rejected == 0 and self.failed == 0 and self.indexed + self.skipped == self.read

    @property
    def docs_per_second(self) -> float:
        return self.indexed / self.elapsed if self.elapsed > 0 else 0.0

    def as_dict(self) -> dict:
        return {"read": self.read, "indexed": self.indexed, "rejected": self.rejected, "failed": self.failed,
                "retried": self.retried, "skipped": self.skipped, "chunked": self.chunked, "elapsed_s": round(self.elapsed, 3),
                "docs_per_s": round(self.docs_per_second, 1), "dead_letter": self.dead_letter}


def encode_batch(batch: list[Document], encoder: Encoder, *, chunk: bool, overlap: int = DEFAULT_CHUNK_OVERLAP
                 ) -> tuple[np.ndarray, list[PassageVectors | None] | None]:
    """Document vectors, and for documents longer than the model's window, all their passages.

    A document's own vector is its first window: the same as truncation would give, so an index
    without passages and one with them rank short documents identically.
    """
    if not chunk:
        return encoder.encode_documents([d.text for d in batch]), None
    encoded = encoder.encode_passages([d.text for d in batch], overlap=overlap)
    per_doc: list[PassageVectors] = [[] for _ in batch]
    for vector, owner, span in zip(encoded.vectors, encoded.owner, encoded.spans):
        per_doc[owner].append((vector, span))
    vectors = np.stack([windows[0][0] for windows in per_doc]) if per_doc else encoded.vectors
    return vectors, [windows if len(windows) > 1 else None for windows in per_doc]


def encode_and_write(batches: Iterable[list[Document]], encoder: Encoder, writer: BulkWriter,
                     chunk_overlap: int = DEFAULT_CHUNK_OVERLAP) -> Iterator[tuple[list[Document], BulkResult]]:
    """Encode and write batches: the unit of work of every ingest path, in-process or in a worker.

    One writer thread: the cluster works on batch N while this thread encodes batch N+1, and at
    most two batches wait for the cluster, so memory does not grow with the input.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="semsearch-bulk") as pool:
        in_flight: list[tuple[list[Document], Future[BulkResult]]] = []
        for batch in batches:
            vectors, passages = encode_batch(batch, encoder, chunk=writer.passages_field is not None,
                                             overlap=chunk_overlap)
            while len(in_flight) >= 2:
                done, future = in_flight.pop(0)
                yield done, future.result()
            in_flight.append((batch, pool.submit(writer.write, batch, vectors, passages)))
        for done, future in in_flight:
            yield done, future.result()


def batched(items: Iterable[Document | Rejection], max_docs: int, max_bytes: int,
            on_rejection: Callable[[Rejection], None]) -> Iterator[list[Document]]:
    """Group valid documents by count and text bytes; hand rejections to ``on_rejection`` as they come."""
    batch: list[Document] = []
    size = 0
    for item in items:
        if isinstance(item, Rejection):
            on_rejection(item)
            continue
        batch.append(item)
        size += len(item.text)
        if len(batch) >= max_docs or size >= max_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def read_batches(items: Iterable[Document | Rejection], report: IngestReport, dead_letter: DeadLetterFile,
                 batch_docs: int, batch_bytes: int) -> Iterator[list[Document]]:
    """Batches of valid documents; every item read is counted, every rejection dead-lettered."""
    def reject(rejection: Rejection) -> None:
        report.read += 1
        report.reject(rejection, dead_letter)

    for batch in batched(items, batch_docs, batch_bytes, reject):
        report.read += len(batch)
        yield batch


def skipping_existing(batches: Iterable[list[Document]], writer: BulkWriter, report: IngestReport,
                      progress: Callable[[int], None] | None = None) -> Iterator[list[Document]]:
    """Batches without the documents the index already holds with the same content hash.

    The index's fingerprint was checked before the run, so an equal hash means an equal vector:
    re-running an interrupted ingest only encodes what is missing.
    """
    for batch in batches:
        stored = writer.stored_hashes([d.id for d in batch])
        todo = [d for d in batch if stored.get(d.id) != d.content_hash]
        skipped = len(batch) - len(todo)
        if skipped:
            report.skipped += skipped
            if progress is not None:
                progress(skipped)
        if todo:
            yield todo


def rejection_for(doc: Document, reason: str) -> Rejection:
    file, _, line = doc.origin.rpartition(":")
    return Rejection(file or "<app>", int(line) if line.isdigit() else 0, reason, id=doc.id)


def run_in_process(items: Iterable[Document | Rejection], *, encoder: Encoder, writer: BulkWriter,
                   dead_letter: DeadLetterFile, batch_docs: int = 256, batch_bytes: int = 1 << 20,
                   progress: Callable[[int], None] | None = None,
                   chunk_overlap: int = DEFAULT_CHUNK_OVERLAP, skip_existing: bool = True) -> IngestReport:
    """Ingest in this process (no broker configured)."""
    report = IngestReport(dead_letter=str(dead_letter.path))
    started = time.monotonic()

    batches = read_batches(items, report, dead_letter, batch_docs, batch_bytes)
    if skip_existing:
        batches = skipping_existing(batches, writer, report, progress)
    for _, result in encode_and_write(batches, encoder, writer, chunk_overlap):
        report.add(result, dead_letter)
        if progress is not None:
            progress(result.indexed)
    report.elapsed = time.monotonic() - started
    if dead_letter.count == 0:
        report.dead_letter = None
    return report
