"""The OpenSearch client, built from Settings (the one place that opens connections), and the one
place that explains why a connection failed (authentication, TLS, reachability).

Transport security:

- ``https://`` URLs verify the server's certificate by default: against ``SEMSEARCH_CA_CERTS`` when
  set, else the system's (or certifi's) CAs. ``SEMSEARCH_VERIFY_CERTS=false`` turns verification off
  and logs a warning: the connection is still encrypted, but anyone in the middle can read it.
- ``SEMSEARCH_CLIENT_CERT`` (and ``SEMSEARCH_CLIENT_KEY``) present a client certificate (mutual TLS).
- ``SEMSEARCH_OPENSEARCH_USER`` + ``SEMSEARCH_OPENSEARCH_PASSWORD`` send HTTP basic auth;
  ``SEMSEARCH_API_KEY`` sends ``Authorization: ApiKey <key>``. Secrets stay in ``SecretStr`` until
  the connection is made and appear in no message: see :func:`scrub`.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import warnings
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, ImproperlyConfigured, OpenSearchException, TransportError
from opensearchpy.exceptions import SSLError as OSSSLError

from semsearch.errors import (
    AuthenticationError,
    CertificateVerificationError,
    ClientCertificateError,
    ClusterError,
    ClusterUnreachableError,
    ConfigurationError,
    SchemeMismatchError,
    SemsearchError,
    TLSError,
)
from semsearch.settings import Settings, split_urls

log = logging.getLogger(__name__)
_warned: set[tuple[str, str]] = set()


def _warn_once(key: str, url: str, message: str) -> None:
    if (key, url) not in _warned:
        _warned.add((key, url))
        log.warning("%s", message)


def _existing_file(path: str, setting: str) -> str:
    if not Path(path).is_file():
        raise ConfigurationError(f"{setting}={path!r}: no such file")
    return path


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context for an https:// cluster: verification on unless switched off, our CA, our cert."""
    ca_file = _existing_file(settings.ca_certs, "SEMSEARCH_CA_CERTS") if settings.ca_certs else None
    if ca_file is None:
        try:
            import certifi  # noqa: PLC0415 - opensearch-py's own default, where installed

            ca_file = certifi.where()
        except ImportError:
            ca_file = None  # the system's store
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(f"SEMSEARCH_CA_CERTS={settings.ca_certs!r} is not a PEM file of CA "
                                 f"certificates: {exc}") from exc
    if not settings.verify_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings.client_key and not settings.client_cert:
        raise ConfigurationError("SEMSEARCH_CLIENT_KEY is set but SEMSEARCH_CLIENT_CERT is not")
    if settings.client_cert:
        cert = _existing_file(settings.client_cert, "SEMSEARCH_CLIENT_CERT")
        key = _existing_file(settings.client_key, "SEMSEARCH_CLIENT_KEY") if settings.client_key else None
        try:
            context.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigurationError(f"cannot load the client certificate SEMSEARCH_CLIENT_CERT={cert!r}"
                                     + (f" with SEMSEARCH_CLIENT_KEY={key!r}" if key else "")
                                     + f": {exc} (a PEM certificate and its unencrypted private key)") from exc
    return context


def connection_kwargs(settings: Settings) -> dict:
    """Keyword arguments for opensearch-py's clients (sync and async share them)."""
    urls = settings.opensearch_urls
    url = urls[0]  # all share one scheme (Settings checks): what holds for it holds for the rest
    shown = redact_url(settings.opensearch_url)
    kwargs: dict = {
        "hosts": urls,
        "timeout": settings.request_timeout,
        "http_compress": False,
        "max_retries": 3,
        "retry_on_timeout": True,
    }
    if settings.api_key is not None and settings.opensearch_user is not None:
        raise ConfigurationError("set either SEMSEARCH_API_KEY or SEMSEARCH_OPENSEARCH_USER and "
                                 "SEMSEARCH_OPENSEARCH_PASSWORD, not both")
    if settings.opensearch_password is not None and settings.opensearch_user is None:
        raise ConfigurationError("SEMSEARCH_OPENSEARCH_PASSWORD is set but SEMSEARCH_OPENSEARCH_USER is not")
    if settings.opensearch_user is not None:
        password = settings.opensearch_password.get_secret_value() if settings.opensearch_password else ""
        kwargs["http_auth"] = (settings.opensearch_user, password)
    if settings.api_key is not None:
        kwargs["headers"] = {"Authorization": f"ApiKey {settings.api_key.get_secret_value()}"}
    if url.startswith("https://"):
        kwargs["ssl_context"] = ssl_context(settings)
        if not settings.verify_certs:
            _warn_once("verify", url, f"TLS certificate verification is off (SEMSEARCH_VERIFY_CERTS=false): the "
                       f"connection to {shown} is encrypted, but the server is not authenticated")
            from urllib3.exceptions import InsecureRequestWarning  # noqa: PLC0415

            warnings.filterwarnings("ignore", category=InsecureRequestWarning)  # said once, above
    else:
        tls_only = [name for name, value in (("SEMSEARCH_CA_CERTS", settings.ca_certs),
                                             ("SEMSEARCH_CLIENT_CERT", settings.client_cert),
                                             ("SEMSEARCH_CLIENT_KEY", settings.client_key)) if value]
        if tls_only:
            _warn_once("tls-ignored", url, f"{', '.join(tls_only)} ignored: {shown} is plain http://")
        if settings.opensearch_user is not None or settings.api_key is not None or any(
                urlsplit(one).password for one in urls):
            _warn_once("cleartext", url, f"credentials go to {shown} unencrypted (plain http://); use https://")
    return kwargs


# Enough pooled connections for the pipelined writers and msearch callers of one process; with
# urllib3's default of 1 a second thread's connection is opened and thrown away on every request.
POOL_SIZE = 8


def make_client(settings: Settings | None = None) -> OpenSearch:
    """The cluster's client; for SEMSEARCH_BACKEND=elasticsearch, elasticsearch-py behind the same calls."""
    settings = settings or Settings()
    if settings.backend == "elasticsearch":
        from semsearch.engines.elasticsearch import make_elasticsearch_client  # noqa: PLC0415

        return make_elasticsearch_client({**connection_kwargs(settings), "connections_per_node": POOL_SIZE})
    return OpenSearch(**connection_kwargs(settings), pool_maxsize=POOL_SIZE)


def make_async_client(settings: Settings | None = None):
    """opensearch-py's AsyncOpenSearch (aiohttp) with the same connection settings as :func:`make_client`."""
    from opensearchpy import AsyncOpenSearch  # noqa: PLC0415 - aiohttp is imported only when asked for

    settings = settings or Settings()
    if settings.backend == "elasticsearch":
        from semsearch.engines.elasticsearch import make_elasticsearch_client  # noqa: PLC0415

        return make_elasticsearch_client(connection_kwargs(settings), asynchronous=True)
    return AsyncOpenSearch(**connection_kwargs(settings))


# --- messages without secrets -----------------------------------------------------------------

_URL_CREDENTIALS = re.compile(r"(?P<user>[A-Za-z0-9._~%!$&'()*+,;=-]+):(?P<password>[^@\s/'\"]+)@(?=[\w\[.-])")


def redact_url(url: str) -> str:
    """A URL (or a comma-separated list of http(s) URLs) fit to print: any password in it replaced by ***."""
    if len(urls := split_urls(url)) > 1:
        return ",".join(redact_url(one) for one in urls)
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return redact_credentials(url)


def redact_credentials(text: str) -> str:
    """Text with the password of every ``user:password@host`` in it replaced by ***."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group('user')}:***@", text)


def secret_values(settings: Settings | None) -> list[str]:
    """The secrets of ``settings``: the password, the API key, a password in a URL."""
    if settings is None:
        return []
    values = [s.get_secret_value() for s in (settings.opensearch_password, settings.api_key) if s is not None]
    for url in (*settings.opensearch_urls, settings.broker_url):
        try:
            password = urlsplit(url).password if url else None
        except ValueError:
            password = None
        if password:
            values.extend((password, unquote(password)))  # as written, and as sent (the proxy decodes it)
    return [v for v in values if len(v) >= 4]  # a shorter "secret" would blank out ordinary words


def scrub(text: str, settings: Settings | None = None) -> str:
    """``text`` with every secret of ``settings``, and any URL password, replaced by ***."""
    for value in sorted(secret_values(settings), key=len, reverse=True):
        text = text.replace(value, "***")
    return redact_credentials(text)


# --- explaining transport failures ------------------------------------------------------------

def _transport_cause(exc: BaseException) -> BaseException | None:
    """The opensearch-py exception in ``exc``'s chain (itself, its cause, its context), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (OpenSearchException, ImproperlyConfigured)):
            return current
        current = current.__cause__ or current.__context__
    return None


def _inner_exceptions(exc: BaseException) -> list[BaseException]:
    """Every exception reachable from ``exc`` through args, reason, cause and context."""
    found: list[BaseException] = []
    pending: list[object] = [exc]
    while pending and len(found) < 50:
        item = pending.pop()
        if not isinstance(item, BaseException) or any(item is f for f in found):
            continue
        found.append(item)
        pending.extend(a for a in getattr(item, "args", ()) if isinstance(a, BaseException))
        pending.extend(x for x in (getattr(item, "reason", None), getattr(item, "info", None),
                                   item.__cause__, item.__context__) if isinstance(x, BaseException))
    return found


def _verify_detail(exc: BaseException) -> str:
    for inner in _inner_exceptions(exc):
        if isinstance(inner, ssl.SSLCertVerificationError) and inner.verify_message:
            return inner.verify_message
    match = re.search(r"certificate verify failed: ([^()\]\n]+)", str(exc))
    return match.group(1).strip(" ,.'\"") if match else "the server's certificate is not trusted"


def _speaks_tls(url: str, timeout: float = 3.0) -> bool:
    """Whether the server at ``url`` completes a TLS handshake (no verification: only the protocol)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "localhost", parts.port or 80
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return True
    except (OSError, ValueError):
        return False


def _body_of_root(settings: Settings) -> str:
    """The error text of ``GET /`` on the cluster (lower case), or "" when it succeeds or says nothing."""
    try:
        make_client(settings).transport.perform_request("GET", "/")
    except TransportError as exc:
        return f"{exc.error} {exc.info}".lower()
    except Exception:  # noqa: BLE001 - only a hint for an error message
        return ""
    return ""


def settings_has_cert(settings: Settings | None) -> bool:
    return settings is not None and settings.client_cert is not None


def _who(settings: Settings | None) -> str:
    if settings is None:
        return "the credentials"
    if settings.api_key is not None:
        return "the API key (SEMSEARCH_API_KEY)"
    if settings.opensearch_user is not None:
        return f"user {settings.opensearch_user!r} (check SEMSEARCH_OPENSEARCH_PASSWORD)"
    return None  # type: ignore[return-value]


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"


def explain_transport_error(exc: BaseException, settings: Settings | None = None) -> SemsearchError | None:
    """A semsearch error naming the cause of an opensearch-py failure in ``exc``'s chain, or None.

    Recognises authentication (401, and 403 from the security layer), TLS certificate
    verification, client certificates, http:// to a TLS port and https:// to a plain one,
    refused and timed-out connections. Anything else (a mapping error, a missing index…) gives
    None: the caller's own message says it best. Messages carry no secret.
    """
    cause = _transport_cause(exc)
    if cause is None:
        return None
    urls = settings.opensearch_urls if settings else []
    url = urls[0] if urls else ""
    shown = redact_url(",".join(urls)) if urls else "the cluster"
    inner = _inner_exceptions(cause)
    text = " ".join(str(e) for e in inner).lower()
    if isinstance(cause, ImproperlyConfigured):
        return ConfigurationError(f"the OpenSearch client is misconfigured: {_short(cause)}")
    if isinstance(cause, OSSSLError) or any(isinstance(e, ssl.SSLError) for e in inner):
        if "certificate_verify_failed" in text or "certificate verify failed" in text:
            return CertificateVerificationError(
                f"TLS certificate verification failed: {_verify_detail(cause)} ({shown}); set SEMSEARCH_CA_CERTS "
                "to the CA that signed the server's certificate (SEMSEARCH_VERIFY_CERTS=false skips the check, "
                "insecure)")
        if any(s in text for s in ("wrong_version_number", "wrong version number", "record layer failure",
                                   "packet length too long", "unknown protocol")):
            return SchemeMismatchError(f"the server at {shown} does not speak TLS: use http://")
        if any(s in text for s in ("certificate required", "bad certificate", "unknown ca", "certificate unknown")):
            return ClientCertificateError(
                f"the server at {shown} refused the TLS handshake: it wants a client certificate it trusts; "
                "set SEMSEARCH_CLIENT_CERT and SEMSEARCH_CLIENT_KEY")
        hint = (" (a server that requires a client certificate may answer so: SEMSEARCH_CLIENT_CERT)"
                if "handshake failure" in text and not settings_has_cert(settings) else "")
        return TLSError(f"TLS with {shown} failed: {_short(scrub(str(cause), settings))}{hint}")
    if isinstance(cause, ConnectionTimeout):
        timeout = f" within {settings.request_timeout:g}s" if settings else ""
        return ClusterUnreachableError(f"OpenSearch at {shown} did not answer{timeout} (SEMSEARCH_REQUEST_TIMEOUT)")
    if isinstance(cause, OSConnectionError):
        if url.startswith("http://") and "refused" not in text and _speaks_tls(url):
            return SchemeMismatchError(f"the server at {shown} speaks TLS: use https://")
        if "refused" in text:
            why = "connection refused (is it running? check SEMSEARCH_OPENSEARCH_URL)"
        elif any(s in text for s in ("name or service not known", "nodename nor servname", "getaddrinfo",
                                     "name resolution")):
            why = "unknown host (check SEMSEARCH_OPENSEARCH_URL)"
        else:
            why = _short(scrub(str(cause), settings))
        return ClusterUnreachableError(f"cannot reach OpenSearch at {shown}: {why}")
    if isinstance(cause, TransportError):
        status = cause.status_code
        if status == 400 and not isinstance(cause.info, dict) and settings is not None:
            text += " " + _body_of_root(settings)  # a HEAD request's answer has no body to read the cause from
        if status == 400 and "plain http request was sent to https port" in text:
            return SchemeMismatchError(f"the server at {shown} speaks TLS: use https://")
        if status == 400 and "no required ssl certificate was sent" in text:
            return ClientCertificateError(f"the server at {shown} requires a client certificate: set "
                                          "SEMSEARCH_CLIENT_CERT (and SEMSEARCH_CLIENT_KEY)")
        if status == 400 and "ssl certificate error" in text:
            return ClientCertificateError(f"the server at {shown} refused the client certificate "
                                          "(SEMSEARCH_CLIENT_CERT): it is not signed by a CA the server trusts")
        if status == 401:
            who = _who(settings)
            if who is None:
                return AuthenticationError(
                    f"authentication failed (401): {shown} requires credentials; set SEMSEARCH_OPENSEARCH_USER "
                    "and SEMSEARCH_OPENSEARCH_PASSWORD, or SEMSEARCH_API_KEY")
            return AuthenticationError(f"authentication failed (401): {shown} refused {who}")
        if status == 403 and "security_exception" in text:
            error = cause.info.get("error") if isinstance(cause.info, dict) else None
            # The engines answer {"error": {"reason": …}}; a proxy in front of one may answer {"error": "…"}.
            reason = error.get("reason") if isinstance(error, dict) else error
            return AuthenticationError(f"permission denied (403) at {shown}: "
                                       f"{_short(scrub(str(reason or cause.error), settings))}")
    return None


def describe_error(exc: BaseException, settings: Settings | None = None) -> str:
    """One line for the user: the explained cause when there is one, else the error; never a secret."""
    explained = explain_transport_error(exc, settings)
    if explained is not None:
        message = str(explained)
    elif isinstance(exc, (OpenSearchException, ImproperlyConfigured)):
        message = f"OpenSearch request failed: {_short(str(exc), 500)}"
    else:
        message = str(exc)
    return scrub(" ".join(message.splitlines()), settings)


def cluster_error(exc: BaseException, doing: str, settings: Settings | None = None) -> SemsearchError:
    """The error to raise for ``exc`` (an opensearch-py failure) while ``doing`` something:
    the explained cause when recognised, else ``ClusterError("<doing> failed: …")``."""
    explained = explain_transport_error(exc, settings)
    if explained is not None:
        return explained
    return ClusterError(scrub(f"{doing} failed: {exc}", settings))
