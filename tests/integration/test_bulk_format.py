"""Smile bulk bodies through the real parsers of both engines: every JSON value a source can hold
comes back as sent, vectors bit for bit, and the index answers searches as one written with JSON."""

import json
import uuid

import numpy as np
import pytest

from semsearch import Searcher
from semsearch.writing.bulk import BulkWriter
from semsearch.writing.documents import Document, DocumentSchema, read_jsonl
from semsearch.index.manage import ensure_index

# Every kind of value and every length class of the encoder's keys and strings.
TRICKY = {
    "title": "Smile round trip", "text": "Bytes the node must read back exactly as JSON would give them.",
    "empty": "", "tiny": "x", "short": "s" * 40, "long": "l" * 300,
    "unicode_tiny": "é", "unicode_short": "ü" * 20, "unicode_long": "日本語のテキスト" * 30, "emoji": "🙂 ok",
    "k" * 64: "longest short key", "key_" + "k" * 70: "a long ASCII key", "ключ": "a Unicode key",
    "ключ_" * 15: "a long Unicode key",
    "ints": [0, -1, 15, -16, 16, -17, 2**31 - 1, -(2**31), 2**31, 2**53 + 1, 2**63 - 1, -(2**63)],
    "floats": [0.1, -2.5, 1e-300, 6.02214076e23, 1.0],
    "flags": [True, False, None],
    "nested": {"deeper": {"list": [{"a": 1}, [], {}], "text": "inside"}},
}


def documents(count: int) -> list[Document]:
    return [Document(id=f"doc-{i}", source={**TRICKY, "n": i}, text=f"Smile round trip number {i}",
                     content_hash=f"h{i}") for i in range(count)]


def check_round_trip(cluster, settings, index: str, encoder, fmt: str) -> None:
    docs = documents(12)
    vectors = encoder.encode_documents([d.text for d in docs])
    ensure_index(cluster, index, fingerprint=encoder.fingerprint.as_dict(), settings=settings)
    writer = BulkWriter(cluster, index, "embedding", body_format=fmt, max_docs=5, refresh="wait_for")
    result = writer.write(docs, vectors)
    assert result.indexed == 12 and not result.failed and writer.body_format == fmt
    for doc, vector in zip(docs, vectors):
        source = cluster.get(index=index, id=doc.id)["_source"]
        stored = np.array(source.pop("embedding"), dtype=np.float32)
        assert source == {**doc.source, "semsearch_hash": doc.content_hash, "semsearch_id": doc.id}
        if fmt == "smile":
            assert np.array_equal(stored, vector)  # raw float32: every bit as computed
        else:
            assert np.allclose(stored, vector, atol=1e-7)
    hits = Searcher(settings, client=cluster, encoder=encoder).search("Smile round trip number 7", index=index, k=3)
    assert hits[0].id == "doc-7"


@pytest.mark.parametrize("fmt", ["smile", "json"])
def test_opensearch_reads_every_value_back(client, settings, index_name, encoder, fmt):
    check_round_trip(client, settings, index_name, encoder, fmt)


def test_elasticsearch_reads_every_value_back(es, es_settings, encoder):
    index = f"test_es_{uuid.uuid4().hex[:12]}"
    try:
        check_round_trip(es, es_settings, index, encoder, "smile")
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)


def test_passages_in_smile_match_json(client, settings, encoder, tmp_path):
    """A chunked document's nested passages say the same in both formats."""
    long_text = " ".join(f"Sentence {i} is about the harbour and its lighthouse keeper." for i in range(60))
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"_id": "long", "title": "Harbour", "text": long_text}) + "\n", encoding="utf-8")
    (doc,) = list(read_jsonl([path], DocumentSchema()))
    encoded = encoder.encode_passages([doc.text])
    passages = [(v, span) for v, span in zip(encoded.vectors, encoded.spans)]
    assert len(passages) > 1
    sources = {}
    for fmt in ("smile", "json"):
        index = f"test_{uuid.uuid4().hex[:12]}"
        try:
            info, _ = ensure_index(client, index, fingerprint=encoder.fingerprint.as_dict(), settings=settings)
            writer = BulkWriter(client, index, info.vector_field, body_format=fmt, refresh="wait_for",
                                passages_field=info.passages_field)
            assert writer.write([doc], encoded.vectors[:1], [passages]).indexed == 1
            assert writer.body_format == fmt
            sources[fmt] = client.get(index=index, id="long")["_source"]
        finally:
            client.indices.delete(index=index, ignore_unavailable=True)
    smile_passages, json_passages = sources["smile"]["passages"], sources["json"]["passages"]
    assert [(p["position"], p["text"]) for p in smile_passages] == [(p["position"], p["text"]) for p in json_passages]
    for a, b in zip(smile_passages, json_passages):
        assert np.allclose(a["embedding"], b["embedding"], atol=1e-7)
