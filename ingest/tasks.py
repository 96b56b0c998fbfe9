"""Celery tasks: thin and idempotent (documents carry their ids, so a batch run twice writes the same)."""

from __future__ import annotations

from semsearch.distributed import worker

from .app import app


@app.task(name="semsearch.encode_batch")
def encode_batch(index: str, vector_field: str, docs: list[dict], writes: str = "documents") -> dict:
    return worker.encode_batch(index, vector_field, docs, writes)


@app.task(name="semsearch.drain_stream", bind=True)
def drain_stream(self, index: str) -> dict:
    # A redelivered drain keeps its task id, and with it the operations it had taken.
    return worker.drain_stream(index, self.request.id)
