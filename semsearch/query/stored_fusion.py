"""The hybrid fusion an index keeps for itself, in semsearch's ``_meta`` entry.

No default fusion is best on every collection (docs/benchmarks.md, "Where it falls short"): where judged queries
show another one better, ``semsearch eval --tune --save`` (or ``semsearch index fusion NAME --fusion …``) stores it
in the index, and every search of that index that names no fusion uses it: the Python searchers, the CLI and
``semsearch serve`` alike, so applications in other languages need no change. A migration to another model
starts without it (its weights were chosen for the old model's lists). The entry is read with the rest of the
mapping, so a running searcher sees a change within ``INFO_TTL`` seconds.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from opensearchpy.exceptions import TransportError

from semsearch.engines.index_body import META_KEY
from semsearch.errors import ClusterError, ConfigurationError
from semsearch.index.manage import IndexInfo, read_mappings
from semsearch.query.fusion import FUSION_METHODS, FusionConfig

FUSION_KEY = "fusion"  # under semsearch's _meta entry


def fusion_entry(fusion: FusionConfig, tuned: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What ``_meta`` holds for ``fusion``; ``tuned``: how it was chosen (judged queries, nDCG@10…), shown by
    ``semsearch index info`` (pure)."""
    weights = None if fusion.weights is None else dict(fusion.weights)  # None: every list weighs 1.0
    entry: dict[str, Any] = {"method": fusion.method, "weights": weights,
                             "rrf_k": fusion.rrf_k, "adaptive": fusion.adaptive}
    if tuned:
        entry["tuned"] = dict(tuned)
    return entry


def fusion_from_entry(entry: Mapping[str, Any], index: str = "") -> FusionConfig:
    """The FusionConfig of a stored entry; a clear error for one this version cannot use (pure)."""
    where = f"the fusion stored in index {index!r}" if index else "the stored fusion"
    method = entry.get("method")
    if method not in FUSION_METHODS:
        raise ConfigurationError(f"{where} has method {method!r}, not one of {', '.join(FUSION_METHODS)}; "
                                 f"store another with: semsearch index fusion {index or 'NAME'} --fusion METHOD, "
                                 "or remove it with --clear")
    weights = entry.get("weights")
    if weights is not None and not (isinstance(weights, Mapping) and all(
            isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
            for value in weights.values())):
        raise ConfigurationError(f"{where} has weights {weights!r}; they must map list names to numbers of 0 or more")
    adaptive = bool(entry.get("adaptive", False))
    if adaptive and method != "rrf":
        raise ConfigurationError(f"{where} is adaptive with method {method!r}; the adaptive keyword side needs rrf")
    return FusionConfig(method=method,
                        weights=None if weights is None else {name: float(value) for name, value in weights.items()},
                        rrf_k=int(entry.get("rrf_k", 60)), adaptive=adaptive)


def stored_fusion(info: IndexInfo) -> FusionConfig | None:
    """The fusion ``info``'s index keeps, None when it keeps none."""
    entry = info.meta.get(FUSION_KEY)
    return fusion_from_entry(entry, info.name) if entry else None


def meta_with_fusion(mapping_meta: Mapping[str, Any] | None, entry: Mapping[str, Any] | None) -> dict[str, Any]:
    """The put-mapping body that sets (``entry``) or removes (None) the stored fusion in a mapping whose ``_meta``
    is ``mapping_meta``: ``_meta`` is replaced whole, so every other entry is carried over (pure)."""
    meta = copy.deepcopy(dict(mapping_meta or {}))
    ours = meta.get(META_KEY)
    if not ours:
        raise ConfigurationError("the index has no semsearch vector field to keep a fusion for; add one with "
                                 "semsearch index enable-vectors NAME")
    if entry is None:
        ours.pop(FUSION_KEY, None)
    else:
        ours[FUSION_KEY] = dict(entry)
    return {"_meta": meta}


def store_fusion(client, name: str, entry: Mapping[str, Any] | None) -> list[str]:
    """Set (or with None remove) the stored fusion of ``name``: each index behind it when it is an alias. Returns
    the concrete indexes changed."""
    mappings = read_mappings(client, name)
    for concrete, mapping in sorted(mappings.items()):
        body = meta_with_fusion(mapping["mappings"].get("_meta"), entry)
        try:
            client.indices.put_mapping(index=concrete, body=body)
        except TransportError as exc:
            raise ClusterError(f"storing the fusion of {concrete!r} failed: {exc}") from exc
    return sorted(mappings)
