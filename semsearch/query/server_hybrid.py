"""Server-side hybrid (pure functions): which way the cluster can fuse a hybrid search, and its bodies.

Three ways, each giving the ranking the client-side fusion with the same settings gives:

- ``pipeline`` (OpenSearch, neural-search plugin): the ``hybrid`` query and a search pipeline that
  normalises and combines its sub-queries' scores: min-max with weights maps to the
  normalization-processor (arithmetic mean with weights), RRF to the score-ranker-processor.
- ``rrf_retriever`` (Elasticsearch 8.14+ on an Enterprise or trial licence): the ``rrf`` retriever.
- ``sum`` (either engine, nothing to install): one query holding both retrievers' queries with their
  weights as boosts; the cluster adds the raw scores, as for a search with a ``query`` and a ``knn``.
  The same arithmetic as the client-side sum, over more candidates: the client sees each retriever's
  top ``window``, the server scores every keyword match and the kNN side's ``k`` per shard, so a
  document just outside one list's window can rank higher on the server.

Neither server's RRF takes weights (OpenSearch 2.19's score-ranker, Elasticsearch's rrf retriever),
so semsearch's default (weighted RRF with an adaptive keyword side, which switches some queries to
z-scores) runs client-side; :func:`unsupported_reason` says why, and the
Searcher then fuses on the client.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from semsearch.query.fusion import FusionConfig
from semsearch.query.plan import RETRIEVERS  # the hybrid query's sub-queries, in this order

# z_score came to the normalization-processor in OpenSearch 3.0; 2.19 (tested here) has min_max only.
_TECHNIQUES = {"minmax": "min_max"}
PIPELINE, RRF_RETRIEVER, SUM = "pipeline", "rrf_retriever", "sum"
# What a way needs from the cluster beyond the engine itself (checked by the searchers, cached).
NEEDS_NEURAL_SEARCH, NEEDS_RRF_LICENCE = "neural_search", "rrf_licence"
RRF_RETRIEVER_SINCE = (8, 14, 0)
RRF_MODULE = "rank-rrf"  # the x-pack module's name in _nodes/plugins
# The module's licensed feature asks for Enterprise (older 8.x releases: Platinum, which is not trusted
# here: the search would be refused, so semsearch fuses on the client instead).
RRF_LICENCES = ("enterprise", "trial")


@dataclass(frozen=True)
class ServerRoute:
    kind: str  # PIPELINE, RRF_RETRIEVER or SUM
    needs: str | None  # NEEDS_NEURAL_SEARCH, NEEDS_RRF_LICENCE or None
    backend: str = "opensearch"


def unsupported_reason(fusion: FusionConfig, backend: str = "opensearch") -> str | None:
    """Why the cluster (``backend``: "opensearch" or "elasticsearch") cannot reproduce ``fusion``, or None."""
    if fusion.adaptive:
        return ("the adaptive keyword side (a fallback list, weights per query) runs on the client; a plain "
                "fusion the server can run does (e.g. FusionConfig('rrf') with equal weights, or 'sum'; "
                "--fusion on the command line)")
    if fusion.method == SUM:
        if any(fusion.weight(name) < 0 for name in RETRIEVERS):
            return "a negative weight cannot be a boost on the server"
        return None
    if fusion.method == "rrf":
        weights = [fusion.weight(name) for name in RETRIEVERS]
        if len(set(weights)) > 1:
            given = ", ".join(f"{name} {weight:g}" for name, weight in zip(RETRIEVERS, weights))
            return ("the server's RRF (OpenSearch 2.19's score-ranker-processor, Elasticsearch's rrf retriever) "
                    f"does not take weights, and these differ ({given}); equal weights run there "
                    "(--keyword-weight 1 --semantic-weight 1)")
        return None
    if backend == "elasticsearch":
        if fusion.method == "minmax":
            return ("Elasticsearch's min-max fusion (the linear retriever) needs an Enterprise licence; semsearch "
                    "fuses it on the client (server-side: fusion 'sum', or unweighted 'rrf' where licensed)")
        return f"Elasticsearch has no server-side equivalent of {fusion.method!r} fusion"
    if fusion.method in _TECHNIQUES:
        return None
    if fusion.method == "zscore":
        return "the server's normalization-processor has z_score only from OpenSearch 3.0"
    return f"fusion method {fusion.method!r} has no server-side equivalent"


def server_route(fusion: FusionConfig, backend: str = "opensearch") -> ServerRoute:
    """How the cluster runs ``fusion`` (call :func:`unsupported_reason` first)."""
    if fusion.method == SUM:
        return ServerRoute(SUM, None, backend)
    if backend == "elasticsearch":
        return ServerRoute(RRF_RETRIEVER, NEEDS_RRF_LICENCE, backend)
    return ServerRoute(PIPELINE, NEEDS_NEURAL_SEARCH, backend)


def pipeline_body(fusion: FusionConfig) -> dict[str, Any]:
    """The search pipeline for ``fusion`` (call :func:`unsupported_reason` first)."""
    if fusion.method == "rrf":
        # 2.19 reads the rank constant from combination.parameters (accepted but ignored one level up).
        processor = {"score-ranker-processor": {"combination": {"technique": "rrf",
                                                                "parameters": {"rank_constant": fusion.rrf_k}}}}
    else:
        weights = [fusion.weight(name) for name in RETRIEVERS]
        total = sum(weights) or 1.0
        processor = {"normalization-processor": {
            "normalization": {"technique": _TECHNIQUES[fusion.method]},
            # The server divides by the sum of weights; normalised weights make scores comparable to ours / total.
            "combination": {"technique": "arithmetic_mean", "parameters": {"weights": [w / total for w in weights]}},
        }}
    return {"description": "semsearch hybrid fusion (created by semsearch; named after its settings)",
            "phase_results_processors": [processor]}


def pipeline_id(fusion: FusionConfig) -> str:
    """A name derived from the pipeline's content: changed settings get a new pipeline, never a stale one."""
    digest = hashlib.sha256(json.dumps(pipeline_body(fusion), sort_keys=True).encode()).hexdigest()[:12]
    return f"semsearch-hybrid-{digest}"


def _outer(knn_body: dict[str, Any]) -> dict[str, Any]:
    """The client-side candidate body without its query: size (the window), fields to return."""
    return {key: value for key, value in knn_body.items() if key not in ("query", "from")}


def hybrid_body(keyword_body: dict[str, Any], knn_body: dict[str, Any]) -> dict[str, Any]:
    """One ``hybrid`` query over the two sub-queries of the client-side bodies (same filters, same window)."""
    body = _outer(knn_body)
    body["query"] = {"hybrid": {"queries": [keyword_body["query"], knn_body["query"]]}}
    return body


def sum_body(keyword_body: dict[str, Any], knn_body: dict[str, Any], fusion: FusionConfig,
             backend: str = "opensearch") -> dict[str, Any]:
    """Both sub-queries in one ``bool``, each boosted by its weight: the cluster adds the raw scores.

    A document either retriever finds is a hit (``should``); each sub-query keeps its filters.
    """
    body = _outer(knn_body)
    weighted = [{"bool": {"must": [sub["query"]], "boost": fusion.weight(name)}}
                for name, sub in zip(RETRIEVERS, (keyword_body, knn_body))]
    body["query"] = {"bool": {"should": weighted}}
    if backend == "opensearch":
        # OpenSearch 2.19's knn query under a bool lets Lucene's top-hits skipping (track_total_hits
        # false) drop documents both clauses match: 10 of 40 dbpedia-entity queries ranked otherwise
        # than the client-side sum. Counting every match turns the skipping off.
        body["track_total_hits"] = True
    return body


def rrf_retriever_body(keyword_body: dict[str, Any], knn_body: dict[str, Any], fusion: FusionConfig
                       ) -> dict[str, Any]:
    """Elasticsearch's ``rrf`` retriever over the two sub-queries, ranking the same window as the client."""
    body = _outer(knn_body)
    body["retriever"] = {"rrf": {
        "retrievers": [{"standard": {"query": keyword_body["query"]}}, {"standard": {"query": knn_body["query"]}}],
        "rank_constant": fusion.rrf_k, "rank_window_size": body["size"]}}
    return body


def rrf_licence_missing(nodes: dict | None, licence: dict | None) -> str | None:
    """Why this Elasticsearch cluster cannot run the rrf retriever, or None when it can (pure).

    ``nodes``: the answer of ``GET _nodes/plugins`` (None when not readable); ``licence``: of ``GET _license``.
    """
    info = (licence or {}).get("license") or {}
    kind, status = info.get("type"), info.get("status")
    if not info:
        return "the cluster's licence cannot be read (GET _license), and the rrf retriever needs an Enterprise one"
    if kind not in RRF_LICENCES or status != "active":
        return (f"Elasticsearch's rrf retriever needs an Enterprise (or trial) licence; this cluster's "
                f"licence is {kind} ({status})")
    if nodes:
        from semsearch.engines.capabilities import format_version, modules_from_nodes, parse_version  # noqa: PLC0415

        versions = [parse_version(node.get("version", "0")) for node in (nodes.get("nodes") or {}).values()]
        if versions and min(versions) < RRF_RETRIEVER_SINCE:
            return (f"the rrf retriever needs Elasticsearch {format_version(RRF_RETRIEVER_SINCE)} or later; a node "
                    f"runs {format_version(min(versions))}")
        if RRF_MODULE not in modules_from_nodes(nodes):
            return f"the rrf retriever's module ({RRF_MODULE}) is not on every node"
    return None


def server_body(route: ServerRoute, keyword_body: dict[str, Any], knn_body: dict[str, Any],
                fusion: FusionConfig) -> dict[str, Any]:
    """The one search body of ``route`` (the pipeline's search also names its pipeline: :func:`pipeline_id`)."""
    if route.kind == SUM:
        return sum_body(keyword_body, knn_body, fusion, route.backend)
    if route.kind == RRF_RETRIEVER:
        return rrf_retriever_body(keyword_body, knn_body, fusion)
    return hybrid_body(keyword_body, knn_body)


def neural_search_present(plugins: list[dict]) -> bool:
    """Whether ``_cat/plugins?format=json`` lists the neural-search plugin."""
    return any(row.get("component") == "opensearch-neural-search" for row in plugins)


def neural_search_missing(plugins: list[dict] | None) -> str | None:
    """Why the ``hybrid`` query cannot run (``plugins``: ``_cat/plugins``, None when unreadable), or None."""
    if plugins is None:
        return "the cluster's plugins cannot be read (_cat/plugins) to find the neural-search plugin"
    if neural_search_present(plugins):
        return None
    return "it needs the neural-search plugin on the cluster (opensearch-neural-search), which is not installed"
