"""What one encoder worker and one cluster node each absorb here, for docs/scaling.md.

    python benchmarks/scaling.py [--docs 2000] [--rounds 3] [--cluster URL,URL,URL]

Needs the single node (scripts/services.sh up) and, for the cluster figures, a multi-node cluster
(scripts/services.sh up --nodes 3; its URLs are the default of --cluster). Measures, on dbpedia-entity:
- encode: one worker's encoder (CPU here, the default precision) over the documents, docs/s;
- bulk, single node: the same documents with vectors already computed, written by semsearch's bulk
  writer into a fresh index (0 replicas) until searchable, docs/s;
- bulk, 3-node cluster: the same into 3 primary shards with 1 replica (every document written twice);
- bulk, 3-node cluster without replicas, to separate the replica's cost from the spread.
Bulk runs alternate (a, b, c, a, b, c …) so the machine's noise hits each alike; medians are printed as
one JSON line, with the ratio encode/bulk: how many such workers one node keeps busy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import DATA  # noqa: E402
from semsearch import Encoder, Settings  # noqa: E402
from semsearch.engines.opensearch import make_client  # noqa: E402
from semsearch.index.manage import create_index  # noqa: E402
from semsearch.writing.bulk import BulkWriter  # noqa: E402
from semsearch.writing.documents import Document, DocumentSchema, read_jsonl  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cluster", default="http://127.0.0.1:9210,http://127.0.0.1:9211,http://127.0.0.1:9212")
    args = parser.parse_args()

    corpus = Path("/tmp") / f"scaling-{uuid.uuid4().hex[:6]}.jsonl"
    with open(DATA / "dbpedia-entity" / "corpus.jsonl", encoding="utf-8") as src:
        corpus.write_text("".join(line for _, line in zip(range(args.docs), src)), encoding="utf-8")
    docs = [d for d in read_jsonl([corpus], DocumentSchema()) if isinstance(d, Document)]
    corpus.unlink()
    encoder = Encoder(device="cpu")
    encoder.encode_documents([d.text for d in docs[:64]])  # warm-up
    started = time.perf_counter()
    vectors = encoder.encode_documents([d.text for d in docs])
    encode_rate = len(docs) / (time.perf_counter() - started)

    single = Settings()
    cluster = Settings(opensearch_url=args.cluster)
    targets = {"single_node": (single, 1, 0), "cluster_3_nodes_1_replica": (cluster, 3, 1),
               "cluster_3_nodes_0_replicas": (cluster, 3, 0)}
    rates: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(args.rounds):
        for name, (settings, shards, replicas) in targets.items():
            client = make_client(settings)
            index = f"bench_scaling_{uuid.uuid4().hex[:8]}"
            create_index(client, index, fingerprint=encoder.fingerprint.as_dict(), text_fields=["title", "text"],
                         vector_field=settings.vector_field, engine=settings.knn_engine,
                         analyzer=settings.text_analyzer, shards=shards, replicas=replicas)
            client.cluster.health(index=index, wait_for_status="green", timeout="60s", request_timeout=90)
            writer = BulkWriter.from_settings(client, index, settings.vector_field, settings)
            started = time.perf_counter()
            for start in range(0, len(docs), settings.bulk_max_docs):
                result = writer.write(docs[start:start + settings.bulk_max_docs],
                                      vectors[start:start + settings.bulk_max_docs])
                assert not result.failed, result.failed[:3]
            client.indices.refresh(index=index)
            assert client.count(index=index)["count"] == len(docs)
            rates[name].append(len(docs) / (time.perf_counter() - started))
            client.indices.delete(index=index)
    medians = {name: round(statistics.median(values), 1) for name, values in rates.items()}
    print(json.dumps({
        "docs": len(docs), "rounds": args.rounds, "device": encoder.device.type, "precision": encoder.precision,
        "encode_docs_per_s": round(encode_rate, 1),
        "bulk_docs_per_s": medians,
        "bulk_per_node_docs_per_s": {name: round(rate / targets[name][1], 1) for name, rate in medians.items()},
        "workers_one_node_absorbs": round(medians["single_node"] / encode_rate, 2),
        "replica_cost": round(medians["cluster_3_nodes_0_replicas"] / medians["cluster_3_nodes_1_replica"], 2),
    }))


if __name__ == "__main__":
    main()
