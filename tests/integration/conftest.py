"""Integration tests run against the real services started by scripts/services.sh.

They fail, never skip, when a service is missing: a skipped integration test proves nothing.
"""

import json
import os
import subprocess
import sys
import uuid

import pytest
import redis

from semsearch import Settings
from semsearch.engines.opensearch import make_client

pytestmark = pytest.mark.integration

# The Elasticsearch node of scripts/services.sh up --engine elasticsearch (issue 8).
ES_URL = os.environ.get("SEMSEARCH_TEST_ES_URL", "http://127.0.0.1:9201")
ES_ENV = {"SEMSEARCH_BACKEND": "elasticsearch", "SEMSEARCH_OPENSEARCH_URL": ES_URL}


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session", autouse=True)
def services(settings):
    client = make_client(settings)
    try:
        plugins = client.cat.plugins(format="json")
    except Exception as exc:  # noqa: BLE001 - any failure means the node is not usable
        pytest.fail(f"OpenSearch not reachable at {settings.opensearch_url} ({exc}); run scripts/services.sh up",
                    pytrace=False)
    assert any(p["component"] == "opensearch-knn" for p in plugins), "the k-NN plugin is not installed"
    broker = os.environ.get("SEMSEARCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(broker).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis not reachable at {broker} ({exc}); run scripts/services.sh up", pytrace=False)
    return client


@pytest.fixture(scope="session")
def encoder():
    """The default model on the CPU, loaded once for every test that encodes in the test process."""
    from semsearch import Encoder  # noqa: PLC0415

    return Encoder(device="cpu")


@pytest.fixture(scope="session")
def es_settings() -> Settings:
    return Settings(backend="elasticsearch", opensearch_url=ES_URL)


@pytest.fixture(scope="session")
def es(es_settings):
    """A client of the Elasticsearch node; fails (never skips) when it is not running."""
    client = make_client(es_settings)
    try:
        version = client.info()["version"]
    except Exception as exc:  # noqa: BLE001 - any failure means the node is not usable
        pytest.fail(f"Elasticsearch not reachable at {ES_URL} ({exc}); run scripts/services.sh up --engine "
                    "elasticsearch", pytrace=False)
    assert version.get("distribution") in (None, "elasticsearch"), version
    return client


@pytest.fixture()
def client(services):
    return services


@pytest.fixture()
def index_name(client):
    """A unique index per test, deleted afterwards (never a wildcard delete)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


def versioned_names(client, prefix: str = "test_"):
    """Yields a maker of unique index names, then deletes each name made, its versions (NAME-v1…) and what
    an alias of that name points at: by name, never by wildcard. For ``yield from`` in a fixture."""
    made: list[str] = []

    def make() -> str:
        made.append(f"{prefix}{uuid.uuid4().hex[:12]}")
        return made[-1]

    yield make
    for base in made:
        if client.indices.exists_alias(name=base):
            for concrete in client.indices.get_alias(name=base):
                client.indices.delete(index=concrete, ignore_unavailable=True)
        for index in (base, *(f"{base}-v{version}" for version in range(1, 5))):
            client.indices.delete(index=index, ignore_unavailable=True)


def run_cli(*args: str, input: str | None = None, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """The real command line in a subprocess, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "semsearch.cli", *args], capture_output=True, text=True,
                          input=input, env={**os.environ, **(env or {})}, cwd=cwd, timeout=1800)


def last_json_line(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])
