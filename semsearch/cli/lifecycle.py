"""The lifecycle commands: ``index enable-vectors``, ``backfill`` and ``migrate`` (thin: library code does the work).

:func:`register_lifecycle_commands` adds them to the groups of :mod:`semsearch.cli.commands`, which
passes its groups in: this module never imports that one, so the two cannot form an import cycle.
"""

from __future__ import annotations

import json
import sys
import time

import click

from semsearch.cli.common import load_settings, make_encoder
from semsearch.engines.index_body import ENGINES, SPACE_TYPES
from semsearch.engines.opensearch import redact_url
from semsearch.writing.write_schedule import write_while_encoding_for


def _echo(message: str) -> None:
    click.echo(message, err=True)


def _duration(seconds: float) -> str:
    """``42 s``, ``17 min``, ``5.2 h`` or ``3.0 days`` (pure)."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _progress_printer(label: str, every: float = 2.0):
    """A progress line on stderr at most every ``every`` seconds (and the first one at once)."""
    last = [0.0]

    def show(report) -> None:
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            _echo(f"{label}: scanned {report.scanned}, encoded {report.encoded}, written {report.written}")

    return show


def _knob_options(command):
    """Vector field knobs shared by enable-vectors (and documented for index create via the library)."""
    options = [
        click.option("--engine", type=click.Choice(ENGINES), default=None,
                     help="OpenSearch k-NN engine (default: SEMSEARCH_KNN_ENGINE, lucene). faiss needs the plugin's "
                          "native libraries: semsearch never picks it by itself. Elasticsearch: dense_vector."),
        click.option("--space-type", type=click.Choice(SPACE_TYPES), default=None,
                     help="OpenSearch only. Default: from the engine and the model's normalisation "
                          "(Elasticsearch: cosine)."),
        click.option("--m", "m", type=click.IntRange(min=2), default=None, help="HNSW m (default 16)."),
        click.option("--ef-construction", type=click.IntRange(min=2), default=None,
                     help="HNSW ef_construction (default 128)."),
        click.option("--ef-search", type=click.IntRange(min=1), default=None, help="HNSW ef_search (default 100)."),
        click.option("--compact", type=click.Choice(["sq", "fp16", "on_disk", "int8", "int4", "bbq"]), default=None,
                     help="Compact vectors. OpenSearch: sq (lucene 7-bit, 2.16+), fp16 (faiss, 2.13+), on_disk "
                          "(faiss, 2.17+); Elasticsearch: int8 (8.12+), int4 (8.15+), bbq (8.18+)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


_expunge_option = click.option(
    "--expunge-deletes/--keep-deletes", default=True, show_default=True,
    help="After writing vectors, merge away the replaced document versions (restores exact BM25 "
         "statistics and disk); --keep-deletes leaves it to Lucene's merges.")


def _run_backfill(name: str, *, batch_size: int, settings, expunge_deletes: bool = True,
                  every_document: bool = False) -> tuple[int, dict]:
    """Backfill ``name`` in-process or through the workers; prints the summary; returns (exit status, report)."""
    from semsearch.encoding.model_folder import fingerprint_of, load_model_spec  # noqa: PLC0415
    from semsearch.engines.opensearch import make_client  # noqa: PLC0415
    from semsearch.lifecycle.backfill import backfill  # noqa: PLC0415

    client = make_client(settings)
    progress = _progress_printer("backfill")
    if settings.broker_url is not None:
        from semsearch.distributed.celery_app import make_app  # noqa: PLC0415

        broker = redact_url(settings.broker_url)
        _echo(f"backfill through the ingest queue: {broker} (the workers encode)")
        fingerprint = fingerprint_of(load_model_spec(settings.model)).as_dict()
        report = backfill(client, name, fingerprint=fingerprint, app=make_app(settings), batch_docs=batch_size,
                          on_batch=progress, expunge_deletes=expunge_deletes, every_document=every_document,
                          on_wait=_echo)
    else:
        encoder = make_encoder(settings)
        report = backfill(client, name, fingerprint=encoder.fingerprint.as_dict(), encoder=encoder,
                          batch_docs=batch_size, on_batch=progress, expunge_deletes=expunge_deletes,
                          write_client=make_client(settings), bulk_max_docs=settings.bulk_max_docs,
                          bulk_max_bytes=settings.bulk_max_bytes,
                          write_while_encoding=write_while_encoding_for(settings, encoder),
                          every_document=every_document, on_wait=_echo)
    for failure in report.failures:
        _echo(f"failed: {failure}")
    resumed = ""
    if report.resumed_after:
        # An interrupted run's checkpoint is taken up by the next run of its kind, however late: say how old it is.
        age = f", where a run stopped {_duration(report.resumed_age)} ago" if report.resumed_age is not None else ""
        resumed = f" (resumed after {report.resumed_after!r}{age})"
    _echo(f"backfill of {report.index!r}{resumed}: scanned {report.scanned}, encoded {report.encoded}, "
          f"written {report.written}, failed {report.failed}, changed meanwhile {report.conflicts}, "
          + (f"deleted meanwhile {report.gone}, " if report.gone else "")
          + f"{report.passes} pass(es) in {report.elapsed:.1f}s"
          + (f", resumed {report.scan_recoveries} time(s) after a lost shard" if report.scan_recoveries else ""))
    if report.no_text:
        _echo(f"warning: {report.no_text} documents have none of the text fields: they have no vector (the index's "
              "text fields: semsearch index info)")
    if expunge_deletes and report.written and not report.expunged:
        _echo("warning: the replaced document versions were not all merged away (the reason is logged above: "
              "still merging, refused, or kept by the cluster); keyword scores drift slightly until Lucene merges "
              "them")
    if report.missing:
        _echo(f"error: {report.missing} documents with text still have no vector; run the backfill again")
    return (0 if report.ok else 1), report.as_dict()


def _note_fusion_left_behind(client, previous: str, current: str) -> None:
    """Say so when the old index kept a hybrid fusion (semsearch.query.stored_fusion): it was tuned on the old
    model's lists, so the new index starts without it."""
    from semsearch.index.manage import get_index_info  # noqa: PLC0415
    from semsearch.query.stored_fusion import FUSION_KEY  # noqa: PLC0415

    if previous and get_index_info(client, previous).meta.get(FUSION_KEY):
        _echo(f"note: {previous!r} kept a hybrid fusion tuned for the old model's lists; {current!r} starts with "
              "the default (semsearch eval --tune --save finds one for the new model)")


def register_lifecycle_commands(main: click.Group, index: click.Group) -> None:
    """Add ``index enable-vectors``, ``backfill`` and ``migrate`` to the CLI's groups."""

    @index.command("enable-vectors")
    @click.argument("name")
    @click.option("--text-field", "text_fields", multiple=True,
                  help="Text field to encode (repeatable); default: title and text where present (asked for where "
                       "only a title is, beside other text fields).")
    @_knob_options
    @click.option("--backfill/--no-backfill", "run_backfill", default=True, show_default=True,
                  help="Encode the existing documents right after.")
    @click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1))
    @_expunge_option
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON summary as the last line.")
    def enable_vectors_command(name: str, text_fields: tuple[str, ...], engine: str | None, space_type: str | None,
                               m: int | None, ef_construction: int | None, ef_search: int | None,
                               compact: str | None, run_backfill: bool, batch_size: int, expunge_deletes: bool,
                               as_json: bool) -> None:
        """Add a vector field to the existing index NAME, keeping its name, then backfill it.

        In place on Elasticsearch, and on OpenSearch when NAME already has k-NN enabled; otherwise its
        documents are copied server-side into NAME-vN (old mapping and analysers + the vector field)
        and NAME becomes an alias of it, in one atomic step. Writes to NAME are refused while the
        documents are copied.
        """
        from semsearch.encoding.model_folder import fingerprint_of, load_model_spec  # noqa: PLC0415
        from semsearch.engines.opensearch import make_client  # noqa: PLC0415
        from semsearch.lifecycle.lease import held  # noqa: PLC0415
        from semsearch.lifecycle.migrate import enable_vectors  # noqa: PLC0415

        settings = load_settings()
        fingerprint = fingerprint_of(load_model_spec(settings.model)).as_dict()
        client = make_client(settings)
        # One lease for both steps: no other lifecycle command slips in between the new field and its vectors.
        with held(client, name, "index enable-vectors", notify=_echo):
            report = enable_vectors(client, name, fingerprint=fingerprint,
                                    vector_field=settings.vector_field, text_fields=list(text_fields) or None,
                                    engine=engine or settings.knn_engine, space_type=space_type, m=m,
                                    ef_construction=ef_construction, ef_search=ef_search, compact=compact,
                                    notify=_echo)
            _echo(f"enable-vectors {name!r}: {report.mode}, {report.documents} documents in {report.index!r}")
            status, summary = 0, {"enable": report.as_dict(), "backfill": None}
            if run_backfill:
                status, summary["backfill"] = _run_backfill(name, batch_size=batch_size, settings=settings,
                                                            expunge_deletes=expunge_deletes)
        if as_json:
            click.echo(json.dumps(summary))
        sys.exit(status)

    @main.command("backfill")
    @click.argument("name")
    @click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1),
                  help="Documents per encoder batch (the checkpoint moves after each).")
    @click.option("--all", "every_document", is_flag=True,
                  help="Encode every document again, also those whose vector is up to date (their vectors and "
                       "passages are written anew: e.g. passages an older semsearch left stale).")
    @_expunge_option
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON summary as the last line.")
    def backfill_command(name: str, batch_size: int, every_document: bool, expunge_deletes: bool,
                         as_json: bool) -> None:
        """Encode every document of NAME that has no vector, or whose text changed since; resumable.

        In-process, or through the workers when SEMSEARCH_BROKER_URL is set. An interrupted run never
        encodes a finished document again: on OpenSearch it resumes from a checkpoint kept in the
        cluster; on Elasticsearch (which cannot scan in id order) it rescans and skips what is done
        (with --all, it starts over).
        """
        status, summary = _run_backfill(name, batch_size=batch_size, settings=load_settings(),
                                        expunge_deletes=expunge_deletes, every_document=every_document)
        if as_json:
            click.echo(json.dumps(summary))
        sys.exit(status)

    @main.command("migrate")
    @click.argument("name")
    @click.option("--model", "model", default=None,
                  help="The new model: a sentence-transformers folder or a model id on disk.")
    @click.option("--rollback", is_flag=True, help="Point NAME back at the index the last migration came from "
                  "(refused when writes were made through NAME since: they are not in that index).")
    @click.option("--force", is_flag=True, help="With --rollback: roll back even so, dropping those writes from NAME "
                  "(they stay in the index rolled back from).")
    @click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1))
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON summary as the last line.")
    def migrate_command(name: str, model: str | None, rollback: bool, force: bool, batch_size: int,
                        as_json: bool) -> None:
        """Move NAME to another model, blue/green: NAME-vN is encoded with --model, then NAME swaps to it.

        Counts are verified before the swap; the old index is kept (write-blocked) and
        'semsearch migrate NAME --rollback' swaps back. An interrupted migration resumes.
        """
        from semsearch.engines.opensearch import make_client  # noqa: PLC0415
        from semsearch.lifecycle.migrate import migrate  # noqa: PLC0415
        from semsearch.lifecycle.migrate import rollback as roll_back

        if rollback == (model is not None):
            raise click.UsageError("give either --model NEW (migrate) or --rollback")
        if force and not rollback:
            raise click.UsageError("--force goes with --rollback")
        settings = load_settings()
        client = make_client(settings)
        if rollback:
            result = roll_back(client, name, notify=_echo, force=force)
            if as_json:
                click.echo(json.dumps(result.as_dict()))
            return
        if settings.broker_url is not None:
            _echo("note: a migration encodes in this process (the workers serve the current model)")
        encoder = make_encoder(settings, model)
        report = migrate(client, name, encoder=encoder, batch_docs=batch_size, notify=_echo,
                         on_batch=_progress_printer("migrate"), write_client=make_client(settings),
                         bulk_format=settings.bulk_format,
                         write_while_encoding=write_while_encoding_for(settings, encoder))
        _echo(f"migrated {name!r} to {report.index!r}: {report.documents} documents, {report.encoded} encoded "
              f"with {encoder.fingerprint.model!r} in {report.elapsed:.1f}s; {report.previous!r} kept")
        if model is not None and model != settings.model:
            # Everything else that writes or queries the name must encode with the new model from now on.
            _echo(f"next: SEMSEARCH_MODEL={model} for whatever encodes for {name!r} (ingest, backfill, searches, "
                  "semsearch serve, and the workers, restarted); with the old model they are refused")
        _note_fusion_left_behind(client, report.previous, report.index)
        if as_json:
            click.echo(json.dumps(report.as_dict()))
