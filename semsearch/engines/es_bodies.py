"""Elasticsearch request bodies (pure functions): ``dense_vector`` mappings and ``knn`` queries.

The rest of semsearch's requests (bulk, msearch, BM25, filters, aliases) are the same on both
engines; these are the parts where Elasticsearch differs from OpenSearch's k-NN plugin.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from semsearch.engines.capabilities import COMPACT_SINCE
from semsearch.engines.index_body import META_KEY, PASSAGES_TEXT_FIELD, check_field_names, load_template
from semsearch.engines.query_vector import query_vector
from semsearch.errors import ConfigurationError

# The english analyzer lives in Elasticsearch's analysis-common module; a node without it (the
# integ-test distribution) gets the standard analyzer with English stopwords.
ENGLISH_FALLBACK = {"type": "standard", "stopwords": "_english_"}
INSTALLED_ANALYZER = "semsearch_text"  # the name an analyzer definition is installed under (es_index_body)
NUM_CANDIDATES_FACTOR = 2  # HNSW candidates per shard = max(k × this, 100): recall against latency
MAX_NUM_CANDIDATES = 10_000  # Elasticsearch's limit


def dense_vector_field(*, dimension: int, m: int | None = None, ef_construction: int | None = None,
                       compact: str | None = None, server_version: tuple[int, int, int] | None = None) -> dict:
    """One ``dense_vector`` mapping: cosine, HNSW with the template's knobs unless given."""
    vector = copy.deepcopy(load_template("elasticsearch-dense")["mappings"]["properties"]["__VECTOR_FIELD__"])
    vector["dims"] = dimension
    options = vector["index_options"]
    if m is not None:
        options["m"] = m
    if ef_construction is not None:
        options["ef_construction"] = ef_construction
    if compact:
        if compact not in COMPACT_SINCE:
            raise ConfigurationError(f"unknown compact mode {compact!r} for Elasticsearch; choose one of "
                                     f"{', '.join(COMPACT_SINCE)}")
        since, kind = COMPACT_SINCE[compact]
        if server_version is not None and server_version < since:
            raise ConfigurationError(f"compact mode {compact!r} needs Elasticsearch {'.'.join(map(str, since))} "
                                     f"or later; this cluster runs {'.'.join(map(str, server_version))}")
        options["type"] = kind
    return vector


def es_knn_meta(*, m: int | None = None, ef_construction: int | None = None, ef_search: int | None = None,
                compact: str | None = None) -> dict:
    """The dense_vector knobs as recorded in ``_meta`` (so a migration can repeat them; ef_search sets
    the knn query's breadth)."""
    meta = {"engine": "elasticsearch", "similarity": "cosine", "m": m, "ef_construction": ef_construction,
            "compact": compact}
    if ef_search is not None:
        if not isinstance(ef_search, int) or isinstance(ef_search, bool) or ef_search <= 0:
            raise ConfigurationError(f"ef_search must be a positive integer, got {ef_search!r}")
        meta["ef_search"] = ef_search
    return meta


def es_index_body(*, dimension: int, text_fields: list[str], vector_field: str, meta: dict,
                  analyzer: str | dict | None = None, shards: int | None = None, replicas: int | None = None,
                  m: int | None = None, ef_construction: int | None = None, compact: str | None = None,
                  passages: str | None = None, server_version: tuple[int, int, int] | None = None) -> dict:
    """The create-index body for Elasticsearch: text fields, the dense_vector field, passages, ``_meta``.

    ``analyzer``: a built-in analyzer's name, or a definition (installed as ``semsearch_text``).
    """
    check_field_names(text_fields, vector_field, passages)
    body = copy.deepcopy(load_template("elasticsearch-dense"))
    properties = body["mappings"]["properties"]
    properties.pop("__VECTOR_FIELD__")
    text = properties.pop("__TEXT_FIELD__")
    if isinstance(analyzer, dict):
        body["settings"]["index"]["analysis"] = {"analyzer": {INSTALLED_ANALYZER: analyzer}}
        text["analyzer"] = INSTALLED_ANALYZER
    elif analyzer:
        text["analyzer"] = analyzer
    vector = dense_vector_field(dimension=dimension, m=m, ef_construction=ef_construction, compact=compact,
                                server_version=server_version)
    properties[vector_field] = vector
    for field in text_fields:
        properties[field] = copy.deepcopy(text)
    if passages:
        properties[passages] = {"type": "nested", "properties": {
            PASSAGES_TEXT_FIELD: copy.deepcopy(text), "position": {"type": "integer"},
            vector_field: copy.deepcopy(vector)}}
    body["mappings"]["_meta"] = {META_KEY: meta}
    if shards is not None:
        body["settings"]["index"]["number_of_shards"] = shards
    if replicas is not None:
        body["settings"]["index"]["number_of_replicas"] = replicas
    return body


def num_candidates(k: int) -> int:
    if k > MAX_NUM_CANDIDATES:
        raise ConfigurationError(f"Elasticsearch's knn search returns at most {MAX_NUM_CANDIDATES} neighbours; "
                                 f"asked for {k} (offset + k, or the hybrid window)")
    return min(max(k * NUM_CANDIDATES_FACTOR, 100), MAX_NUM_CANDIDATES)


def es_knn_query(vector: Sequence[float], vector_field: str, k: int, filter_clauses: list[dict[str, Any]],
                 passages_field: str | None = None) -> dict[str, Any]:
    """Elasticsearch's ``knn`` query (8.12+); filters applied during the HNSW search, passages by their best."""
    values = query_vector(vector)
    knn: dict[str, Any] = {"field": vector_field, "query_vector": values, "k": k, "num_candidates": num_candidates(k)}
    if filter_clauses:
        knn["filter"] = list(filter_clauses)
    query: dict[str, Any] = {"knn": knn}
    if passages_field:
        nested: dict[str, Any] = {"nested": {"path": passages_field, "score_mode": "max", "query": {"knn": {
            "field": f"{passages_field}.{vector_field}", "query_vector": values, "k": k,
            "num_candidates": num_candidates(k)}}}}
        if filter_clauses:  # filters are on the document, outside the nested query
            nested = {"bool": {"must": [nested], "filter": list(filter_clauses)}}
        query = {"dis_max": {"queries": [query, nested]}}
    return query
