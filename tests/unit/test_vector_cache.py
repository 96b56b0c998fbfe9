"""The vector cache (SEMSEARCH_VECTOR_CACHE): what it gives back is what the model computes, and only that."""

import numpy as np
import pytest

from semsearch import Encoder
from semsearch.encoding.vector_cache import VectorCache, cache_key, cache_namespace
from semsearch.settings import Settings

TEXTS = ["a short one", "the telescope was pointed at the observatory's northern sky for the whole night " * 40,
         "sentence vectors are compared by cosine", "a short one, changed"]


@pytest.fixture(scope="module")
def plain():
    return Encoder(device="cpu", precision="fp32")


def test_cached_vectors_are_the_model_s_and_a_changed_text_misses(plain, tmp_path):
    path = tmp_path / "vectors.sqlite"
    first = Encoder(device="cpu", precision="fp32", vector_cache=path)
    expected = plain.encode_documents(TEXTS[:3])
    assert np.array_equal(first.encode_documents(TEXTS[:3]), expected)
    assert (first.vector_cache.hits, first.vector_cache.misses) == (0, 3)

    # A second process's encoder (another connection to the file) reads them back, in the caller's order.
    second = Encoder(device="cpu", precision="fp32", vector_cache=path)
    assert np.array_equal(second.encode_documents(TEXTS[2::-1]), expected[::-1])
    assert (second.vector_cache.hits, second.vector_cache.misses) == (3, 0)
    changed = second.encode_documents([TEXTS[3]])
    assert second.vector_cache.misses == 1
    assert np.allclose(changed, plain.encode_documents([TEXTS[3]]), atol=1e-6)
    # A query prompt-less encode of the same text is the same input; passages split the long text into
    # windows, each its own input: the first window is the document vector, found in the cache.
    passages = second.encode_passages(TEXTS[:2])
    reference = plain.encode_passages(TEXTS[:2])
    assert passages.owner == reference.owner and len(passages.owner) > 2
    assert np.allclose(passages.vectors, reference.vectors, atol=1e-6)
    parts = list(second.iter_passages(TEXTS[:2], part_size=1))
    assert np.allclose(np.concatenate([p.vectors for p in parts]), reference.vectors, atol=1e-6)


def test_another_precision_or_model_never_meets_these_vectors(tmp_path):
    fingerprint = {"model": "m", "weights": "w1", "dimension": 3}
    ids = [101, 2023, 102]
    fp32 = cache_key(cache_namespace(fingerprint, "fp32", "cpu"), ids, 0)
    assert fp32 != cache_key(cache_namespace(fingerprint, "bf16", "cpu"), ids, 0)
    assert fp32 != cache_key(cache_namespace(fingerprint, "fp32", "cuda"), ids, 0)
    assert fp32 != cache_key(cache_namespace({**fingerprint, "weights": "w2"}, "fp32", "cpu"), ids, 0)
    assert fp32 != cache_key(cache_namespace(fingerprint, "fp32", "cpu"), ids, 1)  # prompt left out of pooling
    assert fp32 != cache_key(cache_namespace(fingerprint, "fp32", "cpu"), [101, 2024, 102], 0)
    cache = VectorCache(tmp_path / "v.sqlite", dimension=3)
    cache.put_many([fp32], np.array([[1.0, 2.0, 3.0]]))
    cache.put_many([fp32], np.array([[9.0, 9.0, 9.0]]))  # the first vector stays: the same input, the same vector
    assert np.array_equal(cache.get_many([fp32])[fp32], [1.0, 2.0, 3.0])
    assert VectorCache(tmp_path / "v.sqlite", dimension=4).get_many([fp32]) == {}  # another width: not used


def test_settings_turn_it_on(tmp_path, monkeypatch):
    assert Encoder.from_settings(Settings(device="cpu")).vector_cache is None
    monkeypatch.setenv("SEMSEARCH_VECTOR_CACHE", str(tmp_path / "c.sqlite"))
    encoder = Encoder.from_settings(Settings(device="cpu"))
    assert encoder.vector_cache is not None and (tmp_path / "c.sqlite").exists()


def test_queries_skip_the_cache_and_an_unusable_file_never_fails_an_encode(plain, tmp_path, caplog):
    encoder = Encoder(device="cpu", precision="fp32", vector_cache=tmp_path / "q.sqlite")
    encoder.encode_query("what is a telescope")
    encoder.encode_query(["a", "b"])
    assert (encoder.vector_cache.hits, encoder.vector_cache.misses) == (0, 0)
    # A folder where the file should be: SQLite cannot open it. Said once; the model computes every vector.
    (tmp_path / "dir.sqlite").mkdir()
    broken = Encoder(device="cpu", precision="fp32", vector_cache=tmp_path / "dir.sqlite")
    assert np.allclose(broken.encode_documents(TEXTS[:2]), plain.encode_documents(TEXTS[:2]), atol=1e-6)
    assert "not usable" in caplog.text
