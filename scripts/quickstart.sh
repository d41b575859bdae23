#!/usr/bin/env bash
# Fresh machine to a fulfilled resource request: installs what is needed, starts the embedded stack, installs the
# example Promise, requests a resource and shows the documents committed to the local Git state store.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
scripts/build-images.sh
export PATH="$PWD/.venv/bin:$PATH"
ktx up
ktx apply -f examples/promises/app-config/promise.yaml
ktx apply -f examples/promises/app-config/resource-request.yaml
ktx wait appconfig checkout -n default --for=condition=Reconciled --timeout=120s
ktx get appconfig -n default
store="${KTX_HOME:-$HOME/.ktx}/state/kratix.git"
echo; echo "Committed to $store:"
git --git-dir "$store" ls-tree -r --name-only main
echo; git --git-dir "$store" show main:local/resources/default/app-config/checkout/render/5058f/configmap.yaml
