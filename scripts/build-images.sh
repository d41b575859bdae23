#!/usr/bin/env bash
# Builds the pipeline images the examples and tests use, locally (no registry): a Debian base with python3 and
# PyYAML made by mmdebstrap, then each example's Containerfile on top. Re-running reuses what is already built.
set -euo pipefail
cd "$(dirname "$0")/.."
runtime=${KTX_CONTAINER_RUNTIME:-podman}
cache=${KTX_IMAGE_CACHE:-$HOME/.cache/ktx}
base=localhost/ktx/python-base:bookworm
mkdir -p "$cache"
if ! "$runtime" image exists "$base" 2>/dev/null; then
  if [ ! -s "$cache/python-base.tar" ]; then
    mmdebstrap --quiet --variant=minbase --include=python3,python3-yaml bookworm "$cache/python-base.tar.partial"
    mv "$cache/python-base.tar.partial" "$cache/python-base.tar"
  fi
  "$runtime" import --quiet "$cache/python-base.tar" "$base" >/dev/null
fi
"$runtime" build --quiet -t localhost/ktx-examples/app-config-pipeline:v0.1.0 examples/promises/app-config/pipeline >/dev/null
"$runtime" build --quiet -t localhost/ktx-test/behave:v0.1.0 tests/images/behave >/dev/null
echo "images ready: $base localhost/ktx-examples/app-config-pipeline:v0.1.0 localhost/ktx-test/behave:v0.1.0"
