"""Settings read from the environment (prefix ``SEMSEARCH_``) or passed explicitly.

The bottom layer with :mod:`semsearch.errors`: it imports no other semsearch module, and the stages
are handed a ``Settings`` (or the values they need) rather than reading the environment themselves.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

KnnEngine = Literal["lucene", "faiss"]
Backend = Literal["opensearch", "elasticsearch"]
Precision = Literal["auto", "fp32", "fp16", "bf16"]
BulkFormat = Literal["smile", "json"]
# When ingest writes: semsearch.writing.write_schedule decides "auto".
WriteSchedule = Literal["auto", "while_encoding", "after_encoding"]
# A search answer some shards did not take part in: "flag" marks its hits partial, "fail" raises.
PartialResults = Literal["flag", "fail"]

# The encoder reads the first few hundred tokens of a document (a few KB of text); 1 MiB leaves
# ample room for other fields while keeping bulk requests, worker messages and memory bounded.
DEFAULT_MAX_DOCUMENT_BYTES = 1 << 20
# OpenSearch refuses objects nested deeper than 20 (index.mapping.depth.limit); arrays count here too.
DEFAULT_MAX_DEPTH = 20


def split_urls(value: str) -> list[str]:
    """The node URLs of a comma-separated list, without blanks or trailing slashes (pure). Only a comma before
    ``http://`` or ``https://`` separates two URLs, so one in a password does not."""
    pieces = (piece.strip(" ,") for piece in re.split(r",\s*(?=https?://)", value))
    return [piece.rstrip("/") for piece in pieces if piece]


class Settings(BaseSettings):
    """Everything semsearch needs to reach the cluster, the broker and the model.

    Every field can be set as ``SEMSEARCH_<NAME>`` in the environment, e.g.
    ``SEMSEARCH_OPENSEARCH_URL=http://localhost:9200``.
    """

    model_config = SettingsConfigDict(env_prefix="SEMSEARCH_", extra="ignore")

    # The cluster: OpenSearch with the k-NN plugin, or Elasticsearch 8/9 (SEMSEARCH_BACKEND=elasticsearch,
    # with the extra semsearch[elasticsearch]); SEMSEARCH_OPENSEARCH_URL is its URL either way.
    backend: Backend = "opensearch"
    # One URL, or several nodes of the cluster comma-separated ("http://a:9200,http://b:9200"): requests go
    # round-robin, and one that cannot connect is sent again to another node (no sniffing).
    opensearch_url: str = "http://localhost:9200"
    opensearch_user: str | None = None
    # Secret: never printed by repr(), logs or error messages.
    opensearch_password: SecretStr | None = None
    request_timeout: float = Field(default=60.0, gt=0)
    # A search answer that some shards did not take part in (a node down, a shard failed): "flag" gives
    # its hits with partial=True (and the CLI says so); "fail" raises ClusterError instead.
    partial_results: PartialResults = "flag"
    # Replicas of the indexes semsearch creates; unset: 1 when the cluster has more than one data node,
    # else the cluster's default.
    index_replicas: int | None = Field(default=None, ge=0)
    # Secret, sent as "Authorization: ApiKey <key>"; instead of (not with) user and password.
    api_key: SecretStr | None = None

    # TLS (https:// URLs): the server's certificate is verified unless verify_certs is false
    # (SEMSEARCH_VERIFY_CERTS=false: encrypted but unauthenticated; a warning is logged).
    verify_certs: bool = True
    ca_certs: str | None = None  # PEM file of the CA(s) that signed the cluster's certificate
    client_cert: str | None = None  # PEM certificate (or certificate + key) for mutual TLS
    client_key: str | None = None  # PEM private key of client_cert, when in a separate file

    # Unset: ingest runs in-process. Set (redis://…): ingest goes through the Celery workers.
    broker_url: str | None = None

    # Through the queue, a batch with no result after this long is sent again (ids make that safe).
    task_resend_after: float = Field(default=360.0, gt=0)

    # A local sentence-transformers folder or a model id; unset: all-MiniLM-L6-v2 shipped offline.
    model: str | None = None
    device: str | None = None  # "cuda", "cuda:1", "cpu"; unset: cuda when available, else cpu
    token_budget: int | None = Field(default=None, gt=0)  # padded tokens per encoder batch; unset: per device
    # auto: fp16 on a GPU, bf16 on CPUs with AMX or AVX512-BF16, fp32 elsewhere; fp32 for vectors exactly
    # as sentence-transformers computes them (half precision: cosine to those ≥ 0.999).
    precision: Precision = "auto"
    # A file (SQLite) of vectors already computed, by model, precision and exact tokens: an input found
    # there skips the model (re-ingesting a corpus elsewhere, re-running after a crash). Unset: off.
    vector_cache: str | None = None

    vector_field: str = "embedding"
    # faiss needs the plugin's native libraries, which Maven Central's k-NN zip does not carry;
    # lucene is pure Java and works on every OpenSearch 2.x/3.x node with the k-NN plugin.
    knn_engine: KnnEngine = "lucene"

    # Analyzer of text fields in indexes semsearch creates. The default model is English, and
    # stemming + stopwords lift BM25 (nDCG@10 0.36 → 0.41 on dbpedia-entity); "standard" for others.
    text_analyzer: str = "english"

    bulk_max_docs: int = Field(default=500, gt=0)
    bulk_max_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    # smile: vectors as raw float32 in Smile bulk bodies (both engines take them; a server or proxy
    # that refuses gets JSON from then on); json: always decimal text.
    bulk_format: BulkFormat = "smile"
    # When ingest writes (semsearch.writing.write_schedule): auto writes each part while the next encodes,
    # except for a CPU encoder with the cluster on this machine (then after each batch, the
    # cluster indexing on every core); while_encoding / after_encoding force one or the other.
    write_schedule: WriteSchedule = "auto"

    # Input limits (see semsearch.writing.documents): a larger or deeper document is dead-lettered.
    max_document_bytes: int = Field(default=DEFAULT_MAX_DOCUMENT_BYTES, gt=0)
    max_document_depth: int = Field(default=DEFAULT_MAX_DEPTH, gt=0)

    @field_validator("opensearch_url")
    @classmethod
    def _urls_have_one_scheme(cls, value: str) -> str:
        urls = split_urls(value)
        if not urls:
            raise ValueError("opensearch_url is empty")
        for position, url in enumerate(urls, start=1):
            if not url.startswith(("http://", "https://")):
                # Not the URL itself: it may hold a password.
                where = f"the URL number {position} of {len(urls)}" if len(urls) > 1 else "it"
                raise ValueError(f"opensearch_url must start with http:// or https:// ({where} does not)")
            if "," in url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]:
                raise ValueError("opensearch_url: separate node URLs with commas, each with its http:// or https://")
        if len({url.split("://", 1)[0] for url in urls}) > 1:
            raise ValueError("opensearch_url: the nodes must all be http:// or all https://")
        return ",".join(urls)

    @property
    def opensearch_urls(self) -> list[str]:
        """Every node URL of SEMSEARCH_OPENSEARCH_URL, in order."""
        return split_urls(self.opensearch_url)
