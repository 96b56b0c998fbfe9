"""Documents and bulk results as Celery message content (JSON only), both ways (pure functions)."""

from __future__ import annotations

from typing import Any

from semsearch.writing.bulk import BulkResult
from semsearch.writing.documents import Document


def document_payload(doc: Document) -> dict[str, Any]:
    """A document as JSON-serialisable message content (pure)."""
    return {"id": doc.id, "source": doc.source, "text": doc.text, "content_hash": doc.content_hash,
            "origin": doc.origin}


def document_from_payload(payload: dict[str, Any]) -> Document:
    return Document(id=payload["id"], source=payload["source"], text=payload["text"],
                    content_hash=payload["content_hash"], origin=payload.get("origin", ""))


def result_payload(result: BulkResult) -> dict[str, Any]:
    return {"indexed": result.indexed, "retried": result.retried, "chunked": result.chunked,
            "failed": [{"id": d.id, "origin": d.origin, "reason": reason} for d, reason in result.failed]}


def result_from_payload(payload: dict[str, Any], docs: list[Document]) -> BulkResult:
    by_id = {d.id: d for d in docs}
    failed = [(by_id.get(f["id"]) or Document(f["id"], {}, "", "", f.get("origin", "")), f["reason"])
              for f in payload.get("failed", [])]
    return BulkResult(indexed=int(payload["indexed"]), retried=int(payload.get("retried", 0)), failed=failed,
                      chunked=int(payload.get("chunked", 0)))
