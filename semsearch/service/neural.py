"""OpenSearch's ``neural`` query clause, answered from the outside (pure functions).

A client written for the neural-search plugin sends ``{"neural": {"FIELD": {"query_text": "…", "k": 10}}}``
(also inside ``bool``, ``hybrid`` and the rest of the query tree). The proxy encodes each query text with
the index's model and sends ``{"knn": {"FIELD": {"vector": […], "k": 10}}}`` instead, which the k-NN plugin
runs without ml-commons, registered models or ML nodes.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from semsearch.errors import ConfigurationError, IndexMismatchError

NEURAL = "neural"
# Keys of a neural clause that the knn clause takes as they are; model_id names a model registered in
# ml-commons, which this replaces: the index's own model (its _meta fingerprint) decides.
KNN_KEYS = ("k", "min_score", "max_distance", "filter", "boost", "_name", "method_parameters", "rescore",
            "expand_nested_docs")
IGNORED_KEYS = ("query_text", "model_id")
# The keys of a clause that say which neighbours it wants (the k nearest, or a radial search); with none of them,
# the neural query's default k.
NEIGHBOUR_KEYS = frozenset({"k", "min_score", "max_distance"})
DEFAULT_K = 10
# What makes an object under "neural" a neural query (rather than, say, an aggregation named "neural").
CLAUSE_KEYS = frozenset({"query_text", "query_image", "query_tokens", "model_id", "k"})
_SEARCH_PATH = re.compile(r"^/(?:(?P<index>[^/_][^/]*)/)?(?P<endpoint>_search|_msearch)/?$")


def search_endpoint(path: str) -> tuple[str | None, str] | None:
    """``(index or None, "_search" | "_msearch")`` for a search path, None for any other path."""
    match = _SEARCH_PATH.match(path)
    return (match["index"], match["endpoint"]) if match else None


def _walk(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _is_clause(node: dict) -> bool:
    """A query clause ``{"neural": {FIELD: {...}}}``: the only key of its object, holding objects. A field, an
    aggregation or a ``_source`` entry that happens to be called "neural" is not one."""
    clause = node.get(NEURAL)
    return len(node) == 1 and isinstance(clause, dict) and bool(clause) and \
        all(isinstance(spec, dict) and bool(CLAUSE_KEYS & set(spec)) for spec in clause.values())


def neural_clauses(body: Any) -> list[tuple[str, dict]]:
    """Each neural clause of a search body, as (vector field, its parameters), in the body's order."""
    found = []
    for node in _walk(body):
        if _is_clause(node):
            clause = node[NEURAL]
            if len(clause) != 1:
                raise ConfigurationError(f"a neural clause names one field, got {sorted(clause)}")
            (field, spec), = clause.items()
            if not isinstance(spec, dict) or not isinstance(spec.get("query_text"), str) or not spec["query_text"]:
                raise ConfigurationError(f"neural clause on {field!r}: query_text (a non-empty string) is required; "
                                         "query_image is not supported by semsearch")
            unknown = sorted(set(spec) - set(KNN_KEYS) - set(IGNORED_KEYS))
            if unknown:
                raise ConfigurationError(f"neural clause on {field!r}: unsupported parameter(s) {unknown}; "
                                         f"supported: query_text, {', '.join(KNN_KEYS)}")
            check_neighbours(field, spec)
            found.append((field, spec))
    return found


def check_neighbours(field: str, spec: Mapping[str, Any]) -> None:
    """Refuse, naming the neural clause, what the cluster would refuse naming the knn clause it never saw: a k
    that is not a number of at least 1, a min_score or max_distance that is not a number, or more than one of them.
    What the k-NN plugin reads passes as it is: numbers as strings ("5"), and fractions (it takes 2.5 as 2)."""
    given = sorted(NEIGHBOUR_KEYS & set(spec))
    if len(given) > 1:
        raise ConfigurationError(f"neural clause on {field!r}: give one of k, min_score and max_distance, not "
                                 f"{' and '.join(given)}")
    for key in given:
        value = _number(spec[key])
        if key == "k":
            ok, wanted = value is not None and value >= 1, "a number of at least 1"
        else:
            ok, wanted = value is not None, "a number"
        if not ok:
            raise ConfigurationError(f"neural clause on {field!r}: {key} must be {wanted}, not {json.dumps(spec[key])}")


def _number(value: Any) -> float | None:
    """A JSON number, or a string holding one, as a finite float; None for anything else (null, true, "ten")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def knn_clause(field: str, spec: Mapping[str, Any], vector: Sequence[float]) -> dict:
    """The k-NN plugin's clause for one neural clause and its encoded query text (pure). A clause with none of k,
    min_score and max_distance asks for the DEFAULT_K nearest, as the neural-search plugin does."""
    params: dict[str, Any] = {"vector": [float(x) for x in vector]}
    params.update({key: copy.deepcopy(spec[key]) for key in KNN_KEYS if key in spec})
    if not NEIGHBOUR_KEYS & set(params):
        params["k"] = DEFAULT_K
    return {"knn": {field: params}}


def rewrite(body: Any, vector_of: Callable[[str], Sequence[float]]) -> Any:
    """``body`` with every neural clause replaced by its knn clause; ``vector_of(query_text)`` encodes.
    Nested neural clauses (a neural query's own filter) are rewritten too."""
    if isinstance(body, list):
        return [rewrite(value, vector_of) for value in body]
    if not isinstance(body, dict):
        return body
    if _is_clause(body) and len(body[NEURAL]) == 1:
        (field, spec), = body[NEURAL].items()
        spec = {**spec, **({"filter": rewrite(spec["filter"], vector_of)} if "filter" in spec else {})}
        return knn_clause(field, spec, vector_of(spec["query_text"]))
    return {key: rewrite(value, vector_of) for key, value in body.items()}


def msearch_items(raw: bytes) -> list[tuple[dict, dict]]:
    """The (header, body) pairs of an ``_msearch`` NDJSON body. A blank header line is an empty header, as the
    cluster reads it; blank lines after the last pair end the body."""
    lines = raw.decode("utf-8").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) % 2:
        raise ConfigurationError("an _msearch body is pairs of lines (header, body); the last body is missing")
    items = [(json.loads(lines[i]) if lines[i].strip() else {}, json.loads(lines[i + 1]))
             for i in range(0, len(lines), 2)]
    for number, (header, body) in enumerate(items, start=1):
        for part, value in (("header", header), ("body", body)):
            if not isinstance(value, dict):
                raise ConfigurationError(f"_msearch search {number}: its {part} line must be a JSON object, not "
                                         f"{type(value).__name__}")
    return items


def msearch_bytes(items: Sequence[tuple[dict, dict]]) -> bytes:
    return "".join(json.dumps(header) + "\n" + json.dumps(body) + "\n" for header, body in items).encode("utf-8")


def indices_of(path_index: str | None, header: Mapping[str, Any] | None = None) -> list[str]:
    """The indexes a search targets: the _msearch header's, else the path's (comma-separated)."""
    named = (header or {}).get("index") or path_index
    if not named:
        raise ConfigurationError("a neural query must name its index (in the path, or the _msearch header): "
                                 "semsearch encodes with that index's model")
    names = named if isinstance(named, list) else str(named).split(",")
    return [name.strip() for name in names if name.strip()]


def check_model(index: str, meta: Mapping[str, Any] | None, fingerprint: Mapping[str, Any]) -> None:
    """Refuse an index whose ``_meta`` fingerprint is not the model semsearch encodes with, naming both."""
    recorded = ((meta or {}).get("semsearch") or {}).get("fingerprint")
    if not recorded:
        raise ConfigurationError(f"index {index!r} has no semsearch model fingerprint in its _meta: semsearch cannot "
                                 "tell which model its vectors come from (create it with semsearch, or run "
                                 "`semsearch index enable-vectors`)")
    if dict(recorded) != dict(fingerprint):
        raise IndexMismatchError(f"index {index!r} holds vectors of model {describe(recorded)}, but this service "
                                 f"encodes with {describe(fingerprint)}; start semsearch serve with that model "
                                 "(SEMSEARCH_MODEL)")


def describe(fingerprint: Mapping[str, Any]) -> str:
    return (f"{fingerprint.get('model', '?')} ({fingerprint.get('dimension', '?')}-d, weights "
            f"{fingerprint.get('weights', '?')})")
