"""Search request bodies (pure functions): BM25 over the text fields, kNN over the vector field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Filters = dict[str, Any] | list[dict[str, Any]] | None


def filter_clauses(filters: Filters) -> list[dict[str, Any]]:
    """Filters as a list of query clauses: one clause (dict) or several (list) are accepted."""
    if filters is None:
        return []
    if isinstance(filters, dict):
        return [filters]
    return list(filters)


def keyword_body(text: str, text_fields: Sequence[str], size: int, filters: Filters = None,
                 source_excludes: Sequence[str] = ()) -> dict[str, Any]:
    """BM25 over the text fields. The user's text is a match query's text, never query syntax."""
    body: dict[str, Any] = {
        "size": size,
        "query": {"bool": {
            "must": [{"multi_match": {"query": text, "fields": list(text_fields), "type": "best_fields",
                                      "tie_breaker": 0.5}}],
            "filter": filter_clauses(filters),
        }},
    }
    if source_excludes:
        body["_source"] = {"excludes": list(source_excludes)}
    return body


def knn_body(vector: Sequence[float], vector_field: str, size: int, filters: Filters = None,
             source_excludes: Sequence[str] = (), passages_field: str | None = None) -> dict[str, Any]:
    """Approximate nearest neighbours; a filter is applied during the graph search (efficient filtering).

    With ``passages_field``, a long document also competes through its best passage: the query is
    the max (dis_max) of the document-vector knn and a nested knn over its passages' vectors.
    """
    values = [float(x) for x in vector]
    knn: dict[str, Any] = {"vector": values, "k": size}
    clauses = filter_clauses(filters)
    if clauses:
        knn["filter"] = {"bool": {"filter": clauses}}
    query: dict[str, Any] = {"knn": {vector_field: knn}}
    if passages_field:
        from .passages import nested_knn_query  # noqa: PLC0415

        nested = nested_knn_query(values, path=passages_field, vector_field=vector_field, k=size, inner_hits=False)
        if clauses:  # filters are on the document, outside the nested query
            nested = {"bool": {"must": [nested], "filter": clauses}}
        query = {"dis_max": {"queries": [query, nested]}}
    body: dict[str, Any] = {"size": size, "query": query}
    if source_excludes:
        body["_source"] = {"excludes": list(source_excludes)}
    return body


def msearch_body(index: str, bodies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Header/body pairs for one ``_msearch`` round trip."""
    lines: list[dict[str, Any]] = []
    for body in bodies:
        lines.append({"index": index})
        lines.append(body)
    return lines
