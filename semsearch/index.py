"""Index lifecycle against the cluster: create an index for an encoder, read and check its ``_meta``."""

from __future__ import annotations

from dataclasses import dataclass

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError

from .errors import ClusterError, ConfigurationError, IndexMismatchError
from .index_body import META_KEY, build_index_body, index_meta

DEFAULT_TEXT_FIELDS = ("title", "text")


@dataclass(frozen=True)
class IndexInfo:
    """What semsearch knows about an index from its mapping."""

    name: str
    text_fields: list[str]
    vector_field: str
    fingerprint: dict
    dimension: int


def create_index(client: OpenSearch, name: str, *, fingerprint: dict, text_fields: list[str],
                 vector_field: str, engine: str, analyzer: str | None = None,
                 replicas: int | None = None) -> dict:
    """Create ``name`` with a ``knn_vector`` field sized for the encoder's fingerprint."""
    from . import __version__  # noqa: PLC0415 - avoid an import cycle at module load

    meta = index_meta(fingerprint, text_fields, vector_field, __version__)
    body = build_index_body(dimension=fingerprint["dimension"], text_fields=text_fields,
                            vector_field=vector_field, engine=engine, normalized=fingerprint["normalize"],
                            meta=meta, analyzer=analyzer, replicas=replicas)
    try:
        client.indices.create(index=name, body=body)
    except RequestError as exc:
        if exc.error == "resource_already_exists_exception":
            raise ConfigurationError(
                f"index {name!r} already exists; ingest into it, or delete it first to recreate it") from exc
        raise ClusterError(f"creating index {name!r} failed: {exc.info or exc}") from exc
    except TransportError as exc:
        raise ClusterError(f"creating index {name!r} failed: {exc}") from exc
    return body


def get_index_info(client: OpenSearch, name: str) -> IndexInfo:
    """Read semsearch's ``_meta`` from the index mapping (follows an alias to its index)."""
    try:
        mappings = client.indices.get_mapping(index=name)
    except NotFoundError as exc:
        raise ConfigurationError(
            f"index {name!r} does not exist; create it with: semsearch index create {name}") from exc
    except TransportError as exc:
        raise ClusterError(f"reading the mapping of {name!r} failed: {exc}") from exc
    mapping = next(iter(mappings.values()))["mappings"]
    meta = (mapping.get("_meta") or {}).get(META_KEY)
    if not meta:
        raise ConfigurationError(
            f"index {name!r} has no semsearch vector field; create one with: semsearch index create NEW_INDEX")
    vector_field = meta["vector_field"]
    dimension = mapping.get("properties", {}).get(vector_field, {}).get("dimension", 0)
    return IndexInfo(name=name, text_fields=list(meta["text_fields"]), vector_field=vector_field,
                     fingerprint=dict(meta["fingerprint"]), dimension=int(dimension))


def check_fingerprint(info: IndexInfo, fingerprint: dict) -> None:
    """Refuse to mix vectors of two models in one index."""
    expected = info.fingerprint
    if expected.get("dimension") != fingerprint.get("dimension"):
        raise IndexMismatchError(
            f"index {info.name!r} holds {expected.get('dimension')}-d vectors of {expected.get('model')!r}; "
            f"the encoder gives {fingerprint.get('dimension')}-d vectors of {fingerprint.get('model')!r}. "
            f"Use the index's model (SEMSEARCH_MODEL), or create a new index for this model with "
            f"'semsearch index create NEW_INDEX'")
    # The model's name is informative only: a copied folder with the same weights is the same encoder.
    keys = ("weights", "pooling", "normalize", "max_seq_length")
    differs = [k for k in keys if expected.get(k) != fingerprint.get(k)]
    if differs:
        def describe(fp: dict) -> str:
            return ", ".join(f"{k}={fp.get(k)!r}" for k in ("model", *differs))

        raise IndexMismatchError(
            f"index {info.name!r} was built with a different encoder ({describe(expected)}) than this one "
            f"({describe(fingerprint)}); its vectors are not comparable. Use the index's model "
            f"(SEMSEARCH_MODEL), or create a new index for this model with 'semsearch index create NEW_INDEX'")


def ensure_index(client: OpenSearch, name: str, *, fingerprint: dict, settings, text_fields: list[str] | None = None
                 ) -> tuple[IndexInfo, bool]:
    """The index's info, creating the index first when it does not exist; refuses another encoder's index.

    Returns ``(info, created)``.
    """
    created = False
    if not client.indices.exists(index=name):
        try:
            create_index(client, name, fingerprint=fingerprint, text_fields=list(text_fields or DEFAULT_TEXT_FIELDS),
                         vector_field=settings.vector_field, engine=settings.knn_engine,
                         analyzer=settings.text_analyzer)
            created = True
        except ConfigurationError:
            pass  # created meanwhile by a concurrent caller: use it
    info = get_index_info(client, name)
    check_fingerprint(info, fingerprint)
    return info, created
