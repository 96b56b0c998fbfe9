"""The Elasticsearch backend's client: elasticsearch-py behind the calls semsearch makes of opensearch-py.

semsearch's request bodies are the same on both engines for bulk, msearch, BM25, counts and
aliases; only mappings and knn queries differ (:mod:`semsearch.engines.es_bodies`). So the library keeps
one code path, and this adapter gives elasticsearch-py's client the two things that differ in the
calls themselves: answers as plain dicts, and errors as opensearch-py's exception classes (which
every ``except`` in semsearch already handles, with the cluster's status and reason intact).
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from opensearchpy import exceptions as os_exceptions

from semsearch.engines.smile import CONTENT_TYPE as SMILE_CONTENT_TYPE
from semsearch.errors import ConfigurationError

EXTRA_HINT = "the Elasticsearch backend needs elasticsearch-py: pip install 'semsearch[elasticsearch]'"
_NAMESPACES = ("indices", "cat", "nodes", "cluster", "tasks", "license")
COMPATIBLE_SMILE = "application/vnd.elasticsearch+smile"


def _load():
    try:
        import elasticsearch  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigurationError(EXTRA_HINT) from exc
    return elasticsearch


def translate(exc: BaseException) -> BaseException:
    """An elasticsearch-py error as the opensearch-py error semsearch handles (the original chained)."""
    es = _load()
    if isinstance(exc, es.ApiError):
        status = getattr(exc.meta, "status", None) or getattr(exc, "status_code", 500)
        body = exc.body if isinstance(exc.body, dict) else {"error": str(exc.body)}
        error = body.get("error")
        kind = error.get("type") if isinstance(error, dict) else (error or exc.message)
        cls = os_exceptions.HTTP_EXCEPTIONS.get(status, os_exceptions.TransportError)
        return cls(status, kind, body)
    if isinstance(exc, es.ConnectionTimeout):
        return os_exceptions.ConnectionTimeout("TIMEOUT", str(exc), exc)
    if isinstance(exc, es.SSLError):
        return os_exceptions.SSLError("N/A", str(exc), exc)
    if isinstance(exc, es.ConnectionError):
        return os_exceptions.ConnectionError("N/A", str(exc), exc)
    return exc


def _plain(answer: Any) -> Any:
    """elasticsearch-py wraps answers (ObjectApiResponse, HeadApiResponse); semsearch reads dicts and bools."""
    if hasattr(answer, "body"):
        body = answer.body
        return bool(answer) if isinstance(body, bool) or body is None else body
    return answer


def _no_params(name: str, kwargs: dict) -> dict:
    if kwargs.get("params"):  # opensearch-py's query-string escape hatch has no equivalent here
        raise TypeError(f"{name}: pass query parameters as keywords on Elasticsearch, not params=")
    kwargs.pop("params", None)
    return kwargs


def _reraise(exc: Exception):
    translated = translate(exc)
    if translated is exc:
        raise exc
    raise translated from exc


def _wrapped(name: str, bind):
    def call(*args, **kwargs):
        kwargs = _no_params(name, kwargs)
        try:
            return _plain(bind(kwargs)(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - translated, or re-raised as is
            _reraise(exc)

    return call


def _wrapped_async(name: str, bind):
    async def call(*args, **kwargs):
        kwargs = _no_params(name, kwargs)
        try:
            return _plain(await bind(kwargs)(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - translated, or re-raised as is
            _reraise(exc)

    return call


class _Namespace:
    """A client (``path`` None) or one of its namespaces (indices, cat…), its methods wrapped."""

    def __init__(self, root: Any, path: str | None = None, asynchronous: bool = False) -> None:
        self._root = root
        self._path = path
        self._target = getattr(root, path) if path else root
        self._wrap = _wrapped_async if asynchronous else _wrapped

    def __getattr__(self, name: str):
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute
        return self._wrap(name, lambda kwargs: self._bound(name, kwargs))

    def _bound(self, name: str, kwargs: dict):
        """The method; under ``options(request_timeout=…)`` when the call carries one, as opensearch-py's
        calls do (elasticsearch-py 8 deprecates transport options among an API's arguments)."""
        timeout = kwargs.pop("request_timeout", None)
        if timeout is None:
            return getattr(self._target, name)
        scoped = self._root.options(request_timeout=timeout)
        return getattr(getattr(scoped, self._path) if self._path else scoped, name)


class ElasticsearchClient(_Namespace):
    """``Elasticsearch`` with opensearch-py's answers and errors (see the module's docstring)."""

    backend = "elasticsearch"

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.raw = client
        for name in _NAMESPACES:
            setattr(self, name, _Namespace(client, name))

    def info(self, **kwargs):
        """The answer of ``GET /`` (name, cluster name, version), read from ``_nodes/_local``: the integ-test
        distribution answers ``GET /`` with 405, which also makes elastic-transport mark the node dead
        for a second. A user who may not read ``_nodes`` gets ``GET /`` itself."""
        try:
            nodes = self.nodes.info(node_id="_local", metric="_none")
        except os_exceptions.AuthorizationException:
            return self.__getattr__("info")(**kwargs)
        node = next(iter(nodes["nodes"].values()))
        return {"name": node.get("name"), "cluster_name": nodes.get("cluster_name"),
                "version": {"number": node["version"], "distribution": "elasticsearch"}}

    def perform_request(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
                        headers: dict | None = None) -> Any:
        """A raw request, as opensearch-py's ``transport.perform_request`` makes it (Smile bulk bodies).

        elasticsearch-py asks for answers in its compatible-with media type, and the server then wants the
        body's type in the same form."""
        if headers and headers.get("content-type") == SMILE_CONTENT_TYPE:
            headers = {**headers, "content-type": f"{COMPATIBLE_SMILE}; compatible-with={_load().__version__[0]}"}
        try:
            return _plain(self.raw.perform_request(method, path, params=params, headers=headers, body=body))
        except Exception as exc:  # noqa: BLE001 - translated, or re-raised as is
            _reraise(exc)

    # Points in time under opensearch-py's names (POST INDEX/_pit and DELETE _pit on Elasticsearch).
    def create_pit(self, *, index: str, keep_alive: str) -> dict:
        return {"pit_id": self.open_point_in_time(index=index, keep_alive=keep_alive)["id"]}

    def delete_pit(self, *, body: dict) -> None:
        for pit_id in body.get("pit_id") or ():
            self.close_point_in_time(id=pit_id)


class AsyncElasticsearchClient(_Namespace):
    """``AsyncElasticsearch`` with opensearch-py's answers and errors, for :class:`semsearch.AsyncSearcher`."""

    backend = "elasticsearch"

    def __init__(self, client: Any) -> None:
        super().__init__(client, asynchronous=True)
        self.raw = client
        for name in _NAMESPACES:
            setattr(self, name, _Namespace(client, name, asynchronous=True))

    async def close(self) -> None:
        await self.raw.close()


def with_default_port(url: str) -> str:
    """elastic-transport needs a port where opensearch-py assumes 9200: give it the same default."""
    parts = urlsplit(url)
    if parts.port is None and parts.hostname:
        return urlunsplit(parts._replace(netloc=f"{parts.netloc}:9200"))
    return url


def elasticsearch_options(kwargs: dict) -> dict:
    """elasticsearch-py's constructor arguments from semsearch's connection keyword arguments (pure)."""
    options = dict(kwargs)
    options["request_timeout"] = options.pop("timeout", None)
    options.pop("http_compress", None)
    if "http_auth" in options:
        options["basic_auth"] = options.pop("http_auth")
    context = options.get("ssl_context")
    if context is not None and context.verify_mode == ssl.CERT_NONE:
        # elastic-transport would otherwise switch verification back on in the context it is given.
        options.update(verify_certs=False, ssl_show_warn=False)
    options["hosts"] = [with_default_port(url) for url in options["hosts"]]
    options["serializers"] = {SMILE_CONTENT_TYPE: _BytesAsTheyAre(), COMPATIBLE_SMILE: _BytesAsTheyAre()}
    return {key: value for key, value in options.items() if value is not None}


class _BytesAsTheyAre:
    """elastic-transport's serializer slot for Smile bulk bodies, which semsearch encodes itself."""

    def dumps(self, data: bytes) -> bytes:
        return data

    def loads(self, data: bytes) -> bytes:  # answers are asked for as JSON; never called
        return data


def make_elasticsearch_client(kwargs: dict, *, asynchronous: bool = False):
    """An adapted elasticsearch-py client (``AsyncElasticsearch`` with ``asynchronous``) from semsearch's
    connection keyword arguments."""
    es = _load()
    try:
        if asynchronous:
            return AsyncElasticsearchClient(es.AsyncElasticsearch(**elasticsearch_options(kwargs)))
        return ElasticsearchClient(es.Elasticsearch(**elasticsearch_options(kwargs)))
    except ValueError:  # an unparsable URL; the parser's message can quote a piece of the password
        raise ConfigurationError(
            "SEMSEARCH_OPENSEARCH_URL is not a URL elasticsearch-py can parse (scheme://host:port; characters "
            "such as '#', '/' or '@' in a password must be percent-encoded)") from None
