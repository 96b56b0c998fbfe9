"""``AsyncSearcher``: :class:`semsearch.Searcher` over an async client (opensearch-py's, or elasticsearch-py's
with SEMSEARCH_BACKEND=elasticsearch), for asyncio
applications. Same requests, same fusion, same hits (the pure parts live in semsearch.query.plan);
the query is encoded in a worker thread so the event loop is not blocked by the model."""

from __future__ import annotations

import asyncio
from typing import Any

from opensearchpy.exceptions import NotFoundError, TransportError

from semsearch.settings import Settings
from semsearch.encoding.encoder import Encoder
from semsearch.errors import ClusterError
from semsearch.query.fusion import FusionConfig
from semsearch.index.manage import IndexInfo, index_info_from_mappings, missing_index_error
from semsearch.query.bodies import Filters, SourceSpec, msearch_body
from semsearch.query.search import SearcherBase, ServerRouteRefused, msearch_results
from semsearch.query.plan import (
    CandidateWithoutId,
    DEFAULT_FUSION,
    DEFAULT_WINDOW,
    Hit,
    SearchRequest,
    hits_from,
    hydrate,
    hydrate_body,
    plan_bodies,
    server_hits_from,
)
from semsearch.query.server_hybrid import (
    NEEDS_NEURAL_SEARCH,
    PIPELINE,
    ServerRoute,
    neural_search_missing,
    pipeline_body,
    pipeline_id,
    rrf_licence_missing,
    server_body,
)


async def _or_none(request):
    """The answer of a read-only request, None when the user may not make it (or it fails)."""
    try:
        return await request
    except TransportError:
        return None


class AsyncSearcher(SearcherBase):
    """``await searcher.search(text, index=...)``; use ``async with AsyncSearcher() as s:`` or ``await s.close()``."""

    def __init__(self, settings: Settings | None = None, *, client=None, encoder: Encoder | None = None,
                 fusion: FusionConfig = DEFAULT_FUSION, window: int = DEFAULT_WINDOW,
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
        return self._remember_info(index, index_info_from_mappings(index, mappings))

    async def search(self, text: str, *, index: str, k: int = 10, mode: str = "hybrid", filters: Filters = None,
                     fusion: FusionConfig | None = None, window: int | None = None, offset: int = 0,
                     explain: bool = False, highlight: bool = False, source: SourceSpec = True,
                     server_side: bool | None = None) -> list[Hit]:
        """As :meth:`semsearch.Searcher.search`."""
        request = self._request(text, k=k, mode=mode, filters=filters, fusion=fusion, window=window,
                                offset=offset, explain=explain, highlight=highlight, source=source)
        info = await self.index_info(index)
        vector = None
        if request.mode != "keyword":
            vector = self._vectors.cached(request.text)
            if vector is None:
                # The first call also loads the model: both are CPU/GPU work off the event loop.
                vector = await asyncio.to_thread(self._encode_checked, info, request.text)
                self._vectors.put(request.text, vector)
            else:
                self._check(info)
        route, forced = self._server_route(request, info, server_side)
        if route is not None and route.needs is not None:
            route = self._settle(route, forced, await self._missing_for(route.needs))
        for ids_from_doc_values in (True, False):  # the second pass only if a candidate lacked the keyword id
            bodies = plan_bodies(request, info, vector, ids_from_doc_values=ids_from_doc_values)
            try:
                raw = None
                if route is not None:
                    try:
                        raw = await self._server_hybrid(index, request, bodies, route)
                    except ServerRouteRefused as exc:
                        route = self._refused(route, forced, exc)
                if route is not None:
                    hits = server_hits_from(request, raw)
                else:
                    hits = hits_from(request, await self._msearch(index, bodies))
                break
            except CandidateWithoutId:
                continue
        if request.mode == "hybrid" and (body := hydrate_body(request, info, hits)) is not None:
            hydrate(hits, (await self._msearch(index, {"sources": body}))["sources"])
        return hits

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

    async def _server_hybrid(self, index: str, request: SearchRequest, bodies: dict[str, dict],
                             route: ServerRoute) -> list[dict]:
        body = server_body(route, bodies["keyword"], bodies["semantic"], request.fusion)
        try:
            if route.kind != PIPELINE:
                return (await self.client.search(index=index, body=body))["hits"]["hits"]
            name = pipeline_id(request.fusion)
            if name not in self._pipelines:
                await self.client.transport.perform_request("PUT", f"/_search/pipeline/{name}",
                                                            body=pipeline_body(request.fusion))
                self._pipelines.add(name)
            response = await self.client.search(index=index, body=body, params={"search_pipeline": name})
        except TransportError as exc:
            if exc.status_code == 403 and route.needs is not None:
                raise ServerRouteRefused(f"the cluster refused it ({exc.error})") from exc
            raise self._cluster_error(exc, index) from exc
        return response["hits"]["hits"]

    async def _msearch(self, index: str, bodies: dict[str, dict]) -> dict[str, Any]:
        try:
            response = await self.client.msearch(body=msearch_body(index, list(bodies.values())))
        except TransportError as exc:
            raise self._cluster_error(exc, index) from exc
        return msearch_results(bodies, response, index)
