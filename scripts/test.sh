#!/usr/bin/env bash
# The test command: install, start the real services, run unit and integration tests.
# Fails (does not skip) when OpenSearch, Elasticsearch or Redis cannot be started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/services.sh up
bash scripts/services.sh up --engine elasticsearch  # issue 8: the same suite parts on Elasticsearch
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
