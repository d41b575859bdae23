"""The README's five-minute tour, run as written: its code block is the script, real kubectl against `ktx up`.

The block is read from README.md rather than copied here, so the tour a newcomer types and the one tested cannot
drift apart. Only the ports are the test's own (a stack may already hold the defaults on this machine), and HOME is
a fresh directory, so `~/.ktx` and kubectl's discovery cache start empty as on a fresh machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from cli.stack import free_port
from tests.conftest import ROOT


def tour_script() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"## A five-minute tour\n.*?```\n(.*?)```", readme, re.S)
    assert found, "README.md has no code block under '## A five-minute tour'"
    return found.group(1)


def test_the_readme_tour_runs_with_kubectl(tmp_path: Path, pipeline_images) -> None:
    script = tour_script()
    assert "kubectl apply" in script and "ktx kubeconfig" in script
    env = {key: value for key, value in os.environ.items() if not key.startswith("KTX_") and key != "KUBECONFIG"} | {
        "HOME": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "KTX_API_PORT": str(free_port()),
        "KTX_TEMPORAL_PORT": str(free_port()),
        "KTX_UI_PORT": str(free_port()),
        "KTX_KUBE_API_PORT": str(free_port()),
    }
    try:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        subprocess.run([sys.executable, "-m", "cli", "down"], cwd=ROOT, env=env, capture_output=True, timeout=120)
    out = result.stdout
    assert result.returncode == 0, f"the README tour failed ({result.returncode}):\n{out}\n{result.stderr}"
    assert "promise.platform.kratix.io/app-config created" in out
    assert "appconfig.example.ktx.io/checkout created" in out
    assert "appconfig.example.ktx.io/checkout condition met" in out
    table = [line.split() for line in out.splitlines() if line.startswith(("NAME ", "checkout "))]
    # The columns Kratix gives a Promise API whose CRD declares none.
    assert table[0] == ["NAME", "MESSAGE", "STATUS"] and table[1][0] == "checkout", out
    # kubectl describe's sections, then ktx describe's pipeline runs, in the order the tour shows them.
    assert re.search(r"^Name:\s+checkout$", out, re.M) and re.search(r"^Events:", out, re.M), out
    assert "container render (localhost/ktx-examples/app-config-pipeline:v0.1.0): exit code 0" in out
    assert 'appconfig.example.ktx.io "checkout" deleted' in out
    kubeconfig = (tmp_path / ".ktx" / "kubeconfig").read_text()
    assert "certificate-authority-data:" in kubeconfig and "server: https://127.0.0.1:" in kubeconfig
