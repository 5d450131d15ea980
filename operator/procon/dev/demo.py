"""``procon dev up``: the local demo on the embedded control plane.

For now the demo is the control plane with the ProcessorConnection CRD
installed and Established, ready for ``kubectl apply -f examples/``. The
operator and the processor emulators join it as they land.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from procon.api.crd import crd_yaml
from procon.dev import cluster as control_plane


def install_crd(running: control_plane.Cluster, *, timeout: float = 60.0) -> None:
    """Apply the CRD generated from the API types and wait until the server serves it."""
    env = running.env()
    subprocess.run(
        ["kubectl", "apply", "--server-side", "--force-conflicts", "--field-manager=procon-dev", "-f", "-"],
        input=crd_yaml(),
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "kubectl",
            "wait",
            "--for=condition=Established",
            f"--timeout={int(timeout)}s",
            "customresourcedefinition/processorconnections.procon.dev",
        ],
        env=env,
        check=True,
        capture_output=True,
    )


def up(state_dir: Path, *, timeout: float = 180.0) -> int:
    running = control_plane.up(state_dir, timeout=timeout)
    install_crd(running)
    print(
        f"""procon demo is up: a Kubernetes {running.server} control plane with the ProcessorConnection CRD.

Look around:
  export KUBECONFIG={running.kubeconfig} PATH={running.bin_dir}:$PATH
  kubectl explain processorconnection.spec.webhook
  kubectl apply -f examples/
  kubectl get pconn -o wide

Stop it with: procon dev down --state-dir {state_dir}"""
    )
    return 0


def down(state_dir: Path) -> int:
    stopped = control_plane.down(state_dir)
    print("procon demo stopped" if stopped else "the procon demo was not running")
    return 0
