"""The OpenSearch client, built from Settings (the one place that opens connections)."""

from __future__ import annotations

from opensearchpy import OpenSearch

from .config import Settings


def connection_kwargs(settings: Settings) -> dict:
    """Keyword arguments for opensearch-py's clients (sync and async share them)."""
    kwargs: dict = {
        "hosts": [settings.opensearch_url],
        "timeout": settings.request_timeout,
        "http_compress": False,
        "max_retries": 3,
        "retry_on_timeout": True,
    }
    if settings.opensearch_user is not None:
        password = settings.opensearch_password.get_secret_value() if settings.opensearch_password else ""
        kwargs["http_auth"] = (settings.opensearch_user, password)
    if settings.opensearch_url.startswith("https://"):
        kwargs["verify_certs"] = True
    return kwargs


def make_client(settings: Settings | None = None) -> OpenSearch:
    return OpenSearch(**connection_kwargs(settings or Settings()))
