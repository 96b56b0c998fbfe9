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


def fusion_from_entry(entry: Any, index: str = "") -> FusionConfig:
    """The FusionConfig of a stored entry; a clear error, naming the way out, for one this version cannot use
    (pure)."""
    where = f"the fusion stored in index {index!r}" if index else "the stored fusion"
    fix = (f"; store another with: semsearch index fusion {index or 'NAME'} --fusion METHOD …, or remove it with "
           f"semsearch index fusion {index or 'NAME'} --clear")
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"{where} is {entry!r}, not an object{fix}")
    method = entry.get("method")
    if method not in FUSION_METHODS:
        raise ConfigurationError(f"{where} has method {method!r}, not one of {', '.join(FUSION_METHODS)}{fix}")
    weights = entry.get("weights")
    if weights is not None and not (isinstance(weights, Mapping) and all(
            isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
            for value in weights.values())):
        raise ConfigurationError(f"{where} has weights {weights!r}; they must map list names to numbers of 0 or "
                                 f"more{fix}")
    rrf_k = entry.get("rrf_k", 60)
    if not isinstance(rrf_k, int) or isinstance(rrf_k, bool) or rrf_k < 1:
        raise ConfigurationError(f"{where} has rrf_k {rrf_k!r}; it must be a whole number of 1 or more{fix}")
    adaptive = entry.get("adaptive", False)
    if not isinstance(adaptive, bool) or (adaptive and method != "rrf"):
        raise ConfigurationError(f"{where} has adaptive {adaptive!r} with method {method!r}; the adaptive keyword "
                                 f"side is true or false, and true needs rrf{fix}")
    return FusionConfig(method=method,
                        weights=None if weights is None else {name: float(value) for name, value in weights.items()},
                        rrf_k=rrf_k, adaptive=adaptive)


def stored_fusion(info: IndexInfo) -> FusionConfig | None:
    """The fusion ``info``'s index keeps, None when it keeps none."""
    entry = info.meta.get(FUSION_KEY)
    return fusion_from_entry(entry, info.name) if entry else None


def meta_with_fusion(mapping_meta: Mapping[str, Any] | None, entry: Mapping[str, Any] | None,
                     index: str = "NAME") -> dict[str, Any]:
    """The put-mapping body that sets (``entry``) or removes (None) the stored fusion in ``index``'s mapping, whose
    ``_meta`` is ``mapping_meta``: ``_meta`` is replaced whole, so every other entry is carried over (pure)."""
    meta = copy.deepcopy(dict(mapping_meta or {}))
    ours = meta.get(META_KEY)
    if not ours:
        raise ConfigurationError(f"index {index!r} has no semsearch vector field to keep a fusion for; add one with "
                                 f"semsearch index enable-vectors {index}")
    if entry is None:
        ours.pop(FUSION_KEY, None)
    else:
        ours[FUSION_KEY] = dict(entry)
    return {"_meta": meta}


def store_fusion(client, name: str, entry: Mapping[str, Any] | None) -> list[str]:
    """Set (or with None remove) the stored fusion of ``name``: each index behind it when it is an alias. The entry
    is checked as searches will read it, and every body is built before the first is written, so a refusal
    leaves every index as it was. Returns the concrete indexes changed."""
    if entry is not None:
        fusion_from_entry(entry, name)
    bodies = {concrete: meta_with_fusion(mapping["mappings"].get("_meta"), entry, concrete)
              for concrete, mapping in sorted(read_mappings(client, name).items())}
    for concrete, body in bodies.items():
        try:
            client.indices.put_mapping(index=concrete, body=body)
        except TransportError as exc:
            why = " (the user needs the right to update the index's mapping)" if exc.status_code == 403 else ""
            raise ClusterError(f"storing the fusion of {concrete!r} failed: {getattr(exc, 'error', exc)}{why}"
                               ) from exc
    return list(bodies)
