"""Vectors for documents already in the cluster: backfill an index in place, or copy one into another.

Both scan with a point in time in ``_id`` order, encode through the ingest pipeline
(:func:`semsearch.writing.pipeline.encode_and_write`, or the Celery workers), and checkpoint how far they got
after every written batch, so that a run that is killed resumes where it stopped and never encodes a
finished document again.

Checkpoints live in the cluster, one small document each in the hidden index ``.semsearch-checkpoints``,
keyed by the job and the index's uuid. The cluster rather than a local file, because a checkpoint
describes the cluster's data: a backfill resumed from another machine (a new pod, another CI runner)
finds it with the same credentials, and a deleted and recreated index (a new uuid) never resumes from
a stale one. A finished job deletes its checkpoint.

Elasticsearch 8 refuses to sort by ``_id``: there both scan in ``_shard_doc`` order, which means
nothing outside one point in time, so they keep no checkpoint. A rerun rescans and still never
encodes a finished document again (its vector and content hash say it is done), and a copy looks
each page of one index up in the other (:func:`semsearch.lifecycle.bodies.paged_diff`).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionTimeout, NotFoundError, TransportError

from semsearch.engines.index_body import CONTENT_HASH_FIELD, ID_FIELD
from semsearch.errors import ClusterError
from semsearch.index.manage import IndexInfo, check_fingerprint, ensure_id_field, get_index_info
from semsearch.index.passages import DEFAULT_OVERLAP
from semsearch.query.plan import vector_excludes
from semsearch.query.shards import shortfall
from semsearch.lifecycle.checkpoints import CheckpointStore
from semsearch.lifecycle.lease import one_at_a_time
from semsearch.lifecycle.bodies import (
    BY_ID,
    BY_SHARD_DOC,
    NO_VECTOR,
    backfill_query,
    check_source_kept,
    check_writable,
    checkpoint_id,
    lookup_body,
    merge_diff,
    missing_vector_count_body,
    paged_diff,
    scan_body,
    source_digest,
)
from semsearch.settings import BulkFormat
from semsearch.writing.bulk import BulkResult, BulkWriter, write_action
from semsearch.writing.documents import VersionedDocument, content_hash
from semsearch.writing.vector_updates import VectorUpdateWriter

log = logging.getLogger(__name__)

PAGE_SIZE = 500
# A checkpoint also advances over long runs of finished documents (nothing to encode there).
CUT_EVERY_SCANNED = 2000
# Documents whose update lost to a concurrent write are re-read by id in the next pass, up to this many.
MAX_RETRY_IDS = 10_000


# -- scanning -----------------------------------------------------------------------------------------

def scans_by_id(client: OpenSearch) -> bool:
    """Whether scans of this cluster run in ``_id`` order, which checkpoints need (not on Elasticsearch)."""
    return getattr(client, "backend", "opensearch") != "elasticsearch"


# A node restart costs one recovery; more in one scan means the cluster is not settling.
MAX_SHARD_RECOVERIES = 5
# Ids a backfill pass remembers sending to the encoder: far more than it ever has in flight (batches being
# encoded and written), so a rescan never sends one of those twice; a few MB at most.
RECENT_IDS = 100_000


class RecentIds:
    """The last ``limit`` ids added, for membership tests (oldest forgotten first)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, doc_id: str) -> None:
        self._ids[doc_id] = None
        if len(self._ids) > self.limit:
            self._ids.popitem(last=False)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._ids


class PointInTime:
    """A point-in-time scan of one index: in ``_id`` order where the cluster sorts by it (OpenSearch),
    else in ``_shard_doc`` order (Elasticsearch). Reopened if it expires: from the last id, or from
    the start in ``_shard_doc`` order (a resumed job skips what it finished, see :mod:`lifecycle_bodies`).
    """

    def __init__(self, client: OpenSearch, index: str, *, keep_alive: str = "5m", page_size: int = PAGE_SIZE):
        self.client = client
        self.index = index
        self.keep_alive = keep_alive
        self.page_size = page_size
        self.by_id = scans_by_id(client)
        self.pit_id: str | None = None
        self.shard_recoveries = 0  # times a page lost a shard and the scan went on under a new point in time

    def _open(self) -> None:
        # Never a point in time without some shard (OpenSearch would create one, and its pages would
        # silently lack that shard's documents); Elasticsearch refuses such a point in time by default.
        whole = {"allow_partial_pit_creation": "false"} if self.by_id else {}
        try:
            self.pit_id = self.client.create_pit(index=self.index, keep_alive=self.keep_alive, **whole)["pit_id"]
        except TransportError as exc:
            raise ClusterError(f"opening a point in time on {self.index!r} failed: {exc}") from exc

    def __enter__(self) -> PointInTime:
        self._open()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pit_id:
            try:
                self.client.delete_pit(body={"pit_id": [self.pit_id]})
            except TransportError:
                pass  # it expires by itself

    def _search(self, body: dict) -> dict | None:
        """One search under the point in time; None when it expired or lost a shard (it is reopened)."""
        try:
            with warnings.catch_warnings():
                # OpenSearch warns that sorting by _id is deprecated, once per scan, into the user's terminal;
                # it concerns semsearch's scan order (ID_FIELD is the way out), not anything the user can do.
                warnings.filterwarnings("ignore", message=".*fielddata on the _id field")
                response = self.client.search(body=body)
        except NotFoundError:
            log.warning("point in time on %s expired; reopening it", self.index)
            self._reopen()
            return None
        except TransportError as exc:
            raise ClusterError(f"scanning {self.index!r} failed: {exc}") from exc
        if why := shortfall(response):
            # A page missing a shard's documents would end the scan early, or fake deletions. The shard's
            # context was on a node that left (restarted, killed): once a copy of every shard serves again,
            # a new point in time goes on from the last page (by id), or from the top (a rescan skips what
            # is done, unencoded).
            self._recover(why)
            return None
        self.pit_id = response.get("pit_id", self.pit_id)
        return response

    def _reopen(self) -> None:
        if self.pit_id:  # what it still holds on the other nodes, freed now rather than at its keep-alive
            try:
                self.client.delete_pit(body={"pit_id": [self.pit_id]})
            except TransportError:
                pass
            self.pit_id = None
        if not self.by_id:  # the scan restarts from the top: it must see what this job wrote so far
            self.client.indices.refresh(index=self.index)
        self._open()

    def _recover(self, why: str) -> None:
        """A new point in time once every shard has a copy again; a failed try counts as one of the
        :data:`MAX_SHARD_RECOVERIES`, after which the scan fails with the reason."""
        while True:
            if self.shard_recoveries >= MAX_SHARD_RECOVERIES:
                raise ClusterError(f"scanning {self.index!r} failed: {why} (after {self.shard_recoveries} new points "
                                   "in time: is a node down for good?)")
            self.shard_recoveries += 1
            log.warning("scanning %s: %s (a node left?); reopening the point in time once every shard has a "
                        "copy again", self.index, why)
            self._wait_for_shards()
            try:
                self._reopen()
                return
            except (ClusterError, TransportError) as exc:
                why = f"reopening the point in time failed ({exc})"

    def _wait_for_shards(self, seconds: int = 120) -> None:
        """Until every primary of the index is assigned (yellow); gives up quietly after ``seconds``."""
        try:
            # request_timeout: opensearch-py would otherwise take the server's `timeout` as its own.
            self.client.cluster.health(index=self.index, wait_for_status="yellow", timeout=f"{seconds}s",
                                       request_timeout=seconds + 30)
        except TransportError as exc:
            log.warning("waiting for %s to serve every shard: %s", self.index, exc)

    def pages(self, *, query: dict | None = None, after: Sequence[Any] | None = None,
              source_excludes: Sequence[str] = (), seq_no: bool = False) -> Iterator[list[dict]]:
        """The scan's hits, a page at a time. ``after``: an ``_id`` to start behind (``_id`` order only)."""
        if after and not self.by_id:
            raise ValueError("a scan in _shard_doc order cannot start after an id")
        reopened = False
        while True:
            body = scan_body(self.pit_id or "", size=self.page_size, after=after, query=query,
                             source_excludes=source_excludes, keep_alive=self.keep_alive, seq_no=seq_no,
                             order=BY_ID if self.by_id else BY_SHARD_DOC)
            recoveries = self.shard_recoveries
            response = self._search(body)
            if response is None:
                if reopened and recoveries == self.shard_recoveries:
                    raise ClusterError(f"the point in time on {self.index!r} expired twice in a row")
                reopened = True
                if not self.by_id:
                    after = None  # _shard_doc positions mean nothing in the new point in time
                continue
            reopened = False
            hits = response["hits"]["hits"]
            if hits:
                yield hits
            if len(hits) < self.page_size:
                return
            after = hits[-1]["sort"]

    def hits(self, **scan) -> Iterator[dict]:
        """The scan's hits one by one (the arguments of :meth:`pages`)."""
        for page in self.pages(**scan):
            yield from page

    def lookup(self, ids: Sequence[str], *, source_excludes: Sequence[str] = (), with_source: bool = True
               ) -> list[dict]:
        """These documents as the point in time sees them (the ones it holds)."""
        if not ids:
            return []
        body = lookup_body(ids, source_excludes=source_excludes, with_source=with_source)
        for _ in range(2):  # once more under a reopened point in time
            response = self._search({**body, "pit": {"id": self.pit_id or "", "keep_alive": self.keep_alive}})
            if response is not None:
                return response["hits"]["hits"]
        raise ClusterError(f"the point in time on {self.index!r} expired twice in a row")


# -- documents from hits ---------------------------------------------------------------------------------

@dataclass
class ScannedDocument(VersionedDocument):
    """A document read back from an index, with what is needed to write its vector safely."""

    has_vector: bool = False


def _field_texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list):  # an existing index may hold several strings in one text field
        return [t for v in value if isinstance(v, str) for t in _field_texts(v)]
    return []


def document_from_hit(hit: dict, text_fields: Sequence[str], vector_field: str,
                      passages_field: str | None = None) -> ScannedDocument | None:
    """The document as the encoder sees it (the same text and content hash as ingest), or None without text.

    The vector fields semsearch wrote (document vector, passages) are left out of its source.
    """
    source = dict(hit.get("_source") or {})
    stored = source.pop(CONTENT_HASH_FIELD, None)
    source.pop(ID_FIELD, None)
    source.pop(vector_field, None)
    if passages_field:
        source.pop(passages_field, None)
    texts = [t for name in text_fields for t in _field_texts(source.get(name))]
    if not texts:
        return None
    return ScannedDocument(id=hit["_id"], source=source, text=" ".join(texts), content_hash=content_hash(texts),
                           origin=f"{hit.get('_index', '')}/{hit['_id']}", seq_no=hit.get("_seq_no"),
                           primary_term=hit.get("_primary_term"), stored_hash=stored, routing=hit.get("_routing"),
                           has_vector=NO_VECTOR not in (hit.get("matched_queries") or ()))


# -- writing vectors ------------------------------------------------------------------------------------

# -- reports ----------------------------------------------------------------------------------------------

@dataclass
class BackfillReport:
    """What a backfill (or a migration's copy) did."""

    index: str
    scanned: int = 0
    encoded: int = 0  # documents sent to the encoder in this run
    written: int = 0
    deleted: int = 0  # copy only: documents gone from the source
    no_text: int = 0  # documents without a vector at the end that have no text to encode
    conflicts: int = 0  # changed by the application while being encoded: encoded again in the next pass
    gone: int = 0  # deleted by the application while being encoded
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    resumed_after: str | None = None  # the checkpoint this run started from
    resumed_age: float | None = None  # seconds since that checkpoint was saved
    passes: int = 0
    missing: int = 0  # documents with text but still without a vector at the end
    expunged: bool = False  # replaced versions merged away (exact BM25 statistics again, disk reclaimed)
    scan_recoveries: int = 0  # times the scan lost a shard (a node left) and went on under a new point in time
    elapsed: float = 0.0
    retry_ids: list[str] = field(default_factory=list, repr=False)  # this pass's conflicts, read again in the next

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.missing == 0

    def add(self, result: BulkResult) -> None:
        self.written += result.indexed
        self.failed += len(result.failed)
        for doc, reason in result.failed[: max(0, 20 - len(self.failures))]:
            self.failures.append(f"{doc.id}: {reason}")
        self.count_races(result)

    def count_races(self, result: BulkResult) -> None:
        """Count the updates that lost to the application's writes; those documents wait for the next pass."""
        self.conflicts += len(result.conflicts)
        self.gone += result.gone
        self.retry_ids.extend(result.conflicts)

    def as_dict(self) -> dict:
        return {"index": self.index, "scanned": self.scanned, "encoded": self.encoded, "written": self.written,
                "deleted": self.deleted, "no_text": self.no_text, "conflicts": self.conflicts, "gone": self.gone,
                "failed": self.failed, "resumed_after": self.resumed_after, "passes": self.passes,
                "missing": self.missing, "expunged": self.expunged, "scan_recoveries": self.scan_recoveries,
                "elapsed_s": round(self.elapsed, 3)}


Batch = tuple[list[ScannedDocument], str | None]  # documents to encode, and the last _id scanned with them
OnBatch = Callable[[BackfillReport], None]


def _run_batches(batches: Iterable[Batch], *, encoder, writer: BulkWriter | None, app, index: str,
                 vector_field: str, batch_docs: int, report: BackfillReport,
                 done: Callable[[str | None], None], write_while_encoding: bool = True,
                 chunk_overlap: int = DEFAULT_OVERLAP) -> None:
    """Encode and write ``batches`` in-process (encoder + writer) or through the workers (app); long documents are
    cut into windows overlapping by ``chunk_overlap`` tokens, the index's own (where it stores passages). The
    workers write only vectors, under the version read (:class:`VectorUpdateWriter`); in-process, ``writer`` decides.

    ``done(last_id)`` runs once everything up to ``last_id`` is written: that is when a checkpoint may move.
    """
    if app is None:
        keys: deque[str | None] = deque()

        def feed() -> Iterator[list[ScannedDocument]]:
            for docs, key in batches:
                keys.append(key)
                report.encoded += len(docs)
                yield docs

        # encode_and_write hands batches back in the order they went in.
        for _, result in encode_and_write(feed(), encoder, writer, write_while_encoding, chunk_overlap):
            report.add(result)
            done(keys.popleft())
        return
    # Through the Celery workers: a bounded segment at a time, so the checkpoint can move between them.
    from semsearch.distributed.producer import run_distributed  # noqa: PLC0415 - Celery loads only when a broker is set
    from semsearch.writing.documents import DeadLetterFile  # noqa: PLC0415

    segment: list[ScannedDocument] = []
    key: str | None = None

    def flush() -> None:
        if segment:
            with DeadLetterFile(f"{index}.backfill.deadletter.jsonl") as dead:
                outcome = run_distributed(iter(list(segment)), app=app, index=index, vector_field=vector_field,
                                          dead_letter=dead, batch_docs=batch_docs, writes="vectors",
                                          on_result=report.count_races)
            report.written += outcome.indexed
            report.failed += outcome.failed
            report.failures.extend(outcome.failures[: max(0, 20 - len(report.failures))])
        segment.clear()
        done(key)

    for docs, key in batches:
        segment.extend(docs)
        report.encoded += len(docs)
        if len(segment) >= batch_docs * 8:
            flush()
    flush()


def encode_and_write(batches, encoder, writer, write_while_encoding: bool = True,
                     chunk_overlap: int = DEFAULT_OVERLAP):
    """The ingest pipeline's batch step (imported late: it loads torch)."""
    from semsearch.writing.pipeline import encode_and_write as pipeline_step  # noqa: PLC0415

    return pipeline_step(batches, encoder, writer, chunk_overlap, write_while_encoding=write_while_encoding)


def _cut(items: Iterable[tuple[str, ScannedDocument | None]], batch_docs: int) -> Iterator[Batch]:
    """Batches of documents to encode, each with the last _id scanned up to its cut."""
    batch: list[ScannedDocument] = []
    scanned = 0
    last: str | None = None
    for last, doc in items:
        scanned += 1
        if doc is not None:
            batch.append(doc)
        if len(batch) >= batch_docs or scanned >= CUT_EVERY_SCANNED:
            yield batch, last
            batch, scanned = [], 0
    if batch or scanned:
        yield batch, last


# -- backfill in place ------------------------------------------------------------------------------------

@one_at_a_time("backfill")
def backfill(client: OpenSearch, name: str, *, fingerprint: dict, encoder=None, app=None,
             checkpoints: CheckpointStore | None = None, batch_docs: int = 256, page_size: int = PAGE_SIZE,
             max_passes: int = 4, on_batch: OnBatch | None = None, expunge_deletes: bool = True,
             write_client: OpenSearch | None = None,
             bulk_max_docs: int = 500, bulk_max_bytes: int = 8 << 20,
             write_while_encoding: bool = True, every_document: bool = False,
             on_wait: Callable[[str], None] | None = None) -> BackfillReport:
    """Give every document of ``name`` an up-to-date vector; resumes from its checkpoint.

    A document needs work when it has no vector, or when its text no longer matches the content hash
    stored with its vector (the application changed the text); with ``every_document``, every document with
    text is encoded again (its vector and passages rewritten), under a checkpoint of its own. The index's
    fingerprint must be the encoder's (a different model is a migration: ``semsearch migrate``). ``encoder`` encodes in this
    process; ``app`` (a Celery app) sends the documents to the workers instead.

    ``expunge_deletes``: every update leaves the replaced version behind as a deleted document until
    Lucene merges it away, and deleted documents still count in BM25's statistics: keyword scores
    drift slightly (near-ties swap places) and the index takes twice the disk. After a backfill that
    wrote something, ``_forcemerge?only_expunge_deletes=true`` merges those segments, which restores
    the exact keyword ranking the index had before. ``write_client``: a second client for the writer
    thread (the scan and the writes then use separate connections). ``write_while_encoding``: see
    :func:`semsearch.writing.pipeline.encode_and_write`. ``on_wait`` hears what a wait before that merge waits for.
    """
    if (encoder is None) == (app is None):
        raise ValueError("give exactly one of encoder (in-process) and app (Celery workers)")
    started = time.monotonic()
    info = get_index_info(client, name)
    check_fingerprint(info, fingerprint)
    concrete = info.index or name
    # Updates are re-indexed from _source: refused where it leaves fields out, as on a blocked index (nothing to write).
    index_settings = client.indices.get_settings(index=concrete, flat_settings=True)[concrete]["settings"]
    check_source_kept(client.indices.get_mapping(index=concrete)[concrete]["mappings"], name,
                      (info.vector_field, info.passages_field), index_settings)
    check_writable(index_settings, concrete)
    info = ensure_id_field(client, info)  # its writes carry the id keyword
    client.indices.refresh(index=concrete)  # the scan's point in time sees refreshed documents only
    marks = history_marks(client, concrete) if expunge_deletes else {}
    checkpoints = checkpoints or CheckpointStore(client)
    # A run that encodes everything keeps its own checkpoint: resumed from a plain run's, it would skip documents.
    job = "backfill-all" if every_document else "backfill"
    key = checkpoint_id(job, index_uuid(client, concrete))
    # Elasticsearch scans in no resumable order: a rerun rescans, skipping finished documents unencoded.
    resumable = scans_by_id(client)
    state = (checkpoints.get(key) or {}) if resumable else {}
    report = BackfillReport(index=concrete, resumed_after=state.get("after"), resumed_age=checkpoint_age(state))
    writer = None
    if app is None:
        writer = VectorUpdateWriter(write_client or client, concrete, info.vector_field, max_docs=bulk_max_docs,
                                    max_bytes=bulk_max_bytes, passages_field=info.passages_field)

    def needing_work(hits: Iterable[dict]) -> Iterator[tuple[str, ScannedDocument | None]]:
        # A scan that restarts from the top (a lost shard, in _shard_doc order) meets again documents this
        # pass already sent to the encoder, some still being written: they are not sent twice. One that
        # failed after all is left without a vector, and the catch-up pass finds it.
        sent = RecentIds(RECENT_IDS)
        for hit in hits:
            report.scanned += 1
            if hit["_id"] in sent:
                yield hit["_id"], None
                continue
            doc = document_from_hit(hit, info.text_fields, info.vector_field, info.passages_field)
            if doc is not None and doc.has_vector and doc.stored_hash == doc.content_hash and not every_document:
                doc = None  # done: encoded from its current text
            if doc is not None:
                sent.add(hit["_id"])
            yield hit["_id"], doc

    def save(last_id: str | None) -> None:
        if last_id is not None:
            checkpoints.save(key, {"job": job, "index": concrete, "after": last_id,
                                   "encoded": report.encoded, "written": report.written,
                                   "scanned": report.scanned, "fingerprint": fingerprint})
        if on_batch is not None:
            on_batch(report)

    retry_ids: list[str] = []
    for attempt in range(max_passes):
        report.passes += 1
        if attempt == 0:
            # The full pass: every document, from the checkpoint on.
            query, after, checkpointed = backfill_query(info.vector_field), state.get("after"), resumable
        else:
            # Catch-up passes: documents still without a vector (written meanwhile), and those whose
            # update lost to a concurrent write.
            query, after, checkpointed = backfill_query(info.vector_field, only_missing=True, ids=retry_ids), None, False
        with PointInTime(client, concrete, page_size=page_size) as pit:
            hits = pit.hits(query=query, after=[after] if after else None, source_excludes=vector_excludes(info),
                            seq_no=True)
            _run_batches(_cut(needing_work(hits), batch_docs), encoder=encoder, writer=writer, app=app,
                         index=concrete, vector_field=info.vector_field, batch_docs=batch_docs, report=report,
                         done=save if checkpointed else (lambda _last: on_batch and on_batch(report)),
                         write_while_encoding=write_while_encoding, chunk_overlap=info.passage_overlap)
        report.scan_recoveries += pit.shard_recoveries
        if checkpointed:
            checkpoints.delete(key)
        report.missing, report.no_text = vector_gaps(client, concrete, info.text_fields, info.vector_field)
        retry_ids = list(dict.fromkeys(report.retry_ids))[:MAX_RETRY_IDS]
        report.retry_ids = []
        if not retry_ids and report.missing == 0:
            break  # what may be left without a vector has no text to encode
    if expunge_deletes and report.written:
        report.expunged = expunge(client, concrete, marks=marks, on_wait=on_wait)
    report.elapsed = time.monotonic() - started
    return report


def checkpoint_age(state: dict) -> float | None:
    """Seconds since a checkpoint was saved (None: no checkpoint, or no time in it)."""
    saved = state.get("updated_at") if state.get("after") else None
    return max(0.0, time.time() - float(saved)) if isinstance(saved, (int, float)) else None


def history_marks(client: OpenSearch, index: str) -> dict[str, int]:
    """Each shard's highest sequence number now (its primary's); empty when the stats cannot be read."""
    try:
        shards = client.indices.stats(index=index, level="shards", metric="docs")["indices"][index]["shards"]
    except (TransportError, KeyError) as exc:
        log.info("cannot read the shard stats of %s (%s)", index, exc)
        return {}
    return {number: next((c for c in copies if c.get("routing", {}).get("primary")), copies[0])
            .get("seq_no", {}).get("max_seq_no", -1) for number, copies in shards.items()}


def wait_for_history_release(client: OpenSearch, index: str, marks: dict[str, int], timeout: float = 65.0,
                             poll: float = 1.0, on_wait: Callable[[str], None] | None = None) -> bool:
    """Wait until no retention lease keeps operations up to ``marks`` (what existed before the backfill).

    The cluster keeps replaced document versions for its peer-recovery retention leases, which move
    forward only at their periodic sync (every 30 s): a merge before that cannot drop versions written
    in the last 30 s, and they would keep counting in BM25's statistics. Old documents need no wait.
    ``on_wait`` hears once, before a wait, what it waits for.
    """
    deadline = time.monotonic() + timeout
    said = False
    while True:
        try:
            shards = client.indices.stats(index=index, level="shards", metric="docs")["indices"][index]["shards"]
        except (TransportError, KeyError):
            return False
        lowest = {number: min((lease["retaining_seq_no"] for copy in copies
                               for lease in (copy.get("retention_leases") or {}).get("leases", [])), default=None)
                  for number, copies in shards.items()}
        if all(low is None or low > marks.get(number, -1) for number, low in lowest.items()):
            return True
        if time.monotonic() >= deadline:
            log.warning("retention leases on %s still keep replaced versions after %.0fs", index, timeout)
            return False
        if on_wait is not None and not said:
            said = True
            on_wait(f"waiting up to {timeout:.0f} s for the cluster's retention leases on {index!r} to let the "
                    "replaced versions go, before merging them away (--keep-deletes skips this)")
        time.sleep(poll)


# The waits before each further merge when one left replaced versions behind. Together they outlast one periodic
# retention-lease sync (30 s) and give a background merge of those segments time to end.
EXPUNGE_RETRY_WAITS = (2.0, 8.0, 25.0)


def expunge(client: OpenSearch, index: str, timeout: float = 3600.0, marks: dict[str, int] | None = None,
            on_wait: Callable[[str], None] | None = None) -> bool:
    """Merge away deleted documents; False if still running.

    The merge policy skips segments under 10 % deleted by default, whose stale versions would still
    count in BM25's statistics: the threshold is 0 for this merge, then back to the index's own.
    ``marks`` (:func:`history_marks` before the writes): first wait until the retention leases let
    the versions those writes replaced go."""
    if marks:
        wait_for_history_release(client, index, marks, on_wait=on_wait)
    threshold = "index.merge.policy.expunge_deletes_allowed"
    try:
        previous = client.indices.get_settings(index=index, name=threshold).get(index, {}).get("settings", {})
        client.indices.put_settings(index=index, body={threshold: 0})
    except TransportError as exc:  # a restricted user: the default threshold, as before
        log.info("cannot lower %s on %s (%s)", threshold, index, exc)
        previous = None
    try:
        remaining, merges = 0, len(EXPUNGE_RETRY_WAITS) + 1
        for attempt, wait in enumerate((0.0, *EXPUNGE_RETRY_WAITS), start=1):
            # Seen about once in ten CI runs under load: every replaced version still there after a merge that
            # began once the leases had let them go (a safe commit not yet advanced, or a background merge the
            # forced one left out, would keep them; 2 and 4 s later were not always enough). So flush and merge
            # again, a while later, before giving up.
            if wait:
                log.info("%d replaced versions remain in %s after merge %d of %d; merging again in %.0f s",
                         remaining, index, attempt - 1, merges, wait)
                time.sleep(wait)
            _flush(client, index)
            client.indices.forcemerge(index=index, only_expunge_deletes=True, request_timeout=timeout)
            remaining = deleted_documents(client, index)
            if not remaining:
                return True
    except ConnectionTimeout:
        log.warning("expunging deleted documents of %s goes on in the background", index)
        return False
    except TransportError as exc:
        log.warning("expunging deleted documents of %s failed: %s", index, exc)
        return False
    finally:
        if previous is not None:
            restore = previous.get("index", {}).get("merge", {}).get("policy", {}).get("expunge_deletes_allowed")
            try:
                client.indices.put_settings(index=index, body={threshold: restore})  # None: the default again
            except TransportError as exc:
                log.warning("could not restore %s on %s: %s", threshold, index, exc)
    # Kept by a retention lease that did not move in time, or written meanwhile.
    log.warning("%d replaced versions remain in %s; they count in BM25 statistics until Lucene merges them",
                remaining, index)
    return False


def _flush(client: OpenSearch, index: str) -> None:
    # The shard also keeps every operation above its last safe commit's local checkpoint (min with the
    # leases' bound): on an index never flushed since it was filled (a fresh copy) that is all of them.
    try:
        client.indices.flush(index=index)
    except TransportError as exc:
        log.info("cannot flush %s before merging (%s)", index, exc)


def deleted_documents(client: OpenSearch, index: str) -> int:
    """Deleted (replaced) documents still in the primaries' segments; 0 when the stats cannot be read."""
    try:
        return int(client.indices.stats(index=index, metric="docs")["_all"]["primaries"]["docs"]["deleted"])
    except (TransportError, KeyError):
        return 0


def missing_vectors(client: OpenSearch, index: str, vector_field: str) -> int:
    return int(client.count(index=index, body=missing_vector_count_body(vector_field))["count"])


def vector_gaps(client: OpenSearch, index: str, text_fields: Sequence[str], vector_field: str) -> tuple[int, int]:
    """``(with_text, without_text)``: documents without a vector, split by whether they have text to encode."""
    client.indices.refresh(index=index)
    if missing_vectors(client, index, vector_field) == 0:
        return 0, 0
    with_text = without_text = 0
    with PointInTime(client, index) as pit:
        for hit in pit.hits(query=backfill_query(vector_field, only_missing=True)):
            if document_from_hit(hit, text_fields, vector_field) is None:
                without_text += 1
            else:
                with_text += 1
    return with_text, without_text


def index_uuid(client: OpenSearch, index: str) -> str:
    settings = client.indices.get_settings(index=index, name="index.uuid", flat_settings=True)
    return next(iter(settings.values()))["settings"]["index.uuid"]


# -- copying into another index (a migration's green side) -------------------------------------------------

def copy_with_vectors(client: OpenSearch, source: IndexInfo, target: str, *, encoder,
                      checkpoints: CheckpointStore | None = None, checkpointed: bool = True,
                      batch_docs: int = 256, page_size: int = PAGE_SIZE, on_batch: OnBatch | None = None,
                      write_client: OpenSearch | None = None,
                      bulk_max_docs: int = 500, bulk_max_bytes: int = 8 << 20,
                      bulk_format: BulkFormat = "smile", write_while_encoding: bool = True) -> BackfillReport:
    """Make ``target`` hold exactly ``source``'s documents, with vectors from ``encoder``.

    Both indexes are compared document by document (a digest of the source without vectors): only
    documents missing from the target or changed since are encoded, and documents no longer in the
    source are deleted. Run once while the source takes writes, and again after blocking them, the
    second run encodes only what changed in between. On OpenSearch both are scanned in ``_id`` order
    and merged (with a checkpoint); on Elasticsearch each page of one is looked up in the other.
    """
    started = time.monotonic()
    checkpointed = checkpointed and scans_by_id(client)
    checkpoints = checkpoints or CheckpointStore(client)
    src_index = source.index or source.name
    key = checkpoint_id("copy", index_uuid(client, src_index), index_uuid(client, target))
    state = (checkpoints.get(key) or {}) if checkpointed else {}
    after = state.get("after")
    report = BackfillReport(index=target, resumed_after=after, passes=1)
    skip = (*vector_excludes(source), CONTENT_HASH_FIELD, ID_FIELD)
    writer = BulkWriter(write_client or client, target, source.vector_field, max_docs=bulk_max_docs,
                        max_bytes=bulk_max_bytes, passages_field=source.passages_field, body_format=bulk_format)
    pending_deletes: dict[str, str | None] = {}  # id: its custom routing in the target
    no_text_hits: list[dict] = []

    def side(hits: Iterable[dict], count: bool) -> Iterator[tuple[str, str, dict]]:
        for hit in hits:
            if count:
                report.scanned += 1
            yield hit["_id"], source_digest(hit.get("_source") or {}, skip), hit

    def flush_side_writes() -> None:
        # Deletions and text-less documents need no encoder: written directly, before the checkpoint moves.
        if pending_deletes:
            result = writer.delete(list(pending_deletes), pending_deletes)
            report.deleted += result.indexed
            report.failed += len(result.failed)
            pending_deletes.clear()
        if no_text_hits:
            write_sources(client, target, no_text_hits)
            no_text_hits.clear()

    def wanted(diff: Iterable[tuple[str, tuple[str, str, dict]]]) -> Iterator[tuple[str, ScannedDocument | None]]:
        for op, (doc_id, _digest, hit) in diff:
            doc = None
            if op == "delete":
                pending_deletes[doc_id] = hit.get("_routing")
            elif op == "copy":
                doc = document_from_hit(hit, source.text_fields, source.vector_field, source.passages_field)
                if doc is None:
                    no_text_hits.append(hit)
            yield doc_id, doc

    def save(last_id: str | None) -> None:
        if checkpointed and last_id is not None:
            checkpoints.save(key, {"job": "copy", "source": src_index, "target": target, "after": last_id,
                                   "encoded": report.encoded, "written": report.written})
        if on_batch is not None:
            on_batch(report)

    # Vectors are encoded anew: neither the document's nor its passages' are read (nor copied with a text-less one).
    excludes = vector_excludes(source)
    # A point in time sees refreshed documents only: the last writes before the copy (a migration's
    # catch-up runs right after blocking them) must be in it.
    client.indices.refresh(index=f"{src_index},{target}")

    def diff() -> Iterator[tuple[str, tuple[str, str, dict]]]:
        if src.by_id:
            start = [after] if after else None
            return merge_diff(side(src.hits(after=start, source_excludes=excludes), True),
                              side(tgt.hits(after=start, source_excludes=excludes), False))
        # The target is looked up live, not under its point in time: if the source's expires and its scan
        # restarts, documents copied since are found there and not encoded again.
        return paged_diff(
            (list(side(page, True)) for page in src.pages(source_excludes=excludes)),
            lambda ids: {i: d for i, d, _ in side(live_lookup(target, ids, excludes), False)},
            (list(side(page, False)) for page in tgt.pages(source_excludes=excludes)),
            lambda ids: {h["_id"] for h in src.lookup(ids, with_source=False)})

    def live_lookup(index: str, ids: list[str], source_excludes: list[str]) -> list[dict]:
        try:
            return client.search(index=index, body=lookup_body(ids, source_excludes=source_excludes))["hits"]["hits"]
        except TransportError as exc:
            raise ClusterError(f"looking documents up in {index!r} failed: {exc}") from exc

    def batches() -> Iterator[Batch]:
        for docs, last in _cut(wanted(diff()), batch_docs):
            flush_side_writes()
            # Documents are written as read: the full source, with the new vector and content hash.
            yield docs, last

    with PointInTime(client, src_index, page_size=page_size) as src, \
            PointInTime(client, target, page_size=page_size) as tgt:
        _run_batches(batches(), encoder=encoder, writer=writer, app=None, index=target,
                     vector_field=source.vector_field, batch_docs=batch_docs, report=report, done=save,
                     write_while_encoding=write_while_encoding, chunk_overlap=source.passage_overlap)
    flush_side_writes()
    if checkpointed:
        checkpoints.delete(key)
    report.missing, report.no_text = vector_gaps(client, target, source.text_fields, source.vector_field)
    report.elapsed = time.monotonic() - started
    return report


def write_sources(client: OpenSearch, index: str, hits: Sequence[dict]) -> None:
    """Copy documents as they are (no vector: they have no text to encode)."""
    lines: list[dict] = []
    for hit in hits:
        lines.append({"index": write_action(index, hit["_id"], hit.get("_routing"))})
        lines.append(hit.get("_source") or {})
    response = client.bulk(body=lines)
    if response.get("errors"):
        reasons = [next(iter(i.values())).get("error") for i in response["items"] if next(iter(i.values())).get("error")]
        raise ClusterError(f"copying {len(reasons)} documents without text into {index!r} failed: {reasons[:3]}")
