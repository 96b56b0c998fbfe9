"""Searching from application code: keyword, semantic and hybrid modes over one index.

The request bodies and the fusion are pure functions (:mod:`semsearch.query.plan`); this module adds
the I/O: the index's mapping facts, the query vector, one ``_msearch`` of both retrievers' candidates
(or, for a fusion the cluster can run, one search that fuses there: see
:mod:`semsearch.query.server_hybrid`), then one ``ids`` query for the final page's sources. Which requests,
in which order, is decided once in :mod:`semsearch.query.steps`; this module and
:mod:`semsearch.query.async_search` only answer them, each with its own client.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from semsearch.encoding.encoder import Encoder
from semsearch.errors import ClusterError, ConfigurationError, QueryRejectedError
from semsearch.index.manage import IndexInfo, check_fingerprint, get_index_info
from semsearch.index.statistics import field_statistics_body, mean_document_terms
from semsearch.query.bodies import Filters, SourceSpec, msearch_body
from semsearch.query.fusion import DOCUMENTS, FusionConfig
from semsearch.query.plan import (
    DEFAULT_FUSION, DEFAULT_WINDOW, MODES, Hit, Hits, SearchRequest, candidate_lists, plan_bodies)
from semsearch.query.server_hybrid import (
    NEEDS_NEURAL_SEARCH,
    ServerRoute,
    neural_search_missing,
    rrf_licence_missing,
    server_route,
    unsupported_reason,
)
from semsearch.query.shards import settle_partial, shortfall
from semsearch.query.stored_fusion import stored_fusion
from semsearch.query.steps import Probe, ServerRouteRefused, ServerSearch, Step, search_steps
from semsearch.settings import Settings

__all__ = ["DEFAULT_FUSION", "DEFAULT_WINDOW", "MODES", "Hit", "Hits", "QueryVectorCache", "Searcher"]
INFO_TTL = 30.0
CANDIDATES_FUSION = FusionConfig("rrf", adaptive=True)  # plans every keyword list, the kNN list and the count


class QueryVectorCache:
    """A bounded LRU of query vectors: repeated queries skip the encoder."""

    def __init__(self, encoder_fn: Callable[[str], np.ndarray], size: int = 1024) -> None:
        self._encode = encoder_fn
        self._size = size
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()

    def cached(self, text: str) -> np.ndarray | None:
        if text in self._items:
            self._items.move_to_end(text)
            return self._items[text]
        return None

    def put(self, text: str, vector: np.ndarray) -> np.ndarray:
        self._items[text] = vector
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return vector

    def get(self, text: str) -> np.ndarray:
        vector = self.cached(text)
        return vector if vector is not None else self.put(text, self._encode(text))


class SearcherBase:
    """What the sync and async searchers share: settings, encoder, caches and the choice of path."""

    def __init__(self, settings: Settings | None, *, encoder: Encoder | None, fusion: FusionConfig | None,
                 window: int, server_side: bool | None) -> None:
        self.settings = settings or Settings()
        self._encoder = encoder
        self.fusion = fusion  # None: each index's stored fusion, else DEFAULT_FUSION (fusion_for)
        self.window = window
        self.server_side = server_side  # None: server-side hybrid when the cluster can do it
        self._infos: dict[str, tuple[IndexInfo, float]] = {}
        self._checked: set[str] = set()
        self._pipelines: set[str] = set()
        self._missing: dict[str, str | None] = {}  # per server-side need: why the cluster lacks it, or None
        self._vectors = QueryVectorCache(lambda text: self.encoder.encode_query(text))

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = Encoder.from_settings(self.settings)
        return self._encoder

    def _request(self, text: str, *, k: int, mode: str, filters: Filters, fusion: FusionConfig | None,
                 window: int | None, offset: int, explain: bool, highlight: bool, source: SourceSpec
                 ) -> SearchRequest:
        return SearchRequest(text=text, k=k, offset=offset, mode=mode, filters=filters,
                             fusion=fusion or self.fusion or DEFAULT_FUSION, window=window or self.window,
                             explain=explain, highlight=highlight, source=source).validate()

    def fusion_for(self, info: IndexInfo, fusion: FusionConfig | None = None) -> FusionConfig:
        """The fusion a hybrid search of ``info``'s index uses: the call's (``fusion``), else this searcher's, else
        the one the index keeps (:mod:`semsearch.query.stored_fusion`), else DEFAULT_FUSION."""
        return fusion or self.fusion or stored_fusion(info) or DEFAULT_FUSION

    def _for_index(self, request: SearchRequest, info: IndexInfo, fusion: FusionConfig | None) -> SearchRequest:
        """``request`` with the index's stored fusion when it is a hybrid search and neither the call nor this
        searcher names a fusion (other modes fuse nothing: they never read it)."""
        if request.mode != "hybrid":
            return request
        chosen = self.fusion_for(info, fusion)
        return request if chosen == request.fusion else replace(request, fusion=chosen).validate()

    def _cached_info(self, index: str) -> IndexInfo | None:
        cached = self._infos.get(index)
        if cached is None or time.monotonic() - cached[1] > INFO_TTL:
            return None  # re-read: a blue/green swap can move the name
        return cached[0]

    def _remember_info(self, index: str, info: IndexInfo) -> IndexInfo:
        self._infos[index] = (info, time.monotonic())
        return info

    def _check(self, info: IndexInfo) -> None:
        if info.index not in self._checked:  # per concrete index: a swapped alias is checked again
            check_fingerprint(info, self.encoder.fingerprint.as_dict())
            self._checked.add(info.index)

    def fuses_on_client(self, info: IndexInfo, fusion: FusionConfig | None = None) -> bool:
        """Whether this searcher fuses a hybrid search of ``info``'s index here, with ``fusion`` or the one it would
        use (:meth:`fusion_for`): no server-side fusion is tried, so :meth:`candidates`' lists are all it fuses. Asks
        what a search asks (:meth:`_server_route`); a search that would refuse to run (the server insisted on, unable to
        fuse it) is not fused here."""
        request = SearchRequest(text="", mode="hybrid", fusion=self.fusion_for(info, fusion))
        try:
            route, _ = self._server_route(request, info, None)
        except ConfigurationError:
            return False
        return route is None

    def _server_route(self, request: SearchRequest, info: IndexInfo, server_side: bool | None
                      ) -> tuple[ServerRoute | None, bool]:
        """The server-side way to try (None: fuse on the client), and whether the caller insisted on it."""
        choice = self.server_side if server_side is None else server_side
        if request.mode != "hybrid" or choice is False:
            return None, False
        reason = unsupported_reason(request.fusion, info.backend)
        if request.explain:
            reason = reason or "explain needs each retriever's own scores, which the server's fusion does not return"
        if reason:
            if choice:
                raise ConfigurationError(f"server-side hybrid cannot run this search: {reason}; "
                                         "use client-side fusion (server_side=False; --client-side "
                                         "on the command line)")
            return None, False
        return server_route(request.fusion, info.backend), bool(choice)

    def _refused(self, route: ServerRoute, forced: bool, exc: Exception) -> None:
        """The cluster refused a route it seemed able to run: remembered (the client fuses from now on),
        or an error when the caller insisted on the server."""
        if forced:
            raise ConfigurationError(f"server-side hybrid cannot run this search: {exc}") from exc
        self._missing[route.needs] = str(exc)

    def _cluster_error(self, exc: TransportError, index: str):
        from semsearch.engines.opensearch import cluster_error  # noqa: PLC0415

        error = cluster_error(exc, f"search on {index!r}", self.settings)
        if type(error) is ClusterError and exc.status_code == 400:  # the request itself: e.g. a filter it cannot parse
            return QueryRejectedError(str(error))
        return error

    def _server_error(self, exc: TransportError, step: ServerSearch) -> Exception:
        """A 403 on a route that needs a plugin or licence: refused (the client fuses); else a cluster error."""
        if exc.status_code == 403 and step.needs is not None:
            return ServerRouteRefused(f"the cluster refused it ({exc.error})")
        return self._cluster_error(exc, step.index)

    def _steps(self, request: SearchRequest, info: IndexInfo, vector, index: str, server_side: bool | None):
        route, forced = self._server_route(request, info, server_side)
        return search_steps(request, info, vector, index=index, route=route, forced=forced, refused=self._refused)


def read_document_terms(client, info: IndexInfo) -> float | None:
    """How many terms ``info``'s documents hold on average (:mod:`semsearch.index.statistics`), from its concrete
    index; None when that cannot be read. An optional statistic: no failure to read it ever fails a search."""
    try:
        answer = client.termvectors(index=info.index, body=field_statistics_body(info.text_fields))
    except Exception:  # noqa: BLE001 - a refusal, an unreachable node, a client without the API: unknown
        return None
    return mean_document_terms(answer, info.text_fields)


def _or_none(read):
    """The answer of a read-only request, None when the user may not make it (or it fails)."""
    try:
        return read()
    except TransportError:
        return None


def msearch_results(bodies: dict[str, dict], response: dict, index: str,
                    shortfalls: list[str] | None = None) -> dict[str, Any]:
    """Each named body's hits from an ``_msearch`` answer (a count body's total instead, for
    :data:`semsearch.query.fusion.DOCUMENTS`); a failed search raises with its reason. Why a search was
    partial (:func:`semsearch.query.shards.shortfall`) is added to ``shortfalls`` (pure but for that list)."""
    results: dict[str, Any] = {}
    for name, item in zip(bodies, response["responses"]):
        if "error" in item:
            raise msearch_error(name, index, item)
        if shortfalls is not None and (why := shortfall(item)):
            shortfalls.append(f"{name}: {why}")
        if name == DOCUMENTS:
            total = item["hits"]["total"]
            results[name] = total["value"] if isinstance(total, dict) else total
        else:
            results[name] = item["hits"]["hits"]
    return results


def msearch_error(name: str, index: str, item: dict) -> ClusterError:
    """The error of one failed search of an ``_msearch`` answer, with its reason: the first root cause's where
    the error's own is only "all shards failed"; a search the cluster refused as malformed (status 400: a filter
    it cannot parse, a query too large for it) is a QueryRejectedError (pure)."""
    error = item["error"]
    reason = error.get("reason") if isinstance(error, dict) else error
    causes = error.get("root_cause") if isinstance(error, dict) else None
    if causes and isinstance(causes[0], dict) and causes[0].get("reason") and causes[0]["reason"] != reason:
        reason = f"{reason}: {causes[0]['reason']}" if reason else causes[0]["reason"]
    kind = QueryRejectedError if item.get("status") == 400 else ClusterError
    return kind(f"{name} search on {index!r} failed: {reason}")


def server_answer(response: dict, shortfalls: list[str]) -> list[dict]:
    """The hits of a server-side fusion's answer; why it was partial goes to ``shortfalls``."""
    if why := shortfall(response):
        shortfalls.append(f"server-side hybrid: {why}")
    return response["hits"]["hits"]


class Searcher(SearcherBase):
    """Encodes the query and combines kNN with BM25.

    ``settings`` default to the environment (``SEMSEARCH_*``). The encoder loads on first
    semantic or hybrid query, and must match the index's fingerprint. ``server_side``: None picks
    server-side hybrid when the cluster can run the fusion (:mod:`semsearch.query.server_hybrid`: OpenSearch's
    neural-search plugin, Elasticsearch's rrf retriever on an Enterprise licence, or a raw-score ``sum`` on
    either); True insists on it, False always fuses on the client. ``fusion``: how hybrid mode fuses when a call names
    no fusion; None: the fusion the index keeps (``semsearch eval --tune --save``), else ``DEFAULT_FUSION``.
    """

    def __init__(self, settings: Settings | None = None, *, client: OpenSearch | None = None,
                 encoder: Encoder | None = None, fusion: FusionConfig | None = None,
                 window: int = DEFAULT_WINDOW, server_side: bool | None = None) -> None:
        super().__init__(settings, encoder=encoder, fusion=fusion, window=window, server_side=server_side)
        from semsearch.engines.opensearch import make_client  # noqa: PLC0415

        self.client = client or make_client(self.settings)

    def index_info(self, index: str) -> IndexInfo:
        """The index's mapping facts and its documents' mean length, re-read every ``INFO_TTL`` seconds."""
        cached = self._cached_info(index)
        if cached is not None:
            return cached
        info = get_index_info(self.client, index)
        return self._remember_info(index, replace(info, document_terms=read_document_terms(self.client, info)))

    def search(self, text: str, *, index: str, k: int = 10, mode: str = "hybrid", filters: Filters = None,
               fusion: FusionConfig | None = None, window: int | None = None, offset: int = 0,
               explain: bool = False, highlight: bool = False, source: SourceSpec = True,
               server_side: bool | None = None) -> Hits:
        """The hits ranked ``offset + 1`` to ``offset + k`` for ``text`` in ``mode`` (hybrid, semantic, keyword).

        ``filters``: query clauses (term, range, bool…) applied to both retrievers. ``window``: candidates
        per retriever in hybrid mode. ``explain``: each hit's rank, raw score and contribution per retriever, and, for
        hybrid fused here, how (the returned list's ``fusion``: :class:`semsearch.query.fusion.FusionChoice`).
        ``highlight``: keyword matches per text field. ``source``: True, False or the fields to return.
        """
        request = self._request(text, k=k, mode=mode, filters=filters, fusion=fusion, window=window,
                                offset=offset, explain=explain, highlight=highlight, source=source)
        info = self.index_info(index)
        request = self._for_index(request, info, fusion)
        vector = None
        if request.mode != "keyword":
            self._check(info)
            vector = self._vectors.get(request.text)
        return self._run(self._steps(request, info, vector, index, server_side), index)

    def _run(self, steps, index: str) -> Hits:
        """Answer each request of ``steps`` (:func:`semsearch.query.steps.search_steps`) until it returns."""
        answer, reply = None, steps.send
        shortfalls: list[str] = []  # why answers of this search were partial
        while True:
            try:
                step = reply(answer)
            except StopIteration as done:
                return settle_partial(done.value, shortfalls, self.settings.partial_results, index)
            try:
                answer, reply = self._answer(step, shortfalls), steps.send
            except ServerRouteRefused as exc:
                answer, reply = exc, steps.throw

    def _answer(self, step: Step, shortfalls: list[str]):
        if isinstance(step, Probe):
            return self._missing_for(step.needs)
        if isinstance(step, ServerSearch):
            return self._server_search(step, shortfalls)
        return self._msearch(step.index, step.bodies, shortfalls)

    def candidates(self, text: str, *, index: str, window: int | None = None, filters: Filters = None
                   ) -> dict[str, Any]:
        """Each retriever's ranked candidates for hybrid mode, before fusion (for tuning and analysis): "keyword"
        (most of the query's terms), "keyword_any" (any term), "keyword_phrase" (the query as a phrase, when
        :func:`semsearch.query.plan.wants_phrase`) and "semantic" lists of ``Ranked``, "documents", how many
        documents the query searched, "question", whether the query is one
        (:func:`semsearch.query.question.is_question`), "terms", how many terms it searches for
        (:func:`semsearch.query.plan.query_terms`; None when filtered), and "document_terms", how many terms the
        index's documents hold on average (``IndexInfo.document_terms``; None: unknown)."""
        # Every list adaptive RRF may use, whatever this searcher's own fusion: the plan depends on that alone.
        request = self._request(text, k=1, mode="hybrid", filters=filters, fusion=CANDIDATES_FUSION, window=window,
                                offset=0, explain=False, highlight=False, source=False)
        info = self.index_info(index)
        self._check(info)
        bodies = plan_bodies(request, info, self._vectors.get(request.text), ids_from_doc_values=False)
        shortfalls: list[str] = []
        lists = candidate_lists(self._msearch(index, bodies, shortfalls), request.text, info.text_analyzers,
                                filtered=bool(request.filters), document_terms=info.document_terms)
        # Measuring or tuning on an index with a shard missing would give wrong figures, whatever the policy.
        settle_partial([], shortfalls, "fail", index)
        return lists

    def _missing_for(self, needs: str) -> str | None:
        if needs not in self._missing:
            if needs == NEEDS_NEURAL_SEARCH:  # unreadable for a restricted user: the client fuses, as always
                self._missing[needs] = neural_search_missing(_or_none(lambda: self.client.cat.plugins(format="json")))
            else:
                self._missing[needs] = rrf_licence_missing(_or_none(lambda: self.client.nodes.info(metric="plugins")),
                                                           _or_none(self.client.license.get))
        return self._missing[needs]

    def _server_search(self, step: ServerSearch, shortfalls: list[str]) -> list[dict]:
        try:
            if step.pipeline is None:
                response = self.client.search(index=step.index, body=step.body)
            else:
                response = self._pipeline_search(step)
        except TransportError as exc:
            raise self._server_error(exc, step) from exc
        return server_answer(response, shortfalls)

    def _pipeline_search(self, step: ServerSearch) -> dict:
        if step.pipeline not in self._pipelines:
            self.client.transport.perform_request("PUT", f"/_search/pipeline/{step.pipeline}", body=step.pipeline_body)
            self._pipelines.add(step.pipeline)
        return self.client.search(index=step.index, body=step.body, params={"search_pipeline": step.pipeline})

    def _msearch(self, index: str, bodies: dict[str, dict], shortfalls: list[str] | None = None
                 ) -> dict[str, Any]:
        try:
            response = self.client.msearch(body=msearch_body(index, list(bodies.values())))
        except TransportError as exc:  # connection failures included
            raise self._cluster_error(exc, index) from exc
        return msearch_results(bodies, response, index, shortfalls)
