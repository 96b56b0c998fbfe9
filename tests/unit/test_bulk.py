import json

import numpy as np

from semsearch.writing.bulk import bulk_entry, chunk_entries, item_reason
from semsearch.writing.documents import Document


def doc(i, text="hello"):
    return Document(id=f"d{i}", source={"text": text}, text=text, content_hash="h", origin=f"f:{i}")


def test_bulk_entry_is_two_ndjson_lines_with_vector_and_hash():
    vector = np.array([0.123456789, -1.0, 0.0], dtype=np.float32)
    action, source, rest = bulk_entry("idx", doc(1), vector, "embedding").split("\n")
    assert rest == ""
    assert json.loads(action) == {"index": {"_index": "idx", "_id": "d1"}}
    body = json.loads(source)
    assert body["text"] == "hello" and body["semsearch_hash"] == "h"
    assert np.allclose(body["embedding"], vector, atol=1e-7)


def test_vector_spliced_into_empty_source():
    d = Document(id="x", source={}, text="t", content_hash="h")
    body = json.loads(bulk_entry("i", d, np.zeros(2, dtype=np.float32), "v").split("\n")[1])
    assert body == {"semsearch_hash": "h", "semsearch_id": "x", "v": [0.0, 0.0]}


def test_chunks_respect_count_and_bytes():
    entries = ["x" * 10] * 7
    assert list(chunk_entries(entries, max_docs=3, max_bytes=1000)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunk_entries(entries, max_docs=100, max_bytes=25)) == [[0, 1], [2, 3], [4, 5], [6]]
    # An entry larger than the byte limit still goes, alone.
    assert list(chunk_entries(["y" * 50, "z"], max_docs=10, max_bytes=20)) == [[0], [1]]


def test_an_item_the_engine_did_not_write_says_why_in_its_words():
    unavailable = {"status": 503, "error": {"type": "unavailable_shards_exception",
                                            "reason": "[idx][0] primary shard is not active Timeout: [1m]"}}
    assert item_reason(unavailable) == "unavailable_shards_exception: [idx][0] primary shard is not active Timeout: [1m]"
    parsing = {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse",
                                        "caused_by": {"type": "illegal_argument_exception", "reason": "bad date"}}}
    assert item_reason(parsing) == "mapper_parsing_exception: failed to parse (bad date)"
    assert item_reason({"status": 429}) == "429"  # no error body: its status
    assert item_reason({"status": 500, "error": "plain text"}) == "plain text"


def test_an_ingest_whose_closing_refresh_fails_says_so_without_secrets(capsys):
    # `semsearch ingest` refreshes the index when it ends (what it wrote searchable at once); a refused refresh
    # fails no ingest (its documents are indexed), and the warning names no password.
    from opensearchpy.exceptions import AuthorizationException

    from semsearch.cli.commands import _make_searchable
    from semsearch.settings import Settings

    class RefusingIndices:
        def refresh(self, index):
            raise AuthorizationException(403, "security_exception",
                                         {"error": "no permission for http://ingest:hunter2-pw@node:9200"})

    class Client:
        indices = RefusingIndices()

    _make_searchable(Client(), "docs", Settings(opensearch_password="hunter2-pw"))
    warning = capsys.readouterr().err
    assert warning.startswith("warning: the documents are indexed in 'docs', but permission denied (403)")
    assert "searchable once the index is refreshed" in warning and "hunter2-pw" not in warning
