"""What an encoder worker process does with a message: the library code behind ingest/tasks.py.

Each worker process loads its own encoder on its first message, after Celery has forked it:
CUDA is never touched in the parent, so every child gets a clean GPU context.
"""

from __future__ import annotations

from typing import Any

from semsearch.distributed.celery_app import make_app
from semsearch.distributed.payloads import check_writes, document_from_payload, result_payload
from semsearch.distributed.streaming import DRAIN_TASK, drain
from semsearch.encoding.encoder import Encoder
from semsearch.index.manage import check_fingerprint, get_index_info
from semsearch.settings import Settings
from semsearch.writing.bulk import BulkResult, BulkWriter
from semsearch.writing.documents import Document
from semsearch.writing.pipeline import encode_and_write
from semsearch.writing.vector_updates import VectorUpdateWriter
from semsearch.writing.write_schedule import write_while_encoding_for

_process_state: dict[str, Any] = {}


def process_settings() -> Settings:
    if "settings" not in _process_state:
        _process_state["settings"] = Settings()
    return _process_state["settings"]


def process_encoder() -> Encoder:
    """This process's encoder, created on first use (after fork)."""
    if "encoder" not in _process_state:
        settings = process_settings()
        _process_state["encoder"] = Encoder.from_settings(settings)
    return _process_state["encoder"]


def process_client():
    if "client" not in _process_state:
        from semsearch.engines.opensearch import make_client  # noqa: PLC0415

        _process_state["client"] = make_client(process_settings())
    return _process_state["client"]


def checked_writer(index: str, vector_field: str, writes: str = "documents") -> tuple[BulkWriter, int]:
    """A bulk writer for ``index`` (and its chunk overlap), once its fingerprint matches this encoder;
    ``writes``: whole documents, or ``vectors`` of documents already there (a backfill's updates).

    Checked per concrete index: after a blue/green swap moves the name, the new index is checked
    again, so a worker still running the old model is refused instead of mixing vectors.
    """
    checked: set[str] = _process_state.setdefault("checked", set())
    client = process_client()
    info = get_index_info(client, index)
    if info.index not in checked:
        check_fingerprint(info, process_encoder().fingerprint.as_dict())
        checked.add(info.index)
    settings = process_settings()
    writer_class = VectorUpdateWriter if writes == "vectors" else BulkWriter
    writer = writer_class.from_settings(client, index, vector_field, settings, passages_field=info.passages_field)
    return writer, info.passage_overlap


def remember_body_format(writer: BulkWriter) -> None:
    """A cluster that refused Smile bodies gets JSON from this process's later writers too."""
    settings = process_settings()
    if writer.body_format != settings.bulk_format:
        _process_state["settings"] = settings.model_copy(update={"bulk_format": writer.body_format})


def write_documents(documents: list[Document], writer: BulkWriter, overlap: int) -> BulkResult:
    """Encode and write documents as one batch, sorted by length as a whole (written while the rest
    encodes, or after it, as SEMSEARCH_WRITE_SCHEDULE decides: semsearch.writing.write_schedule)."""
    encoder = process_encoder()
    total = BulkResult()
    for _, result in encode_and_write([documents], encoder, writer, overlap,
                                      write_while_encoding=write_while_encoding_for(process_settings(), encoder)):
        total.add(result)
    remember_body_format(writer)
    return total


def encode_batch(index: str, vector_field: str, docs: list[dict[str, Any]], writes: str = "documents"
                 ) -> dict[str, Any]:
    """Encode and write one batch of documents (whole, or only their vectors: ``writes``, see
    :data:`semsearch.distributed.payloads.WRITES`); returns counts and per-document failures."""
    check_writes(writes)
    writer, overlap = checked_writer(index, vector_field, writes)
    return result_payload(write_documents([document_from_payload(d) for d in docs], writer, overlap))


def process_redis():
    if "redis" not in _process_state:
        import redis  # noqa: PLC0415

        _process_state["redis"] = redis.Redis.from_url(process_settings().broker_url or "redis://127.0.0.1:6379/0")
    return _process_state["redis"]


def process_app():
    if "app" not in _process_state:
        _process_state["app"] = make_app(process_settings())
    return _process_state["app"]


def drain_stream(index: str, task_id: str) -> dict[str, Any]:
    """Apply the index's queued submits and deletes in micro-batches (see semsearch.distributed.streaming)."""
    info = get_index_info(process_client(), index)
    writer, overlap = checked_writer(index, info.vector_field)

    def write_submitted(docs: list[Document]) -> tuple[int, list[tuple[str, str]]]:
        total = write_documents(docs, writer, overlap)
        return total.indexed, [(d.id, reason) for d, reason in total.failed]

    def delete_ids(ids: list[str]) -> None:
        writer.delete(ids)

    def reschedule() -> None:
        process_app().send_task(DRAIN_TASK, kwargs={"index": index})

    return drain(index, task_id, client=process_redis(), write_documents=write_submitted, delete_ids=delete_ids,
                 reschedule=reschedule)
