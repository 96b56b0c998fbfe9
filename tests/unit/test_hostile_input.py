"""Hostile input: every line becomes exactly one Document or one Rejection naming file, line and
reason; nothing raises; memory stays bounded on a huge line. Plus a property-based fuzz (hypothesis)
of the reader and of what the producer builds from its documents (bulk entries, worker messages)."""

from __future__ import annotations

import datetime
import json
import math
import os
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semsearch import Settings
from semsearch.writing.bulk import bulk_entry
from semsearch.writing.documents import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_DOCUMENT_BYTES,
    Document,
    DocumentSchema,
    Rejection,
    read_jsonl,
    validate,
)

SCHEMA = DocumentSchema()
TEN_MB = 10 * 1024 * 1024


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def hostile_lines() -> list[tuple[bytes, str | None, str | None]]:
    """(line, expected reason fragment or None for a valid document, expected field) — line i+1.

    Shared with the integration test that pushes the same file through the real CLI.
    """
    return [
        (b'\xef\xbb\xbf{"_id": "ok-1", "title": "Alpha", "text": "first valid document"}', None, None),
        (b'{"_id": "bad-json", "text": "unterminated', "malformed JSON", None),
        (b'[1, 2, 3]', "expected a JSON object, got list", None),
        (b'"just a string"', "expected a JSON object, got str", None),
        (b'null', "expected a JSON object, got NoneType", None),
        (b'{"_id": "wrong-type", "text": 42}', "text field must be a string, got int", "text"),
        (b'{"_id": "wrong-type-2", "title": ["a", "b"]}', "text field must be a string, got list", "title"),
        (b'{"_id": "missing-text", "year": 1999}', "no text", None),
        (b'{"_id": "empty-text", "title": "", "text": "   "}', "no text", None),
        (b'{"_id": "bad-utf8", "text": "caf\xe9 \xff"}', "invalid UTF-8", None),
        (b'{"_id": "huge", "text": "' + b"x" * TEN_MB + b'"}', "over the limit of 1,048,576 bytes", None),
        (b'{"_id": "ok-1", "text": "the same id again"}', "duplicate id 'ok-1'", "_id"),
        (b'{"_id": "vector", "text": "has a vector", "embedding": [0.1, 0.2]}', "reserved by semsearch", "embedding"),
        (b'{"_id": "vector-2", "text": "dotted", "embedding.dims": 3}', "reserved by semsearch", "embedding.dims"),
        (b'{"_id": "hash", "text": "own hash", "semsearch_hash": "x"}', "reserved by semsearch", "semsearch_hash"),
        (b'{"_id": "meta", "text": "metadata", "_index": "other"}', "metadata field", "_index"),
        (b'{"_id": "deep", "text": "nested", "a": ' + _nested(30).encode() + b"}", "nested too deeply", None),
        (b'{"_id": "deeper", "text": "x", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply",
         None),
        (b'{"_id": "nan", "text": "x", "score": NaN}', "NaN is not valid JSON", None),
        (b'{"_id": "inf", "text": "x", "score": -Infinity}', "-Infinity is not valid JSON", None),
        (b'{"_id": "bigint", "text": "x", "n": ' + b"9" * 5000 + b"}", "more than 4300 digits", None),
        (b'{"_id": "too-big", "text": "x", "n": 100000000000000000000000}', "integer out of range", "n"),
        (b'{"_id": "surrogate", "text": "\\ud800 lone"}', "unpaired surrogate", "text"),
        (b'{"_id": 1.5, "text": "float id"}', "id must be a string or integer, got float", "_id"),
        (b'{"_id": true, "text": "bool id"}', "id must be a string or integer, got bool", "_id"),
        (b'{"_id": "", "text": "empty id"}', "id is empty", "_id"),
        (b'{"_id": "' + b"i" * 600 + b'", "text": "long id"}', "id longer than 512 bytes", "_id"),
        (b'{"_id": "empty-name", "text": "x", "": 1}', "empty field name", None),
        (b'{"_id": "dots", "text": "x", "a..b": 1}', "contains '..'", "a..b"),
        (b'\x0c', "malformed JSON", None),
        (b'{"text": "no id: an id from the content hash"}', None, None),
        (b'{"text": "no id: an id from the content hash", "year": 2}', "duplicate id", None),
        (b'{"_id": 7, "title": "Integer id", "text": "valid with an integer id"}', None, None),
        (b'{"_id": "ok-last", "text": "valid, and the file ends without a newline"}', None, None),
    ]


def write_hostile_file(path: Path) -> list[tuple[bytes, str | None, str | None]]:
    lines = hostile_lines()
    with open(path, "wb") as handle:
        for i, (line, _, _) in enumerate(lines):
            handle.write(line + (b"\n" if i < len(lines) - 1 else b""))
            if i == 3:
                handle.write(b"\n   \r\n")  # blank lines: skipped, but they count in the line numbers
    return lines


def line_numbers(lines) -> list[int]:
    """The file line of each entry of ``hostile_lines`` (two blank lines follow the fourth)."""
    return [i + 1 if i < 4 else i + 3 for i in range(len(lines))]


def test_every_hostile_line_is_reported_with_file_line_and_reason(tmp_path):
    path = tmp_path / "hostile.jsonl"
    lines = write_hostile_file(path)
    items = list(read_jsonl([path], SCHEMA))
    numbers = line_numbers(lines)
    assert len(items) == len(lines)
    for item, (_, reason, field), number in zip(items, lines, numbers):
        if reason is None:
            assert isinstance(item, Document), item
            assert item.origin == f"{path}:{number}"
            continue
        assert isinstance(item, Rejection), (number, item)
        assert (item.file, item.line) == (str(path), number)
        assert reason in item.reason, (number, item.reason)
        if field is not None:
            assert item.field == field, (number, item.field)
        assert item.describe().startswith(f"{path}:{number}: ")
        assert len(json.dumps(item.as_dict())) < 10_000  # a dead-letter line stays small, even for 10 MB
    duplicate = next(i for i in items if isinstance(i, Rejection) and "'ok-1'" in i.reason)
    assert f"first read at {path}:1" in duplicate.reason and duplicate.id == "ok-1"
    assert [d.id for d in items if isinstance(d, Document)][0] == "ok-1"


def test_duplicates_are_tracked_across_files_of_one_run(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text('{"_id": "x", "text": "one"}\n')
    second.write_text('{"_id": "y", "text": "two"}\n{"_id": "x", "text": "three"}\n')
    items = list(read_jsonl([first, second], SCHEMA))
    assert [type(i).__name__ for i in items] == ["Document", "Document", "Rejection"]
    assert f"first read at {first}:1" in items[2].reason
    again = list(read_jsonl([second], SCHEMA))  # a new run starts afresh
    assert all(isinstance(i, Document) for i in again)


def test_a_huge_line_is_skipped_in_bounded_memory(tmp_path):
    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as handle:
        handle.write(b'{"_id": "before", "text": "a"}\n{"_id": "huge", "text": "')
        chunk = b"y" * (1 << 20)
        for _ in range(48):
            handle.write(chunk)
        handle.write(b'"}\n{"_id": "after", "text": "b"}\n')
    tracemalloc.start()
    try:
        items = list(read_jsonl([path], SCHEMA))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [type(i).__name__ for i in items] == ["Document", "Rejection", "Document"]
    size = 48 * (1 << 20) + len(b'{"_id": "huge", "text": ""}')
    assert items[1].line == 2 and f"document is {size:,} bytes" in items[1].reason
    assert peak < 4 * DEFAULT_MAX_DOCUMENT_BYTES, f"peak {peak:,} bytes for a 48 MiB line"


def test_utf16_file_is_named(tmp_path):
    path = tmp_path / "utf16.jsonl"
    path.write_bytes('{"_id": "a", "text": "x"}\n'.encode("utf-16"))
    items = list(read_jsonl([path], SCHEMA))
    assert isinstance(items[0], Rejection) and "UTF-16" in items[0].reason
    assert all(isinstance(i, Rejection) for i in items)


def test_limits_come_from_settings():
    schema = DocumentSchema.from_settings(Settings(max_document_bytes=100, max_document_depth=3),
                                          text_fields=("body",))
    assert (schema.max_document_bytes, schema.max_depth, schema.text_fields) == (100, 3, ("body",))
    assert Settings().max_document_bytes == DEFAULT_MAX_DOCUMENT_BYTES == 1 << 20
    assert Settings().max_document_depth == DEFAULT_MAX_DEPTH == 20
    assert isinstance(validate({"body": "x" * 50}, schema, "f", 1), Document)
    big = validate({"_id": 7, "body": "x" * 200}, schema, "f", 1)
    assert isinstance(big, Rejection) and "over the limit of 100 bytes" in big.reason
    assert big.id == "7"  # the id as given, in the dead letter
    deep = validate({"_id": "d", "body": "x", "a": {"b": {"c": {"d": 1}}}}, schema, "f", 1)
    assert isinstance(deep, Rejection) and "more than 3 levels" in deep.reason and deep.field == "a.b.c"
    assert deep.id == "d" and validate({"_id": True, "body": "x" * 200}, schema, "f", 1).id is None
    huge = validate({"_id": 10 ** 5000, "body": "x" * 200}, schema, "f", 1)  # from submit(): never raises
    assert isinstance(huge, Rejection) and huge.id is None
    ok = validate({"body": "x", "a": {"b": {"c": 1}}}, schema, "f", 1)
    assert isinstance(ok, Document)


class _Opaque:
    pass


def test_application_objects_that_are_not_json_are_rejected_not_raised():
    """What semsearch.submit hands to validate: any Python object an application may build."""
    cyclic: dict = {"text": "cycle"}
    cyclic["self"] = cyclic
    deep: list = []
    current = deep
    for _ in range(100_000):  # deeper than Python's recursion limit
        current.append([])
        current = current[0]
    shared: list = ["leaf"]
    for _ in range(40):  # 2**40 leaves if walked naively: a billion-laughs object
        shared = [shared, shared]
    cases = [
        ({"text": "x", "when": datetime.datetime(2024, 1, 1)}, "type datetime is not JSON", "when"),
        ({"text": "x", "blob": b"bytes"}, "type bytes is not JSON", "blob"),
        ({"text": "x", "tags": {"a", "b"}}, "type set is not JSON", "tags"),
        ({"text": "x", "obj": _Opaque()}, "type _Opaque is not JSON", "obj"),
        ({"text": "x", "score": math.nan}, "nan is not valid JSON", "score"),
        ({"text": "x", "score": math.inf}, "inf is not valid JSON", "score"),
        ({"text": "x", "n": 10**30}, "integer out of range", "n"),
        ({"text": "x", 3: "int key"}, "field names must be strings", "3"),
        ({"text": "x", ("a", "b"): 1}, "field names must be strings", None),
        ({"text": "lone \udc80 surrogate"}, "unpaired surrogate", "text"),
        (cyclic, "nested too deeply", "self" + ".self" * (DEFAULT_MAX_DEPTH - 1)),
        ({"text": "x", "deep": deep}, "nested too deeply", None),
        ({"text": "x", "shared": shared}, None, None),
        ({"text": "x" * (2 << 20)}, "over the limit", None),
        ({"text": "x", "embedding": [0.0] * 384}, "reserved by semsearch", "embedding"),
    ]
    for obj, reason, field in cases:
        result = validate(obj, SCHEMA, "<submit>", 1, raw=None)
        assert isinstance(result, Rejection), obj if len(repr(obj)) < 200 else reason
        if reason is not None:
            assert reason in result.reason, result.reason
        if field is not None:
            assert result.field == field
        json.dumps(result.as_dict())  # a dead-letter entry can always be written
    good = validate({"_id": "g", "text": "fine", "tags": ("a", "b"), "n": -(2**63), "u": 2**64 - 1}, SCHEMA,
                    "<submit>", 1, raw=None)
    assert isinstance(good, Document)


# --- property-based: fuzz the reader and what the producer builds from it ---------------------

FUZZ_SCHEMA = DocumentSchema(max_document_bytes=400, max_depth=4)
FUZZ_SETTINGS = settings(max_examples=int(os.environ.get("SEMSEARCH_FUZZ_EXAMPLES", "300")), deadline=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

json_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
                | st.floats(allow_nan=True, allow_infinity=True)
                | st.text(st.characters(exclude_categories=()), max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(st.characters(exclude_categories=()), max_size=8), inner,
                                             max_size=4), max_leaves=25)
ids = st.one_of(st.sampled_from(["a", "b", "c", "", " ", "ü", "\ud800"]), st.integers(-3, 3), st.booleans(),
                st.none(), st.floats(allow_nan=True))
docs = st.fixed_dictionaries({}, optional={"_id": ids, "title": json_values | st.text(max_size=30),
                                           "text": json_values | st.text(max_size=60),
                                           "embedding": json_values, "_index": st.text(max_size=3),
                                           "extra": json_values})


def _encode_line(value) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except (ValueError, TypeError):
        return b"{"


lines = st.one_of(
    docs.map(_encode_line),
    json_values.map(_encode_line),
    docs.map(lambda d: json.dumps(d, ensure_ascii=True, default=str).encode()),  # surrogates as \u escapes
    st.binary(max_size=120),
    st.sampled_from([b"", b"   ", b"\r", b"\xef\xbb\xbf", b"\xff\xfe{}", b"NaN", b"{" * 50, b"[" * 5000,
                     b'{"text": "' + b"z" * 500 + b'"}', b'{"text": "x", "n": ' + b"1" * 5000 + b"}"]),
).map(lambda raw: raw.replace(b"\n", b" "))


def _producer_checks(doc: Document) -> None:
    """What the producer does with a document must work: a bulk entry OpenSearch can parse, and a
    JSON worker message that comes back as the same document."""
    from semsearch.distributed.payloads import document_from_payload, document_payload  # noqa: PLC0415

    entry = bulk_entry("idx", doc, np.zeros(3, dtype=np.float32), "embedding")
    action, body, end = entry.encode("utf-8").split(b"\n")  # NDJSON: a raw newline only between lines
    assert end == b""
    assert json.loads(action)["index"]["_id"] == doc.id
    assert "embedding" in json.loads(body)
    message = json.dumps(document_payload(doc), allow_nan=False)
    assert document_from_payload(json.loads(message)) == doc
    assert doc.id and len(doc.id.encode("utf-8")) <= 512


@FUZZ_SETTINGS
@given(st.lists(lines, max_size=25))
def test_fuzz_reader_accounts_for_every_line_once(raw_lines):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.jsonl"
        path.write_bytes(b"\n".join(raw_lines))
        items = list(read_jsonl([path], FUZZ_SCHEMA))  # never raises
    expected = [n for n, raw in enumerate(raw_lines, start=1)
                if raw.removeprefix(b"\xef\xbb\xbf" if n == 1 else b"").strip(b" \t\r\n")]
    seen = [i.line if isinstance(i, Rejection) else int(i.origin.rsplit(":", 1)[1]) for i in items]
    assert seen == expected  # every non-blank line exactly once, in order; blank lines never
    ids = [i.id for i in items if isinstance(i, Document)]
    assert len(ids) == len(set(ids)), "a duplicate id got through"
    for item in items:
        assert isinstance(item, (Document, Rejection))
        if isinstance(item, Rejection):
            assert item.reason and item.file == str(path)
            json.dumps(item.as_dict(), ensure_ascii=False).encode("utf-8")  # the dead letter can be written
        else:
            _producer_checks(item)


@FUZZ_SETTINGS
@given(st.one_of(docs, json_values, st.builds(dict, st.lists(st.tuples(json_scalars, json_values), max_size=3))))
def test_fuzz_validate_never_raises_on_application_objects(obj):
    result = validate(obj, FUZZ_SCHEMA, "<submit>", 1, raw=None)
    assert isinstance(result, (Document, Rejection))
    if isinstance(result, Document):
        _producer_checks(result)
    else:
        json.dumps(result.as_dict(), ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("depth", [DEFAULT_MAX_DEPTH, DEFAULT_MAX_DEPTH + 1])
def test_depth_limit_is_inclusive(depth):
    obj: dict = {"text": "x"}
    current = obj
    for _ in range(depth - 1):
        current["n"] = {}
        current = current["n"]
    result = validate(obj, SCHEMA, "f", 1)
    assert isinstance(result, Document) == (depth <= DEFAULT_MAX_DEPTH)
