"""Search request bodies (pure functions): BM25 over the text fields, kNN over the vector field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from semsearch.engines.query_vector import query_vector

Filters = dict[str, Any] | list[dict[str, Any]] | None
# What the caller wants of ``_source``: all of it (True), none (False), or these fields.
SourceSpec = bool | Sequence[str]

# Hybrid mode's keyword retriever asks for most of the query's terms (queries of one or two terms: all
# of them). A document matching one word of a long question is weak evidence that mostly adds noise to
# the fused list; measured on dbpedia-entity (docs/benchmarks.md) this lifts hybrid nDCG@10 by ~0.01–0.02
# at every fusion setting tried. Keyword mode itself keeps plain OR-BM25, the better standalone ranking.
HYBRID_KEYWORD_MINIMUM_SHOULD_MATCH = "2<75%"


def filter_clauses(filters: Filters) -> list[dict[str, Any]]:
    """Filters as a list of query clauses: one clause (dict) or several (list) are accepted."""
    if filters is None:
        return []
    if isinstance(filters, dict):
        return [filters]
    return list(filters)


def source_spec(source: SourceSpec, excludes: Sequence[str]) -> dict[str, Any] | bool:
    """``_source`` for a body: never the vectors (``excludes``), and only what the caller asked for."""
    if source is False:
        return False
    spec: dict[str, Any] = {}
    if source is not True:
        spec["includes"] = [source] if isinstance(source, str) else list(source)
    if excludes:
        spec["excludes"] = list(excludes)
    return spec or True


def keyword_query(text: str, text_fields: Sequence[str], minimum_should_match: str | None = None,
                  phrase: bool = False) -> dict[str, Any]:
    """BM25 over the text fields. The user's text is a match query's text, never query syntax. ``phrase``: only
    documents holding the text's words in its order (a field at a time)."""
    match: dict[str, Any] = {"query": text, "fields": list(text_fields), "type": "phrase" if phrase else "best_fields",
                             "tie_breaker": 0.5}
    if minimum_should_match:
        match["minimum_should_match"] = minimum_should_match
    return {"multi_match": match}


def count_body(filters: Filters = None) -> dict[str, Any]:
    """How many documents pass the filters (no hits): the corpus a query searches."""
    return {"size": 0, "track_total_hits": True, "query": {"bool": {"filter": filter_clauses(filters)}}}


def highlight_spec(text: str, text_fields: Sequence[str]) -> dict[str, Any]:
    """Keyword matches marked in the text fields; the same terms are marked on hits that kNN found."""
    return {"fields": {name: {} for name in text_fields}, "highlight_query": keyword_query(text, text_fields),
            "pre_tags": ["<em>"], "post_tags": ["</em>"]}


def keyword_body(text: str, text_fields: Sequence[str], size: int, filters: Filters = None,
                 source_excludes: Sequence[str] = (), *, offset: int = 0, source: SourceSpec = True,
                 minimum_should_match: str | None = None, highlight: bool = False, phrase: bool = False
                 ) -> dict[str, Any]:
    """A BM25 search body: ``size`` hits from ``offset``, filtered, vectors left out of ``_source``; ``phrase``:
    phrase matches only (:func:`keyword_query`)."""
    body: dict[str, Any] = {
        "size": size,
        "query": {"bool": {"must": [keyword_query(text, text_fields, minimum_should_match, phrase)],
                           "filter": filter_clauses(filters)}},
        "track_total_hits": False,  # no count of every match: lets BM25 skip documents that cannot make the top
    }
    return _finish(body, text, text_fields, offset, source, source_excludes, highlight)


def knn_query(vector: Sequence[float], vector_field: str, k: int, filters: Filters = None,
              passages_field: str | None = None, backend: str = "opensearch") -> dict[str, Any]:
    """Approximate nearest neighbours; a filter is applied during the graph search (efficient filtering).

    With ``passages_field``, a long document also competes through its best passage: the query is
    the max (dis_max) of the document-vector knn and a nested knn over its passages' vectors.
    ``backend``: "opensearch" (the k-NN plugin's query) or "elasticsearch" (its ``knn`` query).
    """
    if backend == "elasticsearch":
        from semsearch.engines.es_bodies import es_knn_query  # noqa: PLC0415

        return es_knn_query(vector, vector_field, k, filter_clauses(filters), passages_field)
    values = query_vector(vector)
    knn: dict[str, Any] = {"vector": values, "k": k}
    clauses = filter_clauses(filters)
    if clauses:
        knn["filter"] = {"bool": {"filter": clauses}}
    query: dict[str, Any] = {"knn": {vector_field: knn}}
    if passages_field:
        from semsearch.index.passages import nested_knn_query  # noqa: PLC0415

        nested = nested_knn_query(values, path=passages_field, vector_field=vector_field, k=k, inner_hits=False)
        if clauses:  # filters are on the document, outside the nested query
            nested = {"bool": {"must": [nested], "filter": clauses}}
        query = {"dis_max": {"queries": [query, nested]}}
    return query


def knn_body(vector: Sequence[float], vector_field: str, size: int, filters: Filters = None,
             source_excludes: Sequence[str] = (), passages_field: str | None = None, *, offset: int = 0,
             source: SourceSpec = True, highlight_text: str | None = None,
             text_fields: Sequence[str] = (), backend: str = "opensearch", candidates: int = 0) -> dict[str, Any]:
    """A kNN search body: the ``offset + size`` nearest, of which ``size`` from ``offset`` are returned.

    ``candidates``: neighbours the graph search collects at least (the index's ef_search): on the lucene
    engine k is also the search's breadth, so a small k alone would miss true nearest neighbours.
    ``highlight_text`` marks that text's keyword matches in ``text_fields`` of the hits.
    """
    k = max(offset + size, candidates)
    body: dict[str, Any] = {"size": size, "track_total_hits": False,
                            "query": knn_query(vector, vector_field, k, filters, passages_field, backend)}
    return _finish(body, highlight_text or "", text_fields, offset, source, source_excludes,
                   highlight_text is not None and bool(text_fields))


def _finish(body: dict[str, Any], text: str, text_fields: Sequence[str], offset: int, source: SourceSpec,
            source_excludes: Sequence[str], highlight: bool) -> dict[str, Any]:
    if offset:
        body["from"] = offset
    spec = source_spec(source, source_excludes)
    if spec is not True:
        body["_source"] = spec
    if highlight:
        body["highlight"] = highlight_spec(text, text_fields)
    return body


def ids_body(ids: Sequence[str], *, source: SourceSpec, source_excludes: Sequence[str], text: str,
             text_fields: Sequence[str], highlight: bool) -> dict[str, Any]:
    """Sources (and highlights) of the final hits only: the candidate searches fetch ids and scores."""
    body: dict[str, Any] = {"size": len(ids), "query": {"ids": {"values": list(ids)}}, "track_total_hits": False}
    return _finish(body, text, text_fields, 0, source, source_excludes, highlight)


def msearch_body(index: str, bodies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Header/body pairs for one ``_msearch`` round trip."""
    lines: list[dict[str, Any]] = []
    for body in bodies:
        lines.append({"index": index})
        lines.append(body)
    return lines
