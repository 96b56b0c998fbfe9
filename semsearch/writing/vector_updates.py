"""Vectors written into documents already in an index (a backfill): bulk ``update`` requests that set only the
vector, the content hash and the passages, under optimistic concurrency, so the application's own writes win.

In-process and in a Celery worker alike (:mod:`semsearch.distributed.worker`), a backfill writes through
:class:`VectorUpdateWriter`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from semsearch.engines.index_body import CONTENT_HASH_FIELD, ID_FIELD
from semsearch.writing.bulk import BulkResult, BulkWriter, chunk_entries, passages_json, vector_to_json, write_action
from semsearch.writing.documents import Document


def update_entry(index: str, doc_id: str, vector: np.ndarray, *, vector_field: str, content_hash: str,
                 seq_no: int | None = None, primary_term: int | None = None,
                 passages_field: str | None = None, passages_json: str = "[]", routing: str | None = None) -> str:
    """The two NDJSON lines that set one document's vector and content hash, nothing else; with
    ``passages_field`` (an index that stores long documents as nested passages) also its passages,
    ``passages_json`` (a JSON array; ``[]``, none, for a document that fits the model's window): an update
    replaces an array whole, so passages of the document's old text never outlive it.

    With ``seq_no``/``primary_term`` (from the scan) the update applies only if the document is
    unchanged since it was read: a concurrent write by the application wins (409), and the next
    pass encodes its new text. ``routing``: the document's custom routing (without it, another shard is asked).
    """
    action: dict[str, Any] = write_action(index, doc_id, routing)
    if seq_no is not None and primary_term is not None:
        action["if_seq_no"] = seq_no
        action["if_primary_term"] = primary_term
    head = json.dumps({"update": action}, ensure_ascii=False)
    passages = f",{json.dumps(passages_field)}:{passages_json}" if passages_field else ""
    doc = (f'{{"doc":{{"{CONTENT_HASH_FIELD}":{json.dumps(content_hash)},"{ID_FIELD}":{json.dumps(doc_id)},'
           f'{json.dumps(vector_field)}:{vector_to_json(vector)}{passages}}}}}')
    return f"{head}\n{doc}\n"


class VectorUpdateWriter(BulkWriter):
    """Writes only the vector and content hash of documents already in the index (bulk ``update``), and in an index
    of passages the document's passages.

    Each update carries the ``_seq_no`` the document had when read: if the application changed the
    document meanwhile, its write wins and the document comes back in ``BulkResult.conflicts``, for the
    next pass; a document deleted meanwhile is counted in ``BulkResult.gone``.
    """

    def write(self, docs: Sequence[Document], vectors: np.ndarray, passages: Sequence | None = None) -> BulkResult:
        # ``passages`` (chunked documents' windows) come for a writer with a passages field: each update sets
        # the document's passages anew (none for one that fits the window), as ingest would write them.
        if len(docs) != len(vectors):
            raise ValueError(f"{len(docs)} documents but {len(vectors)} vectors")
        windows = list(passages) if passages is not None else [None] * len(docs)
        entries = [update_entry(self.index, d.id, v, vector_field=self.vector_field, content_hash=d.content_hash,
                                seq_no=getattr(d, "seq_no", None), primary_term=getattr(d, "primary_term", None),
                                passages_field=self.passages_field, routing=d.routing,
                                passages_json=passages_json(d, p, self.vector_field) if p else "[]")
                   for d, v, p in zip(docs, vectors, windows)]
        result = BulkResult()
        # Always JSON text (the update's own lines), whatever body format the writer was given.
        for positions in chunk_entries(entries, self.max_docs, self.max_bytes):
            result.add(self._send([docs[i] for i in positions], [entries[i] for i in positions]))
        failed, lost = [], []
        for doc, reason in result.failed:
            if reason.startswith("version_conflict_engine_exception"):
                lost.append(doc)
            elif reason.startswith("document_missing_exception"):
                result.gone += 1
            else:
                failed.append((doc, reason))
        result.failed = failed
        applied = self._applied_before(lost)
        result.indexed += len(applied)
        result.conflicts.extend(d.id for d in lost if d.id not in applied)
        return result

    def _applied_before(self, lost: Sequence[Document]) -> set[str]:
        """Of the updates that lost on their version, the ids of those an earlier try of the same update had
        applied: a request resent after its answer was lost (a timeout here, a batch the producer sent again). The
        document then holds the content hash this update writes, where it held another when read; a document
        read with that hash already (``--all``) is not told apart, and stays a conflict."""
        fresh = [d for d in lost if getattr(d, "stored_hash", None) != d.content_hash]
        if not fresh:
            return set()
        stored = self.stored_hashes([d.id for d in fresh], {d.id: d.routing for d in fresh})
        return {d.id for d in fresh if stored.get(d.id) == d.content_hash}
