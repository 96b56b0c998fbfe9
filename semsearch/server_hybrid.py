"""Server-side hybrid (pure functions): the neural-search plugin's ``hybrid`` query and the search
pipeline that normalises and combines its sub-queries' scores.

The same fusion settings give the same ranking on either side: min-max with weights maps to
the normalization-processor (arithmetic mean with weights), RRF to the score-ranker-processor. The
score-ranker of OpenSearch 2.19 takes no weights, so weighted RRF, semsearch's default, can only run
client-side; :func:`unsupported_reason` says so and the Searcher then fuses on the client.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .fusion import FusionConfig
from .search_plan import RETRIEVERS  # the hybrid query's sub-queries, in this order

# z_score came to the normalization-processor in OpenSearch 3.0; 2.19 (tested here) has min_max only.
_TECHNIQUES = {"minmax": "min_max"}


def unsupported_reason(fusion: FusionConfig) -> str | None:
    """Why the server cannot reproduce ``fusion``, or None when it can."""
    if fusion.method == "rrf":
        weights = [fusion.weight(name) for name in RETRIEVERS]
        if len(set(weights)) > 1:
            return "the server's RRF (score-ranker-processor, OpenSearch 2.19) does not take weights"
        return None
    if fusion.method in _TECHNIQUES:
        return None
    if fusion.method == "zscore":
        return "the server's normalization-processor has z_score only from OpenSearch 3.0"
    return f"fusion method {fusion.method!r} has no server-side equivalent"


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


def hybrid_body(keyword_body: dict[str, Any], knn_body: dict[str, Any]) -> dict[str, Any]:
    """One ``hybrid`` query over the two sub-queries of the client-side bodies (same filters, same window)."""
    body = {key: value for key, value in knn_body.items() if key not in ("query", "from")}
    body["query"] = {"hybrid": {"queries": [keyword_body["query"], knn_body["query"]]}}
    return body


def neural_search_present(plugins: list[dict]) -> bool:
    """Whether ``_cat/plugins?format=json`` lists the neural-search plugin."""
    return any(row.get("component") == "opensearch-neural-search" for row in plugins)
