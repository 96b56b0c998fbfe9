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
  # --no-compile: no .pyc for all of torch up front (42 s of a 2-minute install here); imports compile what they use
  .venv/bin/python -m pip install -q --no-compile -e '.[test]' >&2
  touch "$stamp"
fi
# The search page of `semsearch serve` is tested in a real headless Chromium: Debian's package.
if ! command -v chromium >/dev/null 2>&1; then
  echo "bootstrap: installing Debian's chromium (headless browser for the search page test)" >&2
  if [[ $(id -u) -eq 0 ]]; then SUDO=(); else SUDO=(sudo); fi
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium >&2 \
    || { "${SUDO[@]}" apt-get update -q >&2 && "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium >&2; }
fi
