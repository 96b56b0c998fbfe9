"""What one search sends and how its answers become hits (pure functions, shared by the sync and
async searchers): request bodies per retriever, fusion, paging, explain and highlights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigurationError
from .fusion import FUSION_METHODS, FusionConfig, Ranked, fuse
from .index import IndexInfo
from .queries import (
    HYBRID_KEYWORD_MINIMUM_SHOULD_MATCH,
    Filters,
    SourceSpec,
    keyword_body,
    knn_body,
)

MODES = ("hybrid", "semantic", "keyword")
# Chosen by measurement on dbpedia-entity (docs/benchmarks.md, `semsearch eval --tune`): RRF with the
# usual rank constant 60, the keyword list at a quarter of the semantic list's weight. Every keyword
# weight from 0.15 to 0.3 scored within 0.004 of this one, so the default is not a sharp peak.
DEFAULT_FUSION = FusionConfig(method="rrf", weights={"keyword": 0.25, "semantic": 1.0}, rrf_k=60)
DEFAULT_WINDOW = 100  # candidates per retriever; hybrid pages come from the fused top of both


@dataclass
class Hit:
    """One result: the document id, its score in this mode, its source and per-mode contributions.

    In hybrid mode the contributions add up to ``score``. ``explanation`` (with ``explain=True``) gives each
    retriever's rank and raw score (BM25, kNN) beside its contribution; ``highlights`` (with
    ``highlight=True``) the keyword matches per text field.
    """

    id: str
    score: float
    source: dict[str, Any] = field(default_factory=dict)
    contributions: dict[str, float] = field(default_factory=dict)
    highlights: dict[str, list[str]] = field(default_factory=dict)
    explanation: dict[str, dict[str, float | int | None]] | None = None


@dataclass(frozen=True)
class SearchRequest:
    """One search, as the caller asked for it."""

    text: str
    k: int = 10
    offset: int = 0
    mode: str = "hybrid"
    filters: Filters = None
    fusion: FusionConfig = DEFAULT_FUSION
    window: int = DEFAULT_WINDOW
    explain: bool = False
    highlight: bool = False
    source: SourceSpec = True

    def validate(self) -> SearchRequest:
        if self.mode not in MODES:
            raise ConfigurationError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if not isinstance(self.text, str) or not self.text.strip():
            raise ConfigurationError("the query text is empty")
        if self.k <= 0:
            raise ConfigurationError(f"k must be positive, got {self.k}")
        if self.offset < 0:
            raise ConfigurationError(f"offset must be 0 or more, got {self.offset}")
        if self.fusion.method not in FUSION_METHODS:
            raise ConfigurationError(f"unknown fusion method {self.fusion.method!r}; "
                                     f"choose one of {', '.join(FUSION_METHODS)}")
        if self.mode == "hybrid" and self.offset + self.k > self.window:
            # Pages are slices of one fused list of fixed depth, so page 2 never reorders page 1's hits.
            raise ConfigurationError(
                f"hybrid results come from the top {self.window} candidates of each retriever; offset + k = "
                f"{self.offset + self.k} is beyond that: pass a larger window (window={self.offset + self.k} or more; --window on the command line)")
        return self


def vector_excludes(info: IndexInfo) -> list[str]:
    """Fields never returned in ``_source``: the document and passage vectors."""
    return [info.vector_field] + ([info.passages_field] if info.passages_field else [])


def plan_bodies(request: SearchRequest, info: IndexInfo, vector: Sequence[float] | None) -> dict[str, dict]:
    """The search body per retriever ("keyword", "semantic") for one ``_msearch``."""
    hybrid = request.mode == "hybrid"
    size, offset = (request.window, 0) if hybrid else (request.k, request.offset)
    common = {"offset": offset, "source": request.source}
    excludes = vector_excludes(info)
    bodies: dict[str, dict] = {}
    if request.mode in ("keyword", "hybrid"):
        bodies["keyword"] = keyword_body(
            request.text, info.text_fields, size, request.filters, excludes, **common,
            minimum_should_match=HYBRID_KEYWORD_MINIMUM_SHOULD_MATCH if hybrid else None,
            highlight=request.highlight)
    if request.mode in ("semantic", "hybrid"):
        if vector is None:
            raise ValueError("semantic and hybrid modes need the query vector")
        bodies["semantic"] = knn_body(
            vector, info.vector_field, size, request.filters, excludes, info.passages_field, **common,
            highlight_text=request.text if request.highlight else None, text_fields=info.text_fields)
    return bodies


def _hit_parts(hit: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    return dict(hit.get("_source") or {}), dict(hit.get("highlight") or {})


def hits_from(request: SearchRequest, responses: Mapping[str, list[dict]]) -> list[Hit]:
    """Hits for the caller from each retriever's raw hits: one list as is, or both fused and paged."""
    if request.mode != "hybrid":
        hits = responses[request.mode]
        result = []
        for rank, raw in enumerate(hits[:request.k], start=request.offset + 1):
            source, highlights = _hit_parts(raw)
            score = float(raw["_score"])
            explanation = {request.mode: {"rank": rank, "raw_score": score, "contribution": score}} \
                if request.explain else None
            result.append(Hit(raw["_id"], score, source, {request.mode: score}, highlights, explanation))
        return result
    parts: dict[str, tuple[dict[str, Any], dict[str, list[str]]]] = {}
    positions: dict[str, dict[str, tuple[int, float]]] = {}
    for name, hits in responses.items():
        positions[name] = {}
        for rank, raw in enumerate(hits, start=1):
            source, highlights = _hit_parts(raw)
            known = parts.setdefault(raw["_id"], (source, {}))
            known[1].update(highlights)
            positions[name][raw["_id"]] = (rank, float(raw["_score"]))
    ranked = {name: [Ranked(h["_id"], float(h["_score"])) for h in hits] for name, hits in responses.items()}
    fused = fuse(ranked, request.fusion)[request.offset:request.offset + request.k]
    result = []
    for item in fused:
        explanation = None
        if request.explain:
            explanation = {name: {"rank": positions[name].get(item.id, (None, None))[0],
                                  "raw_score": positions[name].get(item.id, (None, None))[1],
                                  "contribution": item.contributions.get(name, 0.0)}
                           for name in responses}
        source, highlights = parts[item.id]
        result.append(Hit(item.id, item.score, source, dict(item.contributions), highlights, explanation))
    return result


def server_hits_from(request: SearchRequest, hits: list[dict]) -> list[Hit]:
    """Hits of a server-side ``hybrid`` query (already fused by the search pipeline), paged."""
    result = []
    for raw in hits[request.offset:request.offset + request.k]:
        source, highlights = _hit_parts(raw)
        result.append(Hit(raw["_id"], float(raw["_score"]), source, {}, highlights, None))
    return result
