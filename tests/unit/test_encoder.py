"""The encoder against sentence-transformers (reference only) on the shipped weights."""

import json
import shutil

import numpy as np
import pytest
import torch

from semsearch import Encoder
from semsearch.settings import Settings
from semsearch.encoding.encoder import auto_precision, cpu_has_bf16_matrix_units, plan_batches
from semsearch.errors import ConfigurationError, ModelError
from semsearch.encoding.model_folder import POOLING_MODES, default_model_path, load_model_spec

st = pytest.importorskip("sentence_transformers", reason="reference implementation for fidelity tests")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def encoder():
    # fp32: the vectors sentence-transformers computes, to 1e-5; the default (auto) may be bf16 on CPU.
    return Encoder(device="cpu", precision="fp32")


def model_copy(tmp_path, pooling: dict, normalize: bool = True):
    """A model folder built for the test from the shipped weights with another Pooling config."""
    src = default_model_path()
    dst = tmp_path / "model"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model.safetensors"))
    (dst / "model.safetensors").symlink_to(src / "model.safetensors")
    config = {"word_embedding_dimension": 384, **pooling}
    (dst / "1_Pooling" / "config.json").write_text(json.dumps(config))
    if not normalize:
        modules = [m for m in json.loads((dst / "modules.json").read_text()) if not m["type"].endswith("Normalize")]
        (dst / "modules.json").write_text(json.dumps(modules))
    return dst


def test_default_model_matches_sentence_transformers(encoder, sts_sentences):
    sample = sts_sentences[:300]
    reference = st.SentenceTransformer(str(default_model_path()), device="cpu").encode(sample)
    ours = encoder.encode(sample)
    assert ours.shape == (300, 384) and ours.dtype == np.float32
    assert cosines(ours, reference).min() >= 0.9999
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("mode", POOLING_MODES)
def test_each_pooling_mode_matches_sentence_transformers(tmp_path, sts_sentences, mode):
    folder = model_copy(tmp_path, {"pooling_mode": mode}, normalize=False)
    sample = sts_sentences[:40]
    reference = st.SentenceTransformer(str(folder), device="cpu").encode(sample)
    ours = Encoder(str(folder), device="cpu", precision="fp32").encode(sample)
    assert load_model_spec(folder).pooling_modes == (mode,)
    assert cosines(ours, reference).min() >= 0.9999
    assert np.allclose(np.linalg.norm(ours, axis=1), np.linalg.norm(reference, axis=1), rtol=1e-3)


def test_combined_legacy_pooling_keys(tmp_path, sts_sentences):
    folder = model_copy(tmp_path, {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True})
    ours = Encoder(str(folder), device="cpu", precision="fp32")
    assert ours.dimension == 768
    reference = st.SentenceTransformer(str(folder), device="cpu").encode(sts_sentences[:20])
    assert cosines(ours.encode(sts_sentences[:20]), reference).min() >= 0.9999


def test_auto_precision_is_half_where_the_hardware_runs_it():
    assert auto_precision("cuda", bf16_matrix_units=False) == "fp16"
    assert auto_precision("cpu", bf16_matrix_units=True) == "bf16"
    assert auto_precision("cpu", bf16_matrix_units=False) == "fp32"
    assert auto_precision("mps", bf16_matrix_units=True) == "fp32"


def test_default_cpu_encoder_stays_within_half_precision_fidelity(sts_sentences):
    """The default (auto) encoder on this machine: bf16 where the CPU has AMX or AVX512-BF16, else fp32; either way
    within the half-precision contract (cosine ≥ 0.999 to sentence-transformers' fp32 vectors)."""
    default = Encoder(device="cpu")
    expected = "bf16" if cpu_has_bf16_matrix_units() else "fp32"
    assert default.precision == expected
    assert next(default.model.parameters()).dtype == {"bf16": torch.bfloat16, "fp32": torch.float32}[expected]
    sample = sts_sentences[:300]
    reference = st.SentenceTransformer(str(default_model_path()), device="cpu").encode(sample)
    ours = default.encode(sample)
    assert ours.dtype == np.float32
    assert cosines(ours, reference).min() >= 0.999
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_bf16_stays_within_half_precision_fidelity_on_any_cpu(sts_sentences):
    """bf16 runs on every CPU (emulated without AMX or AVX512-BF16, only slower): the contract holds either way."""
    sample = sts_sentences[:200]
    reference = st.SentenceTransformer(str(default_model_path()), device="cpu").encode(sample)
    ours = Encoder(device="cpu", precision="bf16").encode(sample)
    assert cosines(ours, reference).min() >= 0.999


def test_settings_choose_the_precision():
    assert Settings().precision == "auto"
    exact = Encoder.from_settings(Settings(precision="fp32", device="cpu"))
    assert exact.precision == "fp32" and next(exact.model.parameters()).dtype == torch.float32
    half = Encoder.from_settings(Settings(precision="bf16", device="cpu"))
    assert half.precision == "bf16" and next(half.model.parameters()).dtype == torch.bfloat16


def test_order_is_restored_whatever_the_lengths(encoder):
    texts = ["short", "a much longer sentence with many more tokens in it than the others", "mid length text"]
    together = encoder.encode(texts)
    for i, text in enumerate(texts):
        assert np.allclose(together[i], encoder.encode([text])[0], atol=1e-5)


def test_empty_input_and_str_misuse(encoder):
    assert encoder.encode([]).shape == (0, 384)
    assert encoder.encode_passages([]).vectors.shape == (0, 384)
    with pytest.raises(TypeError, match="list of texts"):
        encoder.encode("not a list")


def test_plan_batches_respects_budget_and_covers_everything():
    lengths = [5, 100, 7, 100, 50, 3, 64]
    batches = plan_batches(lengths, token_budget=200)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) == 1 or max(lengths[i] for i in batch) * len(batch) <= 200
    assert plan_batches([500], token_budget=10) == [[0]]  # too long for the budget: alone


def test_oom_halves_the_batch_and_keeps_results(encoder, monkeypatch):
    texts = [f"sentence number {i}" for i in range(16)]
    expected = encoder.encode(texts)
    real_forward = encoder._forward
    seen = []

    def flaky_forward(batch_ids, prompt_length):
        seen.append(len(batch_ids))
        if len(batch_ids) > 4:
            raise torch.cuda.OutOfMemoryError("simulated")
        return real_forward(batch_ids, prompt_length)

    monkeypatch.setattr(encoder, "_forward", flaky_forward)
    budget = encoder.token_budget
    try:
        got = encoder.encode(texts)
    finally:
        encoder.token_budget = budget
    assert np.allclose(got, expected, atol=1e-5)
    assert max(seen) == 16 and seen.count(4) == 4


def test_unsupported_module_is_named(tmp_path):
    folder = model_copy(tmp_path, {"pooling_mode": "mean"})
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelError, match="Dense"):
        load_model_spec(folder)


def test_missing_model_never_downloads():
    with pytest.raises(ModelError, match="never downloads"):
        load_model_spec("some-org/not-a-local-model")


def test_bad_device_and_precision():
    with pytest.raises(ConfigurationError, match="precision"):
        Encoder(device="cpu", precision="fp8")


def test_window_starts_cover_everything_with_overlap():
    from semsearch.encoding.encoder import window_starts

    assert window_starts(100, 254, 32) == [0]
    starts = window_starts(600, 254, 32)
    assert starts == [0, 222, 346]
    covered = set()
    for s in starts:
        covered.update(range(s, s + 254))
    assert covered == set(range(600))
    assert all(b - a <= 254 - 32 for a, b in zip(starts, starts[1:]))
    with pytest.raises(ValueError):
        window_starts(10, 5, 5)


def test_long_documents_are_chunked_not_truncated(encoder):
    short = "A short document about cats."
    long_text = " ".join(f"Sentence {i} talks about topic number {i} in some detail." for i in range(120))
    passages = encoder.encode_passages([short, long_text], overlap=32)
    counts = [passages.owner.count(0), passages.owner.count(1)]
    assert counts[0] == 1 and counts[1] > 1
    assert passages.chunked_texts() == 1
    # The first window of every text is what encode_documents gives (the truncated view).
    firsts = [passages.owner.index(0), passages.owner.index(1)]
    assert np.allclose(passages.vectors[firsts], encoder.encode_documents([short, long_text]), atol=1e-5)
    # Windows cover the whole text and overlap: the last ends at the text's end.
    spans = [span for span, o in zip(passages.spans, passages.owner) if o == 1]
    assert spans[0][0] == 0 and spans[-1][1] == len(long_text)
    assert all(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))
    # Each window is at most the model's length: its vector equals encoding its text span alone.
    last = long_text[spans[-1][0]:spans[-1][1]]
    assert cosines(passages.vectors[[len(passages.owner) - 1]], encoder.encode_documents([last]))[0] > 0.999
