"""Documents and bulk results as Celery message content (JSON only), both ways (pure functions)."""

from __future__ import annotations

from typing import Any

from semsearch.writing.bulk import BulkResult
from semsearch.writing.documents import Document, VersionedDocument


# What a task writes: whole documents (ingest), or only the vectors of documents already in the index (backfill).
WRITES = ("documents", "vectors")


def check_writes(writes: str) -> None:
    """Refuse a write kind other than :data:`WRITES`' (a producer's or a worker's mistake, never the user's)."""
    if writes not in WRITES:
        raise ValueError(f"unknown write kind {writes!r}; choose one of {', '.join(WRITES)}")


def document_payload(doc: Document, writes: str = "documents") -> dict[str, Any]:
    """A document as JSON-serialisable message content (pure).

    For a vector update the source stays behind (the update sets only the vectors and the content
    hash) and the version read goes along, so that the update loses to a write made since.
    """
    check_writes(writes)
    payload = {"id": doc.id, "source": doc.source if writes == "documents" else {}, "text": doc.text,
               "content_hash": doc.content_hash, "origin": doc.origin}
    if writes == "vectors":
        payload["seq_no"] = getattr(doc, "seq_no", None)
        payload["primary_term"] = getattr(doc, "primary_term", None)
        payload["stored_hash"] = getattr(doc, "stored_hash", None)
        payload["routing"] = doc.routing
    return payload


def document_from_payload(payload: dict[str, Any]) -> Document:
    """The document a payload carries; one with the version it was read at (a vector update) keeps it."""
    fields = {"id": payload["id"], "source": payload["source"], "text": payload["text"],
              "content_hash": payload["content_hash"], "origin": payload.get("origin", "")}
    if "seq_no" in payload:
        return VersionedDocument(**fields, seq_no=payload["seq_no"], primary_term=payload.get("primary_term"),
                                 stored_hash=payload.get("stored_hash"), routing=payload.get("routing"))
    return Document(**fields)


def result_payload(result: BulkResult) -> dict[str, Any]:
    return {"indexed": result.indexed, "retried": result.retried, "chunked": result.chunked,
            "failed": [{"id": d.id, "origin": d.origin, "reason": reason} for d, reason in result.failed],
            "conflicts": list(result.conflicts), "gone": result.gone}


def result_from_payload(payload: dict[str, Any], docs: list[Document]) -> BulkResult:
    by_id = {d.id: d for d in docs}
    failed = [(by_id.get(f["id"]) or Document(f["id"], {}, "", "", f.get("origin", "")), f["reason"])
              for f in payload.get("failed", [])]
    return BulkResult(indexed=int(payload["indexed"]), retried=int(payload.get("retried", 0)), failed=failed,
                      chunked=int(payload.get("chunked", 0)), conflicts=list(payload.get("conflicts", [])),
                      gone=int(payload.get("gone", 0)))
