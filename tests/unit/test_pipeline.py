"""encode_and_write's ordering, parts and failures, with the real encoder and a recording writer
(what reaches a real cluster is covered by the integration tests)."""

import threading

import numpy as np
import pytest

from semsearch import Encoder
from semsearch.writing.bulk import BulkResult
from semsearch.writing.documents import Document
from semsearch.writing.pipeline import documents_with_vectors, encode_and_write


@pytest.fixture(scope="module")
def encoder():
    return Encoder(device="cpu", precision="fp32")


def docs(prefix: str, count: int, words: int = 5) -> list[Document]:
    return [Document(id=f"{prefix}{i}", source={}, text=" ".join(f"word{i}x{j}" for j in range(words + i % 7)),
                     content_hash="h") for i in range(count)]


class RecordingWriter:
    passages_field = None

    def __init__(self, fail_on: str | None = None):
        self.parts: list[list[str]] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def write(self, batch, vectors, passages=None):
        assert len(batch) == len(vectors) and vectors.shape[1] == 384
        if self.fail_on and any(d.id == self.fail_on for d in batch):
            raise RuntimeError("cluster gone")
        with self.lock:
            self.parts.append([d.id for d in batch])
        return BulkResult(indexed=len(batch))


def test_iter_passages_parts_hold_whole_texts_and_match_encode_passages(encoder):
    long_text = " ".join(f"Sentence {i} talks about topic number {i} in some detail." for i in range(80))
    texts = [f"short text number {i}" for i in range(30)] + [long_text, "another short one"]
    whole = encoder.encode_passages(texts, overlap=16)
    parts = list(encoder.iter_passages(texts, overlap=16, part_size=8))
    assert all(len(set(p.owner)) >= 8 for p in parts[:-1])
    seen = [o for p in parts for o in dict.fromkeys(p.owner)]
    assert sorted(seen) == list(range(len(texts)))  # every text once, in exactly one part
    for part in parts:
        for text in set(part.owner):
            mine = [i for i, o in enumerate(part.owner) if o == text]
            theirs = [i for i, o in enumerate(whole.owner) if o == text]
            assert [part.spans[i] for i in mine] == [whole.spans[i] for i in theirs]
            assert np.allclose(part.vectors[mine], whole.vectors[theirs], atol=1e-5)
    assert whole.owner.count(len(texts) - 2) > 1  # the long text really has several windows
    firsts = np.concatenate([p.vectors for p in encoder.iter_passages(texts, part_size=8, first_only=True)])
    order = [o for p in encoder.iter_passages(texts, part_size=8, first_only=True) for o in p.owner]
    assert np.allclose(firsts, encoder.encode_documents(texts)[order], atol=1e-5)


def test_documents_with_vectors_keeps_passages_of_chunked_documents_only(encoder):
    batch = docs("d", 3)
    batch[1] = Document(id="long", source={}, text=" ".join(["lighthouse keeper"] * 400), content_hash="h")
    part = encoder.encode_passages([d.text for d in batch])
    ordered, vectors, passages = documents_with_vectors(batch, part)
    assert [d.id for d in ordered] == ["d0", "long", "d2"]
    assert passages[0] is None and passages[2] is None and len(passages[1]) > 1
    assert np.allclose(vectors[1], passages[1][0][0])


def test_batches_come_back_in_order_with_every_part_written(encoder):
    batches = [docs("a", 300), docs("b", 10), docs("c", 130)]
    writer = RecordingWriter()
    out = list(encode_and_write(batches, encoder, writer, part_docs=64))
    assert [batch[0].id for batch, _ in out] == ["a0", "b0", "c0"]
    assert [result.indexed for _, result in out] == [300, 10, 130]
    written = [i for part in writer.parts for i in part]
    assert sorted(written) == sorted(d.id for b in batches for d in b)  # each document exactly once
    assert len([p for p in writer.parts if p[0].startswith("a")]) >= 4  # the big batch went in parts


def test_empty_batches_and_finished_ones_are_handed_back_before_later_input_is_read(encoder):
    consumed: list[str] = []

    def feed():
        for name, batch in (("first", docs("f", 20)), ("empty1", []), ("empty2", []), ("last", docs("l", 5))):
            consumed.append(name)
            yield batch

    handed_back = []
    for batch, result in encode_and_write(feed(), encoder, RecordingWriter(), part_docs=8):
        handed_back.append((len(batch), result.indexed, list(consumed)))
    assert [(n, i) for n, i, _ in handed_back] == [(20, 20), (0, 0), (0, 0), (5, 5)]
    # The empty batches came back before the last batch was even read (backfill checkpoints there).
    assert "last" not in handed_back[1][2] and "last" not in handed_back[2][2]


def test_a_failed_write_reaches_the_caller(encoder):
    writer = RecordingWriter(fail_on="a5")
    with pytest.raises(RuntimeError, match="cluster gone"):
        list(encode_and_write([docs("a", 200)], encoder, writer, part_docs=16))


class ConcurrencyWriter(RecordingWriter):
    """Records how many writes ran at once, and whether any ran while the encoder was encoding."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder, self.running, self.most_at_once, self.while_encoding = encoder, 0, 0, 0
        self.gate = threading.Barrier(2, timeout=1)

    def write(self, batch, vectors, passages=None):
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.while_encoding += self.encoder.encoding
        try:
            self.gate.wait()  # two writers must be in flight together, or this times out
        except threading.BrokenBarrierError:
            self.gate.reset()  # a batch's odd last part had no partner; the next pair is checked afresh
        with self.lock:
            self.running -= 1
        return super().write(batch, vectors, passages)


class FlaggingEncoder:
    """The real encoder, flagging while iter_passages is producing parts."""

    def __init__(self, encoder):
        self.inner, self.encoding = encoder, False

    def iter_passages(self, *args, **kwargs):
        self.encoding = True
        try:
            yield from self.inner.iter_passages(*args, **kwargs)
        finally:
            self.encoding = False


def test_writing_after_encoding_writes_each_batch_whole_with_concurrent_requests(encoder):
    flagging = FlaggingEncoder(encoder)
    writer = ConcurrencyWriter(flagging)
    batches = [docs("a", 100), [], docs("b", 40)]
    out = list(encode_and_write(batches, flagging, writer, part_docs=16, write_while_encoding=False, writers=2))
    assert [len(batch) for batch, _ in out] == [100, 0, 40]
    assert [result.indexed for _, result in out] == [100, 0, 40]
    written = [i for part in writer.parts for i in part]
    assert sorted(written) == sorted(d.id for b in batches for d in b)
    assert writer.most_at_once == 2  # the parts of a batch went in concurrently
    assert writer.while_encoding == 0  # and only once the batch was encoded


def test_writing_after_encoding_matches_writing_while_encoding(encoder):
    batch = docs("a", 50)
    vectors = {}

    class VectorWriter(RecordingWriter):
        def write(self, part, part_vectors, passages=None):
            for d, v in zip(part, part_vectors):
                vectors.setdefault(d.id, []).append(v)
            return super().write(part, part_vectors, passages)

    for while_encoding in (True, False):
        list(encode_and_write([batch], encoder, VectorWriter(), part_docs=8, write_while_encoding=while_encoding))
    assert all(len(pair) == 2 and np.array_equal(pair[0], pair[1]) for pair in vectors.values())
    assert len(vectors) == 50


def test_a_failed_write_after_encoding_reaches_the_caller(encoder):
    writer = RecordingWriter(fail_on="a5")
    with pytest.raises(RuntimeError, match="cluster gone"):
        list(encode_and_write([docs("a", 200)], encoder, writer, part_docs=16, write_while_encoding=False))


def test_a_small_batch_written_after_encoding_is_still_split_between_the_writers(encoder):
    flagging = FlaggingEncoder(encoder)
    writer = ConcurrencyWriter(flagging)
    out = list(encode_and_write([docs("s", 25)], flagging, writer, part_docs=128, write_while_encoding=False,
                                writers=2))
    assert out[0][1].indexed == 25
    assert sorted(len(part) for part in writer.parts) == [12, 13] and writer.most_at_once == 2


def test_writing_after_encoding_carries_the_passages_of_long_documents(encoder):
    class PassagesWriter(RecordingWriter):
        passages_field = "passages"

        def __init__(self):
            super().__init__()
            self.passages = {}

        def write(self, batch, vectors, passages=None):
            for d, p in zip(batch, passages):
                self.passages[d.id] = p
            return super().write(batch, vectors, passages)

    batch = docs("d", 9)
    batch[4] = Document(id="long", source={}, text=" ".join(["lighthouse keeper"] * 400), content_hash="h")
    writer = PassagesWriter()
    out = list(encode_and_write([batch], encoder, writer, part_docs=4, write_while_encoding=False, writers=2))
    assert out[0][1].indexed == 9 and len(writer.parts) == 3
    assert len(writer.passages["long"]) > 1
    assert all(p is None for i, p in writer.passages.items() if i != "long")


def test_a_document_the_cluster_refused_is_dead_lettered_whole_with_the_id_it_was_given():
    import json as json_module

    from semsearch.writing.documents import Document
    from semsearch.writing.pipeline import rejection_for

    long_doc = Document("d1", {"title": "t" * 3000, "n": 1}, "text", "h", origin="in.jsonl:4")
    record = rejection_for(long_doc, "refused", id_field="key").as_dict()
    assert (record["file"], record["line"], record["id"]) == ("in.jsonl", 4, "d1")
    assert json_module.loads(record["raw"]) == {"key": "d1", "title": "t" * 3000, "n": 1}  # whole, not cut at 2,000
    # An id made from the content hash is not written back: a mended text gets the id its own hash makes.
    hashed = Document("h", {"text": "x"}, "x", "h", origin="<app>")
    assert json_module.loads(rejection_for(hashed, "refused").as_dict()["raw"]) == {"text": "x"}
