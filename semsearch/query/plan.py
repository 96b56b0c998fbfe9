"""What one search sends and how its answers become hits (pure functions, shared by the sync and
async searchers): request bodies per retriever, fusion, paging, explain and highlights."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from semsearch.engines.es_bodies import INSTALLED_ANALYZER
from semsearch.engines.index_body import CONTENT_HASH_FIELD, ID_FIELD
from semsearch.errors import ConfigurationError
from semsearch.index.manage import IndexInfo
from semsearch.query.bodies import (
    HYBRID_KEYWORD_MINIMUM_SHOULD_MATCH,
    Filters,
    SourceSpec,
    count_body,
    ids_body,
    keyword_body,
    knn_body,
)
from semsearch.query.fusion import (
    DOCUMENT_TERMS,
    DOCUMENTS,
    FUSION_METHODS,
    KEYWORD,
    KEYWORD_ANY,
    KEYWORD_PHRASE,
    KEYWORD_RARE_STRICT,
    QUESTION,
    SUM_DEFAULT_WEIGHTS,
    TERMS,
    WEIGHED_UP,
    FusionChoice,
    FusionConfig,
    Ranked,
    adapt,
    fuse_adapted,
    fusion_choice,
    per_retriever,
)
from semsearch.query.question import is_question

MODES = ("hybrid", "semantic", "keyword")
# A phrase search (semsearch.query.fusion's PHRASE) is asked for when the query keeps two to four terms after every
# text field's analyzer: with stop words dropped, "the beatles" is one term, and every document holding it would be
# weighted up.
# Stop words are known for the english analyzer semsearch maps (Lucene's English set) and for analyzers without any;
# with another (a language's, a custom one) no phrase search is asked for. Nor for more than PHRASE_MAX_TERMS terms:
# a phrase of a few terms is a name (an index entry, a title, a message); a whole question found word for word in
# another document is a quotation of it (an FAQ answer's "see 'How do I…?'"), not its answer. Such matches led
# FAQ pages astray and cost dbpedia-entity's questions too (docs/benchmarks.md, "Round 6"). Nor for a question of any
# length (is_question): its few terms in order ("What is a Virtual Package?") are found in the answers that mention
# the topic, more often than in the one that answers it; with phrase matches leading, hybrid fell below semantic
# search on FAQs where it is above without them (docs/benchmarks.md, "Round 9").
PHRASE_MIN_TERMS, PHRASE_MAX_TERMS = 2, 4
ENGLISH_STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these they "
    "this to was will with".split())
# INSTALLED_ANALYZER: the definition semsearch installs on an Elasticsearch node without the english analyzer (the
# standard one with English stop words, semsearch.engines.es_bodies.ENGLISH_FALLBACK; the only one it installs).
STOP_WORDS_BY_ANALYZER = {"english": ENGLISH_STOP_WORDS, INSTALLED_ANALYZER: ENGLISH_STOP_WORDS,
                          "standard": frozenset(), "simple": frozenset(), "whitespace": frozenset()}
# As the standard tokenizer, which keeps "user's", "node.js" and "3.14" as one token each.
QUERY_TOKEN = re.compile(r"\w+(?:['’.]\w+)*")
# Chosen by measurement (docs/benchmarks.md, "Hybrid on unseen collections") on dbpedia-entity and three
# collections built for it (long report-style queries over man pages, rare-term queries over Debian package
# descriptions, docstring sentences over Python's), with two models: RRF with rank constant 20, the strict
# keyword list at a quarter of the semantic list's weight, and a keyword side that adapts per query
# (semsearch.query.fusion.keyword_evidence: fallback to the any-term list, precedence for rare terms unless the
# kNN page agrees, kNN's first leading its tier of them), phrase matches weighted up (wants_phrase below, rounds 4
# and 10), score fusion for any other query that searches under 500 documents (round 12), and where BM25's best match
# stands out (semsearch.query.fusion.keyword_stands_out, round 5) or kNN's is far ahead of its second
# (semsearch.query.fusion.dense_leads, round 6), and, for a question, with the dense side far the heavier
# (semsearch.query.question.is_question, rounds 7 and 8: on FAQ questions over their answers hybrid had stayed below
# semantic search). Without the adaptive side, hybrid fell below keyword search wherever BM25 is the stronger signal.
DEFAULT_FUSION = FusionConfig(method="rrf", weights={"keyword": 0.25, "semantic": 1.0}, rrf_k=20, adaptive=True)
DEFAULT_WINDOW = 100  # candidates per retriever; hybrid pages come from the fused top of both
DEFAULT_EF_SEARCH = 100  # kNN breadth when the index's _meta does not say (semsearch.engines.index_body's template)
RETRIEVERS = ("keyword", "semantic")  # hybrid's lists, in the server-side hybrid query's order too


@dataclass
class Hit:
    """One result: the document id, its score in this mode, its source (what the application wrote: without the
    vectors and semsearch's content hash and id keyword) and per-mode contributions.

    In hybrid mode fused on the client the contributions add up to ``score``; the server's fusion
    (neural-search) returns fused scores only, so its hits carry none. ``explanation`` (with ``explain=True``) gives each
    retriever's rank and raw score (BM25, kNN) beside its contribution; ``highlights`` (with
    ``highlight=True``) the keyword matches per text field. ``partial``: some shards did not answer the
    search (a node down), so hits may be missing (:mod:`semsearch.query.shards`).
    """

    id: str
    score: float
    source: dict[str, Any] = field(default_factory=dict)
    contributions: dict[str, float] = field(default_factory=dict)
    highlights: dict[str, list[str]] = field(default_factory=dict)
    explanation: dict[str, dict[str, float | int | None]] | None = None
    partial: bool = False


class Hits(list):
    """A search's hits (a plain list to the caller); whether the answer was partial, with why
    (:mod:`semsearch.query.shards`); and, with ``explain`` in hybrid mode fused on the client, how the lists were fused
    (``fusion``: :class:`semsearch.query.fusion.FusionChoice`)."""

    partial: bool = False
    shortfalls: tuple[str, ...] = ()
    fusion: FusionChoice | None = None


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
        if self.mode == "hybrid" and weighs_nothing(self.fusion):
            raise ConfigurationError("the fusion's keyword and semantic weights are both 0: every hit would score 0; "
                                     "give one a weight above 0")
        if self.fusion.adaptive and self.fusion.method != "rrf":
            raise ConfigurationError(f"the adaptive keyword side works with rrf fusion only, not "
                                     f"{self.fusion.method!r}: pass adaptive=False, or method='rrf'")
        if self.mode == "hybrid" and self.offset + self.k > self.window:
            # Pages are slices of one fused list of fixed depth, so page 2 never reorders page 1's hits.
            raise ConfigurationError(
                f"hybrid results come from the top {self.window} candidates of each retriever; offset + k = "
                f"{self.offset + self.k} is beyond that: pass a larger window (window={self.offset + self.k} or more; --window on the command line)")
        return self


def fusion_from_options(method: str | None = None, keyword_weight: float | None = None,
                        semantic_weight: float | None = None, rrf_k: int | None = None) -> FusionConfig | None:
    """A FusionConfig from the CLI's or the REST API's fusion options (the rest from the default), None when
    none was given (pure). Naming a method asks for that plain fusion (one the cluster may run); weights
    alone tune the default."""
    if method is None and keyword_weight is None and semantic_weight is None and rrf_k is None:
        return None
    for name, weight in (("keyword", keyword_weight), ("semantic", semantic_weight)):
        if weight is not None and not weight >= 0:  # NaN too
            raise ConfigurationError(f"the {name} weight must be 0 or more, not {weight:g}")
    weights = dict(SUM_DEFAULT_WEIGHTS if method == "sum" else DEFAULT_FUSION.weights or {})
    if keyword_weight is not None:
        weights["keyword"] = keyword_weight
    if semantic_weight is not None:
        weights["semantic"] = semantic_weight
    fusion = FusionConfig(method=method or DEFAULT_FUSION.method, weights=weights,
                          rrf_k=rrf_k or DEFAULT_FUSION.rrf_k, adaptive=method is None and DEFAULT_FUSION.adaptive)
    if weighs_nothing(fusion):
        raise ConfigurationError("the keyword and semantic weights are both 0: every hit would score 0 (and a "
                                 "server-side fusion refuses it); give one a weight above 0")
    return fusion


def weighs_nothing(fusion: FusionConfig) -> bool:
    """Whether neither the keyword nor the semantic list has a weight above 0: every hit would score 0 (pure)."""
    return not any(fusion.weight(name) > 0 for name in ("keyword", "semantic"))


def wants_phrase(text: str, analyzers: Sequence[str | None]) -> bool:
    """Whether a hybrid search of ``text`` asks for phrase matches, given each text field's search analyzer (None:
    the standard one; none known: the english one, semsearch's default): a query of the phrase's size
    (:func:`phrase_sized`) that is no question (pure)."""
    return phrase_sized(text, analyzers) and not is_question(text)


def phrase_sized(text: str, analyzers: Sequence[str | None]) -> bool:
    """Whether ``text`` keeps :data:`PHRASE_MIN_TERMS` to :data:`PHRASE_MAX_TERMS` tokens that no field's analyzer
    drops (pure; all that :func:`wants_phrase` asked before round 9)."""
    terms = query_terms(text, analyzers)
    return terms is not None and PHRASE_MIN_TERMS <= terms <= PHRASE_MAX_TERMS


def query_terms(text: str, analyzers: Sequence[str | None]) -> int | None:
    """How many of ``text``'s tokens no text field's analyzer drops as a stop word (None: a field's analyzer is one
    whose stop words are not known; no analyzers given: English stop words, those of semsearch's default) (pure)."""
    stop_sets = [STOP_WORDS_BY_ANALYZER.get(analyzer or "standard") for analyzer in analyzers] or [ENGLISH_STOP_WORDS]
    if any(stop_words is None for stop_words in stop_sets):
        return None
    dropped = frozenset().union(*stop_sets)
    return sum(token not in dropped for token in QUERY_TOKEN.findall(text.lower()))


def vector_excludes(info: IndexInfo) -> list[str]:
    """Fields never returned in ``_source``: the document and passage vectors."""
    return [info.vector_field] + ([info.passages_field] if info.passages_field else [])


def shown_excludes(info: IndexInfo) -> list[str]:
    """Fields a search never shows of a hit's ``_source``: the vectors, and semsearch's own bookkeeping (the content
    hash and id keyword it writes beside each document), so a hit holds what the application wrote."""
    return [*vector_excludes(info), CONTENT_HASH_FIELD, ID_FIELD]


class CandidateWithoutId(ValueError):
    """A candidate came back without the doc-values id (a document written by another program)."""


def plan_bodies(request: SearchRequest, info: IndexInfo, vector: Sequence[float] | None, *,
                ids_from_doc_values: bool = True) -> dict[str, dict]:
    """The search body per retriever ("keyword", "semantic") for one ``_msearch``.

    Hybrid candidates are ids and scores only; with ``ids_from_doc_values`` and an index that maps
    semsearch's id keyword, the ids come from doc values and no stored field is read at all.
    """
    hybrid = request.mode == "hybrid"
    size, offset = (request.window, 0) if hybrid else (request.k, request.offset)
    # Hybrid candidates come as ids and scores only: sources of the final page are fetched afterwards
    # (hydrate_body), rather than 2 × window sources of which k are kept.
    common = {"offset": offset, "source": False if hybrid else request.source}
    highlight = request.highlight and not hybrid
    excludes = shown_excludes(info)
    bodies: dict[str, dict] = {}
    if request.mode in ("keyword", "hybrid"):
        bodies["keyword"] = keyword_body(
            request.text, info.text_fields, size, request.filters, excludes, **common,
            minimum_should_match=HYBRID_KEYWORD_MINIMUM_SHOULD_MATCH if hybrid else None,
            highlight=highlight)
    if hybrid and request.fusion.adaptive:  # the any-term list: fallback and rarity (fusion.keyword_evidence)
        bodies[KEYWORD_ANY] = keyword_body(request.text, info.text_fields, size, request.filters, excludes, **common)
        if wants_phrase(request.text, info.text_analyzers):  # documents holding the query as a phrase: weighted up
            bodies[KEYWORD_PHRASE] = keyword_body(request.text, info.text_fields, size, request.filters, excludes,
                                                  **common, phrase=True)
    if request.mode in ("semantic", "hybrid"):
        if vector is None:
            raise ValueError("semantic and hybrid modes need the query vector")
        bodies["semantic"] = knn_body(
            vector, info.vector_field, size, request.filters, excludes, info.passages_field, **common,
            highlight_text=request.text if highlight else None, text_fields=info.text_fields,
            backend=info.backend, candidates=int((info.meta.get("knn") or {}).get("ef_search") or DEFAULT_EF_SEARCH))
    if hybrid and ids_from_doc_values and info.id_field:
        for body in bodies.values():
            body.pop("_source", None)
            body["stored_fields"] = "_none_"
            body["docvalue_fields"] = [info.id_field]
    if KEYWORD_ANY in bodies:  # how many documents were searched: what "rare" is relative to
        bodies[DOCUMENTS] = count_body(request.filters)
    return bodies


def candidate_id(raw: Mapping[str, Any]) -> str:
    """A hit's id: ``_id``, else the doc-values id a candidate search asked for."""
    if "_id" in raw:
        return raw["_id"]
    for values in (raw.get("fields") or {}).values():
        if values:
            return str(values[0])
    raise CandidateWithoutId("a candidate has no id in its doc values")


def hydrate_body(request: SearchRequest, info: IndexInfo, hits: Sequence[Hit]) -> dict | None:
    """The request for the final hybrid hits' sources and highlights; None when nothing is to fetch."""
    if not hits or (request.source is False and not request.highlight):
        return None
    return ids_body([h.id for h in hits], source=request.source, source_excludes=shown_excludes(info),
                    text=request.text, text_fields=info.text_fields, highlight=request.highlight)


def hydrate(hits: list[Hit], raw_hits: Sequence[Mapping[str, Any]]) -> list[Hit]:
    """``hits`` with the sources and highlights of ``raw_hits`` (the answer to :func:`hydrate_body`);
    a document deleted since the candidate search keeps an empty source."""
    found = {raw["_id"]: _hit_parts(raw) for raw in raw_hits}
    for hit in hits:
        hit.source, hit.highlights = found.get(hit.id, ({}, {}))
    return hits


def _hit_parts(hit: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    return dict(hit.get("_source") or {}), dict(hit.get("highlight") or {})


def candidate_lists(responses: Mapping[str, Any], text: str, analyzers: Sequence[str | None] = (),
                    filtered: bool = False, document_terms: float | None = None) -> dict[str, Any]:
    """Each retriever's candidates for the query ``text`` as ranked (id, score) lists, the count of documents
    searched when asked for (:data:`semsearch.query.fusion.DOCUMENTS`), whether the query is a question
    (:data:`semsearch.query.fusion.QUESTION`), how many terms it searches for, given the text fields' analyzers
    (:data:`semsearch.query.fusion.TERMS`, :func:`query_terms`; None for a ``filtered`` search, whose document count is
    not the one BM25's idf is of), and how many terms the index's documents hold on average
    (:data:`semsearch.query.fusion.DOCUMENT_TERMS`; ``IndexInfo.document_terms``): what adaptive fusion takes."""
    listed = (*RETRIEVERS, KEYWORD_ANY, KEYWORD_PHRASE)
    lists: dict[str, Any] = {name: [Ranked(candidate_id(h), float(h["_score"])) for h in hits]
                             for name, hits in responses.items() if name in listed}
    if DOCUMENTS in responses:
        lists[DOCUMENTS] = int(responses[DOCUMENTS])
    lists[QUESTION] = is_question(text)
    lists[TERMS] = None if filtered else query_terms(text, analyzers)
    lists[DOCUMENT_TERMS] = document_terms
    return lists


# In explain's keyword part: a phrase match's place in the phrase list, a rare strict match's in the strict list.
WEIGHED_UP_RANKS = {KEYWORD_PHRASE: "phrase_rank", KEYWORD_RARE_STRICT: "rare_strict_rank"}


def hits_from(request: SearchRequest, responses: Mapping[str, Any], analyzers: Sequence[str | None] = (),
              document_terms: float | None = None) -> Hits:
    """Hits for the caller from each retriever's raw hits: one list as is, or both fused and paged (with ``explain``,
    how: ``Hits.fusion``); ``analyzers``: the text fields' search analyzers, ``document_terms``: how many terms the
    index's documents hold on average (:func:`candidate_lists`)."""
    if request.mode != "hybrid":
        hits = responses[request.mode]
        result = Hits()
        for rank, raw in enumerate(hits[:request.k], start=request.offset + 1):
            source, highlights = _hit_parts(raw)
            score = float(raw["_score"])
            explanation = {request.mode: {"rank": rank, "raw_score": score, "contribution": score}} \
                if request.explain else None
            result.append(Hit(raw["_id"], score, source, {request.mode: score}, highlights, explanation))
        return result
    # Candidates carry ids and scores only; sources and highlights come with hydrate().
    lists = candidate_lists(responses, request.text, analyzers, filtered=bool(request.filters),
                            document_terms=document_terms)
    adapted = adapt(lists, request.fusion, request.window)
    ranked = adapted.lists
    fused = fuse_adapted(ranked, adapted.fusion)[request.offset:request.offset + request.k]
    positions: dict[str, dict[str, tuple[int, float]]] = {}
    result = Hits()
    if request.explain:
        positions = {name: {h.id: (rank, h.score) for rank, h in enumerate(hits, start=1)}
                     for name, hits in ranked.items()}
        result.fusion = fusion_choice(adapted)
    for item in fused:
        contributions = per_retriever(item.contributions)
        explanation = None
        if request.explain:
            explanation = {name: {"rank": positions[name].get(item.id, (None, None))[0],
                                  "raw_score": positions[name].get(item.id, (None, None))[1],
                                  "contribution": contributions.get(name, 0.0)}
                           for name in ranked if name not in WEIGHED_UP}
            for name, key in WEIGHED_UP_RANKS.items():  # why a match rose: its place in the list weighed up (1: first)
                if name in ranked:
                    explanation[KEYWORD][key] = positions[name].get(item.id, (None, None))[0]
        result.append(Hit(item.id, item.score, {}, contributions, {}, explanation))
    return result


def server_hits_from(request: SearchRequest, hits: list[dict]) -> list[Hit]:
    """Hits of a server-side ``hybrid`` query (already fused by the search pipeline), paged."""
    result = []
    for raw in hits[request.offset:request.offset + request.k]:
        source, highlights = _hit_parts(raw)
        result.append(Hit(candidate_id(raw), float(raw["_score"]), source, {}, highlights, None))
    return result
