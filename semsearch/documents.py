"""Reading documents from JSONL: validation with file/line/field in every error, ids, content hashes."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_ID_BYTES = 512  # OpenSearch's limit on _id


@dataclass
class Document:
    """A validated document, ready to encode and index."""

    id: str
    source: dict[str, Any]
    text: str  # the text fields joined: what the encoder sees
    content_hash: str
    origin: str = ""  # "file:line", for error reports


@dataclass
class Rejection:
    """A line that cannot be indexed, and why."""

    file: str
    line: int
    reason: str
    field: str | None = None
    raw: str = ""
    id: str | None = None

    def describe(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: {self.reason}" + (f" (field {self.field!r})" if self.field else "")

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "field": self.field, "reason": self.reason,
                "id": self.id, "raw": self.raw[:2000]}


@dataclass(frozen=True)
class DocumentSchema:
    """Which fields of a JSON object are the id, the texts and the reserved vector field."""

    text_fields: tuple[str, ...] = ("title", "text")
    id_field: str = "_id"
    vector_field: str = "embedding"
    reserved: tuple[str, ...] = field(default=("semsearch_hash",))


def content_hash(texts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x1f")
    return digest.hexdigest()[:32]


def validate(obj: Any, schema: DocumentSchema, file: str, line: int, raw: str = "") -> Document | Rejection:
    """A :class:`Document`, or a :class:`Rejection` naming the field at fault (pure)."""
    if not isinstance(obj, dict):
        return Rejection(file, line, f"expected a JSON object, got {type(obj).__name__}", raw=raw)
    doc_id: str | None = None
    if schema.id_field in obj:
        raw_id = obj[schema.id_field]
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
            return Rejection(file, line, f"id must be a string or integer, got {type(raw_id).__name__}",
                             field=schema.id_field, raw=raw)
        doc_id = str(raw_id)
        if not doc_id.strip():
            return Rejection(file, line, "id is empty", field=schema.id_field, raw=raw)
        if len(doc_id.encode("utf-8")) > MAX_ID_BYTES:
            return Rejection(file, line, f"id longer than {MAX_ID_BYTES} bytes", field=schema.id_field, raw=raw)
    for name in (schema.vector_field, *schema.reserved):
        if name in obj:
            return Rejection(file, line, "field name is reserved by semsearch", field=name, raw=raw, id=doc_id)
    texts: list[str] = []
    for name in schema.text_fields:
        value = obj.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            return Rejection(file, line, f"text field must be a string, got {type(value).__name__}",
                             field=name, raw=raw, id=doc_id)
        if value.strip():
            texts.append(value.strip())
    if not texts:
        return Rejection(file, line, f"no text: all of {', '.join(schema.text_fields)} missing or empty",
                         field=schema.text_fields[0] if len(schema.text_fields) == 1 else None, raw=raw, id=doc_id)
    digest = content_hash(texts)
    source = {k: v for k, v in obj.items() if k != schema.id_field}
    return Document(id=doc_id or digest, source=source, text=" ".join(texts), content_hash=digest,
                    origin=f"{file}:{line}")


def _open_lines(path: str) -> Iterator[bytes]:
    if path == "-":
        yield from sys.stdin.buffer
        return
    with open(path, "rb") as handle:
        yield from handle


def read_jsonl(paths: Iterable[str | Path], schema: DocumentSchema) -> Iterator[Document | Rejection]:
    """Every non-blank line of each file as a Document or a Rejection (``-`` reads stdin)."""
    for path in paths:
        name = "<stdin>" if str(path) == "-" else str(path)
        for number, raw_line in enumerate(_open_lines(str(path)), start=1):
            if number == 1 and raw_line.startswith(b"\xef\xbb\xbf"):
                raw_line = raw_line[3:]  # a UTF-8 byte-order mark is not part of the JSON
            try:
                text = raw_line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Rejection(name, number, f"invalid UTF-8 at byte {exc.start}",
                                raw=raw_line.decode("utf-8", "replace"))
                continue
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield Rejection(name, number, f"malformed JSON ({exc.msg}, column {exc.colno})", raw=text.rstrip("\n"))
                continue
            yield validate(obj, schema, name, number, raw=text.rstrip("\n"))


class DeadLetterFile:
    """Appends rejected documents as JSONL with their reason; created only when something is rejected."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.count = 0
        self._handle: io.TextIOWrapper | None = None

    def write(self, rejection: Rejection) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write(json.dumps(rejection.as_dict(), ensure_ascii=False) + "\n")
        self._handle.flush()
        self.count += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> DeadLetterFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
