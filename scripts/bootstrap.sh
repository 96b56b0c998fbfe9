#!/usr/bin/env bash
# Creates .venv and installs semsearch with its test extra (idempotent; pip's cache makes reruns fast).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.semsearch-installed
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
  echo "bootstrap: installing semsearch and its dependencies into .venv (torch is large: first run takes minutes)" >&2
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q --no-compile -e '.[test]' >&2
  touch "$stamp"
fi
# Byte-compile the venv once, on every core: where PYTHONDONTWRITEBYTECODE is set (it is on these machines),
# nothing else ever writes .pyc files, and every process would compile torch and transformers from source
# again, about 9 s each (a CLI command, a worker). A few test files of torch are Python 3.12 syntax: they
# stay uncompiled, which costs nothing (nothing imports them).
compiled=.venv/.semsearch-compiled
if [[ ! -f "$compiled" || "$stamp" -nt "$compiled" ]]; then
  .venv/bin/python -m compileall -q -j 0 .venv/lib semsearch ingest >/dev/null 2>&1 || true
  touch "$compiled"
fi
# The search page of `semsearch serve` is tested in a real headless Chromium: Debian's package.
if ! command -v chromium >/dev/null 2>&1; then
  echo "bootstrap: installing Debian's chromium (headless browser for the search page test)" >&2
  if [[ $(id -u) -eq 0 ]]; then SUDO=(); else SUDO=(sudo); fi
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium >&2 \
    || { "${SUDO[@]}" apt-get update -q >&2 && "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium >&2; }
fi
