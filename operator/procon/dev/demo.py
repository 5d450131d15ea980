"""``procon dev up``: the whole local demo on the embedded control plane.

It starts, each only if not already running: the control plane, the Stripe
and Checkout.com emulators with the quickstart fixtures, and the operator
pointed at them; then it installs the CRD, applies the quickstart
connections and waits until they are Ready. ``procon dev down`` stops it all; the state
directory keeps the cluster's data for the next ``up``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from procon.api.crd import crd_yaml
from procon.dev import cluster as control_plane
from procon.dev import processes
from procon.dev.toolchain import source_dir

STRIPE_EMULATOR = "stripe-emulator"
CHECKOUT_EMULATOR = "checkout-emulator"
OPERATOR = "operator"
QUICKSTARTS = ("quickstart-stripe", "quickstart-checkout")
# Checkout.com's account hosts ({prefix}.api...) reach the emulator through it as a proxy.
CHECKOUT_API_BASE = "http://api.checkout.test"
CHECKOUT_AUTH_BASE = "http://access.checkout.test"


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


def _quickstart_dir() -> Path:
    return source_dir().parents[1] / "examples" / "quickstart"


def _start_emulator(state_dir: Path, processor: str, name: str) -> str:
    port_file = state_dir / f"{name}.port"
    port = int(port_file.read_text()) if port_file.exists() else processes.free_port()
    port_file.write_text(str(port))
    base_url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base_url}/_emulator/state", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    processes.start(
        state_dir,
        name,
        [
            sys.executable,
            "-m",
            "procon.cli",
            "emulate",
            processor,
            f"--port={port}",
            f"--fixture={_quickstart_dir() / f'{processor}-emulator.yaml'}",
        ],
        env=os.environ,
        ready=ready,
    )
    return base_url


def _start_operator(
    state_dir: Path, running: control_plane.Cluster, stripe_api: str, checkout_proxy: str
) -> None:
    log = processes.log_file(state_dir, OPERATOR)
    offset = log.stat().st_size if log.exists() else 0
    env = {
        **running.env(),
        "PROCON_STRIPE_API_BASE": stripe_api,
        "PROCON_DRIFT_INTERVAL": os.environ.get("PROCON_DRIFT_INTERVAL", "60"),
        "PROCON_CLUSTER_NAME": "procon-dev",
        "PROCON_CHECKOUT_API_BASE": CHECKOUT_API_BASE,
        "PROCON_CHECKOUT_AUTH_BASE": CHECKOUT_AUTH_BASE,
        "HTTP_PROXY": checkout_proxy,
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    processes.start(
        state_dir,
        OPERATOR,
        [sys.executable, "-m", "procon.cli", "run"],
        env=env,
        ready=lambda: log.exists() and "procon started" in log.read_text(errors="replace")[offset:],
    )


def up(state_dir: Path, *, timeout: float = 180.0) -> int:
    running = control_plane.up(state_dir, timeout=timeout)
    install_crd(running)
    stripe_api = _start_emulator(running.state_dir, "stripe", STRIPE_EMULATOR)
    checkout_proxy = _start_emulator(running.state_dir, "checkout", CHECKOUT_EMULATOR)
    _start_operator(running.state_dir, running, stripe_api, checkout_proxy)
    env = running.env()
    for manifest in ("stripe.yaml", "checkout.yaml"):
        subprocess.run(
            ["kubectl", "apply", "-n", "default", "-f", str(_quickstart_dir() / manifest)],
            env=env,
            check=True,
            capture_output=True,
        )
    for name in QUICKSTARTS:
        waited = subprocess.run(
            [
                "kubectl",
                "wait",
                "-n",
                "default",
                "--for=condition=Ready",
                f"--timeout={int(timeout)}s",
                f"pconn/{name}",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if waited.returncode != 0:
            print(
                f"procon: {name} did not become Ready; look at `kubectl describe pconn {name}` "
                f"and {processes.log_file(running.state_dir, OPERATOR)}",
                file=sys.stderr,
            )
            return 1
    print(
        f"""procon demo is up: Kubernetes at {running.server}, the Stripe emulator at {stripe_api},
the Checkout.com emulator at {checkout_proxy}, the operator running, and two quickstart
connections Ready.

Look around:
  export KUBECONFIG={running.kubeconfig} PATH={running.bin_dir}:$PATH
  kubectl get pconn -o wide
  kubectl describe pconn quickstart-stripe quickstart-checkout
  kubectl get secret quickstart-stripe-webhook -o yaml
  curl -s {stripe_api}/_emulator/state          # the emulators' side
  curl -s {checkout_proxy}/_emulator/state
  kubectl apply -f examples/                    # more connections (their keys are placeholders)

Logs: {running.state_dir / "logs"}
Stop it with: procon dev down --state-dir {state_dir}"""
    )
    return 0


def down(state_dir: Path) -> int:
    names = (OPERATOR, STRIPE_EMULATOR, CHECKOUT_EMULATOR)
    stopped = [name for name in names if processes.stop(state_dir.resolve(), name)]
    if control_plane.down(state_dir):
        stopped.append("control plane")
    print("stopped: " + ", ".join(stopped) if stopped else "the procon demo was not running")
    return 0
