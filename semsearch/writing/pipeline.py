"""The ingest pipeline: documents → batches → encoder → bulk writer, with a report at the end.

The same batch step (:func:`encode_and_write`) runs in-process here and inside Celery workers.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from semsearch.encoding.encoder import Encoder, Passages
from semsearch.index.passages import DEFAULT_OVERLAP
from semsearch.writing.bulk import BulkResult, BulkWriter, PassageVectors
from semsearch.writing.documents import DeadLetterFile, Document, Rejection
from semsearch.writing.write_schedule import after_encoding_writers

DEFAULT_CHUNK_OVERLAP = DEFAULT_OVERLAP
# Documents the encoder sorts by length at once in-process. Larger blocks pad less and leave fewer
# small tail batches: on 2 CPU cores with OpenSearch beside them, 2,000 documents went in at
# 0.75–0.83× the pure encoder's rate in blocks of 256, 0.83–0.85× in blocks of 1,024 (docs/benchmarks.md).
IN_PROCESS_BATCH_DOCS = 1024
IN_PROCESS_BATCH_BYTES = 4 << 20
# Documents per bulk request: written while a batch encodes, the last part of an input waits with the
# encoder idle, so it should be small; each request costs the cluster a little. Written after a batch,
# the batch is split between the writers in requests of at most this many.
WRITE_PART_DOCS = 128
MAX_PARTS_IN_FLIGHT = 4


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
    id_field: str = "_id"  # the input's id field: a dead-lettered document is written back with its id there

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
        self._dead_letter(rejection_for(doc, reason, self.id_field), dead_letter)

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


def documents_with_vectors(batch: list[Document], encoded: Passages
                           ) -> tuple[list[Document], np.ndarray, list[PassageVectors | None]]:
    """The documents ``encoded`` holds windows of, each with its first window's vector and, when it
    has several, all its windows (pure).

    A document's own vector is its first window: the same as truncation would give, so an index
    without passages and one with them rank short documents identically.
    """
    per_doc: dict[int, PassageVectors] = {}
    for vector, owner, span in zip(encoded.vectors, encoded.owner, encoded.spans):
        per_doc.setdefault(owner, []).append((vector, span))
    owners = list(per_doc)
    vectors = (np.stack([per_doc[o][0][0] for o in owners]) if owners
               else np.zeros((0, encoded.vectors.shape[1]), np.float32))
    return [batch[o] for o in owners], vectors, [per_doc[o] if len(per_doc[o]) > 1 else None for o in owners]


def encode_and_write(batches: Iterable[list[Document]], encoder: Encoder, writer: BulkWriter,
                     chunk_overlap: int = DEFAULT_CHUNK_OVERLAP, part_docs: int = WRITE_PART_DOCS, *,
                     write_while_encoding: bool = True, writers: int | None = None
                     ) -> Iterator[tuple[list[Document], BulkResult]]:
    """Encode and write batches: the unit of work of every ingest path, in-process or in a worker.

    Each batch is encoded longest documents first, and written in parts of ``part_docs`` documents.
    ``write_while_encoding`` (see :mod:`semsearch.writing.write_schedule`): parts are written as they come
    out of the encoder, by one writer thread: the cluster indexes part N while this thread encodes
    part N+1, and only the last part of the input is written with the encoder idle. At most
    ``MAX_PARTS_IN_FLIGHT`` parts wait for the cluster, so memory does not grow with the input.
    Otherwise each batch is encoded whole, then its parts are written by ``writers`` concurrent
    requests (default :func:`after_encoding_writers`) before the next batch encodes.
    Batches come back in the order they went in, each with the results of all its parts.
    """
    if not write_while_encoding:
        yield from _encode_then_write(batches, encoder, writer, chunk_overlap, part_docs,
                                      writers or after_encoding_writers())
        return
    chunk = writer.passages_field is not None
    waiting: deque[tuple[list[Document], list[Future[BulkResult]]]] = deque()
    in_flight: deque[Future[BulkResult]] = deque()

    def finished_batches(submitted: int) -> Iterator[tuple[list[Document], BulkResult]]:
        # Batches whose parts are all written, oldest first; of the last ``submitted`` batches, only
        # those whose every part has been handed to the writer can be whole.
        while len(waiting) > submitted and all(f.done() for f in waiting[0][1]):
            yield _collected(*waiting.popleft())

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="semsearch-bulk") as pool:
        try:
            for batch in batches:
                futures: list[Future[BulkResult]] = []
                waiting.append((batch, futures))
                for encoded in encoder.iter_passages([d.text for d in batch], overlap=chunk_overlap,
                                                     part_size=part_docs, first_only=not chunk):
                    docs, vectors, passages = documents_with_vectors(batch, encoded)
                    while len(in_flight) >= MAX_PARTS_IN_FLIGHT:
                        in_flight.popleft().result()
                    in_flight.append(pool.submit(writer.write, docs, vectors, passages if chunk else None))
                    futures.append(in_flight[-1])
                    yield from finished_batches(submitted=1)
                yield from finished_batches(submitted=0)
            while waiting:
                yield _collected(*waiting.popleft())
        except BaseException:
            # A failed write (or a caller that stops early) must not wait for the parts queued behind it.
            for future in in_flight:
                future.cancel()
            raise


def _encode_then_write(batches: Iterable[list[Document]], encoder: Encoder, writer: BulkWriter,
                       chunk_overlap: int, part_docs: int, writers: int) -> Iterator[tuple[list[Document], BulkResult]]:
    """encode_and_write for an encoder that shares its cores with the cluster: each batch encoded
    with every core, then written with ``writers`` concurrent bulk requests (the node indexes each
    on a core of its own) while the encoder waits."""
    chunk = writer.passages_field is not None
    with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="semsearch-bulk") as pool:
        for batch in batches:
            futures = []
            # The whole batch is one part of iter_passages; a small batch is still split between the
            # writers, so that every core indexes.
            for encoded in list(encoder.iter_passages([d.text for d in batch], overlap=chunk_overlap,
                                                      part_size=len(batch), first_only=not chunk)):
                docs, vectors, passages = documents_with_vectors(batch, encoded)
                size = max(1, min(part_docs, -(-len(docs) // writers)))
                futures += [pool.submit(writer.write, docs[i:i + size], vectors[i:i + size],
                                        passages[i:i + size] if chunk else None) for i in range(0, len(docs), size)]
            try:
                yield _collected(batch, futures)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise


def _collected(batch: list[Document], futures: list[Future[BulkResult]]) -> tuple[list[Document], BulkResult]:
    total = BulkResult()
    for future in futures:
        total.add(future.result())
    return batch, total


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


def rejection_for(doc: Document, reason: str, id_field: str = "_id") -> Rejection:
    """The dead letter of a document read whole but not indexed (the cluster refused it): its place, the reason,
    and the document itself, its id back in ``id_field``, so that it can be mended and ingested again (pure)."""
    file, _, line = doc.origin.rpartition(":")
    # An id made from the content hash is not written back: a mended text must get the id its new text makes.
    given = {id_field: doc.id} if doc.id != doc.content_hash else {}
    raw = json.dumps({**given, **doc.source}, ensure_ascii=False)
    return Rejection(file or "<app>", int(line) if line.isdigit() else 0, reason, raw=raw, id=doc.id, whole=True)


def run_in_process(items: Iterable[Document | Rejection], *, encoder: Encoder, writer: BulkWriter,
                   dead_letter: DeadLetterFile, batch_docs: int = IN_PROCESS_BATCH_DOCS,
                   batch_bytes: int = IN_PROCESS_BATCH_BYTES, progress: Callable[[int], None] | None = None,
                   chunk_overlap: int = DEFAULT_CHUNK_OVERLAP, skip_existing: bool = True,
                   write_while_encoding: bool = True, id_field: str = "_id") -> IngestReport:
    """Ingest in this process (no broker configured). ``write_while_encoding``: see
    :func:`encode_and_write` (the CLI decides it with :func:`semsearch.writing.write_schedule.write_while_encoding_for`)."""
    report = IngestReport(dead_letter=str(dead_letter.path), id_field=id_field)
    started = time.monotonic()

    batches = read_batches(items, report, dead_letter, batch_docs, batch_bytes)
    if skip_existing:
        batches = skipping_existing(batches, writer, report, progress)
    for _, result in encode_and_write(batches, encoder, writer, chunk_overlap,
                                      write_while_encoding=write_while_encoding):
        report.add(result, dead_letter)
        if progress is not None:
            progress(result.indexed)
    report.elapsed = time.monotonic() - started
    if dead_letter.count == 0:
        report.dead_letter = None
    return report
