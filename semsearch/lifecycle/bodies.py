"""Request bodies of the index lifecycle (enable-vectors, backfill, migrate, rollback): pure functions.

Nothing here does I/O; :mod:`semsearch.lifecycle.migrate` and :mod:`semsearch.lifecycle.backfill` send what these build.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from semsearch.engines.index_body import CONTENT_HASH_FIELD, ID_FIELD, META_KEY
from semsearch.errors import ConfigurationError

CHECKPOINT_INDEX = ".semsearch-checkpoints"
# Named clause on documents that lack a vector: hits carry it in `matched_queries`.
NO_VECTOR = "semsearch_no_vector"

# Settings the cluster sets on an index itself (identity, history, resize provenance, blocks): never
# copied into a new index. Everything else (shards, replicas, analysis, similarity, refresh, ISM…)
# is kept, so the versioned index answers keyword queries exactly as the old one did.
_INTERNAL_SETTINGS = (
    "index.uuid", "index.version.", "index.creation_date", "index.provided_name", "index.resize.",
    "index.routing.allocation.initial_recovery.", "index.blocks.", "index.history.uuid",
    "index.verified_before_close", "index.knn", "archived.",
)


# -- versioned names -------------------------------------------------------------------------------

def versioned_name(base: str, version: int) -> str:
    return f"{base}-v{version}"


def version_of(base: str, name: str) -> int | None:
    """``3`` for ``docs-v3`` when ``base`` is ``docs``; None for any other name."""
    match = re.fullmatch(re.escape(base) + r"-v(\d+)", name)
    return int(match.group(1)) if match else None


def next_version_name(base: str, existing: Iterable[str]) -> str:
    """``<base>-v<N+1>`` where N is the highest version in use (numbers are never reused)."""
    versions = [v for v in (version_of(base, name) for name in existing) if v is not None]
    return versioned_name(base, max(versions, default=0) + 1)


# -- the versioned index -----------------------------------------------------------------------------

def copyable_settings(flat: dict[str, Any]) -> dict[str, Any]:
    """An index's own settings (``flat_settings=true``), without what the cluster sets by itself."""
    return {key: value for key, value in flat.items()
            if value is not None and not any(key == p or key.startswith(p) for p in _INTERNAL_SETTINGS)}


def clone_body(flat: dict[str, Any]) -> dict[str, Any]:
    """The body of ``_clone`` for an index of these settings (``flat_settings=true``): its replica count, which a
    clone does not take from its source (it gets the cluster's default, 1: a single node would stay yellow) (pure)."""
    replicas = flat.get("index.number_of_replicas")
    return {"settings": {"index.number_of_replicas": replicas}} if replicas is not None else {}


def text_fields_of(mapping: dict) -> list[str]:
    """Top-level ``text`` fields of a mapping, in mapping order."""
    return [name for name, spec in (mapping.get("properties") or {}).items() if spec.get("type") == "text"]


def field_specs(mapping: dict, prefix: str = "") -> Iterator[tuple[str, dict]]:
    """Every field of a mapping as (dotted path, its mapping), objects and their subfields alike (pure)."""
    for name, spec in (mapping.get("properties") or {}).items():
        yield f"{prefix}{name}", spec
        yield from field_specs(spec, f"{prefix}{name}.")


def inner_text_fields_of(mapping: dict) -> list[str]:
    """``text`` fields inside object and nested fields of a mapping, as dotted paths (pure)."""
    return [path for path, spec in field_specs(mapping) if "." in path and spec.get("type") == "text"]


def check_text_fields(mapping: dict, wanted: Sequence[str] | None, defaults: Sequence[str]) -> list[str]:
    """The text fields to encode: ``wanted`` (each must be a top-level text field), else the defaults present."""
    present = text_fields_of(mapping)
    inner = inner_text_fields_of(mapping)
    unsupported = (f"; text inside object or nested fields ({', '.join(inner)}) is not encoded: semsearch reads "
                   "top-level text fields only") if inner else ""
    if wanted:
        unknown = [f for f in wanted if f not in present]
        if unknown:
            raise ConfigurationError(
                f"not top-level text fields of this index: {', '.join(unknown)}; its text fields are: "
                f"{', '.join(present) or 'none'}{unsupported}")
        return list(wanted)
    chosen = [f for f in defaults if f in present]
    if not chosen:
        raise ConfigurationError(
            f"none of the default text fields ({', '.join(defaults)}) is a text field of this index; name them "
            f"with --text-field (its text fields are: {', '.join(present) or 'none'}){unsupported}")
    others = [f for f in present if f not in defaults]
    if defaults[-1] not in chosen and (others or inner):
        # No body default ("text"), only a title, beside other text fields: the text may well be in those (a
        # "body"), so ask. With the body default present, other fields (a url, a lang) are left out as before.
        raise ConfigurationError(
            f"of the default text fields ({', '.join(defaults)}) this index has only {', '.join(chosen)}, and other "
            f"text fields too ({', '.join([*others, *inner])}): name the fields to encode with --text-field, e.g. "
            + " ".join(f"--text-field {f}" for f in [*chosen, *others]) + unsupported)
    return chosen


def check_free_field(mapping: dict, name: str, what: str) -> None:
    existing = (mapping.get("properties") or {}).get(name)
    if existing is not None:
        raise ConfigurationError(
            f"the index already has a field {name!r} (type {existing.get('type', 'object')}); semsearch needs it "
            f"for the {what}: choose another name (SEMSEARCH_VECTOR_FIELD)")


def check_source_kept(mapping: dict, index: str, vectors: Sequence[str | None] = (),
                      settings_flat: dict | None = None) -> None:
    """Refuse an index whose ``_source`` does not hold whole documents as they were written (pure).

    semsearch copies documents (``_reindex``, a migration) and writes vectors by updating them, and the cluster
    builds both from ``_source``: a field left out of it would lose its indexed content for good. Only the vector
    fields (``vectors``, and their subfields: semsearch writes those itself) may be left out. ``settings_flat``:
    the index's settings, where Elasticsearch may also set the source mode.
    """
    source = mapping.get("_source") or {}
    mode = str(source.get("mode") or (settings_flat or {}).get("index.mapping.source.mode") or "stored").lower()
    if str(source.get("enabled", "true")).lower() == "false" or mode == "disabled":
        raise ConfigurationError(
            f"{index!r} stores no _source: semsearch reads each document's text from it, and copies and updates "
            "documents through it, so it cannot add vectors here; ingest the documents into a new index with "
            "`semsearch ingest` instead")
    if mode == "synthetic":
        raise ConfigurationError(
            f"{index!r} keeps a synthetic _source (rebuilt from the index: arrays sorted, values normalised): "
            "semsearch copies and updates documents through _source, which would write them back changed; ingest the documents "
            "into a new index with `semsearch ingest` instead")
    vector_fields = [name for name in vectors if name]

    def is_vector(path: str) -> bool:
        return any(path == name or path.startswith(f"{name}.") for name in vector_fields)

    paths = [path for path, _ in field_specs(mapping)]
    includes = list(source.get("includes") or [])
    excludes = list(source.get("excludes") or [])

    # A field is left out when includes (if any) match none of it, or an exclude matches it; its parents count.
    def left_out(path: str) -> bool:
        parts = path.split(".")
        scopes = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        included = not includes or any(fnmatch.fnmatchcase(scope, pattern) for scope in scopes for pattern in includes)
        excluded = any(fnmatch.fnmatchcase(scope, pattern) for scope in scopes for pattern in excludes)
        return excluded or not included

    lost = [path for path in paths if left_out(path) and not is_vector(path)
            and not any(other != path and path.startswith(f"{other}.") and left_out(other) for other in paths)]
    if lost:
        what = "; ".join(part for part in (f"includes {', '.join(includes)}" if includes else "",
                                           f"excludes {', '.join(excludes)}" if excludes else "") if part)
        raise ConfigurationError(
            f"{index!r} keeps part of each document out of _source (mapping _source {what}: {', '.join(lost)} left "
            "out): semsearch copies and updates documents through _source, and the fields left out would lose their "
            "indexed content. Remove the filter from a copy of the index (reindex from the original documents), or "
            "ingest them into a new index with `semsearch ingest`")


# Index blocks that refuse writes; index.blocks.write is also the one semsearch sets (and lifts) while it copies.
WRITE_BLOCKS = ("index.blocks.write", "index.blocks.read_only", "index.blocks.read_only_allow_delete")


def write_blocks(settings_flat: dict) -> list[str]:
    """The blocks set on an index that refuse writes (pure)."""
    return [name for name in WRITE_BLOCKS if str(settings_flat.get(name, "false")).lower() == "true"]


def check_writable(settings_flat: dict, index: str) -> None:
    """Refuse an index that refuses writes (pure): semsearch would have to write into it, or lift the block."""
    blocks = write_blocks(settings_flat)
    if blocks:
        lift = ", ".join(f'"{name}": null' for name in blocks)
        killed = ("; a semsearch run killed while it copied the index leaves index.blocks.write set too: then lift it "
                  "once, the same way") if "index.blocks.write" in blocks else ""
        raise ConfigurationError(
            f"{index!r} refuses writes ({', '.join(f'{name}=true' for name in blocks)}): semsearch writes vectors into "
            f"it (or copies it and moves its name), so it leaves a blocked index alone. Lift the block first (PUT "
            f"{index}/_settings {{{lift}}}), and set it again after where you had set it{killed}")


def merged_meta(mapping: dict, semsearch_meta: dict) -> dict:
    """The mapping's ``_meta`` with semsearch's entry set, other entries kept (``_meta`` is replaced whole)."""
    meta = copy.deepcopy(mapping.get("_meta") or {})
    meta[META_KEY] = semsearch_meta
    return meta


def vector_mapping_update(mapping: dict, *, vector_field: str, vector: dict, meta: dict) -> dict:
    """The put-mapping body that adds the vector field in place (the index already has ``index.knn``)."""
    check_free_field(mapping, vector_field, "vector field")
    properties: dict[str, Any] = {vector_field: vector}
    for name in (CONTENT_HASH_FIELD, ID_FIELD):
        if name not in (mapping.get("properties") or {}):
            properties[name] = {"type": "keyword"}
    return {"properties": properties, "_meta": merged_meta(mapping, meta)}


def versioned_index_body(settings_flat: dict[str, Any], mapping: dict, *, vector_field: str, vector: dict,
                         knn_settings: dict[str, Any], meta: dict, replace_vector: bool = False,
                         passages_field: str | None = None) -> dict:
    """A new index body from an old index's settings and mapping, plus the k-NN settings and vector field.

    Analysers, similarity and every field mapping are kept; ``replace_vector`` lets a migration
    swap the old model's vector field for the new one's (another dimension or space type).
    """
    settings = copyable_settings(settings_flat)
    settings.update({f"index.{k}": v for k, v in knn_settings.items()})
    mappings = copy.deepcopy(mapping)
    properties = mappings.setdefault("properties", {})
    if not replace_vector:
        check_free_field(mapping, vector_field, "vector field")
    properties[vector_field] = copy.deepcopy(vector)
    passages = properties.get(passages_field or "", {}).get("properties")
    if passages is not None and vector_field in passages:
        # The passages' vectors are the new model's too (same knobs as the document vector).
        passages[vector_field] = copy.deepcopy(vector)
    properties.setdefault(CONTENT_HASH_FIELD, {"type": "keyword"})
    properties.setdefault(ID_FIELD, {"type": "keyword"})
    mappings["_meta"] = merged_meta(mapping, meta)
    return {"settings": settings, "mappings": mappings}


# -- moving the name -----------------------------------------------------------------------------------

def swap_actions(name: str, old: str, new: str, *, delete_old: bool,
                 other_aliases: dict[str, dict] | None = None) -> dict:
    """One ``_aliases`` body that moves ``name`` from ``old`` to ``new`` atomically.

    ``delete_old``: ``name`` is today the concrete index ``old`` itself; it is deleted in the same call
    (an alias cannot take the name of an existing index). Otherwise ``name`` is an alias, moved and
    ``old`` kept. ``other_aliases`` (alias → its definition on ``old``) follow to ``new``.
    """
    actions: list[dict] = []
    if delete_old:
        actions.append({"remove_index": {"index": old}})
    else:
        actions.append({"remove": {"index": old, "alias": name}})
    aliases = other_aliases or {}
    # The name keeps its own definition too: a filtered alias (a tenant's view) must not open onto every document.
    actions.append({"add": {"index": new, "alias": name, **alias_definition(aliases.get(name) or {})}})
    for alias, spec in sorted(aliases.items()):
        if alias == name:
            continue
        if not delete_old:
            actions.append({"remove": {"index": old, "alias": alias}})
        actions.append({"add": {"index": new, "alias": alias, **alias_definition(spec)}})
    return {"actions": actions}


def alias_definition(spec: dict) -> dict:
    """What an alias adds to the index it points at, as ``GET _alias`` shows it: the keys an ``add`` takes (pure)."""
    return {key: spec[key] for key in ("filter", "index_routing", "search_routing", "is_write_index", "is_hidden")
            if key in spec}


def reindex_body(source: str, dest: str) -> dict:
    """Server-side copy of every document (no vectors yet: the backfill adds them)."""
    return {"source": {"index": source, "size": 1000}, "dest": {"index": dest, "op_type": "index"},
            "conflicts": "abort"}


# -- scanning -------------------------------------------------------------------------------------------

# Scan orders. OpenSearch sorts by ``_id``, so that a checkpoint written under one point in time still
# means something under the next one, after a crash. Elasticsearch 8 refuses to sort by ``_id``
# (indices.id_field_data.enabled is off): it scans in ``_shard_doc`` order, valid within one point in
# time only, and a resumed job rescans instead, skipping what is done without encoding it again.
BY_ID = "_id"
BY_SHARD_DOC = "_shard_doc"


def scan_body(pit_id: str, *, size: int, after: Sequence[Any] | None = None, query: dict | None = None,
              source_excludes: Sequence[str] = (), keep_alive: str = "5m", seq_no: bool = False,
              order: str = BY_ID) -> dict:
    """One page of a point-in-time scan in ``order`` (:data:`BY_ID` or :data:`BY_SHARD_DOC`)."""
    body: dict[str, Any] = {"size": size, "pit": {"id": pit_id, "keep_alive": keep_alive},
                            "sort": [{order: "asc"}], "track_total_hits": False,
                            "query": query or {"match_all": {}}}
    if after:
        body["search_after"] = list(after)
    if source_excludes:
        body["_source"] = {"excludes": list(source_excludes)}
    if seq_no:
        body["seq_no_primary_term"] = True
    return body


def lookup_body(ids: Sequence[str], *, source_excludes: Sequence[str] = (), with_source: bool = True) -> dict:
    """These documents of a point in time, by id: their sources (without ``source_excludes``) or ids only."""
    body: dict[str, Any] = {"size": len(ids), "query": {"ids": {"values": list(ids)}}, "track_total_hits": False}
    if not with_source:
        body["_source"] = False
    elif source_excludes:
        body["_source"] = {"excludes": list(source_excludes)}
    return body


def backfill_query(vector_field: str, only_missing: bool = False, ids: Sequence[str] = ()) -> dict:
    """Every document, the ones without a vector marked by the named clause :data:`NO_VECTOR`.

    ``only_missing``: just those (the catch-up pass); ``ids``: those and these documents.
    """
    missing = {"bool": {"must_not": [{"exists": {"field": vector_field}}], "_name": NO_VECTOR}}
    if only_missing:
        if ids:
            return {"bool": {"should": [missing, {"ids": {"values": list(ids)}}], "minimum_should_match": 1}}
        return missing
    return {"bool": {"should": [missing, {"match_all": {}}]}}


def missing_vector_count_body(vector_field: str) -> dict:
    return {"query": {"bool": {"must_not": [{"exists": {"field": vector_field}}]}}}


# -- checkpoints and diffs ------------------------------------------------------------------------------------

def checkpoint_id(job: str, *index_uuids: str) -> str:
    """Checkpoints are keyed by index uuid: a deleted and recreated index never resumes a stale one."""
    return ":".join((job, *index_uuids))


def source_digest(source: dict, exclude: Iterable[str] = ()) -> str:
    """A digest of a document's source without the given fields (canonical JSON, key order ignored)."""
    skip = set(exclude)
    kept = {k: v for k, v in source.items() if k not in skip}
    text = json.dumps(kept, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def paged_diff(source_pages: Iterable[Sequence[tuple[str, str, Any]]],
               target_digests: Callable[[list[str]], dict[str, str]],
               target_pages: Iterable[Sequence[tuple[str, str, Any]]],
               source_ids: Callable[[list[str]], set[str]]) -> Iterator[tuple[str, tuple[str, str, Any]]]:
    """:func:`merge_diff`'s answer for streams in no shared order (Elasticsearch's ``_shard_doc`` scans).

    Each page of the source is looked up in the target by id (``target_digests``: id → digest of the
    ones present), then each page of the target in the source (``source_ids``: the ids present):
    ``("copy"|"same", item)`` for every source item, then ``("delete", item)`` for target items the
    source lacks. Memory stays one page whatever the index size; it costs one lookup per page.
    """
    for page in source_pages:
        found = target_digests([item[0] for item in page])
        for item in page:
            yield ("same" if found.get(item[0]) == item[1] else "copy"), item
    for page in target_pages:
        present = source_ids([item[0] for item in page])
        for item in page:
            if item[0] not in present:
                yield "delete", item


def merge_diff(source: Iterable[tuple[str, str, Any]], target: Iterable[tuple[str, str, Any]]
               ) -> Iterator[tuple[str, tuple[str, str, Any]]]:
    """Differences between two ``(_id, digest, payload)`` streams, each sorted by ``_id`` (as the server sorts).

    Yields ``("copy", item)`` for source items missing from the target or differing there,
    ``("delete", item)`` for target items absent from the source, and ``("same", item)`` for the rest
    (so the caller knows how far it got). Memory stays constant whatever the index size. The server sorts ``_id`` by its UTF-8 bytes, which is Python's code point order.
    """
    def ordered(items: Iterable[tuple[str, str, Any]], side: str) -> Iterator[tuple[str, str, Any]]:
        last: str | None = None
        for item in items:
            if last is not None and item[0] <= last:
                raise ValueError(f"{side} ids out of order: {item[0]!r} after {last!r}")
            last = item[0]
            yield item

    src, tgt = ordered(source, "source"), ordered(target, "target")
    a, b = next(src, None), next(tgt, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            yield "copy", a
            a = next(src, None)
        elif a is None or b[0] < a[0]:
            yield "delete", b
            b = next(tgt, None)
        else:
            yield ("copy" if a[1] != b[1] else "same"), a
            a, b = next(src, None), next(tgt, None)
