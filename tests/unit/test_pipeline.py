"""encode_and_write's ordering, parts and failures, with the real encoder and a recording writer
(what reaches a real cluster is covered by the integration tests)."""

import threading

import numpy as np
import pytest

from semsearch import Encoder
from semsearch.bulk import BulkResult
from semsearch.documents import Document
from semsearch.pipeline import documents_with_vectors, encode_and_write


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
