#!/usr/bin/env bash
# The one install step: system packages, host settings and the venv. Both the README's first command
# (scripts/quickstart.sh) and CI (.ci/run, then scripts/test.sh) start here, so the two can never drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."
# podman, runc, mmdebstrap, uidmap: pipeline containers and their images. git: the state store.
# openssh-server/-client: the SSH state-store credential tests run a real sshd. openssl: the Temporal mTLS tests
# issue their certificates with it. chromium: the web console's browser tests drive it headless (playwright, no
# browser download).
packages=(podman runc mmdebstrap git uidmap openssh-server openssh-client openssl chromium)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ "$(id -u)" = 0 ] && scripts/setup-host.sh
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
# Again whenever constraints.txt or pyproject.toml changed since the last install, and only then: a re-run of the
# quickstart does not rebuild the editable install under a test run that is using it.
stamp=.venv/.ktx-installed
wanted=$(cat constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  .venv/bin/pip install -q -c constraints.txt -e '.[dev]'
  echo "$wanted" > "$stamp"
fi
