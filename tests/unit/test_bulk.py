import json

import numpy as np

from semsearch.writing.bulk import bulk_entry, chunk_entries
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
