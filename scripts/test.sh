#!/usr/bin/env bash
# The test command: install, start the real services, run unit and integration tests.
# Fails (does not skip) when OpenSearch, Elasticsearch or Redis cannot be started.
# With no arguments: the unit tests (which need no services) run first, while the services start in the
# background, and a unit failure stops the run at once. Arguments go to pytest (one run of everything they name).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
echo "test.sh: bootstrap done after ${SECONDS}s" >&2
start_services() {
  bash scripts/services.sh up
  bash scripts/services.sh up --engine elasticsearch  # issue 8: the same suite parts on Elasticsearch
}
PYTEST=(.venv/bin/python -m pytest -q -p no:cacheprovider)
if [[ $# -gt 0 ]]; then
  start_services
  exec "${PYTEST[@]}" "$@"
fi
log=$(mktemp)
start_services >"$log" 2>&1 &
services=$!
unit=0
"${PYTEST[@]}" tests/unit || unit=$?
services_ok=0
wait "$services" || services_ok=$?
cat "$log" >&2
rm -f "$log"
if [[ $unit -ne 0 ]]; then
  echo "unit tests failed: integration tests not run" >&2
  exit "$unit"
fi
if [[ $services_ok -ne 0 ]]; then
  echo "the services did not start: integration tests cannot run" >&2
  exit "$services_ok"
fi
echo "test.sh: unit tests passed and services up after ${SECONDS}s; integration tests next" >&2

# The integration tests in two pytest processes at once, over disjoint sets of modules: on 2 cores each
# spends much of its time waiting (on a node, a worker, a restart), and the other uses that time. Each has
# its own Redis DB as the ingest queue and its own temporary folder; they share one vector cache (a file
# processes may share). Each 3-node cluster module half runs in one of them (other ports, other folders).
# Then, alone, the test that restarts the shared OpenSearch node under everyone's feet.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SEMSEARCH_TEST_VECTOR_CACHE="$work/vectors.sqlite"
I=tests/integration
QUEUE_HALF=("$I/test_celery_ingest.py" "$I/test_end_to_end.py" "$I/test_serve.py" "$I/test_search_page.py"
            "$I/test_elasticsearch.py" "$I/test_es_lifecycle.py" "$I/test_cluster.py")
QUALITY_HALF=("$I/test_hybrid_spread.py" "$I/test_hybrid.py" "$I/test_bad_input.py" "$I/test_bulk_format.py"
              "$I/test_faults.py" "$I/test_security.py" "$I/test_lifecycle.py" "$I/test_cluster.py")
half() { # NAME REDIS_DB PYTEST_ARGS...: one half, its output kept for printing whole at the end
  local name=$1 db=$2
  shift 2
  # Half the cores each: with 2 torch threads in each half on 2 cores, the manpages ingest took 3.6x as
  # long as alone (OpenMP threads wait at barriers for a thread whose core the other half holds); with one
  # thread each, 2.5x (and, with the halves rebalanced, the whole run 3 minutes shorter). Test workers set
  # their own thread counts.
  OMP_NUM_THREADS=$(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 )) SEMSEARCH_TEST_BROKER_URL="redis://127.0.0.1:6379/$db" \
    "${PYTEST[@]}" --basetemp="$work/$name" --durations=15 -m "not restarts_services" "$@" >"$work/$name.log" 2>&1
}
echo "test.sh: integration tests in two halves at once; each half's output follows when it ends" >&2
half queue 1 -k "not (test_cluster and elasticsearch)" "${QUEUE_HALF[@]}" &
queue=$!
half quality 2 -k "not (test_cluster and opensearch)" "${QUALITY_HALF[@]}" &
quality=$!
failed=0
wait "$queue" || failed=1
echo "=== integration, first half (ingest queue, dbpedia-entity, serve, Elasticsearch and its lifecycle, OpenSearch cluster)"
cat "$work/queue.log"
wait "$quality" || failed=1
echo "=== integration, second half (hybrid quality, faults, security, OpenSearch lifecycle, Elasticsearch cluster)"
cat "$work/quality.log"
echo "test.sh: both halves done after ${SECONDS}s; the shared node's restart next" >&2
echo "=== integration, alone: the shared OpenSearch node restarted mid-run"
SEMSEARCH_TEST_BROKER_URL="redis://127.0.0.1:6379/1" \
  "${PYTEST[@]}" --basetemp="$work/restarts" --durations=5 -m restarts_services "$I" || failed=1
echo "test.sh: integration tests done after ${SECONDS}s" >&2
exit "$failed"
