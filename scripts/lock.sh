#!/usr/bin/env bash
# Re-resolves every dependency to its newest allowed version in a scratch venv and writes constraints.txt.
# Run it on purpose, then the full suite, and commit both: CI installs exactly what the file says.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python3 -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install -q --upgrade pip
"$scratch/venv/bin/pip" install -q -e '.[dev]'
{
  sed -n '1,2p' constraints.txt
  "$scratch/venv/bin/pip" freeze --exclude-editable | grep -v '^pip=='
} > "$scratch/constraints.txt"
mv "$scratch/constraints.txt" constraints.txt
git --no-pager diff --stat constraints.txt
