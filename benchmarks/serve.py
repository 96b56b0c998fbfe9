"""semsearch serve: proxy overhead, and micro-batched query encoding under concurrent clients.

    python benchmarks/serve.py [--index bench-serve] [--rounds 400] [--clients 32] [--requests 1024]

Needs OpenSearch (SEMSEARCH_OPENSEARCH_URL). When --index does not exist, the sample shipped in the wheel
(300 dbpedia abstracts) is ingested into it first, in-process.

1. Proxy overhead: the same ``knn`` query (its vector encoded once, beforehand) sent straight to the
   cluster and through ``semsearch serve``, alternating, each on its own kept-alive connection; p50 and
   p95 of each, and their difference.
2. Micro-batching: ``--clients`` concurrent clients each send ``/v1/encode`` requests of one distinct query
   text (no cache hits), against two servers started side by side in this run: the default
   (``--max-batch 64 --max-wait-ms 2``) and one-at-a-time (``--max-batch 1``). Queries per second of each.

Progress goes to stderr; one JSON line of figures to stdout.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import DATA  # noqa: E402
from semsearch import Encoder, Settings  # noqa: E402
from semsearch.engines.opensearch import make_client  # noqa: E402

SAMPLE = ROOT / "semsearch" / "sample" / "dbpedia-sample.jsonl"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "serve", "--port", str(port), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"semsearch serve on port {port} did not start")
        time.sleep(0.5)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def proxy_overhead(cluster_url: str, proxy_port: int, index: str, vector: list[float], rounds: int) -> dict:
    body = json.dumps({"size": 10, "_source": False,
                       "query": {"knn": {"embedding": {"vector": vector, "k": 10}}}}).encode()
    split = urlsplit(cluster_url)
    connections = {"direct": http.client.HTTPConnection(split.hostname, split.port or 9200, timeout=30),
                   "proxy": http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=30)}
    times: dict[str, list[float]] = {name: [] for name in connections}
    answers: dict[str, bytes] = {}
    for round_number in range(rounds + 20):  # the first 20 warm both paths up
        order = list(connections) if round_number % 2 == 0 else list(reversed(connections))
        for name in order:
            started = time.perf_counter()
            connections[name].request("POST", f"/{index}/_search", body=body,
                                      headers={"Content-Type": "application/json"})
            answer = connections[name].getresponse().read()
            elapsed = time.perf_counter() - started
            if round_number >= 20:
                times[name].append(elapsed * 1000)
            answers[name] = answer
    same = [h["_id"] for h in json.loads(answers["direct"])["hits"]["hits"]] == \
           [h["_id"] for h in json.loads(answers["proxy"])["hits"]["hits"]]
    figures = {f"{name}_{stat}_ms": round(fn(values), 3) for name, values in times.items()
               for stat, fn in (("p50", statistics.median), ("p95", lambda v: percentile(v, 0.95)))}
    figures["overhead_p50_ms"] = round(figures["proxy_p50_ms"] - figures["direct_p50_ms"], 3)
    figures["overhead_p95_ms"] = round(figures["proxy_p95_ms"] - figures["direct_p95_ms"], 3)
    figures["same_hits"] = same
    return figures


def encode_throughput(port: int, texts: list[str], clients: int) -> float:
    """Queries per second of ``clients`` threads sending /v1/encode with one text each, all of ``texts``."""
    position, lock = [0], threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if position[0] >= len(texts):
                    return
                text = texts[position[0]]
                position[0] += 1
            connection.request("POST", "/v1/encode", body=json.dumps({"texts": [text]}).encode(),
                               headers={"Content-Type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200, answer.status

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(texts) / (time.perf_counter() - started)


def query_texts(count: int, tag: str) -> list[str]:
    """``count`` distinct query texts (dbpedia-entity's queries, numbered so none repeats)."""
    with open(DATA / "dbpedia-entity" / "queries.jsonl", encoding="utf-8") as handle:
        base = [json.loads(line)["text"] for line in handle]
    return [f"{base[i % len(base)]} {tag} {i}" for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", default="bench-serve")
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=1024, help="encode requests per server")
    args = parser.parse_args()
    settings = Settings()
    client = make_client(settings)
    if not client.indices.exists(index=args.index):
        say(f"ingesting the sample into {args.index!r}")
        subprocess.run([sys.executable, "-m", "semsearch.cli", "ingest", str(SAMPLE), "--index", args.index],
                       check=True, env={k: v for k, v in os.environ.items() if k != "SEMSEARCH_BROKER_URL"})
    vector = Encoder().encode_query("Apollo astronauts who walked on the Moon").tolist()
    ports = {"batched": free_port(), "one_at_a_time": free_port()}
    servers = {"batched": start_server(ports["batched"]),
               "one_at_a_time": start_server(ports["one_at_a_time"], "--max-batch", "1")}
    try:
        say(f"proxy overhead: {args.rounds} knn queries each way")
        figures = proxy_overhead(settings.opensearch_urls[0], ports["batched"], args.index, vector, args.rounds)
        rates: dict[str, list[float]] = {name: [] for name in ports}
        for repeat in range(3):  # alternating, medians of three
            for name in (ports if repeat % 2 == 0 else reversed(list(ports))):
                texts = query_texts(args.requests, f"{name}-{repeat}")
                rates[name].append(encode_throughput(ports[name], texts, args.clients))
                say(f"  {name}: {rates[name][-1]:.1f} queries/s with {args.clients} clients")
        figures.update({f"{name}_queries_per_s": round(statistics.median(values), 1) for name, values in rates.items()})
        figures["batched_over_one_at_a_time"] = round(figures["batched_queries_per_s"]
                                                      / figures["one_at_a_time_queries_per_s"], 2)
        figures.update({"clients": args.clients, "rounds": args.rounds, "device": "cpu" if not _cuda() else "cuda"})
    finally:
        for proc in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(figures))


def _cuda() -> bool:
    import torch  # noqa: PLC0415

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
