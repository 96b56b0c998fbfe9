"""The ``semsearch`` command line (click). Thin: every command calls library code."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import get_args

import click

from semsearch.cli.common import CommandGroup, load_settings, make_encoder
from semsearch.cli.lifecycle import register_lifecycle_commands
from semsearch.query.plan import fusion_from_options
from semsearch.engines.opensearch import redact_url
from semsearch.errors import SemsearchError
from semsearch.index.manage import DEFAULT_TEXT_FIELDS, PASSAGES_FIELD
from semsearch.settings import Precision
from semsearch.version import __version__

log = logging.getLogger("semsearch")


@click.group(cls=CommandGroup)
@click.version_option(version=__version__, prog_name="semsearch")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
def main(verbose: bool) -> None:
    """Semantic and hybrid search for OpenSearch. Settings come from SEMSEARCH_* variables."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("opensearch").setLevel(logging.ERROR if not verbose else logging.WARNING)


@main.group(cls=CommandGroup)
def index() -> None:
    """Create and inspect indexes."""


@index.command("create")
@click.argument("name")
@click.option("--text-field", "text_fields", multiple=True, help="Text field (repeatable); default: title, text.")
@click.option("--replicas", type=click.IntRange(min=0), default=None,
              help="Number of replicas (default: SEMSEARCH_INDEX_REPLICAS, else 1 on a cluster of several data "
                   "nodes, else the cluster's).")
def index_create(name: str, text_fields: tuple[str, ...], replicas: int | None) -> None:
    """Create NAME with a vector field sized for the model."""
    from semsearch.engines.opensearch import make_client  # noqa: PLC0415
    from semsearch.index.manage import create_index  # noqa: PLC0415

    settings = load_settings()
    encoder = make_encoder(settings)
    create_index(make_client(settings), name, fingerprint=encoder.fingerprint.as_dict(),
                 text_fields=list(text_fields or DEFAULT_TEXT_FIELDS), vector_field=settings.vector_field,
                 engine=settings.knn_engine, analyzer=settings.text_analyzer,
                 replicas=replicas if replicas is not None else settings.index_replicas, passages=PASSAGES_FIELD, backend=settings.backend)
    kind = "Elasticsearch dense_vector" if settings.backend == "elasticsearch" else settings.knn_engine
    click.echo(f"created index {name!r}: {encoder.dimension}-d {kind} vectors in "
               f"{settings.vector_field!r}, text fields {', '.join(text_fields or DEFAULT_TEXT_FIELDS)}")


@index.command("info")
@click.argument("name")
def index_info(name: str) -> None:
    """Show what semsearch knows about NAME: fields, fingerprint, counts, and what the cluster supports."""
    from semsearch.engines.capabilities import detect  # noqa: PLC0415
    from semsearch.engines.opensearch import make_client  # noqa: PLC0415
    from semsearch.index.manage import get_index_info  # noqa: PLC0415
    from semsearch.lifecycle.migrate import describe_versions, resolve  # noqa: PLC0415
    from semsearch.query.stored_fusion import FUSION_KEY  # noqa: PLC0415

    settings = load_settings()
    client = make_client(settings)
    target = resolve(client, name)
    cluster = detect(client, default_engine=settings.knn_engine).as_dict()
    count = client.count(index=name)["count"]
    mapping = client.indices.get_mapping(index=target.index)[target.index]["mappings"]
    summary = {"index": name, "concrete_index": target.index, "alias": target.is_alias, "documents": count}
    try:
        info = get_index_info(client, name)
    except SemsearchError as exc:  # a plain index: no vector field yet
        text_fields = [f for f, spec in mapping.get("properties", {}).items() if spec.get("type") == "text"]
        summary.update({"vector_field": None, "text_fields": text_fields, "hint": str(exc), "cluster": cluster})
        click.echo(json.dumps(summary, indent=2))
        return
    with_vectors = client.count(index=name, body={"query": {"exists": {"field": info.vector_field}}})["count"]
    summary.update({"documents_with_vector": with_vectors, "vector_field": info.vector_field,
                    "dimension": info.dimension, "text_fields": info.text_fields, "fingerprint": info.fingerprint,
                    "vector_mapping": mapping.get("properties", {}).get(info.vector_field),
                    "knn": info.meta.get("knn"), "passages": info.meta.get("passages"),
                    "fusion": info.meta.get(FUSION_KEY),  # stored by semsearch eval --tune --save / index fusion
                    "semsearch_version": info.meta.get("semsearch_version"),
                    "versions": describe_versions(client, name), "cluster": cluster})
    click.echo(json.dumps(summary, indent=2))


@index.command("fusion")
@click.argument("name")
@click.option("--fusion", "fusion_method", type=click.Choice(["rrf", "minmax", "zscore", "sum"]), default=None,
              help="Plain fusion method to store (without it, weights and --rrf-k tune the default adaptive fusion).")
@click.option("--keyword-weight", type=float, default=None, help="Weight of the BM25 list.")
@click.option("--semantic-weight", type=float, default=None, help="Weight of the kNN list.")
@click.option("--rrf-k", type=click.IntRange(min=1), default=None, help="RRF rank constant.")
@click.option("--clear", is_flag=True, help="Remove the stored fusion: searches use the default again.")
def index_fusion(name: str, fusion_method: str | None, keyword_weight: float | None, semantic_weight: float | None,
                 rrf_k: int | None, clear: bool) -> None:
    """Show, store or remove (--clear) the hybrid fusion NAME keeps: searches of NAME that name no fusion use it
    (Searcher, search, eval, serve). semsearch eval --tune --save stores the best one found on judged queries."""
    from semsearch.engines.opensearch import make_client  # noqa: PLC0415
    from semsearch.index.manage import get_index_info  # noqa: PLC0415
    from semsearch.query.search import INFO_TTL  # noqa: PLC0415
    from semsearch.query.stored_fusion import FUSION_KEY, fusion_entry, store_fusion  # noqa: PLC0415
    from semsearch.query.tuning import describe_fusion  # noqa: PLC0415

    fusion = fusion_from_options(fusion_method, keyword_weight, semantic_weight, rrf_k)
    if clear and fusion is not None:
        raise click.UsageError("--clear removes the stored fusion; it takes no fusion options")
    client = make_client(load_settings())
    if clear or fusion is not None:
        changed = store_fusion(client, name, None if clear else fusion_entry(fusion, {"by": "semsearch index fusion"}))
        done = "removed the stored fusion of" if clear else f"stored {describe_fusion(fusion)} in"
        click.echo(f"{done} {', '.join(changed)}; searches that name no fusion now use "
                   f"{'the default' if clear else 'it'} (a running searcher within {INFO_TTL:g} s)")
        return
    entry = get_index_info(client, name).meta.get(FUSION_KEY)
    click.echo(json.dumps(entry, indent=2) if entry else f"{name!r} keeps no fusion: searches use the default")


def _count_lines(paths: tuple[str, ...]) -> int | None:
    if any(p == "-" for p in paths):
        return None
    total = 0
    for path in paths:
        with open(path, "rb") as handle:
            total += sum(1 for line in handle if line.strip())
    return total


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--index", "index_name", required=True, help="Target index (created when missing).")
@click.option("--text-field", "text_fields", multiple=True,
              help="Text field (repeatable); default: the index's, or title and text for a new one.")
@click.option("--id-field", default="_id", show_default=True, help="Field holding the document id "
              "(missing: an id from the content hash).")
@click.option("--dead-letter", type=click.Path(dir_okay=False), default=None,
              help="Where rejected documents go (JSONL). Default: ./<index>.deadletter.jsonl")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Documents per batch (default: 1024 in-process, sorted by length together; 256 per queued task).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@click.option("--skip-existing/--no-skip-existing", default=True, show_default=True,
              help="Skip documents already indexed with the same content (resumes an interrupted run).")
def ingest(paths: tuple[str, ...], index_name: str, text_fields: tuple[str, ...], id_field: str,
           dead_letter: str | None, batch_size: int, progress: bool | None, skip_existing: bool) -> None:
    """Index JSONL documents (one object a line; - reads stdin) with their vectors."""
    from semsearch.distributed.producer import TASK_BATCH_DOCS, run_distributed  # noqa: PLC0415
    from semsearch.encoding.model_folder import fingerprint_of, load_model_spec  # noqa: PLC0415
    from semsearch.engines.opensearch import make_client  # noqa: PLC0415
    from semsearch.index.manage import ensure_index  # noqa: PLC0415
    from semsearch.writing.bulk import BulkWriter  # noqa: PLC0415
    from semsearch.writing.documents import DeadLetterFile, DocumentSchema, read_jsonl  # noqa: PLC0415
    from semsearch.writing.pipeline import IN_PROCESS_BATCH_DOCS, run_in_process  # noqa: PLC0415
    from semsearch.writing.write_schedule import write_while_encoding_for  # noqa: PLC0415

    for path in paths:
        if path != "-" and not Path(path).is_file():
            why = "a directory: name the JSONL files in it" if Path(path).is_dir() else "no such file"
            raise click.BadParameter(f"{path}: {why}", param_hint="PATHS")
    settings = load_settings()
    client = make_client(settings)
    distributed = settings.broker_url is not None
    # Through the queue the workers encode: this process needs the model's fingerprint, not its weights.
    encoder = None if distributed else make_encoder(settings)
    fingerprint = (encoder.fingerprint if encoder else fingerprint_of(load_model_spec(settings.model))).as_dict()
    info, created = ensure_index(client, index_name, fingerprint=fingerprint, settings=settings,
                                 text_fields=list(text_fields) or None)
    if created:
        click.echo(f"created index {index_name!r}", err=True)
    # The index's own order (the same fields, checked): the content hash is of the texts in that order, as backfill's.
    schema = DocumentSchema.from_settings(settings, text_fields=tuple(info.text_fields),
                                          id_field=id_field, vector_field=info.vector_field)
    show = sys.stderr.isatty() if progress is None else progress
    total = _count_lines(paths) if show else None
    def wait_message(message: str) -> None:
        click.echo(f"waiting: {message}", err=True)

    with DeadLetterFile(dead_letter or f"{index_name}.deadletter.jsonl") as dead, \
            click.progressbar(length=total or 0, label="indexed", file=sys.stderr, show_pos=True,
                              hidden=not show) as bar:
        items = read_jsonl(paths, schema)
        if distributed:
            from semsearch.distributed.celery_app import make_app  # noqa: PLC0415

            click.echo(f"ingest queue: {redact_url(settings.broker_url)} (documents are encoded by the workers)",
                       err=True)
            existing = BulkWriter(client, index_name, info.vector_field, on_wait=wait_message) if skip_existing else None
            report = run_distributed(items, app=make_app(settings), index=index_name, vector_field=info.vector_field,
                                     dead_letter=dead, batch_docs=batch_size or TASK_BATCH_DOCS,
                                     progress=bar.update,
                                     on_wait=wait_message, resend_after=settings.task_resend_after,
                                     existing=existing, id_field=id_field)
        else:
            writer = BulkWriter.from_settings(client, index_name, info.vector_field, settings, on_wait=wait_message,
                                              passages_field=info.passages_field)
            report = run_in_process(items, encoder=encoder, writer=writer, dead_letter=dead,
                                    batch_docs=batch_size or IN_PROCESS_BATCH_DOCS, progress=bar.update,
                                    chunk_overlap=info.passage_overlap,
                                    skip_existing=skip_existing, id_field=id_field,
                                    write_while_encoding=write_while_encoding_for(settings, encoder))
    if report.indexed or report.skipped:  # skipped: an earlier, interrupted run's writes may be unrefreshed
        _make_searchable(client, index_name, settings)
    for failure in report.failures:
        click.echo(f"rejected: {failure}", err=True)
    if report.rejected + report.failed > len(report.failures):
        click.echo(f"… {report.rejected + report.failed - len(report.failures)} more", err=True)
    summary = (f"indexed {report.indexed} of {report.read} documents in {report.elapsed:.1f}s "
               f"({report.docs_per_second:.0f} docs/s); rejected {report.rejected}, failed {report.failed}, "
               f"retried {report.retried}, skipped {report.skipped} (already indexed), "
               f"chunked {report.chunked} (longer than the model's window)")
    if report.dead_letter:
        summary += f"; dead letters in {report.dead_letter}"
        if dead.earlier:  # appended: the file is not this run's alone
            summary += (f" (appended after {dead.earlier} from earlier runs; each line's \"run\" says which: "
                        f"this one's is {dead.run})")
    click.echo(summary, err=True)
    sys.exit(0 if report.ok else 1)


@main.command()
@click.option("--device", default=None, help="cuda:0, cpu… (default: SEMSEARCH_DEVICE, else cuda if present).")
@click.option("--precision", type=click.Choice(get_args(Precision)), default=None,
              help="Encoder precision (default: SEMSEARCH_PRECISION, else auto: fp16 on a GPU, bf16 on CPUs "
                   "with AMX or AVX512-BF16, else fp32).")
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes; one per GPU.")
@click.option("--loglevel", default="INFO", show_default=True)
def worker(device: str | None, precision: str | None, concurrency: int, loglevel: str) -> None:
    """Start an encoder worker on the ingest queue (needs SEMSEARCH_BROKER_URL)."""
    import os  # noqa: PLC0415
    import socket  # noqa: PLC0415

    settings = load_settings()
    if settings.broker_url is None:
        raise click.UsageError("SEMSEARCH_BROKER_URL is not set: a worker needs the Redis queue to read from")
    # Children read these from their own settings; the parent never touches CUDA before fork.
    if device:
        os.environ["SEMSEARCH_DEVICE"] = device
    if precision:
        os.environ["SEMSEARCH_PRECISION"] = precision
    from semsearch.distributed.celery_app import ENCODE_QUEUE, make_app  # noqa: PLC0415

    click.echo(f"semsearch worker: queue {ENCODE_QUEUE!r} on {redact_url(settings.broker_url)}, "
               f"{concurrency} process(es), device {device or settings.device or 'auto'}, "
               f"precision {precision or settings.precision}", err=True)
    make_app(settings).worker_main(["worker", "-Q", ENCODE_QUEUE, "-c", str(concurrency), "-P", "prefork",
                                    "--loglevel", loglevel, "-n", f"semsearch-{os.getpid()}@{socket.gethostname()}"])


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default; 0.0.0.0 for every interface).")
@click.option("--port", default=8600, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Server processes (each loads the model).")
@click.option("--token", envvar="SEMSEARCH_SERVE_TOKEN", default=None,
              help="Bearer token required by /v1/* and /metrics (or SEMSEARCH_SERVE_TOKEN).")
@click.option("--max-batch", default=64, show_default=True, type=click.IntRange(min=1),
              help="Most concurrent queries encoded in one model call.")
@click.option("--max-wait-ms", default=2.0, show_default=True, type=click.FloatRange(min=0),
              help="How long a query waits for others to share its batch.")
def serve(host: str, port: int, workers: int, token: str | None, max_batch: int, max_wait_ms: float) -> None:
    """Serve /v1/search, /v1/encode, /healthz, /metrics, a search page at /, and a proxy to the cluster that
    runs OpenSearch `neural` queries without the neural-search plugin."""
    import os  # noqa: PLC0415

    import uvicorn  # noqa: PLC0415

    from semsearch.service.app import BATCH_VARIABLES, TOKEN_VARIABLE  # noqa: PLC0415

    settings = load_settings()
    os.environ.update(zip(BATCH_VARIABLES, (str(max_batch), str(max_wait_ms))))
    if token:
        os.environ[TOKEN_VARIABLE] = token  # the workers read it; never printed
    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        click.echo(f"warning: listening on {host} without --token: anyone who reaches it can search, and send any "
                   "request to the cluster with the service's credentials", err=True)
    click.echo(f"semsearch serve: http://{host}:{port}/ (proxy to {redact_url(settings.opensearch_url)}), "
               f"{workers} worker(s)", err=True)
    # h11, not httptools: httptools drops the body of a request that asks to upgrade to HTTP/2 ("Upgrade: h2c",
    # sent by Java's HttpClient and curl --http2), so a proxied search would run as match_all (uvicorn#2722).
    uvicorn.run("semsearch.service.app:app_from_environment", factory=True, host=host, port=port, workers=workers,
                log_level="warning", http="h11")


def _fusion_options(command):
    """--fusion / --keyword-weight / --semantic-weight / --rrf-k / --window: hybrid settings."""
    for option in reversed([
        click.option("--fusion", "fusion_method", type=click.Choice(["rrf", "minmax", "zscore", "sum"]), default=None,
                     help="Hybrid fusion method, plain (default: weighted RRF with an adaptive keyword side, z-scores "
                          "where BM25's or kNN's best match stands out; see docs/benchmarks.md). sum: weighted raw "
                          "scores, fused by the cluster on either engine (default keyword weight 0.003, best on "
                          "dbpedia-entity)."),
        click.option("--keyword-weight", type=float, default=None, help="Weight of the BM25 list in hybrid mode."),
        click.option("--semantic-weight", type=float, default=None, help="Weight of the kNN list in hybrid mode."),
        click.option("--rrf-k", type=click.IntRange(min=1), default=None, help="RRF rank constant."),
        click.option("--window", type=click.IntRange(min=1), default=None,
                     help="Candidates per retriever in hybrid mode (default 100)."),
    ]):
        command = option(command)
    return command


def _filters_from(values: tuple[str, ...]) -> list[dict] | None:
    filters = []
    for value in values:
        try:
            clause = json.loads(value)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"{value!r} is not JSON: {exc.msg}", param_hint="--filter") from exc
        if not isinstance(clause, dict):
            raise click.BadParameter(f"{value!r} must be a JSON object (a query clause)", param_hint="--filter")
        filters.append(clause)
    return filters or None


@main.command()
@click.argument("query")
@click.option("--index", "index_name", required=True)
@click.option("--mode", type=click.Choice(["hybrid", "semantic", "keyword"]), default="hybrid", show_default=True)
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(min=1), help="Hits to show.")
@click.option("--offset", default=0, show_default=True, type=click.IntRange(min=0), help="Hits to skip (paging).")
@click.option("--filter", "filter_values", multiple=True, metavar="JSON",
              help='A query clause applied to both retrievers, e.g. \'{"term": {"lang": "en"}}\' (repeatable).')
@click.option("--explain", is_flag=True, help="Show each hit's rank, raw score and contribution per retriever, and "
              "(hybrid) how the lists were fused: a line above the hits, or each JSON record's \"fusion\".")
@click.option("--highlight", is_flag=True, help="Show keyword matches in the text fields.")
@click.option("--server-side/--client-side", "server_side", default=None,
              help="Fuse on the cluster or on the client; default: the cluster when it can (OpenSearch: "
                   "neural-search plugin; Elasticsearch: rrf retriever on an Enterprise licence; either: --fusion sum).")
@_fusion_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object a hit.")
def search(query: str, index_name: str, mode: str, k: int, offset: int, filter_values: tuple[str, ...],
           explain: bool, highlight: bool, server_side: bool | None, fusion_method: str | None,
           keyword_weight: float | None, semantic_weight: float | None, rrf_k: int | None, window: int | None,
           as_json: bool) -> None:
    """Search INDEX for QUERY."""
    from semsearch.query.search import Searcher  # noqa: PLC0415

    hits = Searcher(load_settings()).search(
        query, index=index_name, k=k, mode=mode, offset=offset, filters=_filters_from(filter_values),
        fusion=fusion_from_options(fusion_method, keyword_weight, semantic_weight, rrf_k), window=window,
        explain=explain, highlight=highlight, server_side=server_side)
    if getattr(hits, "partial", False):  # said even when the answer holds no hit
        click.echo(f"warning: partial results: some shards of {index_name!r} did not answer (a node down?), so "
                   "hits may be missing (SEMSEARCH_PARTIAL_RESULTS=fail refuses such answers)", err=True)
    fusion = getattr(hits, "fusion", None)  # with --explain, how hybrid fused the lists (client-side fusion)
    if as_json:
        for hit in hits:
            record = {"id": hit.id, "score": hit.score, "contributions": hit.contributions, "source": hit.source,
                      "partial": hit.partial}
            if highlight:
                record["highlights"] = hit.highlights
            if explain:
                record["explanation"] = hit.explanation
                if fusion is not None:
                    record["fusion"] = fusion.as_json()
            click.echo(json.dumps(record, ensure_ascii=False))
        return
    if fusion is not None and hits:  # nothing fused, nothing to say
        click.echo(fusion.description)
    if not hits:
        click.echo("no hits")
    for rank, hit in enumerate(hits, start=offset + 1):
        title = hit.source.get("title") or ""
        text = " ".join(str(hit.source.get("text") or "").split())
        click.echo(f"{rank:>2}. {hit.score:.4f}  {hit.id}  {title}")
        if highlight and hit.highlights:
            for field_name, fragments in hit.highlights.items():
                click.echo(f"      {field_name}: {' … '.join(fragments[:2])}")
        elif text:
            click.echo(f"      {text[:150]}{'…' if len(text) > 150 else ''}")
        if explain and hit.explanation:
            parts = []
            for name, part in hit.explanation.items():
                where = f"rank {part['rank']}, score {part['raw_score']:.4f}" if part["rank"] else "not retrieved"
                for key, words in (("phrase_rank", "phrase rank"), ("rare_strict_rank", "rare strict rank")):
                    if part.get(key):  # weighted up as a phrase match, or a rare strict one (the default fusion)
                        where = (f"{where}, " if part["rank"] else "") + f"{words} {part[key]}"
                parts.append(f"{name}: {where} → {part['contribution']:.4f}")
            click.echo("      " + "; ".join(parts))


def _make_searchable(client, index_name: str, settings) -> None:
    """What ``ingest`` wrote, searchable when it says so; a refresh that fails fails no ingest (its documents are
    indexed, and searchable once the index is refreshed)."""
    from opensearchpy.exceptions import OpenSearchException  # noqa: PLC0415
    from semsearch.engines.opensearch import cluster_error  # noqa: PLC0415
    from semsearch.index.manage import make_searchable  # noqa: PLC0415

    try:
        make_searchable(client, index_name)
    except OpenSearchException as exc:
        error = cluster_error(exc, f"refreshing {index_name!r}", settings)
        click.echo(f"warning: the documents are indexed in {index_name!r}, but {error}; they are searchable once "
                   "the index is refreshed", err=True)


@main.command("eval")
@click.option("--index", "index_name", required=True)
@click.option("--queries", "queries_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--qrels", "qrels_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--mode", "modes", multiple=True, type=click.Choice(["hybrid", "semantic", "keyword"]),
              help="Mode to evaluate (repeatable); default: all three.")
@click.option("--tune", is_flag=True, help="Also try a grid of fusion methods and weights on these judgments, "
              "print the best and a two-fold cross-check; nothing is changed without --save.")
@click.option("--save", is_flag=True, help="With --tune: store the best fusion in the index when it beats the "
              "one searches of the index use now and the cross-check carries, so that searches that name no "
              "fusion use it (semsearch index fusion NAME --clear removes it).")
@_fusion_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object as the last line.")
def evaluate_command(index_name: str, queries_path: str, qrels_path: str, modes: tuple[str, ...], tune: bool,
                     save: bool, fusion_method: str | None, keyword_weight: float | None,
                     semantic_weight: float | None, rrf_k: int | None, window: int | None, as_json: bool) -> None:
    """nDCG@10 and Recall@100 per mode on BEIR-format queries and qrels, and hybrid's margin over the better
    single mode with its standard error."""
    from semsearch.query.evaluation import (  # noqa: PLC0415
        EVALUATED_DEPTH, evaluate, hybrid_margin, judged_ids, load_qrels, load_queries, ranked_from_candidates)
    from semsearch.query.search import Searcher  # noqa: PLC0415
    from semsearch.query.stored_fusion import FUSION_KEY  # noqa: PLC0415
    from semsearch.query.tuning import describe_fusion  # noqa: PLC0415

    fusion = fusion_from_options(fusion_method, keyword_weight, semantic_weight, rrf_k)
    if save and not tune:
        raise click.UsageError("--save stores what --tune finds: pass --tune too")
    if save and fusion is not None:
        raise click.UsageError("--save compares the best setting with the one searches of the index use now: "
                               "leave out --fusion, --keyword-weight, --semantic-weight and --rrf-k")
    queries = load_queries(queries_path)
    qrels = load_qrels(qrels_path)
    searcher = Searcher(load_settings())
    info = searcher.index_info(index_name)
    current = searcher.fusion_for(info, fusion)  # reads the stored one only when no option names a fusion
    from_index = fusion is None and bool(info.meta.get(FUSION_KEY))
    results: dict = {"hybrid_fusion": {"fusion": describe_fusion(current), "stored_in_index": from_index}}
    if not as_json and from_index:
        click.echo(f"hybrid fuses with the setting stored in {index_name!r}: {describe_fusion(current)} "
                   f"(semsearch index fusion {index_name} --clear: the default again)")
    per_query: dict[str, dict[str, float]] = {}
    window = max(EVALUATED_DEPTH, window or searcher.window)  # candidates per retriever: enough for Recall@100
    modes = modes or ("keyword", "semantic", "hybrid")
    candidates: dict = {}
    if "hybrid" in modes or tune:  # each judged query's candidate lists, fetched once
        candidates = {q: searcher.candidates(queries[q], index=index_name, window=window)
                      for q in judged_ids(queries, qrels)}
    # A mode whose search would ask what the candidates' requests asked is ranked from them (one request per query,
    # not one per mode and another for the lists): hybrid when this client fuses it, a single mode at a 100 window.
    from_candidates = {mode for mode in modes if candidates and (
        searcher.fuses_on_client(info, fusion) if mode == "hybrid" else window == EVALUATED_DEPTH)}
    lists_of = {queries[q]: lists for q, lists in candidates.items()}
    for mode in modes:
        def run(text: str, mode: str = mode) -> list[str]:
            if mode in from_candidates:
                return ranked_from_candidates(lists_of[text], mode, current, window)
            # Ids are all it scores: no source (100 long documents a query would be most of eval's time)
            return [h.id for h in searcher.search(text, index=index_name, k=EVALUATED_DEPTH, mode=mode, fusion=fusion,
                                                  window=window, source=False)]

        scores = evaluate(run, queries, qrels, per_query.setdefault(mode, {}))
        results[mode] = {"ndcg@10": round(scores["ndcg@10"], 4), "recall@100": round(scores["recall@100"], 4)}
        if not as_json:
            click.echo(f"{mode:<9} nDCG@10 {scores['ndcg@10']:.4f}  Recall@100 {scores['recall@100']:.4f}  "
                       f"({int(scores['queries'])} judged queries)")
    margin = hybrid_margin(per_query)
    if margin is not None:
        error = margin["standard_error"]
        results["hybrid_margin"] = {**margin, "margin": round(margin["margin"], 4),
                                    "standard_error": None if error is None else round(error, 4)}
        if not as_json:
            for line in margin_lines(margin, tuning=tune):
                click.echo(line)
    if candidates:
        results["candidates"] = _candidate_health(candidates, window, as_json)
    if tune:
        results["tune"] = _tune(index_name, searcher, candidates, qrels, current, window, results, as_json, save)
    if as_json:
        click.echo(json.dumps(results))


def margin_lines(margin: dict, tuning: bool) -> list[str]:
    """What ``eval`` says about hybrid's margin over the better single mode (``hybrid_margin``)."""
    best, value, error, count = (margin[key] for key in ("best_single_mode", "margin", "standard_error", "queries"))
    spread = "" if error is None else f", standard error {error:.4f}"
    lines = [f"hybrid vs {best} (the better single mode): {value:+.4f} nDCG@10{spread} "
             f"({count} {'query' if count == 1 else 'queries'})"]
    if round(value, 4) < 0:
        # Twice the error: the bar docs/benchmarks.md uses for a loss that is not the draw of the queries.
        if error is not None and -value >= 2 * error:
            lines.append(f"Hybrid is below {best} search on these queries, by more than twice the standard error."
                         + ("" if tuning else " --tune tries other fusions on them."))
        else:
            lines.append(f"Hybrid is below {best} search on these queries, but by less than twice the standard "
                         "error: more judged queries would tell whether the loss is real.")
    return lines


def _candidate_health(candidates: dict, window: int, as_json: bool) -> dict:
    """How many judged queries got an empty or a short candidate list from each retriever (hybrid's inputs):
    a side that is often empty adds nothing to the fusion, whatever its weight."""
    from semsearch.query.evaluation import candidate_health  # noqa: PLC0415
    from semsearch.query.fusion import (  # noqa: PLC0415
        LONG_DOCUMENT_TERMS, SHORT_DOCUMENT_TERMS, SMALL_INDEX_DOCUMENTS)

    health = candidate_health(candidates, window)
    if not as_json:
        click.echo(f"candidate lists over {health['queries']} judged queries (window {window}; short: fewer than "
                   f"{health['short_below']}):")
        for name, counts in health["lists"].items():
            click.echo(f"  {name:<12} empty {counts['empty']:>4}  short {counts['short']:>4}  "
                       f"median length {counts['median']:g}")
        for kind, count in health["keyword_evidence"].items():
            click.echo(f"  adaptive keyword side (the default fusion's) {kind}: {count}")
        click.echo(f"  fused by score (the default fusion's), of all reasons: {health['fused_by_score']}")
        click.echo(f"  fused by score, BM25's best match standing out (not a question; the default fusion's): "
                   f"{health['fused_for_standout']}")
        click.echo(f"  fused by score, kNN's best match far ahead of its second (the default fusion's): "
                   f"{health['fused_for_dense_lead']}")
        click.echo(f"  fused by score, a question (the dense side far the heavier; the default fusion's): "
                   f"{health['fused_as_question']}")
        click.echo(f"  fused by score, few documents searched (under {SMALL_INDEX_DOCUMENTS}; the default fusion's): "
                   f"{health['fused_for_small_index']}")
        click.echo(f"  fused by score, few documents searched for one term that BM25's best match holds throughout "
                   f"(keyword weighted up; the default fusion's): {health['fused_for_subject']}")
        click.echo(f"  fused by score, few documents searched and long ones, {LONG_DOCUMENT_TERMS:g} terms or more on "
                   f"average (keyword weighted up; the default fusion's): {health['fused_for_long_documents']}")
        click.echo(f"  fused by score, few documents searched and short ones, under {SHORT_DOCUMENT_TERMS:g} terms on "
                   f"average (semantic weighted far above keyword; the default fusion's): "
                   f"{health['fused_for_short_documents']}")
        click.echo(f"  with documents holding the query as a phrase, weighted up (the default fusion's): "
                   f"{health['with_phrase_matches']}")
        click.echo(f"  with the few documents holding most of the query's terms, weighted up (few documents searched; "
                   f"the default fusion's): {health['with_rare_strict_matches']}")
    return health


def _tune(index_name: str, searcher, candidates: dict, qrels: dict, fusion, window: int, results: dict,
          as_json: bool, save: bool) -> dict:
    from semsearch.query.tuning import cross_check, fusion_grid, score_fusion, tune  # noqa: PLC0415

    judged, grid = list(candidates), fusion_grid()
    ranking = tune(candidates, qrels, grid, window)
    current = score_fusion(fusion, candidates, qrels, window)
    checked = cross_check(candidates, qrels, grid, fusion, window)
    best = ranking[0]
    singles = {m: results[m]["ndcg@10"] for m in ("keyword", "semantic") if m in results}
    summary = {"best": {"fusion": best.describe(), "ndcg@10": round(best.ndcg, 4), "recall@100": round(best.recall, 4)},
               "current": {"fusion": current.describe(), "ndcg@10": round(current.ndcg, 4)},
               "gain_over_current": round(best.ndcg - current.ndcg, 4),
               "top": [{"fusion": s.describe(), "ndcg@10": round(s.ndcg, 4)} for s in ranking[:5]]}
    if singles:
        summary["gain_over_best_single_mode"] = round(best.ndcg - max(singles.values()), 4)
    if checked is not None:
        summary["cross_check"] = {"gain_over_current": round(checked.gain, 4), "folds": len(checked.choices),
                                  "chosen": list(checked.choices)}
    if save:
        summary["saved"] = _save_tuned(index_name, searcher, best, current, len(judged), checked)
    if not as_json:
        click.echo(f"tuning over {len(ranking)} fusion settings on {len(judged)} judged queries:")
        for entry in ranking[:5]:
            click.echo(f"  nDCG@10 {entry.ndcg:.4f}  {entry.describe()}")
        click.echo(f"best: {best.describe()}: nDCG@10 {best.ndcg:.4f}, {best.ndcg - current.ndcg:+.4f} over the "
                   f"current setting ({current.describe()}, {current.ndcg:.4f})")
        if checked is not None:
            click.echo(f"tuned on half of the queries, scored on the other half (both ways): {checked.gain:+.4f} "
                       "nDCG@10 over the current setting"
                       + ("" if checked.gain > 0 else ": tuning on these judgments does not carry to unseen "
                          "queries; more judged queries would tell"))
        if save and summary["saved"]:
            click.echo(f"stored in {', '.join(summary['saved'])}: searches of {index_name!r} that name no fusion "
                       f"use it from now on (semsearch index fusion {index_name} --clear: the default again)")
        elif save:
            click.echo(f"nothing stored: {_save_refusal(best, current, checked)}")
        else:
            click.echo("the defaults are unchanged; --save stores it in the index, for every search of it that "
                       "names no fusion; or pass these settings as FusionConfig(...) to Searcher, or as "
                       "--fusion/--keyword-weight/--semantic-weight/--rrf-k to search and eval (an 'adaptive=true' "
                       "setting: the weights and --rrf-k without --fusion). A setting tuned on few queries may "
                       "not carry over to others.")
    return summary


def _save_refusal(best, current, checked) -> str | None:
    """Why ``--save`` would store nothing (None: it stores ``best``): it must beat ``current`` on the judged
    queries, and tuning must carry to unseen ones in the cross-check (a setting fitted to few queries could do
    worse than the one it replaces)."""
    if round(best.ndcg, 6) <= round(current.ndcg, 6):
        return "the current setting is as good as the best on these queries"
    if checked is not None and checked.gain <= 0:
        return "tuning on half of these queries did not carry to the other half"
    return None


def _save_tuned(index_name: str, searcher, best, current, queries: int, checked) -> list[str]:
    """Store ``best`` in the index, with how it was chosen, unless ``_save_refusal`` says why not; the indexes
    changed."""
    from semsearch.query.stored_fusion import fusion_entry, store_fusion  # noqa: PLC0415

    if _save_refusal(best, current, checked):
        return []
    tuned = {"by": "semsearch eval --tune --save", "judged_queries": queries, "ndcg@10": round(best.ndcg, 4),
             "replaced": current.describe(), "replaced_ndcg@10": round(current.ndcg, 4)}
    if checked is not None:
        tuned["cross_check_gain"] = round(checked.gain, 4)
    return store_fusion(searcher.client, index_name, fusion_entry(best.fusion, tuned))


register_lifecycle_commands(main, index)  # index enable-vectors, backfill, migrate
