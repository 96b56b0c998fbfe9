#!/usr/bin/env bash
# Creates .venv with semsearch installed editable and its test extra (idempotent).
#
# The third-party packages (torch alone is gigabytes) are installed once per machine, in a shared
# environment under $SEMSEARCH_CACHE/python-deps/KEY, where KEY hashes pyproject.toml's dependencies and the
# Python version. .venv holds semsearch itself and a .pth line that puts that environment on its path: a new
# clone, or a CI run, links to it in seconds instead of installing and byte-compiling gigabytes again.
# A change to the dependencies gives a new KEY, hence a new environment; one unused for 30 days is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
CACHE="${SEMSEARCH_CACHE:-$HOME/.cache/semsearch}"
DEPS_ROOT="$CACHE/python-deps"

key=$("$PYTHON" - <<'EOF'
import hashlib, json, sys
try:
    import tomllib
    with open("pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    basis = json.dumps([project.get("dependencies"), project.get("optional-dependencies")], sort_keys=True)
except ModuleNotFoundError:  # Python 3.10: the whole file, so any change gives a new environment
    basis = open("pyproject.toml", encoding="utf-8").read()
print(hashlib.sha256(f"deps-1|{sys.version_info[:3]}|{basis}".encode()).hexdigest()[:16])
EOF
)
deps="$DEPS_ROOT/$key"
mkdir -p "$DEPS_ROOT"

# The shared environment: built under a lock (two clones may bootstrap at once), marked complete last, so
# an interrupted build is started over rather than used. A clone's bootstrap holds the lock shared while it
# checks; a build or a removal holds it alone.
purelib='import sys, sysconfig
scheme = "venv" if "venv" in sysconfig.get_scheme_names() else "posix_prefix"  # Debian 3.10: not posix_local
print(sysconfig.get_paths(scheme=scheme)["purelib"])'
deps_ready() { [[ -f "$deps/.complete" ]] && "$deps/bin/python" -c pass 2>/dev/null; }
exec 9>"$deps.lock"
flock -s 9
if ! deps_ready; then
  flock -u 9
  flock -x 9
  if ! deps_ready; then  # no other bootstrap built it while this one waited for the lock
    echo "bootstrap: installing semsearch's dependencies into $deps (once per machine; torch is large: minutes)" >&2
    rm -rf "$deps"
    "$PYTHON" -m venv "$deps"
    "$deps/bin/python" -m pip install -q --upgrade pip >&2
    # Installing the project itself is how pip resolves its extras (test names semsearch[elasticsearch]);
    # semsearch is then removed, so that each clone's .venv imports its own working tree. setuptools: the
    # build backend of .venv's editable install below.
    "$deps/bin/python" -m pip install -q --no-compile '.[test]' 'setuptools>=77' >&2
    "$deps/bin/python" -m pip uninstall -q -y semsearch >&2
    # Byte-compiled once, on every core: where PYTHONDONTWRITEBYTECODE is set (it is on these machines),
    # nothing else ever writes .pyc files, and every process would compile torch and transformers from
    # source again, about 9 s each (a CLI command, a worker). A few test files of torch are Python 3.12
    # syntax: they stay uncompiled, which costs nothing (nothing imports them).
    "$deps/bin/python" -m compileall -q -j 0 "$deps/lib" >/dev/null 2>&1 || true
    touch "$deps/.complete"
  fi
fi
touch "$deps/.complete"  # when it was last used: for the clean-up below
exec 9>&-
# Environments no bootstrap has used for 30 days go (each is gigabytes): one at a time, only when nothing
# holds its lock, renamed before it is removed so that no one finds it half gone.
while IFS= read -r -d '' stale; do
  env_dir=${stale%/.complete}
  [[ "$env_dir" == "$deps" ]] && continue
  (
    flock -n -x 8 || exit 0
    mv -T "$env_dir" "$env_dir.removing" && rm -rf "$env_dir.removing"
  ) 8>"$env_dir.lock"
done < <(find "$DEPS_ROOT" -mindepth 2 -maxdepth 2 -name .complete -mtime +30 -print0 2>/dev/null)

# .venv: the project's own environment, linked to the shared one; made again when the shared environment
# or pyproject.toml (scripts, packages) changes.
wanted="$deps $(sha256sum pyproject.toml | cut -c1-16)"
if [[ ! -f .venv/.semsearch-deps || "$(cat .venv/.semsearch-deps)" != "$wanted" || ! -x .venv/bin/python ]]; then
  echo "bootstrap: creating .venv on $deps" >&2
  rm -rf .venv
  "$PYTHON" -m venv --without-pip .venv
  site=$(.venv/bin/python -c "$purelib")
  # addsitedir, not a bare path line: the shared environment's own .pth files are read too. Python writes
  # the line, so that any character of the path is quoted right.
  "$deps/bin/python" -c "$purelib" | .venv/bin/python -c \
    'import sys; print("import site; site.addsitedir(%r)" % sys.stdin.read().strip())' >"$site/semsearch-deps.pth"
  # pip runs from the shared environment against .venv's interpreter (.venv has no pip of its own;
  # `.venv/bin/python -m pip` works, from the shared one). Its output (setuptools' warnings about data
  # folders) is shown only if it fails.
  log=$(mktemp)
  "$deps/bin/python" -m pip --python .venv/bin/python install -q --no-deps --no-build-isolation --no-compile -e . \
    >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; exit 1; }
  rm -f "$log"
  # This clone's semsearch and ingest, not copies from anywhere else on the path (checked from /, where
  # the working directory cannot stand in for the editable install).
  (cd / && "$OLDPWD/.venv/bin/python" -c 'import sys, semsearch, ingest
assert all(m.__file__.startswith(sys.argv[1] + "/") for m in (semsearch, ingest)), (semsearch.__file__, ingest.__file__)' \
    "$OLDPWD") || { echo "bootstrap: .venv imports semsearch from outside $PWD" >&2; exit 1; }
  echo "$wanted" >.venv/.semsearch-deps
fi
.venv/bin/python -m compileall -q semsearch ingest >/dev/null 2>&1 || true
# The search page of `semsearch serve` is tested in a real headless Chromium: Debian's package.
if ! command -v chromium >/dev/null 2>&1; then
  echo "bootstrap: installing Debian's chromium (headless browser for the search page test)" >&2
  if [[ $(id -u) -eq 0 ]]; then SUDO=(); else SUDO=(sudo); fi
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium >&2 \
    || { "${SUDO[@]}" apt-get update -q >&2 && "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium >&2; }
fi
