"""Sentence-BERT encoder on transformers + torch: faithful vectors, length-aware batches."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from semsearch.errors import ConfigurationError, ModelError
from semsearch.settings import Precision

# Nothing downloads at run time: a model id resolves to a local folder or fails.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
from semsearch.encoding.model_folder import Fingerprint, ModelSpec, fingerprint_of, load_model_spec, max_length_of
from semsearch.encoding.pooling import pool
from semsearch.encoding.vector_cache import VectorCache, cache_key, cache_namespace

if TYPE_CHECKING:
    from semsearch.settings import Settings

log = logging.getLogger(__name__)

PRECISIONS: tuple[str, ...] = get_args(Precision)
# Padded tokens per forward pass. On CPU, small batches stay in cache: 4,096 ran 1.37× faster than
# sentence-transformers on dbpedia-entity where 8,192 gave 1.10× and 16,384 0.95× (docs/benchmarks.md).
# A GPU wants large batches to fill its cores (not measured here: no GPU was available).
DEFAULT_TOKEN_BUDGET = {"cpu": 4096, "cuda": 16384}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def cpu_has_bf16_matrix_units() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware, where bf16 beats fp32 twofold or more.

    Intel AMX tiles (Xeon 4th gen on): 3.0× fp32; AVX512-BF16 dot products (AMD Zen 4, Intel Cooper
    Lake): 2.0–2.6× fp32 on this project's EPYC (docs/benchmarks.md). Without either, torch emulates
    bf16 matmuls and they run slower than fp32.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    probes = (getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    return any(probe is not None and probe() for probe in probes)


def auto_precision(device_type: str, bf16_matrix_units: bool) -> str:
    """What ``precision="auto"`` means on a device (pure): half precision where the hardware runs it natively.

    fp16 on CUDA; bf16 on CPUs with AMX or AVX512-BF16 (2.0–3.0× fp32's throughput on this project's
    machines, cosine to the fp32 vectors ≥ 0.9998 and the same STSb Spearman, docs/benchmarks.md);
    fp32 elsewhere.
    """
    if device_type == "cuda":
        return "fp16"
    if device_type == "cpu" and bf16_matrix_units:
        return "bf16"
    return "fp32"


def resolve_device(device: str | None) -> torch.device:
    """``None`` picks cuda when a GPU is visible, else cpu."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ConfigurationError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigurationError(f"device {device!r} asked for, but torch sees no CUDA GPU; use 'cpu'")
    return resolved


def plan_batches(lengths: Sequence[int], token_budget: int, max_batch: int = 512) -> list[list[int]]:
    """Group input positions into batches whose padded size (count × longest) fits the budget.

    Inputs are taken longest first, so each batch holds inputs of similar length and little
    padding is computed; a single input longer than the budget gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        longest_if_added = max(longest, lengths[i])
        if current and (longest_if_added * (len(current) + 1) > token_budget or len(current) >= max_batch):
            batches.append(current)
            current, longest_if_added = [], lengths[i]
        current.append(i)
        longest = longest_if_added
    if current:
        batches.append(current)
    return batches


@dataclass
class Passages:
    """Vectors of token windows: every text has one or more, in order.

    ``owner[i]`` is the position of passage i's text in the input; ``spans[i]`` its character span
    in that text. The first passage of a text is exactly what :meth:`Encoder.encode_documents`
    gives for it (the model's window from the start).
    """

    vectors: np.ndarray
    owner: list[int]
    spans: list[tuple[int, int]]

    def chunked_texts(self) -> int:
        """How many texts needed more than one window."""
        counts: dict[int, int] = {}
        for o in self.owner:
            counts[o] = counts.get(o, 0) + 1
        return sum(1 for c in counts.values() if c > 1)


def window_starts(length: int, window: int, overlap: int) -> list[int]:
    """Start offsets of windows of ``window`` tokens covering ``length`` tokens, overlapping by ``overlap``.

    The last window ends exactly at ``length``; a text that fits has one window at 0 (pure).
    """
    if window <= 0:
        raise ValueError("window must be positive")
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, {window}), got {overlap}")
    if length <= window:
        return [0]
    step = window - overlap
    starts = list(range(0, length - window, step))
    starts.append(length - window)
    return starts


class Encoder:
    """Encodes texts into sentence vectors as the model folder prescribes.

    ``model``: a sentence-transformers folder, a model id present locally, or ``None`` for the
    shipped all-MiniLM-L6-v2. ``device``: ``None`` (cuda if present, else cpu), ``"cpu"``, ``"cuda:0"``…
    ``precision``: ``auto`` (:func:`auto_precision`: fp16 on GPU, bf16 on CPUs with AMX or AVX512-BF16, else fp32),
    ``fp32``, ``fp16`` or ``bf16``.
    ``token_budget``: padded tokens per forward pass (batch size adapts to input length); default
    per device (:data:`DEFAULT_TOKEN_BUDGET`). ``vector_cache``: a file of vectors already computed
    (:mod:`semsearch.encoding.vector_cache`); an input found there skips the model.
    """

    def __init__(self, model: str | os.PathLike[str] | None = None, device: str | None = None, *,
                 precision: str = "auto", token_budget: int | None = None, num_threads: int | None = None,
                 vector_cache: str | os.PathLike[str] | None = None) -> None:
        if precision not in PRECISIONS:
            raise ConfigurationError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        if token_budget is not None and token_budget <= 0:
            raise ConfigurationError(f"token_budget must be positive, got {token_budget}")
        self.spec: ModelSpec = load_model_spec(model)
        self.device = resolve_device(device)
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        if precision == "auto":
            precision = auto_precision(self.device.type, self.device.type == "cpu" and cpu_has_bf16_matrix_units())
        self.precision = precision
        self.token_budget = token_budget or DEFAULT_TOKEN_BUDGET.get(self.device.type, DEFAULT_TOKEN_BUDGET["cuda"])
        hf_logging.disable_progress_bar()  # a progress bar per model load is noise in a CLI
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.spec.transformer_path), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(self.spec.transformer_path), local_files_only=True,
                                                   dtype=DTYPES[precision])
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the transformer in {self.spec.transformer_path}: {exc}") from exc
        self.model.eval().to(self.device)
        self.max_length = max_length_of(self.spec)
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.dimension = int(self.model.config.hidden_size) * len(self.spec.pooling_modes)
        self._fingerprint: Fingerprint | None = None
        self._special_prefix, self._special_suffix = self._special_tokens()
        self.vector_cache = VectorCache(vector_cache, self.dimension) if vector_cache else None
        if self.vector_cache is not None:
            self._cache_namespace = cache_namespace(self.fingerprint.as_dict(), precision, self.device.type)

    @classmethod
    def from_settings(cls, settings: Settings, model: str | None = None) -> Encoder:
        """The encoder ``settings`` describe (model, device, precision, token budget); ``model`` overrides."""
        return cls(model or settings.model, settings.device, precision=settings.precision,
                   token_budget=settings.token_budget, vector_cache=settings.vector_cache)

    # -- public API -----------------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts`` in their order: ``len(texts) × dimension`` float32."""
        return self._encode(texts, prompt="")

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Like :meth:`encode`, with the model's document prompt where it defines one."""
        return self._encode(texts, prompt=self.spec.document_prompt)

    def encode_query(self, text: str | Sequence[str]) -> np.ndarray:
        """Query vectors (the model's query prompt where it defines one); a str gives one vector."""
        if isinstance(text, str):
            return self._encode([text], prompt=self.spec.query_prompt, cached=False)[0]
        # Queries skip the vector cache: every distinct user query would stay on disk, and a search would
        # wait on the file's lock.
        return self._encode(text, prompt=self.spec.query_prompt, cached=False)

    def encode_passages(self, texts: Sequence[str], overlap: int = 32) -> Passages:
        """Documents of any length: texts longer than the model's window are split into token
        windows overlapping by ``overlap`` tokens, each with its own vector (nothing is truncated)."""
        if isinstance(texts, str):
            raise TypeError("encode_passages() takes a list of texts")
        inputs, owner, spans, prompt_length = self._windows(texts, overlap)
        vectors = self._encode_ids(inputs, prompt_length) if inputs else np.zeros((0, self.dimension), np.float32)
        return Passages(vectors=vectors, owner=owner, spans=spans)

    def iter_passages(self, texts: Sequence[str], overlap: int = 32, *, part_size: int = 128,
                      first_only: bool = False) -> Iterator[Passages]:
        """:meth:`encode_passages` in parts, as the length-sorted batches finish: each part holds at
        least ``part_size`` whole texts (the last may hold fewer), every window of each in order, with
        ``owner`` giving positions in ``texts``. A caller writes the first parts while the rest encode.
        ``first_only``: each text's first window alone, exactly as :meth:`encode_documents` tokenizes
        it (the spans of such parts are not computed: (0, 0))."""
        if isinstance(texts, str):
            raise TypeError("iter_passages() takes a list of texts")
        if first_only:
            inputs, prompt_length = self._tokenize(texts, self.spec.document_prompt) if texts else ([], 0)
            owner, spans = list(range(len(inputs))), [(0, 0)] * len(inputs)
        else:
            inputs, owner, spans, prompt_length = self._windows(texts, overlap)
        windows_of: dict[int, list[int]] = {}
        for window, text in enumerate(owner):
            windows_of.setdefault(text, []).append(window)
        missing = {text: len(windows) for text, windows in windows_of.items()}
        finished: dict[int, np.ndarray] = {}
        ready: list[int] = []

        def part() -> Passages:
            order = [w for text in ready for w in windows_of[text]]
            return Passages(vectors=np.stack([finished.pop(w) for w in order]), owner=[owner[w] for w in order],
                            spans=[spans[w] for w in order])

        def collect(batch: list[int], host_vectors: Callable[[], np.ndarray]) -> None:
            for window, vector in zip(batch, host_vectors()):
                finished[window] = vector
                missing[owner[window]] -= 1
                if missing[owner[window]] == 0:
                    ready.append(owner[window])

        previous = None
        for batch, vectors in self._forward_batches(inputs, prompt_length):
            # Batch N's copy is queued right behind its kernels; it is awaited only after batch N+1 is
            # queued, so a GPU works on N+1 while this thread sorts N's vectors and pads N+2.
            current = (batch, self._start_host_copy(vectors))
            if previous is not None:
                collect(*previous)
            previous = current
            if len(ready) >= part_size:
                yield part()
                ready.clear()
        if previous is not None:
            collect(*previous)
        if ready:
            yield part()

    @property
    def fingerprint(self) -> Fingerprint:
        if self._fingerprint is None:
            self._fingerprint = fingerprint_of(self.spec)
        return self._fingerprint

    def token_count(self, texts: Sequence[str]) -> list[int]:
        """Number of tokens of each text before truncation (special tokens included)."""
        return [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]]

    # -- internals ------------------------------------------------------------------------------

    def _special_tokens(self) -> tuple[list[int], list[int]]:
        """The ids the tokenizer puts before and after a text ([CLS] … [SEP] for BERT), learnt from a probe."""
        bare = self.tokenizer("probe", add_special_tokens=False)["input_ids"]
        full = self.tokenizer("probe", add_special_tokens=True)["input_ids"]
        for start in range(len(full) - len(bare) + 1):
            if full[start:start + len(bare)] == bare:
                return full[:start], full[start + len(bare):]
        raise ModelError(f"cannot tell how {type(self.tokenizer).__name__} adds special tokens")

    def _windows(self, texts: Sequence[str], overlap: int
                 ) -> tuple[list[list[int]], list[int], list[tuple[int, int]], int]:
        """Token windows of ``texts`` with special tokens and the document prompt: (inputs, owner
        text of each, character span of each, prompt length to leave out of pooling)."""
        prompt = self.spec.document_prompt
        if self.spec.do_lower_case:
            texts = [t.lower() for t in texts]
            prompt = prompt.lower()
        if len(texts) == 0:
            return [], [], [], 0
        encoded = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True,
                                 verbose=False)
        prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else []
        prompt_length = len(prompt_ids) + 1 if prompt and not self.spec.include_prompt else 0
        window = self.max_length - len(self._special_prefix) - len(self._special_suffix) - len(prompt_ids)
        inputs: list[list[int]] = []
        owner: list[int] = []
        spans: list[tuple[int, int]] = []
        for position, (ids, offsets) in enumerate(zip(encoded["input_ids"], encoded["offset_mapping"])):
            for start in window_starts(len(ids), window, min(overlap, window - 1)):
                piece = ids[start:start + window]
                inputs.append(self._special_prefix + prompt_ids + piece + self._special_suffix)
                owner.append(position)
                end = start + len(piece)
                spans.append((offsets[start][0], offsets[end - 1][1]) if piece else (0, 0))
        return inputs, owner, spans, prompt_length

    def _tokenize(self, texts: Sequence[str], prompt: str) -> tuple[list[list[int]], int]:
        if self.spec.do_lower_case:
            texts = [t.lower() for t in texts]
            prompt = prompt.lower()
        if prompt:
            texts = [prompt + t for t in texts]
        ids = self.tokenizer(list(texts), add_special_tokens=True, truncation=True,
                             max_length=self.max_length)["input_ids"]
        prompt_length = 0
        if prompt and not self.spec.include_prompt:
            # The prompt's tokens without the closing special token, as sentence-transformers counts them.
            prompt_length = len(self.tokenizer(prompt, add_special_tokens=True)["input_ids"]) - 1
        return ids, prompt_length

    def _encode(self, texts: Sequence[str], prompt: str, cached: bool = True) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of texts; for one text use encode([text])")
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        ids, prompt_length = self._tokenize(texts, prompt)
        return self._encode_ids(ids, prompt_length, cached)

    @torch.inference_mode()
    def _encode_ids(self, ids: list[list[int]], prompt_length: int = 0, cached: bool = True) -> np.ndarray:
        result = torch.empty((len(ids), self.dimension), dtype=torch.float32, device=self.device)
        for batch, vectors in self._forward_batches(ids, prompt_length, cached):
            # No host sync per batch: on a GPU, this loop pads and copies batch N+1 while batch N runs.
            result[self._to_device(torch.tensor(batch, dtype=torch.long))] = vectors.float()
        return result.cpu().numpy()

    def _forward_batches(self, ids: list[list[int]], prompt_length: int, cached: bool = True
                         ) -> Iterator[tuple[list[int], torch.Tensor]]:
        """(input positions, their vectors on the device) per token-budget batch, longest inputs first; with a
        vector cache (``cached``), the inputs it holds come first as one batch, and the model runs on the rest
        alone. Storing costs a copy to the host per batch: a cache is for re-encoding what is mostly there."""
        if self.vector_cache is None or not cached:
            yield from self._model_batches(ids, prompt_length)
            return
        keys = [cache_key(self._cache_namespace, x, prompt_length) for x in ids]
        stored = self.vector_cache.get_many(keys)
        known = [i for i, key in enumerate(keys) if key in stored]
        if known:
            yield known, self._to_device(torch.from_numpy(np.stack([stored[keys[i]] for i in known])))
        unknown = [i for i, key in enumerate(keys) if key not in stored]
        for batch, vectors in self._model_batches([ids[i] for i in unknown], prompt_length):
            positions = [unknown[i] for i in batch]
            self.vector_cache.put_many([keys[i] for i in positions], vectors.float().cpu().numpy())
            yield positions, vectors

    def _model_batches(self, ids: list[list[int]], prompt_length: int) -> Iterator[tuple[list[int], torch.Tensor]]:
        """:meth:`_forward_batches` through the model."""
        pending = plan_batches([len(x) for x in ids], self.token_budget)
        while pending:
            batch = pending.pop(0)
            try:
                with torch.inference_mode():
                    vectors = self._forward([ids[i] for i in batch], prompt_length)
            except torch.cuda.OutOfMemoryError:
                if len(batch) == 1:
                    raise
                # Halve the batch (and the budget for the rest of this call) instead of failing the job.
                torch.cuda.empty_cache()
                self.token_budget = max(1, self.token_budget // 2)
                log.warning("CUDA out of memory on a batch of %d; retrying in halves (token budget now %d)",
                            len(batch), self.token_budget)
                half = len(batch) // 2
                pending[:0] = [batch[:half], batch[half:]]
                continue
            yield batch, vectors

    def _start_host_copy(self, vectors: torch.Tensor) -> Callable[[], np.ndarray]:
        """Start copying ``vectors`` to the host; the function returned waits for that copy alone."""
        vectors = vectors.float()
        if self.device.type != "cuda":
            array = vectors.numpy()
            return lambda: array
        host = torch.empty(vectors.shape, dtype=torch.float32, pin_memory=True)
        host.copy_(vectors, non_blocking=True)
        copied = torch.cuda.Event()
        copied.record()

        def wait() -> np.ndarray:
            copied.synchronize()
            return host.numpy()

        return wait

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """CPU tensors reach a GPU from pinned memory, asynchronously; on CPU they stay as they are."""
        if self.device.type != "cuda":
            return tensor
        return tensor.pin_memory().to(self.device, non_blocking=True)

    def _forward(self, batch_ids: list[list[int]], prompt_length: int) -> torch.Tensor:
        longest = max(len(x) for x in batch_ids)
        input_ids = torch.full((len(batch_ids), longest), self._pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch_ids), longest), dtype=torch.long)
        for row, seq in enumerate(batch_ids):
            input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            attention_mask[row, : len(seq)] = 1
        input_ids, attention_mask = self._to_device(input_ids), self._to_device(attention_mask)
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        vectors = pool(hidden, attention_mask, self.spec.pooling_modes, prompt_length)
        if self.spec.normalize:
            vectors = torch.nn.functional.normalize(vectors.float(), p=2, dim=1)
        return vectors
