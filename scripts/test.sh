#!/usr/bin/env bash
# Runs the whole test suite: unit, integration (real Temporal dev server, podman, git) and CLI end-to-end.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest -q "$@"
