"""Reading documents from JSONL: validation with file/line/field in every error, ids, content hashes.

Hostile input is expected. Every non-blank line of the input becomes exactly one :class:`Document`
or one :class:`Rejection` naming file, line and reason; nothing here raises on bad data:

- malformed JSON, NaN/Infinity, numbers Python cannot convert, invalid UTF-8, a UTF-16 file;
- a line that is not an object; wrong types; missing or empty text fields; bad ids;
- a document over ``max_document_bytes`` (default 1 MiB; ``SEMSEARCH_MAX_DOCUMENT_BYTES``): the
  reader never holds more than that much of one line in memory, it skips the rest;
- nesting deeper than ``max_depth`` levels of objects and arrays (default 20;
  ``SEMSEARCH_MAX_DOCUMENT_DEPTH``), cycles (from application code), values that are not JSON;
- field names OpenSearch refuses (empty, dots at the ends, metadata fields such as ``_index``) and
  fields named like the vector field or semsearch's own fields;
- duplicate ids within one run: the first occurrence is indexed, every later one is rejected with
  the line of the first (see :func:`read_jsonl` for why).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from semsearch.settings import DEFAULT_MAX_DEPTH, DEFAULT_MAX_DOCUMENT_BYTES

MAX_ID_BYTES = 512  # OpenSearch's limit on _id
# Fields OpenSearch keeps for itself: a document that carries one is refused by the cluster.
METADATA_FIELDS = frozenset({"_id", "_index", "_source", "_routing", "_version", "_seq_no", "_primary_term",
                             "_field_names", "_ignored", "_type", "_size", "_doc_count", "_tier",
                             "_data_stream_timestamp", "_nested_path"})
# OpenSearch numbers are 64-bit: long (signed) or unsigned_long.
_MIN_INT, _MAX_INT = -(2**63), 2**64 - 1
_PREVIEW_CHARS = 2000  # of a rejected line, kept for the dead letter
_SKIP_CHUNK = 1 << 16  # bytes read at a time while skipping the rest of an oversized line


@dataclass
class Document:
    """A validated document, ready to encode and index."""

    id: str
    source: dict[str, Any]
    text: str  # the text fields joined: what the encoder sees
    content_hash: str
    origin: str = ""  # "file:line", for error reports
    routing: str | None = None  # its custom routing, which every write of it must name (None: by id; read input has none)


@dataclass
class VersionedDocument(Document):
    """A document read from an index, with the version it had then: a write of its vectors applies only
    while the document is still that version (``if_seq_no``/``if_primary_term``). ``stored_hash``: the content
    hash semsearch had stored with it (None: none)."""

    seq_no: int | None = None
    primary_term: int | None = None
    stored_hash: str | None = None


@dataclass
class Rejection:
    """A line that cannot be indexed, and why."""

    file: str
    line: int
    reason: str
    field: str | None = None
    raw: str = ""
    id: str | None = None
    whole: bool = False  # raw is the whole document (to mend and ingest again), not a preview to cut

    def __post_init__(self) -> None:
        # Whatever the input held, a rejection prints and writes as valid UTF-8.
        for name in ("file", "reason", "field", "raw", "id"):
            value = getattr(self, name)
            if isinstance(value, str) and not value.isascii() and _has_surrogate(value):
                setattr(self, name, value.encode("utf-8", "backslashreplace").decode("utf-8"))

    def describe(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: {self.reason}" + (f" (field {self.field!r})" if self.field else "")

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "field": self.field, "reason": self.reason,
                "id": self.id, "raw": self.raw if self.whole else self.raw[:2000]}


# Fields semsearch writes itself: a content hash, the id as a keyword, and the nested passages of long documents.
RESERVED_FIELDS = ("semsearch_hash", "semsearch_id", "passages")


@dataclass(frozen=True)
class DocumentSchema:
    """Which fields of a JSON object are the id, the texts and the reserved vector field."""

    text_fields: tuple[str, ...] = ("title", "text")
    id_field: str = "_id"
    vector_field: str = "embedding"
    reserved: tuple[str, ...] = field(default=RESERVED_FIELDS)
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES  # of the JSON of one document
    max_depth: int = DEFAULT_MAX_DEPTH  # levels of objects and arrays, the document itself being 1

    @classmethod
    def from_settings(cls, settings: Any, **fields: Any) -> DocumentSchema:
        """A schema with the limits and vector field of ``settings`` (a :class:`semsearch.Settings`)."""
        fields.setdefault("vector_field", settings.vector_field)
        fields.setdefault("max_document_bytes", settings.max_document_bytes)
        fields.setdefault("max_depth", settings.max_document_depth)
        return cls(**fields)


def content_hash(texts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x1f")
    return digest.hexdigest()[:32]


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def _field_name_problem(name: Any) -> str | None:
    if not isinstance(name, str):
        return f"field names must be strings, got {type(name).__name__}"
    if not name.strip():
        return "empty field name"
    if name.startswith(".") or name.endswith(".") or ".." in name:
        return "field name starts or ends with '.' or contains '..'"
    if not name.isascii() and _has_surrogate(name):
        return "field name is not valid Unicode (an unpaired surrogate)"
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _scalar_problem(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return "text is not valid Unicode (an unpaired surrogate)" if not value.isascii() and _has_surrogate(value) \
            else None
    if isinstance(value, int):
        return None if _MIN_INT <= value <= _MAX_INT else "integer out of range (OpenSearch numbers are 64-bit)"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not valid JSON"
    return f"a value of type {type(value).__name__} is not JSON (convert it to a string or number)"


def check_structure(obj: dict, max_depth: int, max_values: int | None = None) -> tuple[str, str] | None:
    """``(reason, field path)`` for the first value no JSON document may hold, else None (pure).

    Iterative, so neither deep nesting nor a cycle (from application code) can exhaust the stack:
    a cycle is simply nesting deeper than ``max_depth``. ``max_values`` bounds the work on objects
    that share parts (each value costs at least a byte of JSON, so pass the size limit).
    """
    stack: list[tuple[Any, int, str]] = [(obj, 1, "")]
    visited = 0
    while stack:
        value, depth, path = stack.pop()
        visited += len(value)
        if max_values is not None and visited > max_values:
            return f"document has more than {max_values:,} values, over the size limit", path
        if depth > max_depth:
            return f"nested too deeply: more than {max_depth} levels of objects and arrays", path
        if isinstance(value, dict):
            items: Iterable[tuple[Any, Any]] = value.items()
        else:
            items = enumerate(value)
        for key, item in items:
            if isinstance(value, dict):
                problem = _field_name_problem(key)
                if problem is not None:
                    return problem, _path(path, key if isinstance(key, str) else repr(key))
            where = _path(path, key)
            if isinstance(item, (dict, list, tuple)):
                stack.append((item, depth + 1, where))
                continue
            problem = _scalar_problem(item)
            if problem is not None:
                return problem, where
    return None


def json_size(obj: Any) -> int:
    """Bytes of the compact UTF-8 JSON of ``obj`` (after :func:`check_structure` passed)."""
    return len(json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8"))


def _too_large(size: int, limit: int) -> str:
    return (f"document is {size:,} bytes, over the limit of {limit:,} bytes "
            f"(SEMSEARCH_MAX_DOCUMENT_BYTES; the encoder reads only the start of a text anyway)")


def _given_id(value: Any) -> str | None:
    """The id as given, for the dead letter of a document refused before its id is checked; None where it is none
    an id could be (a huge integer is not turned into digits: that alone may raise) (pure)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 1 << 63:
        return str(value)
    return None


def validate(obj: Any, schema: DocumentSchema, file: str, line: int, raw: str | None = "",
             size: int | None = None) -> Document | Rejection:
    """A :class:`Document`, or a :class:`Rejection` naming the field at fault (pure; never raises).

    ``size`` is the document's size in bytes when known (the reader knows its line's); otherwise
    it is measured here, after the structure check has made serialising safe. ``raw`` is what the
    dead letter shows; ``None`` makes a preview from ``obj``.
    """
    if not isinstance(obj, dict):
        return Rejection(file, line, f"expected a JSON object, got {type(obj).__name__}", raw=_preview(obj, raw))
    given_id = _given_id(obj.get(schema.id_field))
    problem = check_structure(obj, schema.max_depth, schema.max_document_bytes)
    if problem is not None:
        reason, where = problem
        return Rejection(file, line, reason, field=where or None, raw=_preview(obj, raw, safe=False), id=given_id)
    if size is None:
        size = json_size(obj)
    if size > schema.max_document_bytes:
        return Rejection(file, line, _too_large(size, schema.max_document_bytes), raw=_preview(obj, raw),
                         id=given_id)
    raw = _preview(obj, raw)
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
    for name in obj:
        if name == schema.vector_field or name.startswith(schema.vector_field + ".") or name in schema.reserved:
            return Rejection(file, line, "field name is reserved by semsearch (it holds the vectors or their "
                             "content hash)", field=name, raw=raw, id=doc_id)
        if name in METADATA_FIELDS and name != schema.id_field:
            return Rejection(file, line, "field name is an OpenSearch metadata field", field=name, raw=raw,
                             id=doc_id)
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


def _preview(obj: Any, raw: str | None, safe: bool = True) -> str:
    if raw is not None:
        return raw
    if not safe:
        return f"<{type(obj).__name__}>"
    try:
        return json.dumps(obj, default=repr)[:_PREVIEW_CHARS]
    except (ValueError, TypeError, RecursionError):
        return f"<{type(obj).__name__}>"


def _open(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    return open(path, "rb")  # noqa: SIM115 - closed by the caller


def _read_lines(handle: IO[bytes], limit: int) -> Iterator[tuple[bytes, int]]:
    """``(line, size)`` for each line: the whole line when it is within ``limit`` bytes (its
    newline not counted), else only its first bytes, the rest skipped: memory stays bounded."""
    while True:
        line = handle.readline(limit + 2)  # room for "\r\n"
        if not line:
            return
        if line.endswith(b"\n"):
            content = len(line) - (2 if line.endswith(b"\r\n") else 1)
            yield line, content
            continue
        if len(line) <= limit:  # the last line, without a newline
            yield line, len(line)
            continue
        head, size = line[:_PREVIEW_CHARS * 4], len(line)
        while not line.endswith(b"\n"):
            line = handle.readline(_SKIP_CHUNK)
            if not line:
                break
            size += len(line)
        if line.endswith(b"\n"):
            size -= 2 if line.endswith(b"\r\n") else 1
        yield head, size


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_problem(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"malformed JSON ({exc.msg}, column {exc.colno})"
    message = str(exc)
    if "integer string conversion" in message:
        return "malformed JSON (a number with more than 4300 digits)"
    return f"malformed JSON ({message})"


class _SeenIds:
    """Ids already read in this run, with where: 12-byte digests, so memory stays ~100 bytes an id."""

    def __init__(self) -> None:
        self._seen: dict[int, int] = {}
        self._files: list[str] = []

    def first(self, doc_id: str, file: str, line: int) -> str | None:
        """Where ``doc_id`` was first read, or None (and remember this place) when it is new."""
        key = int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8"), digest_size=12).digest(), "big")
        if not self._files or self._files[-1] != file:
            self._files.append(file)
        place = ((len(self._files) - 1) << 40) | line
        previous = self._seen.setdefault(key, place)
        if previous == place:
            return None
        return f"{self._files[previous >> 40]}:{previous & ((1 << 40) - 1)}"


def read_jsonl(paths: Iterable[str | Path], schema: DocumentSchema) -> Iterator[Document | Rejection]:
    """Every non-blank line of each file as a Document or a Rejection (``-`` reads stdin).

    Never raises on bad content (only when a file cannot be opened). Duplicate ids within one run:
    the first occurrence is indexed and each later one is rejected, naming the first's line. An
    ingest run loads a corpus, where an id should appear once; through the queue, batches are
    written by several workers in no fixed order, so "last one wins" could not be promised, and
    silently overwriting would hide a data error and break "every accepted document indexed
    exactly once". Without an id field, ids are content hashes: a repeated text is a duplicate.
    """
    seen = _SeenIds()
    limit = schema.max_document_bytes
    for path in paths:
        name = "<stdin>" if str(path) == "-" else str(path)
        handle = _open(str(path))
        try:
            for number, (raw_line, size) in enumerate(_read_lines(handle, limit), start=1):
                if number == 1 and raw_line.startswith(b"\xef\xbb\xbf"):
                    raw_line = raw_line[3:]  # a UTF-8 byte-order mark is not part of the JSON
                    size -= 3
                if size > limit:
                    yield Rejection(name, number, _too_large(size, limit),
                                    raw=raw_line.decode("utf-8", "replace")[:_PREVIEW_CHARS])
                    continue
                if number == 1 and raw_line.startswith((b"\xff\xfe", b"\xfe\xff")):
                    yield Rejection(name, number, "the file is UTF-16 (it starts with a UTF-16 byte-order mark); "
                                    "semsearch reads UTF-8 JSONL", raw=raw_line.decode("utf-8", "replace")[:200])
                    continue
                try:
                    text = raw_line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield Rejection(name, number, f"invalid UTF-8 at byte {exc.start}",
                                    raw=raw_line.decode("utf-8", "replace").rstrip("\r\n")[:_PREVIEW_CHARS])
                    continue
                if not text.strip(" \t\r\n"):
                    continue
                text = text.rstrip("\r\n")
                try:
                    obj = json.loads(text, parse_constant=_no_constant)
                except RecursionError:
                    yield Rejection(name, number, f"nested too deeply: more than {schema.max_depth} levels of "
                                    "objects and arrays", raw=text[:_PREVIEW_CHARS])
                    continue
                except ValueError as exc:
                    yield Rejection(name, number, _json_problem(exc), raw=text[:_PREVIEW_CHARS])
                    continue
                item = validate(obj, schema, name, number, raw=text, size=size)
                if isinstance(item, Document):
                    first = seen.first(item.id, name, number)
                    if first is not None:
                        given = schema.id_field in obj
                        how = "" if given else " (an id from the content hash: the same text)"
                        item = Rejection(name, number, f"duplicate id {item.id!r}{how}: first read at {first}, "
                                         "which is the one indexed", field=schema.id_field if given else None,
                                         raw=text, id=item.id)
                yield item
        finally:
            if handle is not sys.stdin.buffer:
                handle.close()


class DeadLetterFile:
    """Appends rejected documents as JSONL with their reason; created only when something is rejected.

    Appended, never truncated: an earlier run's rejections may not have been dealt with yet. Each record says which
    run wrote it (``run``: when this file object was made, UTC), and ``earlier`` counts the records that were there
    before this run's first, so a rerun can say how many of the file's lines are its own.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.count = 0
        self.earlier = 0
        self.run = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        self._handle: io.TextIOWrapper | None = None

    def write(self, rejection: Rejection) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            last = b"\n"
            if self.path.exists():  # read as bytes: whatever else wrote to it, it is counted, never decoded
                with self.path.open("rb") as before:
                    for line in before:
                        self.earlier += bool(line.strip())
                        last = line[-1:]
            self._handle = self.path.open("a", encoding="utf-8")
            if last != b"\n":  # an earlier last line left unfinished: this run's first record starts a line
                self._handle.write("\n")
        self._handle.write(json.dumps({**rejection.as_dict(), "run": self.run}, ensure_ascii=False) + "\n")
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
