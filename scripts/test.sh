#!/usr/bin/env bash
# The test command: install, start the real services, run unit and integration tests.
# Fails (does not skip) when OpenSearch, Elasticsearch or Redis cannot be started.
# With no arguments: the unit tests (which need no services) run first, while the services start in the
# background, and a unit failure stops the run at once. Arguments go to pytest (one run of everything they name).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
echo "test.sh: bootstrap done after ${SECONDS}s" >&2
# Every Java node the tests start (the single nodes, the clusters, a test's own node) compiles with C1 alone: they
# live minutes, and C2's compiling is most of what they would spend. One OpenSearch node, on the idle machine: CPU
# seconds to healthy 13 -> 6-7, to index info-index 7 -> 3-4, for its eval 11-14 -> 8-9 (Elasticsearch: 13 -> 7,
# 6 -> 3, 11-12 -> 10-11); the same figures seen (under C1 Lucene scores vectors without Java's vector API, in
# another summation order). SEMSEARCH_NODE_JAVA_OPTS= (empty) keeps the distributions' own.
export SEMSEARCH_NODE_JAVA_OPTS="${SEMSEARCH_NODE_JAVA_OPTS--XX:TieredStopAtLevel=1}"
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

# The integration tests in four pytest processes at once, over disjoint sets of modules: on 2 cores each
# spends much of its time waiting (on a node joining, a worker, a restart, a retention lease), and the
# others use that time. Each has its own Redis DB as the ingest queue and its own temporary folder; they
# share one vector cache (a file processes may share). A test that restarts a service restarts its own.
# Modules that read the session's dbpedia-entity index (conftest.dbpedia) stay in one part, which ingests
# it first: the vectors it computes are in the cache by the time the later ingests of the same texts read
# them (the clusters', Elasticsearch's, each after other modules in its part).
work=$(mktemp -d)
pids=()
# Stopped (Ctrl-C, a CI time limit): the parts go too, rather than run on in a folder removed under them.
# (The trap runs under set -e: a failing kill, with no parts left to stop, would turn a pass into exit 2.)
trap 'if ((${#pids[@]})); then kill "${pids[@]}" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
export SEMSEARCH_TEST_VECTOR_CACHE="$work/vectors.sqlite"
I=tests/integration
PARTS=(queue quality lifecycle es-lifecycle)
declare -A MODULES=(
  [queue]="test_celery_ingest test_end_to_end test_serve test_search_page"
  [quality]="test_hybrid_spread test_hybrid test_bad_input test_bulk_format test_faults test_security test_elasticsearch"
  # then the OpenSearch cluster
  [lifecycle]="test_small_index_rare_strict test_small_index_alike_scores test_lifecycle test_cluster"
  [es-lifecycle]="test_small_index_subject test_small_index_long_documents test_es_lifecycle test_cluster"  # then the Elasticsearch cluster
)
declare -A SELECT=([lifecycle]="not (test_cluster and elasticsearch)" [es-lifecycle]="not (test_cluster and opensearch)")
threads=$(( $(nproc) / ${#PARTS[@]} > 0 ? $(nproc) / ${#PARTS[@]} : 1 ))
part() { # NAME REDIS_DB: one part (exec: its pid is pytest's), its output kept for printing whole at the end
  local name=$1 db=$2 files=() module
  for module in ${MODULES[$name]}; do files+=("$I/$module.py"); done
  # Torch threads for its share of the cores (at least one): with 2 threads in each of two processes on 2
  # cores, the manpages ingest took 3.6x as long as alone (OpenMP threads wait at barriers for a thread whose
  # core another process holds); with one thread each, 2.5x. Test workers split the part's share.
  OMP_NUM_THREADS=$threads SEMSEARCH_TEST_BROKER_URL="redis://127.0.0.1:6379/$db" \
    exec "${PYTEST[@]}" --basetemp="$work/$name" --durations=10 -k "${SELECT[$name]:-}" "${files[@]}" \
    >"$work/$name.log" 2>&1
}
echo "test.sh: integration tests in ${#PARTS[@]} parts at once (${PARTS[*]}); each part's output follows when all end" >&2
for i in "${!PARTS[@]}"; do
  part "${PARTS[$i]}" $((i + 1)) &
  pids+=($!)
done
failed=0
for i in "${!PARTS[@]}"; do
  wait "${pids[$i]}" || failed=1
  echo "=== integration, part ${PARTS[$i]}: ${MODULES[${PARTS[$i]}]}"
  cat "$work/${PARTS[$i]}.log"
done
pids=()  # all ended: nothing for the trap to stop
echo "test.sh: integration tests done after ${SECONDS}s" >&2
exit "$failed"
