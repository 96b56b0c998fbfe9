"""The ``semsearch serve`` application (FastAPI on uvicorn).

- ``POST /v1/search``, ``POST /v1/encode``: what :class:`semsearch.Searcher` and the encoder do, as JSON
  (schema at ``/openapi.json``). ``GET /healthz``, ``GET /metrics`` (Prometheus text).
- ``GET /`` from a browser: the search page (``static/``). Every other request goes to the cluster
  unchanged (``proxy``), except that ``neural`` clauses in ``_search`` / ``_msearch`` bodies become
  ``knn`` clauses with the query encoded here (``neural``), so OpenSearch clients run neural and hybrid
  queries on a cluster without the neural-search or ml-commons plugins.
"""

from __future__ import annotations

import asyncio
import gzip
import hmac
import json
import time
import zlib
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from semsearch.encoding.encoder import Encoder
from semsearch.engines.opensearch import make_async_client, scrub
from semsearch.errors import (ConfigurationError, IndexMismatchError, IndexNotFoundError, QueryRejectedError,
                              SemsearchError)
from semsearch.index.manage import IndexInfo, check_fingerprint, index_info_from_mappings
from semsearch.query.async_search import AsyncSearcher
from semsearch.query.plan import DEFAULT_WINDOW, Hit, fusion_from_options
from semsearch.query.search import QueryVectorCache
from semsearch.service import neural
from semsearch.service.batching import QueryBatcher
from semsearch.service.metrics import ServiceMetrics
from semsearch.service.proxy import ClusterProxy, client_authorization
from semsearch.settings import Settings

MAX_K = 1000
MAX_TEXTS = 256  # per /v1/encode request
MAX_SERVICE_BODY = 1 << 20  # the service's own endpoints take small JSON
MAX_PROXY_BODY = 100 << 20  # OpenSearch's default http.max_content_length
MAX_DEPTH = 10_000  # offset + k: the deepest hit a search may ask for
# Exact paths, so that an index named "metrics-2024" or "v1" is still the cluster's: the service answers
# these, every other path goes to the cluster. The bearer token guards GUARDED.
GUARDED = frozenset({"/v1/search", "/v1/encode", "/metrics"})
PROXY_ENDPOINT = "proxy"  # semsearch_requests_total's endpoint of the requests sent on to the cluster
JSON_BODIES = frozenset({"/v1/search", "/v1/encode"})  # POSTed as JSON; another Content-Type gets 415
STATIC_FILES = frozenset({"index.html", "app.js", "style.css"})
OWN = GUARDED | {"/healthz", "/openapi.json"} | {f"/static/{name}" for name in STATIC_FILES}
STATIC = "semsearch.service"


# A request body naming a field the API does not know is refused (422), not searched without it: a misspelt
# "filter" would otherwise return unfiltered hits.
STRICT_BODY = ConfigDict(extra="forbid")


class FusionOptions(BaseModel):
    model_config = STRICT_BODY
    method: Literal["rrf", "minmax", "zscore", "sum"] | None = None
    keyword_weight: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    semantic_weight: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    rrf_k: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _some_weight(self) -> FusionOptions:
        if self.keyword_weight == 0 and self.semantic_weight == 0:
            raise ValueError("the keyword and semantic weights are both 0: give one a weight above 0")
        return self


class SearchBody(BaseModel):
    model_config = STRICT_BODY
    index: str = Field(min_length=1)
    text: str = Field(min_length=1, description="the query; not blank")
    mode: Literal["hybrid", "semantic", "keyword"] = "hybrid"
    k: int = Field(default=10, ge=1, le=MAX_K)
    offset: int = Field(default=0, ge=0, le=MAX_DEPTH - 1, description=f"offset + k: at most {MAX_DEPTH:,}")
    filters: dict[str, Any] | list[dict[str, Any]] | None = Field(
        default=None, description="one query clause, or a list of them (all must match), as Searcher takes them")
    fusion: FusionOptions | None = None
    window: int | None = Field(default=None, ge=1, le=MAX_DEPTH, description="candidates asked of each retriever "
                               "(default: 100, or offset + k where deeper)")
    explain: bool = Field(default=False, description="each hit's rank, raw score and contribution per retriever, "
                          "and in hybrid mode how the lists were fused (the answer's fusion)")
    highlight: bool = False

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("the query text is blank")
        return text

    @model_validator(mode="after")
    def _not_too_deep(self) -> SearchBody:
        if self.offset + self.k > MAX_DEPTH:
            raise ValueError(f"offset + k must be at most {MAX_DEPTH:,} (got {self.offset + self.k:,})")
        return self


class HitOut(BaseModel):
    id: str
    score: float
    source: dict[str, Any]
    contributions: dict[str, float]
    highlights: dict[str, list[str]]
    explanation: dict[str, dict[str, float | int | None]] | None = None
    partial: bool = False  # some shards did not answer: hits may be missing


class FusionOut(BaseModel):
    """With explain in hybrid mode: how the lists were fused (semsearch.FusionChoice in Python)."""

    method: str = Field(description="rrf, zscore, minmax or sum")
    weights: dict[str, float] = Field(description="each retriever's weight as fused")
    keyword_evidence: str | None = Field(
        default=None, description="the kind the default fusion's keyword rule found: strict, fallback, exhaustive or "
        "agreed (a question, a small index or a standout then fuses the any-term list all the same: keyword_list)")
    reason: str | None = Field(default=None,
                               description="why fused by score: question, subject, long_documents, "
                               "short_documents, small_index, standout or dense_lead")
    phrase_matches: int = Field(default=0, description="documents holding the query as a phrase, weighted up")
    phrase_weight: float = Field(default=0.0, description="their weight: under rank fusion each adds weight / "
                                 "(rrf_k + its place), under score fusion the weight itself")
    rare_strict_matches: int = Field(default=0, description="in a small index, documents holding most of the "
                                     "query's terms where they are rare (a query of several terms), weighted up")
    rare_strict_weight: float = Field(default=0.0, description="their weight, added to each under score fusion")
    keyword_list: str = Field(default="keyword", description="the keyword list fused: keyword (most terms), "
                              "keyword_any (any term) or keyword_matches (every match, most terms first)")
    keyword_hits: int = Field(default=0, description="documents of keyword_list fused (0: semantic alone)")
    rrf_k: int = Field(default=60, description="RRF's rank constant (method rrf)")
    description: str = Field(description="all of the above in one line, for people (semsearch search --explain's)")


class SearchAnswer(BaseModel):
    hits: list[HitOut]
    took_ms: float
    partial: bool = False  # some shards did not answer (even with no hit): hits may be missing
    fusion: FusionOut | None = Field(default=None, description="how hybrid fused the lists; null unless explain is "
                                     "asked in hybrid mode")


class EncodeBody(BaseModel):
    model_config = STRICT_BODY
    texts: list[str] = Field(min_length=1, max_length=MAX_TEXTS)
    kind: Literal["query", "document"] = "query"


class EncodeAnswer(BaseModel):
    vectors: list[list[float]]
    dimension: int
    model: dict[str, Any]


class ErrorOut(BaseModel):
    error: str = Field(description="what went wrong, in one line")


class InvalidRequestOut(ErrorOut):
    detail: list[dict[str, Any]] = Field(description="each invalid field (FastAPI's validation errors)")


# The errors each endpoint answers, for /openapi.json.
REQUEST_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no or another bearer token (semsearch serve --token)"},
    413: {"model": ErrorOut, "description": "a body over 1 MiB"},
    415: {"model": ErrorOut, "description": "a body sent as another type than JSON"},
    422: {"model": InvalidRequestOut, "description": "invalid or unknown fields"},
}
SEARCH_ERRORS: dict[int | str, dict[str, Any]] = {
    **REQUEST_ERRORS,
    400: {"model": ErrorOut, "description": "a search the cluster refused: e.g. a filter it cannot parse"},
    404: {"model": ErrorOut, "description": "no such index"},
    409: {"model": ErrorOut, "description": "the index holds vectors of another model"},
    502: {"model": ErrorOut, "description": "the cluster failed or cannot be reached"},
}


def validation_detail(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's validation errors without the values given (a NaN cannot go back as JSON, a body may be large)
    (pure)."""
    return [{"type": item.get("type"), "loc": list(item.get("loc", ())), "msg": item.get("msg")} for item in errors]


def validation_message(errors: list[dict[str, Any]]) -> str:
    """FastAPI's validation errors in one line: ``k: Input should be …; fusion.rrf_k: …`` (pure)."""
    parts = []
    for item in errors:
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
    return "; ".join(parts)


def hit_out(hit: Hit) -> dict[str, Any]:
    return {"id": hit.id, "score": hit.score, "source": hit.source, "contributions": hit.contributions,
            "highlights": hit.highlights, "explanation": hit.explanation, "partial": hit.partial}


class BatchedSearcher(AsyncSearcher):
    """An AsyncSearcher whose query vectors come from ``vector_of`` (the service's cache and micro-batcher)."""

    def __init__(self, *args, vector_of: Callable[[str], Awaitable[np.ndarray]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._vector_of = vector_of

    async def query_vector(self, info: IndexInfo, text: str):
        self._check(info)
        return await self._vector_of(text)


class Service:
    """What the routes share: settings, the encoder, the searcher, the proxy and the metrics."""

    def __init__(self, settings: Settings, encoder: Encoder | None, token: str | None, max_batch: int,
                 max_wait: float) -> None:
        self.settings = settings
        self.token = token
        self.metrics = ServiceMetrics()
        self.model_loaded = False  # set once the model is in memory (healthz)
        self.batcher = QueryBatcher(lambda texts: self.encoder.encode_query(texts), max_batch=max_batch,
                                    max_wait=max_wait, on_batch=self.metrics.batch_size.observe)
        # Query vectors of /v1/search and of rewritten neural clauses alike: one cache, one batcher.
        self.vectors = QueryVectorCache(lambda text: self.encoder.encode_query(text))
        self.searcher = BatchedSearcher(settings, client=make_async_client(settings), encoder=encoder,
                                        vector_of=self.query_vector)
        self.proxy = ClusterProxy(settings)
        self._meta: dict[tuple[str, str | None], tuple[dict, float]] = {}

    @property
    def encoder(self) -> Encoder:
        return self.searcher.encoder  # the searcher loads it once (Encoder.from_settings) and keeps it

    async def check_model(self, index: str, headers) -> None:
        """Refuse an index (or any index behind an alias or pattern) whose vectors are not this service's
        model, as Searcher does. The mapping is read with the credentials the request itself gets, and cached
        30 s per index and client Authorization: a client without the token never sees what a read with the
        service's credentials found. An index that does not exist is left to the cluster, which answers for it as
        for any search (a 404, or an error in its _msearch item, or nothing under ignore_unavailable)."""
        key = (index, client_authorization(headers))
        cached = self._meta.get(key)
        if cached and time.monotonic() - cached[1] < 30:
            mappings = cached[0]
        else:
            status, body = await self.proxy.read("GET", f"/{quote(index, safe=',*')}/_mapping", headers,
                                                 token=self.token)
            if status == 404:
                return
            if status >= 300:  # e.g. the client may not read it: the cluster's own answer goes back
                raise ClusterAnswer(status, body)
            mappings = json.loads(body)
            self._meta[key] = (mappings, time.monotonic())
        fingerprint = self.encoder.fingerprint.as_dict()
        for concrete, entry in sorted(mappings.items()):
            check_fingerprint(index_info_from_mappings(concrete, {concrete: entry}), fingerprint)

    async def rewrite_neural(self, path_index: str | None, endpoint: str, raw: bytes, headers) -> tuple[bytes, int]:
        """The body with neural clauses rewritten, and how many there were."""
        if endpoint == "_msearch":
            items = neural.msearch_items(raw)
        else:
            items = [(None, json.loads(raw) if raw.strip() else {})]
        clauses = [neural.neural_clauses(body) for _, body in items]
        texts = [spec["query_text"] for found in clauses for _, spec in found]
        if not texts:
            return raw, 0
        for (header, _), found in zip(items, clauses):
            if found:
                for index in neural.indices_of(path_index, header):
                    await self.check_model(index, headers)
        unique = list(dict.fromkeys(texts))
        vectors = dict(zip(unique, await asyncio.gather(*(self.query_vector(text) for text in unique))))
        rewritten = [(header, neural.rewrite(body, lambda text: vectors[text])) for header, body in items]
        if endpoint == "_msearch":
            return neural.msearch_bytes(rewritten), len(texts)
        return json.dumps(rewritten[0][1]).encode("utf-8"), len(texts)

    async def query_vector(self, text: str) -> np.ndarray:
        vector = self.vectors.cached(text)
        self.metrics.cache.inc("hit" if vector is not None else "miss")
        return vector if vector is not None else self.vectors.put(text, await self.batcher.encode(text))

    async def close(self) -> None:
        await self.batcher.close()
        await self.proxy.close()
        await self.searcher.close()


class ClusterAnswer(Exception):
    """The cluster refused a read the service made for a client: its answer goes back as it was."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def error(status: int, message: str) -> JSONResponse:
    """An error of the service's own endpoints: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status)


def proxy_error(status: int, reason: str, kind: str | None = None) -> JSONResponse:
    """An error the proxy answers itself, shaped as the cluster's own (``{"error": {"type", "reason", …},
    "status"}``), so that an OpenSearch client reads it as it reads the cluster's; ``kind``: its type (None: the
    status's, PROXY_ERROR_TYPES)."""
    cause = {"type": kind or PROXY_ERROR_TYPES.get(status, "semsearch_exception"), "reason": reason}
    return JSONResponse({"error": {"root_cause": [cause], **cause}, "status": status}, status_code=status)


def error_status(exc: SemsearchError) -> int:
    if isinstance(exc, IndexMismatchError):
        return 409
    if isinstance(exc, IndexNotFoundError):
        return 404
    return 400 if isinstance(exc, (ConfigurationError, QueryRejectedError)) else 502


# The type of a proxy error (proxy_error) per status, in the words OpenSearch uses for the like.
PROXY_ERROR_TYPES = {400: "illegal_argument_exception", 404: "index_not_found_exception",
                     409: "semsearch_model_mismatch_exception", 413: "request_too_large_exception",
                     502: "semsearch_cluster_unreachable_exception", 504: "semsearch_cluster_timeout_exception"}


def decompressed(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """A gzip or deflate request body inflated (to find and rewrite neural clauses), its encoding header gone."""
    encoding = next((v for k, v in headers.items() if k.lower() == "content-encoding"), "").strip().lower()
    if encoding not in ("gzip", "deflate"):
        return body, headers
    raw = gzip.decompress(body) if encoding == "gzip" else zlib.decompress(body)
    return raw, {k: v for k, v in headers.items() if k.lower() != "content-encoding"}


class BodyTooLarge(Exception):
    """A request body ran over its limit while it was read."""


async def read_body(receive, limit: int) -> bytes | None:
    """A request's whole body from ASGI ``receive``; None when the client went away first; BodyTooLarge as soon as
    it runs over ``limit`` bytes (nothing more is read)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            raise BodyTooLarge(size)
        if not message.get("more_body"):
            return b"".join(chunks)


def replayed(body: bytes, receive):
    """An ASGI ``receive`` that gives ``body`` whole, then what ``receive`` gives (a disconnect, in time)."""
    given = False

    async def again():
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return again


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type names JSON (application/json, with parameters, or a +json type) (pure)."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def _header(scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


class ServiceApp:
    """The ASGI application: the service's own paths go to FastAPI (after the token and size checks); every
    other request is proxied to the cluster at the ASGI level, with no framework in the way."""

    def __init__(self, api: FastAPI, service: Service) -> None:
        self.api, self.service = api, service

    def own(self, scope) -> bool:
        path = scope["path"]
        if path in OWN:
            return True
        return path == "/" and scope["method"] == "GET" and "text/html" in (_header(scope, b"accept") or "")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or self.own(scope):
            if scope["type"] == "http":
                return await self.guarded(scope, receive, send)
            return await self.api(scope, receive, send)
        await self.proxied(scope, receive, self.counted(send, PROXY_ENDPOINT))

    def counted(self, send, endpoint: str):
        """``send``, counting the answer's status under ``endpoint`` (semsearch_requests_total)."""
        async def counting(message) -> None:
            if message["type"] == "http.response.start":
                self.service.metrics.requests.inc(endpoint, str(message["status"]))
            await send(message)
        return counting

    async def guarded(self, scope, receive, send) -> None:
        path = scope["path"]
        send = self.counted(send, path)  # refusals (413, 401, 415) too
        guarded = path in GUARDED
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > MAX_SERVICE_BODY:
            return await error(413, f"request body of {int(length):,} bytes is over this endpoint's limit of "
                                    f"{MAX_SERVICE_BODY:,}")(scope, receive, send)
        token = self.service.token
        if guarded and token is not None:
            given = (_header(scope, b"authorization") or "").encode()
            if not hmac.compare_digest(given, f"Bearer {token}".encode()):
                return await error(401, "this endpoint needs 'Authorization: Bearer <token>' (semsearch serve "
                                        "--token)")(scope, receive, send)
        sent = _header(scope, b"content-type")
        if scope["method"] == "POST" and path in JSON_BODIES and not is_json(sent):
            # Another type would only fail validation, obscurely. None too, as FastAPI's strict content type has
            # it: a browser page may send a body without one to a service on localhost with no CORS preflight.
            return await error(415, f"send the body as JSON with 'Content-Type: application/json' (got "
                                    f"{sent or 'no Content-Type'})")(scope, receive, send)
        if length is None and scope["method"] in ("POST", "PUT", "PATCH"):
            # A chunked body declares no length: read here, up to the limit, and handed on whole.
            try:
                body = await read_body(receive, MAX_SERVICE_BODY)
            except BodyTooLarge:
                return await error(413, f"request body over this endpoint's limit of {MAX_SERVICE_BODY:,} bytes"
                                   )(scope, receive, send)
            if body is None:
                return  # the client went away
            receive = replayed(body, receive)

        await self.api(scope, receive, send)

    async def proxied(self, scope, receive, send) -> None:
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        if not raw_path.startswith("/"):
            # "@host:port/…", "*", an absolute URL: glued to the node's URL, these would reach another host
            return await proxy_error(400, "the request target must be a path (it starts with /)"
                                     )(scope, receive, send)
        try:
            body = await read_body(receive, MAX_PROXY_BODY)
        except BodyTooLarge:
            return await proxy_error(413, f"request body over {MAX_PROXY_BODY:,} bytes")(scope, receive, send)
        if body is None:
            return  # the client went away mid-upload: nothing half-sent reaches the cluster
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        target = neural.search_endpoint(scope["path"])
        if target is not None and scope["method"] in ("GET", "POST") and body:
            try:
                body, headers = decompressed(body, headers)  # opensearch-py's http_compress gzips bodies
            except (zlib.error, OSError, EOFError) as exc:  # gzip's BadGzipFile is an OSError
                return await proxy_error(400, f"the request body cannot be decompressed: {exc}", "parse_exception"
                                         )(scope, receive, send)
        if target is not None and scope["method"] in ("GET", "POST") and b'"neural"' in body:
            started = time.perf_counter()
            try:
                body, rewritten = await self.service.rewrite_neural(*target, body, headers)
            except SemsearchError as exc:
                message = scrub(str(exc), self.service.settings)
                return await proxy_error(error_status(exc), message)(scope, receive, send)
            except ClusterAnswer as answer:
                return await Response(answer.body, status_code=answer.status,
                                      media_type="application/json")(scope, receive, send)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                message = scrub(f"the search body is not valid JSON: {exc}", self.service.settings)
                return await proxy_error(400, message, "parse_exception")(scope, receive, send)
            self.service.metrics.rewrites.inc(amount=rewritten)
            self.service.metrics.latency.observe(time.perf_counter() - started, "neural_rewrite")
        try:
            status, answer_headers, pieces = await self.service.proxy.send(
                scope["method"], raw_path, scope["query_string"].decode("latin-1"), headers, body,
                token=self.service.token)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            timeout = isinstance(exc, asyncio.TimeoutError)
            message = scrub(f"the cluster {'did not answer in time' if timeout else 'is unreachable'}: {exc}",
                            self.service.settings)
            return await proxy_error(504 if timeout else 502, message)(scope, receive, send)
        try:
            await send({"type": "http.response.start", "status": status,
                        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer_headers]})
            async for piece in pieces:
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await pieces.aclose()  # releases the cluster's connection even when the client went away


def create_app(settings: Settings | None = None, *, encoder: Encoder | None = None, token: str | None = None,
               max_batch: int = 64, max_wait: float = 0.002) -> ServiceApp:
    """The service; ``token``: a bearer token its own endpoints require (None: none)."""
    settings = settings or Settings()
    service = Service(settings, encoder, token, max_batch, max_wait)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(lambda: service.encoder)  # load the model before the first request
        service.model_loaded = True
        yield
        await service.close()

    app = FastAPI(title="semsearch", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Semantic and hybrid search for an OpenSearch cluster, from the outside.")
    app.state.service = service

    @app.exception_handler(SemsearchError)
    async def semsearch_error(request: Request, exc: SemsearchError):
        return error(error_status(exc), scrub(str(exc), settings))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        # FastAPI's "detail" list as it is, and beside it "error", one line as every other error of the API has
        return JSONResponse({"error": validation_message(exc.errors()), "detail": validation_detail(exc.errors())},
                            status_code=422)

    @app.post("/v1/search", response_model=SearchAnswer, responses=SEARCH_ERRORS)
    async def search(body: SearchBody) -> dict:
        """The same hits as ``Searcher.search`` with the same arguments."""
        started = time.perf_counter()
        fusion = fusion_from_options(**body.fusion.model_dump()) if body.fusion else None
        hits = await service.searcher.search(body.text, index=body.index, k=body.k, mode=body.mode,
                                             filters=body.filters, fusion=fusion, offset=body.offset,
                                             window=body.window or max(DEFAULT_WINDOW, body.offset + body.k),
                                             explain=body.explain, highlight=body.highlight)
        took = time.perf_counter() - started
        service.metrics.latency.observe(took, body.mode)
        choice = getattr(hits, "fusion", None)
        return {"hits": [hit_out(h) for h in hits], "took_ms": round(took * 1000, 3),
                "partial": getattr(hits, "partial", False),
                "fusion": choice.as_json() if choice else None}

    @app.post("/v1/encode", response_model=EncodeAnswer, responses=REQUEST_ERRORS)
    async def encode(body: EncodeBody) -> dict:
        """Vectors for texts, for applications that build their own kNN queries."""
        if body.kind == "query":
            vectors = await asyncio.gather(*(service.query_vector(text) for text in body.texts))
        else:
            vectors = await asyncio.to_thread(service.encoder.encode_documents, body.texts)
        return {"vectors": [[float(x) for x in v] for v in vectors], "dimension": service.encoder.dimension,
                "model": service.encoder.fingerprint.as_dict()}

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        model = service.model_loaded
        try:
            cluster = (await service.searcher.client.cluster.health())["status"]
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            cluster = f"unreachable: {scrub(str(exc), settings)[:200]}"
        ready = model and cluster in ("green", "yellow")
        return JSONResponse({"ready": ready, "cluster": cluster, "model": "loaded" if model else "loading"},
                            status_code=200 if ready else 503)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(service.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(resources.files(STATIC).joinpath("static", "index.html").read_bytes())

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        files = resources.files(STATIC).joinpath("static")
        kinds = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
        kind = next((v for k, v in kinds.items() if name.endswith(k)), None)
        if kind is None or name not in STATIC_FILES:
            return error(404, f"no static file {name!r}")
        return Response(files.joinpath(name).read_bytes(), media_type=kind)

    return ServiceApp(app, service)


def _version() -> str:
    from semsearch.version import __version__  # noqa: PLC0415

    return __version__


TOKEN_VARIABLE = "SEMSEARCH_SERVE_TOKEN"
BATCH_VARIABLES = ("SEMSEARCH_SERVE_MAX_BATCH", "SEMSEARCH_SERVE_MAX_WAIT_MS")


def app_from_environment() -> ServiceApp:
    """The app as ``semsearch serve`` starts it in each uvicorn worker: settings, token and micro-batching
    from the environment."""
    import os  # noqa: PLC0415

    max_batch, max_wait_ms = (os.environ.get(name) for name in BATCH_VARIABLES)
    return create_app(Settings(), token=os.environ.get(TOKEN_VARIABLE) or None, max_batch=int(max_batch or 64),
                      max_wait=float(max_wait_ms or 2) / 1000)
