#!/usr/bin/env bash
# The main job on a fresh machine: services up, ingest a small bundled sample, run hybrid queries.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# The demo ingests in-process: only the cluster's address is taken from services.sh (the broker's is
# for `semsearch worker` setups, see the README).
eval "$(bash scripts/services.sh up | grep '^SEMSEARCH_OPENSEARCH_URL=' | sed 's/^/export /')"
unset SEMSEARCH_BROKER_URL
INDEX="${SEMSEARCH_DEMO_INDEX:-semsearch-demo}"
SAMPLE=semsearch/sample/dbpedia-sample.jsonl
echo "== ingesting $(wc -l <"$SAMPLE") Wikipedia abstracts into '$INDEX'"
.venv/bin/semsearch ingest "$SAMPLE" --index "$INDEX"
for query in "Apollo astronauts who walked on the Moon" "guitar tuning" "prime minister of Canada nicknamed silver-tongued"; do
  echo
  echo "== hybrid: $query"
  .venv/bin/semsearch search "$query" --index "$INDEX" -k 5
done
