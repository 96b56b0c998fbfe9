"""A search as a conversation with the cluster, without the I/O: what to send next, given the last answer.

:func:`search_steps` is a generator. It yields a request (:class:`Probe`, :class:`ServerSearch` or
:class:`MultiSearch`), receives its answer through ``send``, and returns the hits. The sync and async
searchers only answer the requests, each with its own client, so the decisions are written once:
server-side fusion or the client's; falling back to the client when the cluster refuses (403) a route
it seemed able to run; a second pass when a candidate lacks the keyword id; fetching the sources of a
hybrid page. A refused server route is thrown into the generator as :class:`ServerRouteRefused`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Union

from semsearch.errors import ConfigurationError
from semsearch.index.manage import IndexInfo
from semsearch.query.plan import (
    CandidateWithoutId,
    Hit,
    SearchRequest,
    hits_from,
    hydrate,
    hydrate_body,
    plan_bodies,
    server_hits_from,
)
from semsearch.query.server_hybrid import PIPELINE, ServerRoute, pipeline_body, pipeline_id, server_body


class ServerRouteRefused(Exception):
    """The cluster refused (403) a server-side fusion it seemed able to run, e.g. under a licence it does
    not honour for that feature."""


@dataclass(frozen=True)
class Probe:
    """Ask whether the cluster has what a server route needs. Answer: why not (str), or None."""

    needs: str


@dataclass(frozen=True)
class ServerSearch:
    """One search that fuses in the cluster. Answer: its hits (``hits.hits``). ``pipeline``: the search
    pipeline to run it with, created from ``pipeline_body`` where the cluster does not have it yet."""

    index: str
    body: dict[str, Any]
    needs: str | None
    pipeline: str | None = None
    pipeline_body: dict[str, Any] | None = None


@dataclass(frozen=True)
class MultiSearch:
    """One ``_msearch`` of named bodies. Answer: each name's hits (a count body's total)."""

    index: str
    bodies: dict[str, dict[str, Any]]


Step = Union[Probe, ServerSearch, MultiSearch]


def server_search(index: str, request: SearchRequest, bodies: dict[str, dict], route: ServerRoute) -> ServerSearch:
    """The request of a server-side fusion (pure)."""
    body = server_body(route, bodies["keyword"], bodies["semantic"], request.fusion)
    if route.kind != PIPELINE:
        return ServerSearch(index, body, route.needs)
    return ServerSearch(index, body, route.needs, pipeline_id(request.fusion), pipeline_body(request.fusion))


def settle(route: ServerRoute | None, forced: bool, missing: str | None) -> ServerRoute | None:
    """``route`` when the cluster has what it needs (``missing`` is None); else the client (None), or an
    error when the caller insisted on the server."""
    if route is None or missing is None:
        return route
    if forced:
        raise ConfigurationError(f"server-side hybrid cannot run this search: {missing}")
    return None


def search_steps(request: SearchRequest, info: IndexInfo, vector: Sequence[float] | None, *, index: str,
                 route: ServerRoute | None, forced: bool, refused: Callable[[ServerRoute, bool, Exception], None]
                 ) -> Generator[Step, Any, list[Hit]]:
    """The requests of one search and the hits they make (pure: the caller performs each request).

    ``route``: the server-side way to try (None: fuse on the client); ``forced``: the caller insisted on
    it. ``refused(route, forced, exc)`` is told when the cluster refuses the route (it remembers, or
    raises when forced); the search then fuses on the client.
    """
    if route is not None and route.needs is not None:
        route = settle(route, forced, (yield Probe(route.needs)))
    for ids_from_doc_values in (True, False):  # the second pass only if a candidate lacked the keyword id
        bodies = plan_bodies(request, info, vector, ids_from_doc_values=ids_from_doc_values)
        try:
            if route is not None:
                try:
                    hits = server_hits_from(request, (yield server_search(index, request, bodies, route)))
                    break
                except ServerRouteRefused as exc:
                    refused(route, forced, exc)
                    route = None
            hits = hits_from(request, (yield MultiSearch(index, bodies)), info.text_analyzers, info.document_terms)
            break
        except CandidateWithoutId:
            continue
    if request.mode == "hybrid" and (body := hydrate_body(request, info, hits)) is not None:
        hydrate(hits, (yield MultiSearch(index, {"sources": body}))["sources"])
    return hits
