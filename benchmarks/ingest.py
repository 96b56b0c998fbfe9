"""End-to-end ingest throughput, side by side in one run on the dbpedia-entity corpus.

    python benchmarks/ingest.py [--docs 1000] [--rounds 1]

Needs the local services (scripts/services.sh up). Measures, on the same documents, each run into a
fresh empty index created before its clock starts:
- pure encode: semsearch's encoder alone, in its default precision (the ceiling for ingest here);
- in-process ingest: file → searchable (refreshed), no broker, default settings (Smile bulk bodies);
- in-process with JSON bulk bodies (SEMSEARCH_BULK_FORMAT=json), to show what Smile is worth;
- in-process writing each part while the next encodes (SEMSEARCH_WRITE_SCHEDULE=while_encoding), to
  show what the default schedule is worth here (it writes after each batch when a CPU encoder
  shares this machine with the cluster; semsearch/write_schedule.py);
- Celery ingest: file → searchable through Redis and one real `semsearch worker` process;
- streaming: the same documents as single-document `semsearch.submit` calls, worker running;
- naive baseline: sentence-transformers encode() of everything with its defaults (fp32), then
  opensearch-py helpers.bulk — what a user would otherwise write;
- the same naive loop with sentence-transformers in bf16, so that the precision's share of the
  lead is on record too (on a CPU without AMX semsearch's default is fp32 and this run is skipped).
Prints one JSON line of docs/s and the ratios the issue sets targets for.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import DATA  # noqa: E402
from semsearch import Encoder, Settings  # noqa: E402
from semsearch.writing.bulk import BulkWriter  # noqa: E402
from semsearch.engines.opensearch import make_client  # noqa: E402
from semsearch.writing.documents import DeadLetterFile, Document, DocumentSchema, read_jsonl  # noqa: E402
from semsearch.index.manage import create_index  # noqa: E402
from semsearch.writing.pipeline import run_in_process  # noqa: E402
from semsearch.writing.write_schedule import write_while_encoding_for  # noqa: E402

BROKER = os.environ.get("SEMSEARCH_BENCH_BROKER_URL", "redis://127.0.0.1:6379/2")


def fresh_index(client, encoder: Encoder, settings: Settings) -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    create_index(client, name, fingerprint=encoder.fingerprint.as_dict(), text_fields=["title", "text"],
                 vector_field=settings.vector_field, engine=settings.knn_engine, analyzer=settings.text_analyzer,
                 replicas=0)
    return name


def wait_searchable(client, index: str, count: int, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while True:
        client.indices.refresh(index=index)
        if client.count(index=index)["count"] >= count:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{index}: {client.count(index=index)['count']} of {count} after {timeout}s")
        time.sleep(0.2)


def start_worker(log_path: Path) -> subprocess.Popen:
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "worker", "--device", "cpu"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "SEMSEARCH_BROKER_URL": BROKER})
    while "ready." not in log_path.read_text():
        if proc.poll() is not None:
            raise RuntimeError(log_path.read_text())
        time.sleep(0.3)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    import redis
    import torch
    from opensearchpy import helpers
    from sentence_transformers import SentenceTransformer

    import semsearch

    settings = Settings()
    client = make_client(settings)
    encoder = Encoder(device="cpu")
    work = Path(tempfile.mkdtemp(prefix="semsearch-bench-"))
    corpus = work / "corpus.jsonl"
    with open(DATA / "dbpedia-entity" / "corpus.jsonl", encoding="utf-8") as src:
        corpus.write_text("".join(line for _, line in zip(range(args.docs), src)), encoding="utf-8")
    schema = DocumentSchema()
    docs = [d for d in read_jsonl([corpus], schema) if isinstance(d, Document)]
    raw_docs = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    reference = SentenceTransformer(str(semsearch.encoding.model_folder.default_model_path()), device="cpu")
    half_reference = None
    if encoder.precision == "bf16":
        half_reference = SentenceTransformer(str(semsearch.encoding.model_folder.default_model_path()), device="cpu",
                                             model_kwargs={"torch_dtype": torch.bfloat16})
    redis.Redis.from_url(BROKER).flushdb()
    worker = start_worker(work / "worker.log")
    indexes: list[str] = []
    timings: dict[str, list[float]] = {}

    def timed(name: str, run) -> None:
        index = fresh_index(client, encoder, settings)  # index creation is not part of ingest
        indexes.append(index)
        started = time.perf_counter()
        run(index)
        timings.setdefault(name, []).append(time.perf_counter() - started)
        client.indices.delete(index=index)

    def pure_encode(index: str) -> None:
        encoder.encode_documents([d.text for d in docs])

    def in_process(index: str, bulk_format: str = "smile", schedule: str = settings.write_schedule) -> None:
        writer = BulkWriter(client, index, settings.vector_field, body_format=bulk_format)
        # As `semsearch ingest` decides it: here (CPU encoder, cluster on this machine) after each batch.
        while_encoding = write_while_encoding_for(settings.model_copy(update={"write_schedule": schedule}), encoder)
        with DeadLetterFile(work / "dead.jsonl") as dead:
            report = run_in_process(read_jsonl([corpus], schema), encoder=encoder, writer=writer, dead_letter=dead,
                                    write_while_encoding=while_encoding)
        assert report.ok, report.as_dict()
        wait_searchable(client, index, len(docs))

    def celery(index: str) -> None:
        result = subprocess.run([sys.executable, "-m", "semsearch.cli", "ingest", str(corpus), "--index", index],
                                capture_output=True, text=True, env={**os.environ, "SEMSEARCH_BROKER_URL": BROKER})
        assert result.returncode == 0, result.stderr
        wait_searchable(client, index, len(docs))

    def streaming(index: str) -> None:
        stream_settings = Settings(broker_url=BROKER)
        for doc in raw_docs:
            semsearch.submit(doc, index=index, settings=stream_settings)
        wait_searchable(client, index, len(docs))

    def naive(index: str, model=reference) -> None:
        texts = [" ".join(t for t in (d.get("title", ""), d.get("text", "")) if t) for d in raw_docs]
        vectors = model.encode(texts)
        actions = ({"_index": index, "_id": d["_id"], "_source": {"title": d.get("title"), "text": d.get("text"),
                                                                   "embedding": v.tolist()}}
                   for d, v in zip(raw_docs, vectors))
        helpers.bulk(client, actions)
        wait_searchable(client, index, len(docs))

    try:
        pure_encode("")  # warm-up
        # Warm the worker too: its model loads on its first task, which no timed run should pay for.
        warm = work / "warm.jsonl"
        warm.write_text("".join(corpus.read_text(encoding="utf-8").splitlines(keepends=True)[:10]), encoding="utf-8")
        warm_index = fresh_index(client, encoder, settings)
        indexes.append(warm_index)
        subprocess.run([sys.executable, "-m", "semsearch.cli", "ingest", str(warm), "--index", warm_index],
                       capture_output=True, env={**os.environ, "SEMSEARCH_BROKER_URL": BROKER}, check=True)
        runs = [("pure_encode", pure_encode), ("in_process", in_process),
                ("in_process_json", lambda index: in_process(index, "json")),
                ("in_process_writing_while_encoding", lambda index: in_process(index, schedule="while_encoding")),
                ("celery", celery),
                ("streaming", streaming), ("naive", naive)]
        if half_reference is not None:
            half_reference.encode(["warm-up"])
            runs.append(("naive_st_bf16", lambda index: naive(index, half_reference)))
        for _ in range(args.rounds):
            for name, run in runs:
                timed(name, run)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
        for index in indexes:
            client.indices.delete(index=index, ignore_unavailable=True)
    rate = {name: round(len(docs) / statistics.median(values), 1) for name, values in timings.items()}
    figures = {
        "benchmark": "ingest", "docs": len(docs), "rounds": args.rounds, "device": "cpu",
        "precision": encoder.precision, "torch_threads": torch.get_num_threads(), "docs_per_s": rate,
        "in_process_vs_pure_encode": round(rate["in_process"] / rate["pure_encode"], 3),
        "in_process_vs_naive": round(rate["in_process"] / rate["naive"], 3),
        "smile_vs_json_in_process": round(rate["in_process"] / rate["in_process_json"], 3),
        "write_while_encoding_auto": write_while_encoding_for(settings, encoder),
        "in_process_vs_writing_while_encoding": round(rate["in_process"] / rate["in_process_writing_while_encoding"], 3),
        "celery_vs_naive": round(rate["celery"] / rate["naive"], 3),
        "streaming_vs_celery_file": round(rate["streaming"] / rate["celery"], 3),
    }
    if "naive_st_bf16" in rate:
        figures["in_process_vs_naive_st_bf16"] = round(rate["in_process"] / rate["naive_st_bf16"], 3)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
