"""The Smile encoder's bytes against the format specification (the real parsers are in integration tests)."""

import struct

import numpy as np
import pytest

from semsearch.engines import smile
from semsearch.writing.bulk import BulkWriter, _refuses_smile, bulk_entry, chunk_entries, smile_bulk_entry
from semsearch.writing.documents import Document


def body(document: dict) -> bytes:
    """The tokens between the header and the separator."""
    encoded = smile.dumps(document)
    assert encoded.startswith(b":)\n\x00") and encoded.endswith(b"\xff")
    return encoded[4:-1]


def test_literals_and_small_integers():
    assert body({}) == b"\xfa\xfb"
    assert body({"a": None}) == b"\xfa\x80a\x21\xfb"
    assert body({"a": True, "b": False}) == b"\xfa\x80a\x23\x80b\x22\xfb"
    # Small integers: zigzag in the 5 low bits of 0xC0..0xDF.
    assert body({"a": 0})[3] == 0xC0 and body({"a": -1})[3] == 0xC1 and body({"a": 15})[3] == 0xDE
    assert body({"a": -16})[3] == 0xDF


def test_integers_are_zigzag_vints():
    # 16 → zigzag 32 → one last byte 0x80 | 32.
    assert body({"a": 16})[3:] == b"\x24\xa0\xfb"
    # 100 → zigzag 200 = 0b11_001000 → 0x03, then 0x80 | 0x08.
    assert body({"a": 100})[3:] == b"\x24\x03\x88\xfb"
    assert body({"a": 2**40})[3] == 0x25  # beyond 32 bits: the 64-bit token
    with pytest.raises(smile.SmileUnsupported, match="64 bits"):
        smile.dumps({"a": 2**64})


def test_strings_by_length_and_alphabet():
    assert body({"a": ""})[3:] == b"\x20\xfb"
    assert body({"a": "x"})[3:] == b"\x40x\xfb"  # tiny ASCII: 0x40 + length − 1
    assert body({"a": "y" * 33})[3] == 0x60  # short ASCII: 0x60 + length − 33
    assert body({"a": "z" * 65})[3:] == b"\xe0" + b"z" * 65 + b"\xfc\xfb"  # long ASCII, end marker
    assert body({"a": "é"})[3:] == b"\x80\xc3\xa9\xfb"  # tiny Unicode: 0x80 + bytes − 2
    assert body({"a": "é" * 17})[3] == 0xA0  # 34 bytes: short Unicode
    assert body({"a": "é" * 40})[3] == 0xE4  # 80 bytes: long Unicode


def test_keys_by_length_and_alphabet():
    assert body({"": 1})[1] == 0x20
    assert body({"k" * 64: 1})[1] == 0x80 + 63
    assert body({"k" * 65: 1})[1:67] == b"\x34" + b"k" * 65
    assert body({"ключ": 1})[1] == 0xC0 + len("ключ".encode()) - 2
    with pytest.raises(smile.SmileUnsupported, match="key"):
        smile.dumps({1: "not a JSON key"})


def test_floats_keep_every_bit():
    double = body({"a": 0.1})[3:-1]
    assert double[0] == 0x29 and len(double) == 11 and all(b < 0x80 for b in double[1:])
    bits = 0
    for byte in double[1:]:
        bits = (bits << 7) | byte
    assert struct.unpack(">d", struct.pack(">Q", bits))[0] == 0.1

    vector = np.array([0.123456789, -1.0, 0.0, 3.4e38, -1e-45], dtype=np.float32)
    tokens = smile.float32_values(vector)
    assert len(tokens) == 6 * len(vector)
    decoded = []
    for i in range(len(vector)):
        token = tokens[6 * i:6 * i + 6]
        assert token[0] == 0x28 and all(b < 0x80 for b in token[1:])
        value = 0
        for byte in token[1:]:
            value = (value << 7) | byte
        decoded.append(struct.unpack(">f", struct.pack(">I", value))[0])
    assert np.array_equal(np.array(decoded, dtype=np.float32), vector)


def test_no_reserved_byte_in_a_document_body():
    """0xFF separates documents in a bulk body: nothing inside one may contain it."""
    document = {"t": "ü" * 100, "n": [-(2**63), 2**63 - 1, -2.5e300], "v": np.full(64, -np.inf, np.float32)}
    assert b"\xff" not in body(document)


def doc(i, source=None, text="hello"):
    return Document(id=f"d{i}", source=source if source is not None else {"text": text}, text=text,
                    content_hash="h", origin=f"f:{i}")


def test_smile_entry_says_what_the_json_entry_says():
    vector = np.array([0.5, -0.25], dtype=np.float32)
    entry = smile_bulk_entry("idx", doc(1), vector, "embedding")
    action, source, rest = entry.split(b"\xff")
    assert rest == b""
    assert action == smile.dumps({"index": {"_index": "idx", "_id": "d1"}})[:-1]
    assert source + b"\xff" == smile.dumps({"text": "hello", "semsearch_hash": "h", "semsearch_id": "d1",
                                            "embedding": vector})
    assert b"\x28" + smile.float32_values(vector[:1])[1:] in source


def test_chunks_count_bytes_of_either_format():
    entries = [b"x" * 10, b"y" * 10, "z" * 10]
    assert list(chunk_entries(entries, max_docs=10, max_bytes=20)) == [[0, 1], [2]]


class RecordingClient:
    """Records bulk requests; answers Smile with ``smile_status`` (None: accepted)."""

    def __init__(self, smile_status=None):
        self.smile_status = smile_status
        self.bodies: list = []
        self.transport = self

    def perform_request(self, method, path, params=None, body=None, headers=None):
        from opensearchpy.exceptions import TransportError

        self.bodies.append(body)
        if self.smile_status:
            raise TransportError(self.smile_status, "media_type_header_exception",
                                 {"error": "Content-Type header [application/smile] is not supported"})
        return {"items": [{"index": {"status": 201}} for _ in range(body.count(b"\xff") // 2)]}

    def bulk(self, body, refresh=False):
        self.bodies.append(body)
        return {"items": [{"index": {"status": 201}} for _ in range(body.count("\n") // 2)]}


def test_writer_sends_smile_and_falls_back_to_json_when_refused():
    docs, vectors = [doc(i) for i in range(3)], np.ones((3, 2), dtype=np.float32)
    accepting = RecordingClient()
    assert BulkWriter(accepting, "i", "v").write(docs, vectors).indexed == 3
    assert isinstance(accepting.bodies[0], bytes) and accepting.bodies[0].startswith(b":)\n")

    refusing = RecordingClient(smile_status=406)
    writer = BulkWriter(refusing, "i", "v", max_docs=2)
    assert writer.write(docs, vectors).indexed == 3
    assert writer.body_format == "json"
    assert [type(b) for b in refusing.bodies] == [bytes, str, str]  # refused once, then JSON for all
    assert refusing.bodies[1] == "".join(bulk_entry("i", d, v, "v") for d, v in zip(docs[:2], vectors))

    json_only = RecordingClient()
    BulkWriter(json_only, "i", "v", body_format="json").write(docs, vectors)
    assert all(isinstance(b, str) for b in json_only.bodies)
    with pytest.raises(ValueError, match="smile, json"):
        BulkWriter(json_only, "i", "v", body_format="cbor")


def test_a_source_smile_cannot_carry_goes_as_json():
    client = RecordingClient()
    huge = doc(1, source={"text": "hello", "n": 2**70})
    assert BulkWriter(client, "i", "v").write([huge], np.ones((1, 2), dtype=np.float32)).indexed == 1
    assert isinstance(client.bodies[0], str) and '"n":1180591620717411303424' in client.bodies[0]


def test_which_errors_refuse_smile():
    from opensearchpy.exceptions import TransportError

    assert _refuses_smile(TransportError(406, "x", {}))
    assert _refuses_smile(TransportError(415, "x", {}))
    assert _refuses_smile(TransportError(400, "illegal_argument_exception",
                                         {"error": {"reason": "Content-Type header [application/smile] is not supported"}}))
    assert not _refuses_smile(TransportError(400, "mapper_parsing_exception", {"error": {"reason": "failed to parse"}}))
    assert not _refuses_smile(TransportError(429, "x", {}))


def test_after_a_refusal_json_requests_are_sized_for_json():
    """JSON vectors are longer than Smile's: the refused chunk and the rest are chunked again."""
    docs, vectors = [doc(i) for i in range(6)], np.random.default_rng(0).random((6, 384), dtype=np.float32)
    json_size = len(bulk_entry("i", docs[0], vectors[0], "v").encode())
    smile_size = len(smile_bulk_entry("i", docs[0], vectors[0], "v"))
    assert smile_size < json_size
    limit = 2 * json_size + 10  # three Smile entries fit, only two JSON ones
    assert 3 * smile_size <= limit
    client = RecordingClient(smile_status=415)
    assert BulkWriter(client, "i", "v", max_bytes=limit).write(docs, vectors).indexed == 6
    json_bodies = [b for b in client.bodies if isinstance(b, str)]
    assert len(json_bodies) == 3 and all(len(b.encode()) <= limit for b in json_bodies)
