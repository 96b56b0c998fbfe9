"""``AsyncSearcher``: :class:`semsearch.Searcher` over an async client (opensearch-py's, or elasticsearch-py's
with SEMSEARCH_BACKEND=elasticsearch), for asyncio
applications. Same requests, same fusion, same hits (which requests: semsearch.query.steps);
the query is encoded in a worker thread so the event loop is not blocked by the model."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from opensearchpy.exceptions import NotFoundError, TransportError

from semsearch.encoding.encoder import Encoder
from semsearch.errors import ClusterError
from semsearch.index.manage import IndexInfo, index_info_from_mappings, missing_index_error
from semsearch.index.statistics import field_statistics_body, mean_document_terms
from semsearch.query.bodies import Filters, SourceSpec, msearch_body
from semsearch.query.fusion import FusionConfig
from semsearch.query.plan import DEFAULT_WINDOW, Hits
from semsearch.query.search import SearcherBase, msearch_results, server_answer
from semsearch.query.shards import settle_partial
from semsearch.query.server_hybrid import NEEDS_NEURAL_SEARCH, neural_search_missing, rrf_licence_missing
from semsearch.query.steps import Probe, ServerRouteRefused, ServerSearch, Step
from semsearch.settings import Settings


async def read_document_terms(client, info: IndexInfo) -> float | None:
    """As :func:`semsearch.query.search.read_document_terms`, awaited."""
    try:
        answer = await client.termvectors(index=info.index, body=field_statistics_body(info.text_fields))
    except Exception:  # noqa: BLE001 - a refusal, an unreachable node, a client without the API: unknown
        return None
    return mean_document_terms(answer, info.text_fields)


async def _or_none(request):
    """The answer of a read-only request, None when the user may not make it (or it fails)."""
    try:
        return await request
    except TransportError:
        return None


class AsyncSearcher(SearcherBase):
    """``await searcher.search(text, index=...)``; use ``async with AsyncSearcher() as s:`` or ``await s.close()``."""

    def __init__(self, settings: Settings | None = None, *, client=None, encoder: Encoder | None = None,
                 fusion: FusionConfig | None = None, window: int = DEFAULT_WINDOW,
                 server_side: bool | None = None) -> None:
        super().__init__(settings, encoder=encoder, fusion=fusion, window=window, server_side=server_side)
        from semsearch.engines.opensearch import make_async_client  # noqa: PLC0415

        self.client = client or make_async_client(self.settings)

    async def __aenter__(self) -> AsyncSearcher:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def close(self) -> None:
        await self.client.close()

    async def index_info(self, index: str) -> IndexInfo:
        cached = self._cached_info(index)
        if cached is not None:
            return cached
        try:
            mappings = await self.client.indices.get_mapping(index=index)
        except NotFoundError as exc:
            raise missing_index_error(index) from exc
        except TransportError as exc:
            raise ClusterError(f"reading the mapping of {index!r} failed: {exc}") from exc
        info = index_info_from_mappings(index, mappings)
        return self._remember_info(index, replace(info, document_terms=await read_document_terms(self.client, info)))

    async def search(self, text: str, *, index: str, k: int = 10, mode: str = "hybrid", filters: Filters = None,
                     fusion: FusionConfig | None = None, window: int | None = None, offset: int = 0,
                     explain: bool = False, highlight: bool = False, source: SourceSpec = True,
                     server_side: bool | None = None) -> Hits:
        """As :meth:`semsearch.Searcher.search`."""
        request = self._request(text, k=k, mode=mode, filters=filters, fusion=fusion, window=window,
                                offset=offset, explain=explain, highlight=highlight, source=source)
        info = await self.index_info(index)
        request = self._for_index(request, info, fusion)
        vector = None if request.mode == "keyword" else await self.query_vector(info, request.text)
        return await self._run(self._steps(request, info, vector, index, server_side), index)

    async def query_vector(self, info: IndexInfo, text: str):
        """The query's vector for ``info``'s index (its model checked first), from the cache or the encoder."""
        vector = self._vectors.cached(text)
        if vector is None:
            # The first call also loads the model: both are CPU/GPU work off the event loop.
            vector = self._vectors.put(text, await asyncio.to_thread(self._encode_checked, info, text))
        else:
            self._check(info)
        return vector

    async def _run(self, steps, index: str) -> Hits:
        """As :meth:`semsearch.Searcher._run`, awaiting each answer."""
        answer, reply = None, steps.send
        shortfalls: list[str] = []  # why answers of this search were partial
        while True:
            try:
                step = reply(answer)
            except StopIteration as done:
                return settle_partial(done.value, shortfalls, self.settings.partial_results, index)
            try:
                answer, reply = await self._answer(step, shortfalls), steps.send
            except ServerRouteRefused as exc:
                answer, reply = exc, steps.throw

    async def _answer(self, step: Step, shortfalls: list[str]):
        if isinstance(step, Probe):
            return await self._missing_for(step.needs)
        if isinstance(step, ServerSearch):
            return await self._server_search(step, shortfalls)
        return await self._msearch(step.index, step.bodies, shortfalls)

    def _encode_checked(self, info: IndexInfo, text: str):
        self._check(info)
        return self.encoder.encode_query(text)

    async def _missing_for(self, needs: str) -> str | None:
        if needs not in self._missing:
            if needs == NEEDS_NEURAL_SEARCH:
                self._missing[needs] = neural_search_missing(await _or_none(self.client.cat.plugins(format="json")))
            else:
                self._missing[needs] = rrf_licence_missing(await _or_none(self.client.nodes.info(metric="plugins")),
                                                           await _or_none(self.client.license.get()))
        return self._missing[needs]

    async def _server_search(self, step: ServerSearch, shortfalls: list[str]) -> list[dict]:
        try:
            if step.pipeline is None:
                response = await self.client.search(index=step.index, body=step.body)
            else:
                response = await self._pipeline_search(step)
        except TransportError as exc:
            raise self._server_error(exc, step) from exc
        return server_answer(response, shortfalls)

    async def _pipeline_search(self, step: ServerSearch) -> dict:
        if step.pipeline not in self._pipelines:
            await self.client.transport.perform_request("PUT", f"/_search/pipeline/{step.pipeline}",
                                                        body=step.pipeline_body)
            self._pipelines.add(step.pipeline)
        return await self.client.search(index=step.index, body=step.body,
                                        params={"search_pipeline": step.pipeline})

    async def _msearch(self, index: str, bodies: dict[str, dict], shortfalls: list[str] | None = None
                       ) -> dict[str, Any]:
        try:
            response = await self.client.msearch(body=msearch_body(index, list(bodies.values())))
        except TransportError as exc:
            raise self._cluster_error(exc, index) from exc
        return msearch_results(bodies, response, index, shortfalls)
