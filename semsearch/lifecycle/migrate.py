"""Index lifecycle on a live cluster: enable vectors on an existing index, migrate to another model, roll back.

Applications keep using one name throughout. When an index cannot change in place, semsearch builds a
versioned index (``<name>-v1``, ``-v2``…) beside it and moves the name there as an alias in one
``_aliases`` call, which the cluster applies atomically: every request sees either the old index or
the new one, never neither.

Writes and consistency: while documents are copied server-side (enable-vectors) and while a migration
catches up with the last changes, the old index is write-blocked (``index.blocks.write``): reads go on,
writes are refused with 403 ``cluster_block_exception`` for that window and must be retried by the
application. Without the block, a write landing on the old index after the copy would be lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from semsearch.engines.capabilities import Capabilities, detect
from semsearch.engines.index_body import (
    ENGINES,
    META_KEY,
    index_meta,
    knn_meta,
    knn_settings,
    knn_vector_field,
    resolve_space_type,
)
from semsearch.errors import ClusterError, ConfigurationError
from semsearch.index.manage import DEFAULT_TEXT_FIELDS, check_fingerprint, get_index_info
from semsearch.lifecycle.lease import check_held, one_at_a_time, still_held
from semsearch.lifecycle.backfill import (BackfillReport, CheckpointStore, copy_with_vectors, history_marks, index_uuid,
                                         vector_gaps)
from semsearch.lifecycle.bodies import (
    check_source_kept,
    checkpoint_id,
    check_text_fields,
    check_writable,
    clone_body,
    inner_text_fields_of,
    merged_meta,
    next_version_name,
    reindex_body,
    swap_actions,
    vector_mapping_update,
    version_of,
    versioned_index_body,
    write_blocks,
)
from semsearch.settings import BulkFormat
from semsearch.version import __version__

log = logging.getLogger(__name__)
Notify = Callable[[str], None]

# Fingerprint keys that make vectors comparable (the model's name is informative only).
_COMPARABLE = ("weights", "dimension", "pooling", "normalize", "max_seq_length")


def same_encoder(a: dict, b: dict) -> bool:
    return all(a.get(k) == b.get(k) for k in _COMPARABLE)


@dataclass(frozen=True)
class Target:
    """What a name stands for: a concrete index, or an alias over exactly one."""

    name: str
    index: str
    is_alias: bool
    aliases: dict[str, dict] = field(default_factory=dict)  # every alias on ``index``, with its definition


def resolve(client: OpenSearch, name: str) -> Target:
    """The concrete index behind ``name``; refuses an alias over several indexes."""
    try:
        if client.indices.exists_alias(name=name):
            answer = client.indices.get_alias(name=name)
            if len(answer) != 1:
                raise ConfigurationError(
                    f"{name!r} is an alias over {len(answer)} indexes ({', '.join(sorted(answer))}); semsearch "
                    "manages names that point at one index")
            concrete = next(iter(answer))
            aliases = client.indices.get_alias(index=concrete)[concrete]["aliases"]
            return Target(name=name, index=concrete, is_alias=True, aliases=aliases)
        if client.indices.exists(index=name):
            aliases = client.indices.get_alias(index=name)[name]["aliases"]
            return Target(name=name, index=name, is_alias=False, aliases=aliases)
    except TransportError as exc:
        raise ClusterError(f"looking up {name!r} failed: {exc}") from exc
    raise ConfigurationError(f"no index or alias named {name!r}")


def _mapping(client: OpenSearch, index: str) -> dict:
    return client.indices.get_mapping(index=index)[index]["mappings"]


def _settings_flat(client: OpenSearch, index: str) -> dict:
    return client.indices.get_settings(index=index, flat_settings=True)[index]["settings"]


def _existing_versions(client: OpenSearch, base: str) -> list[str]:
    rows = client.cat.indices(index=f"{base}-v*", format="json", h="index", expand_wildcards="all")
    return [r["index"] for r in rows if version_of(base, r["index"]) is not None]


def block_writes(client: OpenSearch, index: str, blocked: bool) -> None:
    """Refuse writes to ``index`` (or allow them again). The block API, unlike the setting, returns once the writes
    already under way have ended, so what the copy reads next is all there is."""
    if blocked:
        client.indices.add_block(index=index, block="write")
    else:
        client.indices.put_settings(index=index, body={"index.blocks.write": None})


def _swap(client: OpenSearch, name: str, body: dict) -> None:
    check_held(name)  # a run whose lease was taken over meanwhile leaves the name to the one that took it
    try:
        client.indices.update_aliases(body=body)
    except TransportError as exc:
        raise ClusterError(f"moving the name failed (nothing changed: the call is atomic): {exc}") from exc


def _undo(notify: Notify, what: str, step: Callable[[], object]) -> None:
    """One step of a failed run's clean-up: a step that fails itself is said, and the run's own error still raised."""
    try:
        step()
    except TransportError as exc:
        notify(f"warning: could not {what} ({exc})")


def run_reindex(client: OpenSearch, source: str, dest: str, *, notify: Notify, poll: float = 1.0) -> dict:
    """Server-side copy as a task, polled until done (a long copy outlives any HTTP timeout)."""
    try:
        task = client.reindex(body=reindex_body(source, dest), wait_for_completion=False, refresh=True)
    except TransportError as exc:
        hint = "" if exc.status_code != 400 else " (is the reindex module installed on the cluster?)"
        raise ClusterError(f"starting the copy {source!r} → {dest!r} failed{hint}: {exc}") from exc
    task_id = task["task"]
    last = -1
    while True:
        status = client.tasks.get(task_id=task_id)
        done = status.get("completed", False)
        progress = status.get("task", {}).get("status", {})
        copied = progress.get("created", 0) + progress.get("updated", 0)
        if copied != last and progress.get("total"):
            notify(f"copied {copied} of {progress['total']} documents")
            last = copied
        if done:
            break
        time.sleep(poll)
    if status.get("error"):
        raise ClusterError(f"copying {source!r} → {dest!r} failed: {status['error']}")
    response = status.get("response") or {}
    if response.get("failures"):
        raise ClusterError(f"copying {source!r} → {dest!r}: {len(response['failures'])} documents failed, "
                           f"first: {response['failures'][0]}")
    return response


def vector_mapping(caps: Capabilities, fingerprint: dict, *, engine: str, space_type: str | None, m: int | None,
                   ef_construction: int | None, ef_search: int | None, compact: str | None) -> tuple[dict, dict]:
    """The vector field's mapping for this cluster, and its knobs as ``_meta`` records them.

    OpenSearch: a ``knn_vector`` of ``engine``; Elasticsearch: a ``dense_vector`` (cosine, HNSW),
    where ``engine`` and ``space_type`` do not apply.
    """
    if caps.distribution == "elasticsearch":
        from semsearch.engines.es_bodies import dense_vector_field, es_knn_meta  # noqa: PLC0415

        if engine not in ("lucene", "elasticsearch"):  # lucene: the setting's default, whatever the backend
            raise ConfigurationError(f"the {engine} engine belongs to OpenSearch's k-NN plugin; Elasticsearch maps "
                                     "a dense_vector field (HNSW) and takes no --engine")
        if space_type not in (None, "cosinesimil"):
            raise ConfigurationError(f"space type {space_type!r} is for OpenSearch's k-NN plugin; semsearch maps "
                                     "Elasticsearch vectors with cosine similarity (Sentence-BERT's measure)")
        vector = dense_vector_field(dimension=fingerprint["dimension"], m=m, ef_construction=ef_construction,
                                    compact=compact, server_version=caps.version)
        return vector, es_knn_meta(m=m, ef_construction=ef_construction, ef_search=ef_search, compact=compact)
    if engine not in ENGINES:
        raise ConfigurationError(f"unknown k-NN engine {engine!r}; choose one of {', '.join(ENGINES)}")
    space = resolve_space_type(engine, fingerprint["normalize"], space_type)
    vector = knn_vector_field(dimension=fingerprint["dimension"], engine=engine, normalized=fingerprint["normalize"],
                              space_type=space, m=m, ef_construction=ef_construction, compact=compact,
                              server_version=caps.version)
    return vector, knn_meta(engine=engine, space_type=space, m=m, ef_construction=ef_construction,
                            ef_search=ef_search, compact=compact)


def _count(client: OpenSearch, index: str) -> int:
    client.indices.refresh(index=index)
    return int(client.count(index=index)["count"])


# -- enable-vectors ---------------------------------------------------------------------------------------

@dataclass
class EnableReport:
    name: str
    mode: str  # "in_place", "reindexed" or "already"
    index: str  # the concrete index that now holds the vector field
    previous: str | None = None  # the index the documents were copied from
    previous_deleted: bool = False
    documents: int = 0
    elapsed: float = 0.0

    def as_dict(self) -> dict:
        return {"name": self.name, "mode": self.mode, "index": self.index, "previous": self.previous,
                "previous_deleted": self.previous_deleted, "documents": self.documents,
                "elapsed_s": round(self.elapsed, 3)}



def _cancel_copies_into(client: OpenSearch, index: str, *, wait: float = 30.0) -> int:
    """Cancel the server-side copies (reindex tasks) still writing into ``index``; how many there were."""
    listed = client.tasks.list(actions="*reindex", detailed=True)
    ours = [task_id for node in (listed.get("nodes") or {}).values() for task_id, task in (node.get("tasks") or {}).items()
            if str(task.get("description", "")).endswith(f" to [{index}]")]
    for task_id in ours:
        try:
            client.tasks.cancel(task_id=task_id)
            client.tasks.get(task_id=task_id, wait_for_completion=True, timeout=f"{wait:.0f}s")
        except TransportError as exc:  # ended meanwhile
            log.info("cancelling the copy %s into %r: %s", task_id, index, exc)
    return len(ours)


def _remove_copy_left_behind(client: OpenSearch, store: CheckpointStore, key: str, source: str,
                             notify: Notify) -> None:
    """An enable-vectors killed while it copied ``source`` (its checkpoint names the copy) left a half-made copy, and
    perhaps the server-side task still filling it: both go, before this run makes its own."""
    left = store.get(key)
    copy = (left or {}).get("copy")
    if not copy or copy == source or not client.indices.exists(index=copy):
        return
    if _serves_an_alias(client, copy):
        return  # something serves from it now: not a leftover
    cancelled = _cancel_copies_into(client, copy)
    client.indices.delete(index=copy, ignore_unavailable=True)
    still = " (its copy task, still running, cancelled)" if cancelled else ""
    notify(f"removed {copy!r}, the copy of {source!r} an interrupted enable-vectors left behind{still}")


@one_at_a_time("index enable-vectors")
def enable_vectors(client: OpenSearch, name: str, *, fingerprint: dict, vector_field: str,
                   text_fields: list[str] | None = None, engine: str = "lucene", space_type: str | None = None,
                   m: int | None = None, ef_construction: int | None = None, ef_search: int | None = None,
                   compact: str | None = None, capabilities: Capabilities | None = None,
                   notify: Notify = log.info) -> EnableReport:
    """Give the index (or alias) ``name`` a vector field for ``fingerprint``'s encoder, keeping its name.

    In place on Elasticsearch (a ``dense_vector`` field can be added to any index) and on an OpenSearch
    index that already has ``index.knn`` (a static setting: it cannot be turned on later); otherwise a versioned copy with the old mapping, analysers and settings plus the vector field,
    filled server-side with ``_reindex``, and the name moved to it atomically. Vectors come after,
    from :func:`semsearch.lifecycle.backfill.backfill`.
    """

    started = time.monotonic()
    caps = capabilities or detect(client, default_engine=engine)
    caps.require_knn()
    target = resolve(client, name)
    mapping = _mapping(client, target.index)
    existing = (mapping.get("_meta") or {}).get(META_KEY)
    if existing:
        info = get_index_info(client, name)
        if not same_encoder(info.fingerprint, fingerprint):
            check_fingerprint(info, fingerprint)  # raises, naming both encoders and the way out
        if text_fields and set(text_fields) != set(info.text_fields):
            raise ConfigurationError(
                f"{name!r} already has vectors, encoded from {', '.join(info.text_fields)}; enable-vectors cannot "
                f"change the text fields of an index with vectors. To encode {', '.join(text_fields)}, create a new "
                "index with them (semsearch index create NEW --text-field …) and ingest or reindex into it")
        notify(f"{name!r} already has the vector field {info.vector_field!r}")
        return EnableReport(name=name, mode="already", index=target.index,
                            documents=_count(client, target.index), elapsed=time.monotonic() - started)
    fields = check_text_fields(mapping, text_fields, DEFAULT_TEXT_FIELDS)
    inner = inner_text_fields_of(mapping)
    if inner:
        notify(f"note: text inside object or nested fields ({', '.join(inner)}) is not encoded: semsearch reads "
               f"top-level text fields only (here {', '.join(fields)})")
    # Refused before anything is created: a copy or the backfill's updates would drop what _source leaves out, and
    # a blocked index can take neither the copy's block nor the vectors.
    settings = _settings_flat(client, target.index)
    check_source_kept(mapping, name, (vector_field,), settings)
    check_writable(settings, target.index)
    vector, knobs = vector_mapping(caps, fingerprint, engine=engine, space_type=space_type, m=m,
                                   ef_construction=ef_construction, ef_search=ef_search, compact=compact)
    meta = index_meta(fingerprint, fields, vector_field, __version__, knn=knobs)
    if caps.distribution == "elasticsearch" or str(settings.get("index.knn", "false")).lower() == "true":
        body = vector_mapping_update(mapping, vector_field=vector_field, vector=vector, meta=meta)
        try:
            client.indices.put_mapping(index=target.index, body=body)
        except TransportError as exc:
            raise ClusterError(f"adding the vector field to {target.index!r} failed: {exc}") from exc
        notify(f"added the vector field {vector_field!r} to {target.index!r} in place")
        return EnableReport(name=name, mode="in_place", index=target.index,
                            documents=_count(client, target.index), elapsed=time.monotonic() - started)
    if caps.reindex is False:
        raise ClusterError("the cluster has no reindex module, which the server-side copy needs; "
                           "install it (it ships with every OpenSearch distribution but the minimal one)")
    # The copy is named in a checkpoint until it is done (or undone): a run killed meanwhile leaves the next one a
    # way to tell its half-made copy from any other version of the name.
    store = CheckpointStore(client)
    key = checkpoint_id("enable-vectors", index_uuid(client, target.index))
    _remove_copy_left_behind(client, store, key, target.index, notify)
    new = next_version_name(name, _existing_versions(client, name))
    body = versioned_index_body(settings, mapping, vector_field=vector_field, vector=vector,
                                knn_settings=knn_settings(knobs["ef_search"]), meta=meta)
    store.save(key, {"copy": new, "source": target.index})
    try:
        client.indices.create(index=new, body=body)
    except TransportError as exc:
        store.delete(key)
        raise ClusterError(f"creating {new!r} failed: {getattr(exc, 'info', None) or exc}") from exc
    notify(f"created {new!r}: the mapping of {target.index!r} plus {fingerprint['dimension']}-d {engine} vectors")
    block_writes(client, target.index, True)
    try:
        notify(f"writes to {target.index!r} are blocked while its documents are copied (reads go on)")
        # The copy reads what a search sees: the writes acknowledged before the block but not yet refreshed
        # (up to a refresh interval of them) would be left behind, and an update among them never shows in a count.
        client.indices.refresh(index=target.index)
        run_reindex(client, target.index, new, notify=notify)
        before, after = _count(client, target.index), _count(client, new)
        if before != after:
            raise ClusterError(f"copy incomplete: {target.index!r} holds {before} documents, {new!r} {after}")
        _swap(client, name, swap_actions(name, target.index, new, delete_old=not target.is_alias,
                                   other_aliases=target.aliases))
    except BaseException:
        if still_held(name):  # else the command that took the name over owns the block, the copy and the checkpoint
            _undo(notify, f"lift the write block of {target.index!r}", lambda: block_writes(client, target.index, False))
            # interrupted (Ctrl-C) while the server still copies into it
            _undo(notify, f"cancel the copy into {new!r}", lambda: _cancel_copies_into(client, new))
            _undo(notify, f"delete {new!r}", lambda: client.indices.delete(index=new, ignore_unavailable=True))
            _undo(notify, "delete the copy's checkpoint", lambda: store.delete(key))
        raise
    _undo(notify, "delete the copy's checkpoint", lambda: store.delete(key))
    if target.is_alias:
        notify(f"{name!r} now points at {new!r}; {target.index!r} is kept, write-blocked")
    else:
        notify(f"{name!r} is now an alias of {new!r} (the old index {name!r} was replaced in the same call)")
    return EnableReport(name=name, mode="reindexed", index=new, previous=target.index,
                        previous_deleted=not target.is_alias, documents=after, elapsed=time.monotonic() - started)


# -- migrate / rollback --------------------------------------------------------------------------------------

@dataclass
class MigrateReport:
    name: str
    index: str  # now serving the name
    previous: str  # kept, write-blocked, for --rollback
    adopted: str | None = None  # a concrete index first cloned into a versioned one
    resumed: bool = False
    copy: BackfillReport | None = None
    catch_up: BackfillReport | None = None
    documents: int = 0
    elapsed: float = 0.0

    @property
    def encoded(self) -> int:
        return sum(r.encoded for r in (self.copy, self.catch_up) if r is not None)

    def as_dict(self) -> dict:
        return {"name": self.name, "index": self.index, "previous": self.previous, "adopted": self.adopted,
                "resumed": self.resumed, "documents": self.documents, "encoded": self.encoded,
                "copy": self.copy.as_dict() if self.copy else None,
                "catch_up": self.catch_up.as_dict() if self.catch_up else None,
                "elapsed_s": round(self.elapsed, 3)}


def adopt(client: OpenSearch, name: str, *, notify: Notify = log.info) -> str:
    """Put the concrete index ``name`` under an alias of the same name, so it can later be swapped.

    ``_clone`` (hard-linked segments: fast, no re-indexing) into ``<name>-vN``, then one ``_aliases``
    call replaces the index by the alias. Writes are blocked for the few seconds this takes.
    """
    target = resolve(client, name)
    if target.is_alias:
        return target.index
    new = next_version_name(name, _existing_versions(client, name))
    body = clone_body(_settings_flat(client, name))
    block_writes(client, name, True)
    try:
        client.indices.clone(index=name, target=new, wait_for_active_shards=1, body=body)
        client.cluster.health(index=new, wait_for_status="yellow")
        block_writes(client, new, False)  # a clone inherits the block
        if _count(client, name) != _count(client, new):
            raise ClusterError(f"cloning {name!r} into {new!r} gave a different document count")
        _swap(client, name, swap_actions(name, name, new, delete_old=True, other_aliases=target.aliases))
    except BaseException:
        if still_held(name) and client.indices.exists(index=name):
            _undo(notify, f"lift the write block of {name!r}", lambda: block_writes(client, name, False))
            _undo(notify, f"delete {new!r}", lambda: client.indices.delete(index=new, ignore_unavailable=True))
        raise
    notify(f"{name!r} is now an alias of {new!r} (cloned), so that it can be swapped")
    return new


def _migrations_from(client: OpenSearch, name: str, current: str) -> Iterator[tuple[str, dict]]:
    """The versions of ``name`` a migration from ``current`` made (they name it as their previous index), lowest
    first, each with semsearch's _meta entry."""
    for candidate in sorted(_existing_versions(client, name), key=lambda n: version_of(name, n) or 0):
        if candidate == current:
            continue
        meta = (_mapping(client, candidate).get("_meta") or {}).get(META_KEY) or {}
        if meta.get("previous_index") == current:
            yield candidate, meta


def _serves_an_alias(client: OpenSearch, index: str) -> bool:
    return any((entry.get("aliases") or {}) for entry in client.indices.get_alias(index=index).values())


def _unfinished_migration(client: OpenSearch, name: str, current: str) -> str | None:
    """A version a migration from ``current`` was filling when it stopped: no alias serves from it, and it never
    served the name (a migration records its swap marks just before the name moves; an index a rollback left has
    them)."""
    for candidate, meta in _migrations_from(client, name, current):
        if SWAP_MARKS not in meta and not _serves_an_alias(client, candidate):
            return candidate
    return None


def _find_resumable(client: OpenSearch, name: str, current: str, fingerprint: dict) -> str | None:
    """A green index an interrupted migration from ``current`` to this encoder left behind."""
    for candidate, meta in _migrations_from(client, name, current):
        if same_encoder(meta.get("fingerprint") or {}, fingerprint):
            return candidate
    return None


@one_at_a_time("migrate")
def migrate(client: OpenSearch, name: str, *, encoder, checkpoints: CheckpointStore | None = None,
            batch_docs: int = 256, notify: Notify = log.info, on_batch=None,
            capabilities: Capabilities | None = None, write_client: OpenSearch | None = None,
            bulk_format: BulkFormat = "smile", write_while_encoding: bool = True) -> MigrateReport:
    """Blue/green: re-encode ``name``'s documents with ``encoder`` into a new versioned index, then swap.

    The copy runs while the old index serves reads and writes; then the old index is write-blocked,
    what changed meanwhile is copied again, counts are verified and the alias moves atomically.
    The old index is kept (write-blocked) for ``rollback``. An interrupted migration resumes.
    """

    started = time.monotonic()
    caps = capabilities or detect(client)
    caps.require_knn()
    fingerprint = encoder.fingerprint.as_dict()
    info = get_index_info(client, name)
    if same_encoder(info.fingerprint, fingerprint):
        raise ConfigurationError(f"{name!r} already holds vectors of this encoder ({fingerprint['model']!r}); "
                                 "nothing to migrate")
    # The copy writes each document as _source holds it: a field left out of _source would lose its content.
    source_settings = _settings_flat(client, info.index or name)
    check_source_kept(_mapping(client, info.index or name), name, (info.vector_field, info.passages_field),
                      source_settings)
    green = _find_resumable(client, name, info.index or name, fingerprint)
    if green is None:
        # A new migration leaves an operator's block alone; a resumed one may meet its own (an interrupted catch-up).
        check_writable(source_settings, info.index or name)
    adopted = None
    if not resolve(client, name).is_alias:
        adopted = adopt(client, name, notify=notify)  # a fresh clone: no migration from it can be resumed
        info = get_index_info(client, name)
    current = info.index
    resumed = green is not None
    if green is None:
        green = next_version_name(name, _existing_versions(client, name))
        old_knn = info.meta.get("knn") or {}
        engine = old_knn.get("engine", "lucene")
        space = None
        if caps.distribution != "elasticsearch":
            try:  # keep an explicit space type where the new model allows it
                space = resolve_space_type(engine, fingerprint["normalize"], old_knn.get("space_type"))
            except ConfigurationError:
                space = resolve_space_type(engine, fingerprint["normalize"])
        vector, knobs = vector_mapping(caps, fingerprint, engine=engine, space_type=space, m=old_knn.get("m"),
                                       ef_construction=old_knn.get("ef_construction"),
                                       ef_search=old_knn.get("ef_search"), compact=old_knn.get("compact"))
        passages = None
        if info.passages_field:  # long documents are chunked again, in the new model's window
            from semsearch.index.passages import chunking_meta  # noqa: PLC0415

            passages = chunking_meta(info.passages_field, window=fingerprint["max_seq_length"],
                                     overlap=info.passage_overlap)
        meta = index_meta(fingerprint, info.text_fields, info.vector_field, __version__, knn=knobs,
                          passages=passages, previous_index=current)
        index_settings = {} if caps.distribution == "elasticsearch" else knn_settings(knobs["ef_search"])
        body = versioned_index_body(_settings_flat(client, current), _mapping(client, current),
                                    vector_field=info.vector_field, vector=vector,
                                    knn_settings=index_settings, meta=meta,
                                    replace_vector=True, passages_field=info.passages_field)
        try:
            client.indices.create(index=green, body=body)
        except TransportError as exc:
            raise ClusterError(f"creating {green!r} failed: {getattr(exc, 'info', None) or exc}") from exc
        notify(f"created {green!r} for {fingerprint['dimension']}-d vectors of {fingerprint['model']!r}")
    else:
        notify(f"resuming the migration into {green!r}")
        dropped = writes_since_swap(client, green, (_mapping(client, green).get("_meta") or {}).get(META_KEY) or {})
        if dropped:  # it served the name once, and a rollback --force left its later writes behind in it
            notify(f"warning: {green!r} holds {_writes(dropped)} made while it served "
                   f"{name!r} (rolled back since with --force); this migration makes it match {current!r} again, so "
                   "they go")
    report = MigrateReport(name=name, index=green, previous=current, adopted=adopted, resumed=resumed)
    checkpoints = checkpoints or CheckpointStore(client)
    report.copy = copy_with_vectors(client, info, green, encoder=encoder, checkpoints=checkpoints,
                                    batch_docs=batch_docs, on_batch=on_batch, write_client=write_client,
                                    bulk_format=bulk_format, write_while_encoding=write_while_encoding)
    notify(f"copied {report.copy.written} documents with new vectors; blocking writes to {current!r} to catch up")
    block_writes(client, current, True)
    try:
        report.catch_up = copy_with_vectors(client, info, green, encoder=encoder, checkpointed=False,
                                            batch_docs=batch_docs, on_batch=on_batch, write_client=write_client,
                                            bulk_format=bulk_format, write_while_encoding=write_while_encoding)
        before, after = _count(client, current), _count(client, green)
        missing, _ = vector_gaps(client, green, info.text_fields, info.vector_field)
        if before != after or missing:
            raise ClusterError(f"verification failed: {current!r} holds {before} documents, {green!r} {after} "
                               f"({missing} with text but no vector); the name was not moved, rerun to resume")
        fresh = resolve(client, name)
        record_swap_marks(client, green, notify)
        _swap(client, name, swap_actions(name, current, green, delete_old=False, other_aliases=fresh.aliases))
    except BaseException:
        if still_held(name):  # else the block is the catch-up's of the command that took the name over
            _undo(notify, f"lift the write block of {current!r}", lambda: block_writes(client, current, False))
        raise
    report.documents = after
    notify(f"{name!r} now points at {green!r}; {current!r} is kept, write-blocked (semsearch migrate {name} "
           "--rollback swaps back)")
    report.elapsed = time.monotonic() - started
    return report


@dataclass
class RollbackReport:
    name: str
    index: str  # serving the name again
    left: str  # the index rolled back from (kept)

    def as_dict(self) -> dict:
        return {"name": self.name, "index": self.index, "left": self.left}


# Where semsearch's _meta entry keeps each shard's highest sequence number when a migration moved the name to the index.
SWAP_MARKS = "swap_marks"


def record_swap_marks(client: OpenSearch, index: str, notify: Notify = log.info) -> None:
    """Keep in ``index``'s _meta each shard's highest sequence number now, just before the name moves to it:
    any write after (the application's, through the name) raises one, which is how ``rollback`` sees them. Marks
    that cannot be read or kept are said, not fatal: a rollback without them asks for --force."""
    marks = history_marks(client, index)
    try:
        if not marks:
            raise ClusterError("the shard statistics could not be read")
        mapping = _mapping(client, index)
        meta = dict((mapping.get("_meta") or {}).get(META_KEY) or {})
        meta[SWAP_MARKS] = marks
        client.indices.put_mapping(index=index, body={"_meta": merged_meta(mapping, meta)})
    except (ClusterError, TransportError) as exc:
        notify(f"warning: could not record where {index!r} stood as the name moved ({exc}): a later --rollback "
               "cannot tell whether writes were made through the name since, and asks for --force")


def writes_since_swap(client: OpenSearch, index: str, meta: dict) -> int | None:
    """Operations ``index`` took since the name moved to it (None: the migration kept no marks, or the stats
    cannot be read)."""
    marks = meta.get(SWAP_MARKS)
    now = history_marks(client, index)
    if not marks or not now:
        return None
    return sum(max(0, int(now.get(shard, -1)) - int(marks.get(shard, -1))) for shard in now)


def _writes(count: int) -> str:
    return f"{count} write{'s' if count != 1 else ''}"


@one_at_a_time("migrate --rollback")
def rollback(client: OpenSearch, name: str, *, notify: Notify = log.info, force: bool = False) -> RollbackReport:
    """Point ``name`` back at the index the last migration came from (writes unblocked there).

    That index holds none of the writes made through the name since the migration: a rollback that would drop
    some from the name is refused unless ``force``, and says how to keep them (migrate back to the old model).
    """
    target = resolve(client, name)
    if not target.is_alias:
        raise ConfigurationError(f"{name!r} is a concrete index, not an alias: it was never migrated")
    unfinished = _unfinished_migration(client, name, target.index)
    if unfinished:
        # The rollback would undo the migration before, not this one: the name never moved to it.
        blocked = "index.blocks.write" in write_blocks(_settings_flat(client, target.index))
        model = ((_mapping(client, unfinished).get("_meta") or {}).get(META_KEY) or {}).get("fingerprint", {})
        unblock = (f", and PUT {target.index}/_settings {{\"index.blocks.write\": null}} (its catch-up left that block)"
                   if blocked else "")
        raise ConfigurationError(
            f"a migration of {name!r} from {target.index!r} into {unfinished!r} did not finish (interrupted, or still "
            f"running elsewhere): {name!r} never moved to it, so a rollback now would take {name!r} back past "
            f"{target.index!r}, to the index the migration before came from. To finish it: semsearch migrate {name} "
            f"--model <the folder of its model {model.get('model') or '?'!r}> (it resumes); to abandon it: DELETE "
            f"{unfinished}{unblock}; then --rollback does what it says")
    meta = (_mapping(client, target.index).get("_meta") or {}).get(META_KEY) or {}
    previous = meta.get("previous_index")
    if not previous:
        raise ConfigurationError(f"{target.index!r} (behind {name!r}) records no previous index to roll back to")
    if not client.indices.exists(index=previous):
        raise ConfigurationError(f"the previous index {previous!r} no longer exists; nothing to roll back to")
    taken = writes_since_swap(client, target.index, meta)
    dropping = taken != 0  # some, or none known (None)
    if dropping and not force:
        old_model = ((_mapping(client, previous).get("_meta") or {}).get(META_KEY) or {}).get("fingerprint", {})
        ways_out = (f"To go back to the old model and keep them: semsearch migrate {name} --model <the folder of "
                    f"its model {old_model.get('model') or '?'!r}>; to roll back and drop them: semsearch migrate {name} "
                    "--rollback --force")
        if taken is None:
            raise ConfigurationError(
                f"cannot tell whether writes were made through {name!r} since the migration moved it to "
                f"{target.index!r} (that migration kept no marks: an earlier semsearch, or its shard statistics were "
                f"unreadable); any there were are not in {previous!r}. {ways_out}")
        raise ConfigurationError(
            f"{target.index!r} took {_writes(taken)} (index, update or delete: the application's, or semsearch's "
            f"own ingest or backfill) through {name!r} since the migration moved the name to it, and {previous!r} "
            f"holds none of them: rolling back would drop them from {name!r}. {ways_out}")
    if dropping:
        count = "any writes" if taken is None else f"the {_writes(taken)}"
        notify(f"dropping from {name!r} {count} {target.index!r} took since the migration (--force); they stay in "
               f"{target.index!r} until a migration resumes into it, which makes it match {previous!r} again")
    check_held(name)  # before the block is lifted, not only before the swap
    block_writes(client, previous, False)
    _swap(client, name, swap_actions(name, target.index, previous, delete_old=False, other_aliases=target.aliases))
    notify(f"{name!r} points at {previous!r} again; {target.index!r} is kept (semsearch migrate resumes into it)")
    return RollbackReport(name=name, index=previous, left=target.index)


def describe_versions(client: OpenSearch, name: str) -> list[dict]:
    """The versioned indexes of ``name`` with their model and whether they serve the name (for index info)."""
    rows = []
    try:
        serving = resolve(client, name).index
    except ConfigurationError:
        serving = None
    for index in sorted(_existing_versions(client, name), key=lambda n: version_of(name, n) or 0):
        meta = (_mapping(client, index).get("_meta") or {}).get(META_KEY) or {}
        rows.append({"index": index, "serving": index == serving,
                     "model": (meta.get("fingerprint") or {}).get("model"),
                     "previous_index": meta.get("previous_index")})
    return rows

