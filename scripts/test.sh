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
exec "${PYTEST[@]}" --durations=25 tests/integration  # the slowest, on record in every CI log
