"""Index bodies from the JSON templates in ``mappings/`` (pure functions, no I/O but the template read)."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources

from semsearch.errors import ConfigurationError

ENGINES = ("lucene", "faiss")
CONTENT_HASH_FIELD = "semsearch_hash"
# The document id again, as a keyword with doc values: hybrid search reads candidates' ids from doc values
# instead of decompressing stored fields (whose blocks hold the vectors' JSON) for 2 × window hits.
ID_FIELD = "semsearch_id"
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


SPACE_TYPES = ("cosinesimil", "innerproduct", "l2")
PASSAGES_TEXT_FIELD = "text"


def resolve_space_type(engine: str, normalized: bool, space_type: str | None = None) -> str:
    """The space type to map: ``space_type`` when given and sound, else :func:`space_type_for`."""
    if space_type is None:
        return space_type_for(engine, normalized)
    if space_type not in SPACE_TYPES:
        raise ConfigurationError(f"unknown space type {space_type!r}; choose one of {', '.join(SPACE_TYPES)}")
    if space_type == "innerproduct" and not normalized:
        # On vectors of any length the inner product ranks long vectors first: not what cosine-trained
        # Sentence-BERT models mean by "similar".
        raise ConfigurationError(
            "space type 'innerproduct' needs normalised vectors, and this model does not normalise; "
            "use 'cosinesimil' (or 'l2')")
    return space_type


def knn_vector_field(*, dimension: int, engine: str, normalized: bool, space_type: str | None = None,
                     m: int | None = None, ef_construction: int | None = None, compact: str | None = None,
                     server_version: tuple[int, int, int] | None = None) -> dict:
    """One ``knn_vector`` mapping from the template's defaults and the knobs given (pure).

    ``server_version``, when known, refuses what that version cannot map (engine, compact mode).
    """
    from semsearch.engines.capabilities import require_compact, require_engine  # noqa: PLC0415 - capabilities is the table

    if engine not in ENGINES:
        raise ConfigurationError(f"unknown k-NN engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if dimension <= 0:
        raise ConfigurationError(f"vector dimension must be positive, got {dimension}")
    require_engine(engine, server_version)
    vector = copy.deepcopy(load_template("opensearch-knn")["mappings"]["properties"]["__VECTOR_FIELD__"])
    vector["dimension"] = dimension
    method = vector["method"]
    method["engine"] = engine
    method["space_type"] = resolve_space_type(engine, normalized, space_type)
    parameters = method.setdefault("parameters", {})
    for name, value in (("m", m), ("ef_construction", ef_construction)):
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value <= 1:
            raise ConfigurationError(f"HNSW {name} must be an integer above 1, got {value!r}")
        parameters[name] = value
    if compact:
        require_compact(engine, compact, server_version)
        if compact == "fp16":
            parameters["encoder"] = {"name": "sq", "parameters": {"type": "fp16"}}
        elif compact == "sq":
            # 7 bits is lucene's quantiser; 3.x requires `bits`, 2.16+ accepts it.
            parameters["encoder"] = {"name": "sq", "parameters": {"bits": 7}}
        elif compact == "on_disk":
            vector["mode"] = "on_disk"
            vector["compression_level"] = "32x"
    return vector


def knn_settings(ef_search: int | None = None) -> dict:
    """The index settings a vector index needs (``index.knn`` is static: only at creation)."""
    settings = {k: v for k, v in load_template("opensearch-knn")["settings"]["index"].items()
                if k.startswith("knn")}
    if ef_search is not None:
        if not isinstance(ef_search, int) or isinstance(ef_search, bool) or ef_search <= 0:
            raise ConfigurationError(f"ef_search must be a positive integer, got {ef_search!r}")
        # Index-level ef_search serves faiss (and nmslib); lucene takes it per query
        # (knn.method_parameters.ef_search, 2.16+), so semsearch also records it in _meta.
        settings["knn.algo_param.ef_search"] = ef_search
    return settings


def passages_field(vector: dict, *, vector_field: str, analyzer: str | None = None) -> dict:
    """The nested passages field: passage text, position and a vector with the document vector's knobs."""
    field = copy.deepcopy(load_template("opensearch-passages"))
    if analyzer:
        field["properties"][PASSAGES_TEXT_FIELD]["analyzer"] = analyzer
    if vector.get("mode") == "on_disk":
        raise ConfigurationError("nested passages cannot use the on_disk compact mode; use fp16 or none")
    field["properties"][vector_field] = copy.deepcopy(vector)
    return field


def knn_meta(*, engine: str, space_type: str, m: int | None, ef_construction: int | None,
             ef_search: int | None, compact: str | None) -> dict:
    """The vector knobs as recorded in ``_meta`` (so a migration can repeat them, and queries read ef_search)."""
    template = load_template("opensearch-knn")
    defaults = template["mappings"]["properties"]["__VECTOR_FIELD__"]["method"]["parameters"]
    return {"engine": engine, "space_type": space_type, "m": m or defaults["m"],
            "ef_construction": ef_construction or defaults["ef_construction"],
            "ef_search": ef_search or template["settings"]["index"]["knn.algo_param.ef_search"],
            "compact": compact}


def check_field_names(text_fields: list[str], vector_field: str, passages: str | None) -> None:
    """Refuse field names that collide (on either engine)."""
    if not text_fields:
        raise ConfigurationError("at least one text field is needed")
    if vector_field in text_fields:
        raise ConfigurationError(f"the vector field {vector_field!r} cannot also be a text field")
    if passages and (passages in text_fields or passages in (vector_field, CONTENT_HASH_FIELD, ID_FIELD)):
        raise ConfigurationError(f"the passages field {passages!r} clashes with another field's name")


def build_index_body(*, dimension: int, text_fields: list[str], vector_field: str, engine: str,
                     normalized: bool, meta: dict, analyzer: str | None = None, shards: int | None = None,
                     replicas: int | None = None, space_type: str | None = None, m: int | None = None,
                     ef_construction: int | None = None, ef_search: int | None = None,
                     compact: str | None = None, passages: str | None = None,
                     server_version: tuple[int, int, int] | None = None) -> dict:
    """The create-index body: text fields, the vector field sized for the model, and ``_meta``.

    Knobs (all optional; the template's defaults otherwise): ``space_type`` (default from the engine
    and the model's normalisation), HNSW ``m``, ``ef_construction``, ``ef_search``; ``compact``
    (see :data:`semsearch.engines.capabilities.COMPACT_SUPPORT`); ``passages``: the name of a nested field
    of passages, each with its own vector; ``server_version`` refuses what that version cannot map.
    """
    check_field_names(text_fields, vector_field, passages)
    vector = knn_vector_field(dimension=dimension, engine=engine, normalized=normalized, space_type=space_type,
                              m=m, ef_construction=ef_construction, compact=compact,
                              server_version=server_version)
    body = copy.deepcopy(load_template("opensearch-knn"))
    body["settings"]["index"].update(knn_settings(ef_search))
    properties = body["mappings"]["properties"]
    properties.pop("__VECTOR_FIELD__")
    text = properties.pop("__TEXT_FIELD__")
    properties[vector_field] = vector
    if analyzer:
        text["analyzer"] = analyzer
    for field in text_fields:
        properties[field] = copy.deepcopy(text)
    if passages:
        from semsearch.engines.capabilities import NESTED_KNN_SINCE, format_version  # noqa: PLC0415

        if server_version is not None and server_version < NESTED_KNN_SINCE:
            raise ConfigurationError(f"nested passages need OpenSearch {format_version(NESTED_KNN_SINCE)} or "
                                     f"later; this cluster runs {format_version(server_version)}")
        properties[passages] = passages_field(vector, vector_field=vector_field, analyzer=analyzer)
    body["mappings"]["_meta"] = {META_KEY: meta}
    index_settings = body["settings"]["index"]
    if shards is not None:
        index_settings["number_of_shards"] = shards
    if replicas is not None:
        index_settings["number_of_replicas"] = replicas
    return body


def index_meta(fingerprint: dict, text_fields: list[str], vector_field: str, version: str, *,
               knn: dict | None = None, passages: dict | None = None, previous_index: str | None = None) -> dict:
    """What semsearch keeps in the mapping's ``_meta`` to check later writes and queries.

    ``knn``: the vector knobs (:func:`knn_meta`); ``passages``: the nested passages field and its
    chunking parameters; ``previous_index``: the index a migration came from (what rollback returns to).
    """
    meta = {"fingerprint": fingerprint, "text_fields": list(text_fields), "vector_field": vector_field,
            "semsearch_version": version}
    if knn is not None:
        meta["knn"] = knn
    if passages is not None:
        meta["passages"] = passages
    if previous_index is not None:
        meta["previous_index"] = previous_index
    return meta
