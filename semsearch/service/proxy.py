"""Requests the service does not answer itself go to the cluster unchanged: method, path, query string,
headers and body, and the answer comes back as it was sent, streamed (byte for byte: no decompression)."""

from __future__ import annotations

import base64
import hmac
from collections.abc import AsyncIterator, Callable, Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
from yarl import URL

from semsearch.engines.opensearch import ssl_context
from semsearch.settings import Settings

# Connection-level headers are for one hop only (RFC 9110 7.6.1); Host and Content-Length are set anew.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "host", "content-length"})
CHUNK = 64 * 1024
WHOLE_ANSWER = 1 << 20  # answers up to this size are read whole and sent in one piece; larger ones stream


def cluster_authorization(settings: Settings) -> str | None:
    """The Authorization header of the service's own cluster credentials, or None (pure)."""
    if settings.api_key is not None:
        return f"ApiKey {settings.api_key.get_secret_value()}"
    if settings.opensearch_user is not None:
        password = settings.opensearch_password.get_secret_value() if settings.opensearch_password else ""
        return _basic(settings.opensearch_user, password)
    return None


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def node_credentials(url: str) -> tuple[str, str | None]:
    """A node URL without the ``user:password@`` it may hold, and those credentials as an Authorization header
    (None: none) (pure). The proxy applies them itself, by the same rules as the service's other credentials: left
    in the URL, the HTTP client would send them with every request, a stranger's behind a token too."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=host)), _basic(unquote(parts.username or ""),
                                                          unquote(parts.password or ""))


def client_authorization(headers: Mapping[str, str]) -> str | None:
    """The client's own Authorization header, whatever its name's case; None when it sent none (pure)."""
    return next((value for name, value in headers.items() if name.lower() == "authorization"), None)


def holds_token(authorization: str | None, token: str) -> bool:
    """Whether an Authorization header is ``Bearer <token>`` (the scheme in any case; compared in constant time)."""
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def upstream_headers(headers: Mapping[str, str], authorization: str | None, token: str | None = None
                     ) -> dict[str, str]:
    """The client's headers for the cluster, hop-by-hop ones dropped, and those its Connection header names (pure).
    The client's own Authorization goes to the cluster as it is. The service's credentials (``authorization``)
    stand in only for a client that sent none, or, when the service has a ``token``, for a client that sent that
    token (which never reaches the cluster): behind a token, an unknown client gets no credentials of the
    service's."""
    named = {part.strip().lower() for name, value in headers.items() if name.lower() == "connection"
             for part in value.split(",")}
    forwarded = {name: value for name, value in headers.items()
                 if name.lower() not in HOP_BY_HOP and name.lower() not in named and name.lower() != "authorization"}
    given = client_authorization(headers)
    if token is not None and holds_token(given, token):
        given = None
        allowed = True
    else:
        allowed = token is None
    if given is not None:
        forwarded["Authorization"] = given
    elif authorization and allowed:
        forwarded["Authorization"] = authorization
    return forwarded


def downstream_headers(headers) -> list[tuple[str, str]]:
    """The cluster's answer headers for the client, repeated ones kept, hop-by-hop ones dropped (pure)."""
    return [(name, value) for name, value in headers.items() if name.lower() not in HOP_BY_HOP]


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield  # an async generator that yields nothing


class ClusterProxy:
    """One aiohttp session to the cluster, shared by every proxied request."""

    def __init__(self, settings: Settings) -> None:
        # Each node's URL, and the credentials it held: those win over the settings' for that node, as in the Python
        # clients (opensearch-py's http_auth from a host URL), so the proxy and /v1/search act as the same user.
        self.nodes = [node_credentials(url) for url in settings.opensearch_urls]
        self._turn = 0  # round-robin over the nodes, as the Python clients go
        self._authorization = cluster_authorization(settings)
        self._ssl = ssl_context(settings) if self.nodes[0][0].startswith("https://") else None
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.request_timeout,
                                              sock_read=settings.request_timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else False, limit=64)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout,
                                                  auto_decompress=False,
                                                  skip_auto_headers=("User-Agent", "Accept-Encoding"))
        return self._session

    async def send(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes, *,
                   token: str | None = None) -> tuple[int, list[tuple[str, str]], AsyncIterator[bytes]]:
        """Status, headers and the body of the cluster's answer, in chunks. ``path`` and ``query`` are sent as
        they came (already percent-encoded); ``headers`` are the client's, and ``token`` the service's bearer token
        (None: none), which decide whether the service's credentials go with them (:func:`upstream_headers`). A
        small answer comes whole, in one chunk, with its length."""
        if not path.startswith("/"):  # glued to a node's URL, "@other-host/…" would be another host's
            raise ValueError(f"a path to send to the cluster starts with /, not {path[:1]!r}")
        response = await self._request_any_node(
            method, path + (f"?{query}" if query else ""), body,
            lambda node_authorization: upstream_headers(headers, node_authorization or self._authorization, token))
        answer_headers = downstream_headers(response.headers)
        if method == "HEAD":  # no body, but the length the body would have
            response.release()
            answer_headers.append(("content-length", response.headers.get("content-length", "0")))
            return response.status, answer_headers, _nothing()
        if response.content_length is not None and response.content_length <= WHOLE_ANSWER:
            whole = await response.read()
            response.release()
            answer_headers.append(("content-length", str(len(whole))))

            async def one() -> AsyncIterator[bytes]:
                yield whole

            return response.status, answer_headers, one()

        async def stream() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.content.iter_chunked(CHUNK):
                    yield chunk
            finally:
                response.release()

        return response.status, answer_headers, stream()

    async def _request_any_node(self, method: str, target: str, body: bytes,
                                headers_for: Callable[[str | None], Mapping[str, str]]) -> aiohttp.ClientResponse:
        """The first node that takes the connection answers; a node that refuses it, or does not take it within
        the connect timeout (down), is passed over. Only a failed connect moves on: nothing is sent twice.
        ``headers_for``: the headers to send, given the credentials the node's URL held."""
        start, self._turn = self._turn, (self._turn + 1) % len(self.nodes)
        for attempt in range(len(self.nodes)):
            base, node_authorization = self.nodes[(start + attempt) % len(self.nodes)]
            try:
                return await self._client().request(method, URL(base + target, encoded=True), data=body or None,
                                                    headers=headers_for(node_authorization), allow_redirects=False)
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError):
                if attempt == len(self.nodes) - 1:
                    raise
        raise AssertionError("unreachable")

    async def read(self, method: str, path: str, headers: Mapping[str, str], *, token: str | None = None
                   ) -> tuple[int, bytes]:
        """A whole answer to a read the service makes for a client (e.g. an index's _meta), with the credentials
        the client's own request would get: its Authorization (``headers``), or the service's by the same
        rules as a proxied request (``token``)."""
        given = client_authorization(headers)
        authorization = {"Authorization": given} if given is not None else {}
        status, _, chunks = await self.send(method, path, "", authorization, b"", token=token)
        return status, b"".join([chunk async for chunk in chunks])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
