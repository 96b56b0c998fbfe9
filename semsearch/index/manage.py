"""Index lifecycle against the cluster: create an index for an encoder, read and check its ``_meta``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError

from semsearch.engines.index_body import (
    META_KEY,
    build_index_body,
    index_meta,
    knn_meta,
    resolve_space_type,
)
from semsearch.errors import ClusterError, ConfigurationError, IndexMismatchError, IndexNotFoundError
from semsearch.version import __version__

log = logging.getLogger(__name__)
DEFAULT_TEXT_FIELDS = ("title", "text")
# Indexes semsearch creates keep long documents whole, as nested passages (semsearch.index.passages).
PASSAGES_FIELD = "passages"
# How long creating a replicated index waits for its copies to start before writes begin (seconds).
COPIES_TIMEOUT_S = 60


@dataclass(frozen=True)
class IndexInfo:
    """What semsearch knows about an index from its mapping."""

    name: str
    text_fields: list[str]
    vector_field: str
    fingerprint: dict
    dimension: int
    index: str = ""  # the concrete index behind ``name`` (``name`` itself unless it is an alias)
    meta: dict = field(default_factory=dict, compare=False)  # semsearch's whole ``_meta`` entry
    backend: str = "opensearch"  # whose vector field it is: OpenSearch's knn_vector or Elasticsearch's dense_vector
    id_field: str | None = None  # a keyword copy of the id (semsearch.engines.index_body.ID_FIELD), when mapped
    # Each text field's search analyzer as mapped, in text_fields' order (None: the standard one).
    text_analyzers: tuple[str | None, ...] = field(default=(), compare=False)
    # How many terms its documents hold on average over the text fields (None: not read, or unknown); the searchers
    # read it from the cluster's term statistics (semsearch.index.statistics).
    document_terms: float | None = field(default=None, compare=False)

    @property
    def passages_field(self) -> str | None:
        """The nested field holding long documents' passages, if this index has one."""
        return (self.meta.get("passages") or {}).get("field")

    @property
    def passage_overlap(self) -> int:
        from semsearch.index.passages import DEFAULT_OVERLAP  # noqa: PLC0415

        return int((self.meta.get("passages") or {}).get("overlap", DEFAULT_OVERLAP))


def replicas_for(data_nodes: int | None, setting: int | None) -> int | None:
    """Replicas of an index semsearch creates (pure): the setting when given; else 1 on a cluster of several
    data nodes, so that losing one loses no document and search keeps every shard; else None (the
    cluster's default; a single node could never place a replica)."""
    if setting is not None:
        return setting
    return 1 if data_nodes is not None and data_nodes > 1 else None


def copies_to_wait_for(replicas: int | None, data_nodes: int | None) -> int | None:
    """How many copies of each shard a new index waits for before it is written to (pure): every copy the
    cluster can place. A replica still recovering when the first writes arrive is not in sync, so a node
    lost in an ingest's first seconds would take the only copy of its shards with it (writes to them then
    fail until it returns). None (the primaries only, the engine's default) without replicas or when the
    data nodes are unknown."""
    if not replicas or not data_nodes:
        return None
    return 1 + min(replicas, data_nodes - 1)


def data_node_count(client: OpenSearch) -> int | None:
    """How many data nodes the cluster has, or None when the user may not ask (cluster health)."""
    try:
        return int(client.cluster.health().get("number_of_data_nodes", 1))
    except (TransportError, TypeError, ValueError):
        return None


def create_index(client: OpenSearch, name: str, *, fingerprint: dict, text_fields: list[str],
                 vector_field: str, engine: str, analyzer: str | None = None,
                 replicas: int | None = None, passage_overlap: int | None = None, backend: str = "opensearch",
                 **knobs) -> dict:
    """Create ``name`` with a ``knn_vector`` field sized for the encoder's fingerprint.

    ``knobs``: keyword arguments of :func:`~semsearch.engines.index_body.build_index_body` (space_type, m,
    ef_construction, ef_search, compact, passages, server_version, shards). With ``passages``,
    ``passage_overlap`` records how long documents are chunked into token windows (semsearch.index.passages).
    ``replicas``: None gives :func:`replicas_for` the cluster's data nodes.
    """
    from semsearch.index.passages import DEFAULT_OVERLAP, chunking_meta  # noqa: PLC0415

    data_nodes = data_node_count(client)
    if replicas is None:
        replicas = replicas_for(data_nodes, None)
    copies = copies_to_wait_for(replicas, data_nodes)
    knn = knn_meta(engine=engine, space_type=resolve_space_type(engine, fingerprint["normalize"],
                                                                knobs.get("space_type")),
                   m=knobs.get("m"), ef_construction=knobs.get("ef_construction"),
                   ef_search=knobs.get("ef_search"), compact=knobs.get("compact"))
    passages = None
    if knobs.get("passages"):
        passages = chunking_meta(knobs["passages"], window=fingerprint["max_seq_length"],
                                 overlap=DEFAULT_OVERLAP if passage_overlap is None else passage_overlap)
    if backend == "elasticsearch":
        from semsearch.engines.es_bodies import es_index_body, es_knn_meta  # noqa: PLC0415

        knn = es_knn_meta(m=knobs.get("m"), ef_construction=knobs.get("ef_construction"),
                          ef_search=knobs.get("ef_search"), compact=knobs.get("compact"))
        meta = index_meta(fingerprint, text_fields, vector_field, __version__, knn=knn, passages=passages)
        body = es_index_body(dimension=fingerprint["dimension"], text_fields=text_fields, vector_field=vector_field,
                             meta=meta, analyzer=_es_analyzer(client, analyzer), replicas=replicas,
                             **{k: v for k, v in knobs.items() if k in ("m", "ef_construction", "compact", "passages",
                                                                        "shards", "server_version")})
    else:
        meta = index_meta(fingerprint, text_fields, vector_field, __version__, knn=knn, passages=passages)
        body = build_index_body(dimension=fingerprint["dimension"], text_fields=text_fields,
                                vector_field=vector_field, engine=engine, normalized=fingerprint["normalize"],
                                meta=meta, analyzer=analyzer, replicas=replicas, **knobs)
    # The client waits longer than the cluster does, so that a slow start is answered, not cut off.
    wait = {"wait_for_active_shards": str(copies), "timeout": f"{COPIES_TIMEOUT_S}s",
            "request_timeout": COPIES_TIMEOUT_S + 30} if copies else {}
    try:
        answer = client.indices.create(index=name, body=body, **wait)
    except RequestError as exc:
        if exc.error == "resource_already_exists_exception":
            raise ConfigurationError(
                f"index {name!r} already exists; ingest into it, or delete it first to recreate it") from exc
        raise ClusterError(f"creating index {name!r} failed: {exc.info or exc}") from exc
    except TransportError as exc:
        raise ClusterError(f"creating index {name!r} failed: {exc}") from exc
    if copies and isinstance(answer, dict) and answer.get("shards_acknowledged") is False:
        log.warning("index %r: %d copies of each shard were not all started within %s; until they are, a node "
                    "lost may take documents written to it", name, copies, f"{COPIES_TIMEOUT_S}s")
    return body


def _es_analyzer(client, analyzer: str | None) -> str | dict | None:
    """The english analyzer where the node has analysis-common, else standard with English stopwords."""
    if analyzer != "english":
        return analyzer
    from semsearch.engines.capabilities import modules_from_nodes  # noqa: PLC0415
    from semsearch.engines.es_bodies import ENGLISH_FALLBACK  # noqa: PLC0415

    try:
        modules = modules_from_nodes(client.nodes.info(metric="plugins"))
    except TransportError:
        return analyzer  # cannot tell: ask for it, and let the cluster say if it lacks it
    return analyzer if "analysis-common" in modules else ENGLISH_FALLBACK


def get_index_info(client: OpenSearch, name: str) -> IndexInfo:
    """Read semsearch's ``_meta`` from the index mapping (follows an alias to its index)."""
    return index_info_from_mappings(name, read_mappings(client, name))


def read_mappings(client: OpenSearch, name: str) -> dict:
    """``GET NAME/_mapping``: each concrete index's mapping behind ``name``, with clear errors."""
    try:
        return client.indices.get_mapping(index=name)
    except NotFoundError as exc:
        raise missing_index_error(name) from exc
    except TransportError as exc:
        raise ClusterError(f"reading the mapping of {name!r} failed: {exc}") from exc


def missing_index_error(name: str) -> IndexNotFoundError:
    return IndexNotFoundError(f"index {name!r} does not exist (check the name: GET _cat/indices lists them); "
                              f"a new one is made by: semsearch index create {name}")


def index_info_from_mappings(name: str, mappings: dict) -> IndexInfo:
    """:class:`IndexInfo` from the answer of ``GET NAME/_mapping`` (pure; sync and async clients share it)."""
    if len(mappings) > 1:
        # An alias over several indexes: fine for queries only if they all hold the same encoder's vectors.
        metas = {concrete: (m["mappings"].get("_meta") or {}).get(META_KEY, {}).get("fingerprint")
                 for concrete, m in mappings.items()}
        if len({repr(fp) for fp in metas.values()}) > 1:
            raise IndexMismatchError(
                f"{name!r} is an alias over indexes built with different encoders ({', '.join(sorted(metas))}); "
                "point it at one index (semsearch migrate NAME --rollback, or the _aliases API)")
    if not mappings:  # a pattern that matches no index
        raise missing_index_error(name)
    concrete, entry = sorted(mappings.items())[-1]
    mapping = entry["mappings"]
    meta = (mapping.get("_meta") or {}).get(META_KEY)
    if not meta:
        raise ConfigurationError(
            f"index {name!r} has no semsearch vector field; add one, keeping the name, with: "
            f"semsearch index enable-vectors {name}")
    vector_field = meta["vector_field"]
    vector = mapping.get("properties", {}).get(vector_field, {})
    backend = "elasticsearch" if vector.get("type") == "dense_vector" else "opensearch"
    dimension = vector.get("dimension", vector.get("dims", 0))
    from semsearch.engines.index_body import ID_FIELD  # noqa: PLC0415

    id_field = ID_FIELD if mapping.get("properties", {}).get(ID_FIELD, {}).get("type") == "keyword" else None
    analyzers = tuple(search_analyzer(mapping, name) for name in meta["text_fields"])
    return IndexInfo(name=name, text_fields=list(meta["text_fields"]), vector_field=vector_field,
                     fingerprint=dict(meta["fingerprint"]), dimension=int(dimension), index=concrete,
                     meta=dict(meta), backend=backend, id_field=id_field, text_analyzers=analyzers)


def search_analyzer(mapping: dict, field_path: str) -> str | None:
    """The analyzer a query of ``field_path`` (dotted for object fields) goes through, as mapped; None when the
    mapping names none (the standard analyzer) or has no such field (pure)."""
    node: dict = mapping
    for part in field_path.split("."):
        node = (node.get("properties") or {}).get(part) or {}
    return node.get("search_analyzer") or node.get("analyzer")


def ensure_id_field(client: OpenSearch, info: IndexInfo) -> IndexInfo:
    """Map the id keyword on an index made by an older semsearch, before writes carry it: a strict mapping
    would refuse them, and a dynamic one would map it as text for good (no doc-values ids for hybrid)."""
    from semsearch.engines.index_body import ID_FIELD  # noqa: PLC0415

    if info.id_field:
        return info
    try:
        client.indices.put_mapping(index=info.name, body={"properties": {ID_FIELD: {"type": "keyword"}}})
    except TransportError as exc:  # mapped otherwise already: hybrid reads stored ids instead, as before
        log.warning("index %r: cannot map %s as a keyword (%s); hybrid search reads stored ids",
                    info.name, ID_FIELD, getattr(exc, "error", exc))
        return info
    return replace(info, id_field=ID_FIELD)


def check_fingerprint(info: IndexInfo, fingerprint: dict) -> None:
    """Refuse to mix vectors of two models in one index."""
    expected = info.fingerprint
    model = str(expected.get("model"))
    # A model folder is recorded by its name only: where it lies is the user's to say.
    setting = f"SEMSEARCH_MODEL={model}" if "/" in model else f"SEMSEARCH_MODEL=<the path of its folder {model!r}>"
    way_out = (f"Use the index's model ({setting}), or move the index to this "
               f"model with 'semsearch migrate {info.name} --model MODEL' (blue/green; the old index is kept)")
    if expected.get("dimension") != fingerprint.get("dimension"):
        raise IndexMismatchError(
            f"dimension mismatch on index {info.name!r}: expected {expected.get('dimension')}-d vectors "
            f"(model {expected.get('model')!r}), given {fingerprint.get('dimension')}-d vectors "
            f"(model {fingerprint.get('model')!r}). {way_out}")
    # The model's name is informative only: a copied folder with the same weights is the same encoder.
    keys = ("weights", "pooling", "normalize", "max_seq_length")
    differs = [k for k in keys if expected.get(k) != fingerprint.get(k)]
    if differs:
        def describe(fp: dict) -> str:
            return ", ".join(f"{k}={fp.get(k)!r}" for k in ("model", *differs))

        raise IndexMismatchError(
            f"index {info.name!r} was built with a different encoder ({describe(expected)}) than this one "
            f"({describe(fingerprint)}); its vectors are not comparable. {way_out}")


def make_searchable(client: OpenSearch, name: str) -> None:
    """Refresh ``name`` so that what was just written is searched, and counted in its term statistics, at once. A shard
    nothing searched for 30 s skips its periodic refreshes until a search comes (search idle), and reads that are not
    searches (``_termvectors``' field statistics: ``IndexInfo.document_terms``) wait for none."""
    client.indices.refresh(index=name)


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
                         analyzer=settings.text_analyzer, passages=PASSAGES_FIELD, backend=settings.backend,
                         replicas=settings.index_replicas)
            created = True
        except ConfigurationError:
            pass  # created meanwhile by a concurrent caller: use it
    info = get_index_info(client, name)
    check_fingerprint(info, fingerprint)
    if not created and text_fields and set(text_fields) != set(info.text_fields):
        # The index searches its own text fields: vectors of others would find what keyword search never can.
        raise ConfigurationError(
            f"index {name!r} searches the text fields {', '.join(info.text_fields)}; documents encoded from "
            f"{', '.join(text_fields)} would not be searched by keyword there. Give its fields (or no --text-field: "
            "they are the default), or ingest into a new index")
    return ensure_id_field(client, info), created
