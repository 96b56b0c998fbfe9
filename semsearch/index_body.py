"""Index bodies from the JSON templates in ``mappings/`` (pure functions, no I/O but the template read)."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources

from .errors import ConfigurationError

ENGINES = ("lucene", "faiss")
CONTENT_HASH_FIELD = "semsearch_hash"
META_KEY = "semsearch"


@lru_cache(maxsize=None)
def load_template(name: str) -> dict:
    """A template shipped in ``semsearch.mappings`` (the repo's ``mappings/`` folder)."""
    text = resources.files("semsearch.mappings").joinpath(f"{name}.json").read_text(encoding="utf-8")
    template = json.loads(text)
    template.pop("_comment", None)
    return template


def space_type_for(engine: str, normalized: bool) -> str:
    """Cosine is what Sentence-BERT vectors are compared by; on unit vectors inner product equals it.

    faiss scores inner product natively (cheaper than its cosine); lucene's cosine is exact and
    gives scores in [0, 1], which keeps fusion simple.
    """
    if engine == "faiss" and normalized:
        return "innerproduct"
    return "cosinesimil"


def build_index_body(*, dimension: int, text_fields: list[str], vector_field: str, engine: str,
                     normalized: bool, meta: dict, analyzer: str | None = None, shards: int | None = None,
                     replicas: int | None = None) -> dict:
    """The create-index body: text fields, the vector field sized for the model, and ``_meta``."""
    if engine not in ENGINES:
        raise ConfigurationError(f"unknown k-NN engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if dimension <= 0:
        raise ConfigurationError(f"vector dimension must be positive, got {dimension}")
    if not text_fields:
        raise ConfigurationError("at least one text field is needed")
    if vector_field in text_fields:
        raise ConfigurationError(f"the vector field {vector_field!r} cannot also be a text field")
    body = copy.deepcopy(load_template("opensearch-knn"))
    properties = body["mappings"]["properties"]
    vector = properties.pop("__VECTOR_FIELD__")
    text = properties.pop("__TEXT_FIELD__")
    vector["dimension"] = dimension
    vector["method"]["engine"] = engine
    vector["method"]["space_type"] = space_type_for(engine, normalized)
    properties[vector_field] = vector
    if analyzer:
        text["analyzer"] = analyzer
    for field in text_fields:
        properties[field] = copy.deepcopy(text)
    body["mappings"]["_meta"] = {META_KEY: meta}
    index_settings = body["settings"]["index"]
    if shards is not None:
        index_settings["number_of_shards"] = shards
    if replicas is not None:
        index_settings["number_of_replicas"] = replicas
    return body


def index_meta(fingerprint: dict, text_fields: list[str], vector_field: str, version: str) -> dict:
    """What semsearch keeps in the mapping's ``_meta`` to check later writes and queries."""
    return {"fingerprint": fingerprint, "text_fields": list(text_fields), "vector_field": vector_field,
            "semsearch_version": version}
