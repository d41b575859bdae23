#!/usr/bin/env bash
# Runs the whole test suite: unit, integration (real Temporal dev server, podman, git) and CLI end-to-end.
set -euo pipefail
cd "$(dirname "$0")/.."
# The venv first on PATH: the tests run its temporal, weed and kubectl, and `ktx` the way the README does.
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m pytest -q "$@"
