#!/usr/bin/env bash
# Some hosts (cgroup v1 hybrid, locked rlimits) refuse podman's defaults; these settings work everywhere we run.
# Only written when no containers.conf exists, so a workstation's own configuration is left alone.
set -euo pipefail
conf=/etc/containers/containers.conf
if [ "$(id -u)" = 0 ] && [ ! -e "$conf" ]; then
  mkdir -p /etc/containers
  cat > "$conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
CONF
fi
