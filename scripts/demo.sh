#!/usr/bin/env bash
# The main job on a fresh machine: services up, ingest a small bundled sample, run hybrid queries.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
eval "$(bash scripts/services.sh up | sed 's/^/export /')"
INDEX="${SEMSEARCH_DEMO_INDEX:-semsearch-demo}"
SAMPLE=semsearch/sample/dbpedia-sample.jsonl
echo "== ingesting $(wc -l <"$SAMPLE") Wikipedia abstracts into '$INDEX'"
.venv/bin/semsearch ingest "$SAMPLE" --index "$INDEX"
for query in "Apollo astronauts who walked on the Moon" "guitar tuning" "prime minister of Canada nicknamed silver-tongued"; do
  echo
  echo "== hybrid: $query"
  .venv/bin/semsearch search "$query" --index "$INDEX" -k 5
done
