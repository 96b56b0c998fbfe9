import json
import time

from semsearch.writing.documents import DeadLetterFile, Document, DocumentSchema, Rejection, read_jsonl, validate

SCHEMA = DocumentSchema()


def test_valid_document_keeps_fields_and_joins_texts():
    doc = validate({"_id": "a", "title": "T", "text": "body", "year": 2000}, SCHEMA, "f.jsonl", 3)
    assert isinstance(doc, Document)
    assert doc.id == "a" and doc.text == "T body" and doc.source == {"title": "T", "text": "body", "year": 2000}
    assert doc.origin == "f.jsonl:3"


def test_missing_id_gets_a_deterministic_content_hash():
    a = validate({"text": "same"}, SCHEMA, "f", 1)
    b = validate({"text": "same"}, SCHEMA, "g", 9)
    c = validate({"text": "other"}, SCHEMA, "f", 1)
    assert a.id == b.id != c.id


def test_integer_ids_become_strings():
    assert validate({"_id": 7, "text": "x"}, SCHEMA, "f", 1).id == "7"


def test_rejections_name_the_field():
    cases = [
        ({"_id": None, "text": "x"}, "_id"),
        ({"_id": "", "text": "x"}, "_id"),
        ({"_id": "a", "text": 5}, "text"),
        ({"_id": "a", "title": ["x"]}, "title"),
        ({"_id": "a", "text": "x", "embedding": [1, 2]}, "embedding"),
    ]
    for obj, field in cases:
        result = validate(obj, SCHEMA, "f.jsonl", 4)
        assert isinstance(result, Rejection), obj
        assert result.field == field
        assert result.describe().startswith("f.jsonl:4: ")


def test_empty_texts_are_rejected():
    result = validate({"_id": "a", "title": "  ", "text": ""}, SCHEMA, "f", 1)
    assert isinstance(result, Rejection) and "no text" in result.reason


def test_reader_reports_file_and_line(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"_id": "1", "text": "first"}\n'
        b'{not json}\n'
        b'\n'
        b'[1, 2]\n'
        b'{"_id": "4", "text": "\xff\xfe bad utf8"}\n'
        b'{"_id": "5", "text": "last"}\n')
    items = list(read_jsonl([path], SCHEMA))
    docs = [i for i in items if isinstance(i, Document)]
    rejected = [i for i in items if isinstance(i, Rejection)]
    assert [d.id for d in docs] == ["1", "5"]
    assert [(r.line, r.file) for r in rejected] == [(2, str(path)), (4, str(path)), (5, str(path))]
    assert "malformed JSON" in rejected[0].reason
    assert "JSON object" in rejected[1].reason
    assert "UTF-8" in rejected[2].reason


def test_dead_letter_file_only_when_needed(tmp_path):
    path = tmp_path / "dl" / "x.jsonl"
    with DeadLetterFile(path) as dead:
        pass
    assert not path.exists()
    with DeadLetterFile(path) as dead:
        dead.write(Rejection("f", 2, "malformed JSON", raw="{x"))
    record = json.loads(path.read_text())
    assert record["file"] == "f" and record["line"] == 2 and record["reason"] == "malformed JSON"
    assert record["run"] == dead.run and dead.earlier == 0


def test_a_dead_letter_file_is_appended_to_and_says_what_was_there_before(tmp_path):
    path = tmp_path / "x.jsonl"
    with DeadLetterFile(path) as first:
        first.write(Rejection("f", 2, "malformed JSON", raw="{x"))
        first.write(Rejection("f", 3, "malformed JSON", raw="{y"))
    time.sleep(0.002)  # runs are told apart by their start, to the millisecond
    with DeadLetterFile(path) as second:
        second.write(Rejection("g", 7, "no text", raw="{}"))
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["file"], r["line"]) for r in records] == [("f", 2), ("f", 3), ("g", 7)]  # nothing earlier is lost
    assert second.earlier == 2 and second.count == 1
    assert [r["run"] for r in records] == [first.run, first.run, second.run] and first.run != second.run


def test_a_dead_letter_file_someone_else_wrote_to_is_appended_to_on_a_line_of_its_own(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"note": "\xff not UTF-8"}\n{"unfinished": true}')  # no newline at its end
    with DeadLetterFile(path) as dead:
        dead.write(Rejection("g", 7, "no text", raw="{}"))
    lines = path.read_bytes().splitlines()
    assert dead.earlier == 2 and len(lines) == 3 and lines[1] == b'{"unfinished": true}'
    assert json.loads(lines[2])["line"] == 7
