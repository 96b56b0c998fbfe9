"""``AsyncSearcher``: :class:`semsearch.Searcher` over an async client (opensearch-py's, or elasticsearch-py's
with SEMSEARCH_BACKEND=elasticsearch), for asyncio
applications. Same requests, same fusion, same hits (the pure parts live in semsearch.search_plan);
the query is encoded in a worker thread so the event loop is not blocked by the model."""

from __future__ import annotations

import asyncio

from opensearchpy.exceptions import NotFoundError, TransportError

from .config import Settings
from .encoder import Encoder
from .errors import ClusterError
from .fusion import FusionConfig
from .index import IndexInfo, index_info_from_mappings, missing_index_error
from .queries import Filters, SourceSpec, msearch_body
from .search import SearcherBase, msearch_results
from .search_plan import (
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
from .server_hybrid import hybrid_body, neural_search_present, pipeline_body, pipeline_id


class AsyncSearcher(SearcherBase):
    """``await searcher.search(text, index=...)``; use ``async with AsyncSearcher() as s:`` or ``await s.close()``."""

    def __init__(self, settings: Settings | None = None, *, client=None, encoder: Encoder | None = None,
                 fusion: FusionConfig = DEFAULT_FUSION, window: int = DEFAULT_WINDOW,
                 server_side: bool | None = None) -> None:
        super().__init__(settings, encoder=encoder, fusion=fusion, window=window, server_side=server_side)
        from .client import make_async_client  # noqa: PLC0415

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
        server = self._wants_server(request, server_side)
        if server is None:
            server = await self._neural_search()
        elif server:
            self._require_neural(await self._neural_search(), forced=True)
        for ids_from_doc_values in (True, False):  # the second pass only if a candidate lacked the keyword id
            bodies = plan_bodies(request, info, vector, ids_from_doc_values=ids_from_doc_values)
            try:
                if server:
                    hits = server_hits_from(request, await self._server_hybrid(index, request, bodies))
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

    async def _neural_search(self) -> bool:
        if self._neural is None:
            try:
                self._neural = neural_search_present(await self.client.cat.plugins(format="json"))
            except TransportError:
                self._neural = False
        return self._neural

    async def _server_hybrid(self, index: str, request: SearchRequest, bodies: dict[str, dict]) -> list[dict]:
        name = pipeline_id(request.fusion)
        try:
            if name not in self._pipelines:
                await self.client.transport.perform_request("PUT", f"/_search/pipeline/{name}",
                                                            body=pipeline_body(request.fusion))
                self._pipelines.add(name)
            response = await self.client.search(index=index, body=hybrid_body(bodies["keyword"], bodies["semantic"]),
                                                params={"search_pipeline": name})
        except TransportError as exc:
            raise self._cluster_error(exc, index) from exc
        return response["hits"]["hits"]

    async def _msearch(self, index: str, bodies: dict[str, dict]) -> dict[str, list[dict]]:
        try:
            response = await self.client.msearch(body=msearch_body(index, list(bodies.values())))
        except TransportError as exc:
            raise self._cluster_error(exc, index) from exc
        return msearch_results(bodies, response, index)
