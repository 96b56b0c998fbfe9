"""What the cluster can do: server version and distribution, plugins, k-NN engines and mapping features.

The tables here are pure data and the functions that read them are pure; :func:`detect` is the one
place that asks the cluster (``GET /``, ``_cat/plugins`` and, where allowed, ``_nodes/plugins``).

Why the default engine is not chosen from what is detected: the k-NN plugin's faiss (and nmslib)
engines are native (JNI) libraries that ship inside the official distribution and docker image but
not inside the plugin zip on Maven Central. Nothing on the REST surface says whether they are
present: ``_cat/plugins`` lists the plugin either way, and the k-NN stats report ``faiss_initialized``
only after a faiss index has been used. The only probe is to create a faiss index, and on a node
without the libraries that takes the whole node down (the JVM dies loading the library). So semsearch
never auto-picks faiss: the default stays ``Settings.knn_engine`` (``lucene``, pure Java, present
wherever the k-NN plugin is), and faiss is used only when the user asks for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from opensearchpy import OpenSearch
from opensearchpy.exceptions import AuthorizationException, TransportError

from semsearch.errors import ClusterError, ConfigurationError

Version = tuple[int, int, int]

KNN_PLUGIN = "opensearch-knn"
NEURAL_PLUGIN = "opensearch-neural-search"

# Engines the k-NN plugin accepts for new indexes, by server version. semsearch itself writes
# lucene or faiss indexes (index_body.ENGINES); nmslib is listed so that `index info` tells the truth.
# lucene arrived in 2.2; nmslib was deprecated in 2.19 and new nmslib indexes are refused from 3.0.
_ENGINE_RANGES: dict[str, tuple[Version, Version | None]] = {
    "nmslib": ((1, 0, 0), (3, 0, 0)),
    "faiss": ((1, 0, 0), None),
    "lucene": ((2, 2, 0), None),
}

# Compact vector storage: (engine, mode) -> first server version that maps it. Modes semsearch offers
# take float vectors in and quantise on the server, so every write path works unchanged:
#   fp16    faiss 16-bit scalar quantisation (encoder sq/fp16), 2x smaller, negligible recall loss
#   sq      lucene built-in scalar quantisation to 7-bit integers, ~4x smaller in memory
#   on_disk faiss on-disk mode (binary quantisation, 32x, rescored from full vectors)
# The knn_vector `data_type: byte` variant is deliberately absent: it needs vectors quantised by the
# client into [-128, 127] before writing, and the bulk writer writes float vectors.
COMPACT_SUPPORT: dict[tuple[str, str], Version] = {
    ("faiss", "fp16"): (2, 13, 0),
    ("lucene", "sq"): (2, 16, 0),
    ("faiss", "on_disk"): (2, 17, 0),
}
# Elasticsearch: index_options types by the version that brought them (quantised HNSW keeps a float copy
# for rescoring).
COMPACT_SINCE = {"int8": ((8, 12, 0), "int8_hnsw"), "int4": ((8, 15, 0), "int4_hnsw"), "bbq": ((8, 18, 0), "bbq_hnsw")}
COMPACT_MODES = tuple(sorted({mode for _, mode in COMPACT_SUPPORT}))

# Nested knn_vector fields (a document scored by its best passage), lucene and faiss HNSW.
NESTED_KNN_SINCE: Version = (2, 12, 0)
# `method_parameters.ef_search` in a knn query (the only way to set ef_search for lucene).
QUERY_EF_SEARCH_SINCE: Version = (2, 16, 0)
# Elasticsearch's `knn` query (semsearch's semantic retriever there).
ES_KNN_QUERY_SINCE: Version = (8, 12, 0)
# Point in time searches (POST /INDEX/_search/point_in_time).
PIT_SINCE: Version = (2, 4, 0)


def parse_version(text: str) -> Version:
    """``"2.19.1"``, ``"3.0.0-beta1"`` or ``"2.19.1.0"`` (a plugin's) → ``(2, 19, 1)``."""
    match = re.match(r"^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text))
    if not match:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(part or 0) for part in match.groups())  # type: ignore[return-value]


def format_version(version: Version) -> str:
    return ".".join(str(part) for part in version)


def engines_for(version: Version) -> tuple[str, ...]:
    """k-NN engines a server of ``version`` accepts for new indexes (never nmslib on 3.x)."""
    return tuple(name for name, (low, high) in _ENGINE_RANGES.items()
                 if version >= low and (high is None or version < high))


def compact_modes_for(engine: str, version: Version) -> tuple[str, ...]:
    return tuple(mode for (eng, mode), since in sorted(COMPACT_SUPPORT.items())
                 if eng == engine and version >= since)


def require_compact(engine: str, compact: str, version: Version | None) -> None:
    """Refuse a compact mode the engine (or the server version, when known) cannot map."""
    if compact not in COMPACT_MODES:
        raise ConfigurationError(f"unknown compact mode {compact!r}; choose one of {', '.join(COMPACT_MODES)}")
    since = COMPACT_SUPPORT.get((engine, compact))
    if since is None:
        fits = [mode for (eng, mode) in COMPACT_SUPPORT if eng == engine]
        raise ConfigurationError(
            f"compact mode {compact!r} does not exist for the {engine} engine; "
            f"{engine} offers: {', '.join(fits) or 'none'}")
    if version is not None and version < since:
        raise ConfigurationError(
            f"compact mode {compact!r} with {engine} needs OpenSearch {format_version(since)} or later; "
            f"this cluster runs {format_version(version)}")


def require_engine(engine: str, version: Version | None) -> None:
    if version is not None and engine not in engines_for(version):
        raise ConfigurationError(
            f"OpenSearch {format_version(version)} does not accept new {engine} indexes; "
            f"it accepts: {', '.join(engines_for(version))}")


@dataclass(frozen=True)
class Capabilities:
    """What one cluster offers to semsearch."""

    distribution: str  # "opensearch" or "elasticsearch"
    version: Version
    knn_plugin: str | None  # the k-NN plugin's version, None when absent
    neural_search: str | None
    nodes: int = 1
    nodes_with_knn: int = 0
    modules: tuple[str, ...] | None = None  # None: _nodes/plugins not readable with these credentials
    default_engine: str = "lucene"

    @property
    def engines(self) -> tuple[str, ...]:
        """Engines the server accepts for new indexes; empty without the k-NN plugin on every node."""
        if self.distribution != "opensearch" or not self.knn_plugin or self.nodes_with_knn < self.nodes:
            return ()
        return engines_for(self.version)

    @property
    def reindex(self) -> bool | None:
        """Whether the reindex module is there (server-side copy); None when it cannot be told."""
        return None if self.modules is None else "reindex" in self.modules

    def compact_modes(self) -> dict[str, list[str]]:
        return {engine: list(compact_modes_for(engine, self.version)) for engine in self.engines
                if engine in ("lucene", "faiss")}

    @property
    def nested_knn(self) -> bool:
        return bool(self.engines) and self.version >= NESTED_KNN_SINCE

    def require_knn(self) -> None:
        """Refuse, with the reason, a cluster that cannot hold semsearch's vector fields."""
        if self.distribution == "elasticsearch":
            if self.version < ES_KNN_QUERY_SINCE:  # dense_vector is built in; semsearch queries with `knn`
                raise ClusterError(
                    f"the cluster is Elasticsearch {format_version(self.version)}; semsearch needs "
                    f"{format_version(ES_KNN_QUERY_SINCE)} or later (the knn query)")
            return
        if self.distribution != "opensearch":
            raise ClusterError(f"the cluster is {self.distribution} {format_version(self.version)}; semsearch "
                               "works with OpenSearch (k-NN plugin) and Elasticsearch 8.12+")
        if not self.knn_plugin:
            raise ClusterError(
                "the k-NN plugin (opensearch-knn) is not installed on this cluster; install it on every node "
                "(bin/opensearch-plugin install opensearch-knn) and restart")
        if self.nodes_with_knn < self.nodes:
            raise ClusterError(
                f"the k-NN plugin is on {self.nodes_with_knn} of {self.nodes} nodes; it must be on every node")

    def as_dict(self) -> dict:
        if self.distribution == "elasticsearch":
            return {"distribution": self.distribution, "version": format_version(self.version),
                    "vector_field": "dense_vector (built in; cosine, HNSW)",
                    "knn_query": self.version >= ES_KNN_QUERY_SINCE,
                    "compact_modes": [mode for mode, (since, _) in COMPACT_SINCE.items() if self.version >= since],
                    "nodes": self.nodes, "reindex_module": self.reindex}
        return {
            "distribution": self.distribution,
            "version": format_version(self.version),
            "knn_plugin": self.knn_plugin,
            "neural_search_plugin": self.neural_search,
            "nodes": self.nodes,
            "nodes_with_knn": self.nodes_with_knn,
            "engines": list(self.engines),
            # faiss/nmslib are native libraries the REST API cannot vouch for (see this module's docstring).
            "native_engines": "not probed; used only when asked for (SEMSEARCH_KNN_ENGINE=faiss)",
            "default_engine": self.default_engine,
            "compact_modes": self.compact_modes(),
            "nested_knn": self.nested_knn,
            "query_ef_search": bool(self.engines) and self.version >= QUERY_EF_SEARCH_SINCE,
            "point_in_time": self.version >= PIT_SINCE if self.distribution == "opensearch" else None,
            "reindex_module": self.reindex,
        }


def capabilities_from(root: dict, plugins: list[dict], *, modules: list[str] | None = None,
                      default_engine: str = "lucene") -> Capabilities:
    """Capabilities from the answers of ``GET /`` and ``GET _cat/plugins?format=json`` (pure)."""
    version_info = root.get("version") or {}
    distribution = version_info.get("distribution") or "elasticsearch"
    version = parse_version(version_info.get("number", "0"))
    nodes = {p.get("name") for p in plugins}
    knn_nodes = {p.get("name") for p in plugins if p.get("component") == KNN_PLUGIN}
    knn = next((p.get("version") for p in plugins if p.get("component") == KNN_PLUGIN), None)
    neural = next((p.get("version") for p in plugins if p.get("component") == NEURAL_PLUGIN), None)
    return Capabilities(distribution=distribution, version=version, knn_plugin=knn, neural_search=neural,
                        nodes=max(1, len(nodes)), nodes_with_knn=len(knn_nodes) if knn else 0,
                        modules=tuple(sorted(set(modules))) if modules is not None else None,
                        default_engine=default_engine)


def modules_from_nodes(answer: dict) -> list[str]:
    """Module names present on every node, from ``GET _nodes/plugins`` (pure)."""
    per_node = [{m.get("name") for m in node.get("modules", [])} for node in (answer.get("nodes") or {}).values()]
    return sorted(set.intersection(*per_node)) if per_node else []


def detect(client: OpenSearch, *, default_engine: str = "lucene") -> Capabilities:
    """Ask the cluster what it offers (three or four small read-only requests)."""
    try:
        root = client.info()
        # _cat/plugins lists one row per node and plugin; a node without plugins has no row, so the
        # node count comes from _cat/nodes.
        plugins = client.cat.plugins(format="json")
        node_names = [n.get("name") for n in client.cat.nodes(format="json", h="name")]
    except TransportError as exc:
        raise ClusterError(f"cannot read the cluster's version and plugins: {exc}") from exc
    modules: list[str] | None
    try:
        modules = modules_from_nodes(client.nodes.info(metric="plugins"))
    except (AuthorizationException, TransportError):
        modules = None  # a restricted user: the reindex module's presence stays unknown
    rows = plugins + [{"name": name} for name in node_names]
    return capabilities_from(root, rows, modules=modules, default_engine=default_engine)
