"""``procon dev up``: the whole local demo on the embedded control plane.

It starts, each only if not already running: the control plane, an emulator
of each processor in the registry that takes part in the demo (its
``PLUGIN.demo``), with its quickstart fixture, and the operator pointed at
them; then it installs the CRD, applies each processor's quickstart
connection and waits until they are Ready. ``procon dev down`` stops it all; the state
directory keeps the cluster's data for the next ``up``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from procon import processors as registry
from procon.api.crd import crd_yaml
from procon.dev import cluster as control_plane
from procon.dev import processes
from procon.dev.toolchain import source_dir
from procon.processors.plugin import ProcessorPlugin

OPERATOR = "operator"


def _in_demo() -> list[ProcessorPlugin]:
    return [p for p in registry.plugins() if p.demo is not None]


def emulator_process(name: str) -> str:
    return f"{name}-emulator"


def quickstart(name: str) -> str:
    return f"quickstart-{name}"


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


def _start_operator(state_dir: Path, running: control_plane.Cluster, emulators: dict[str, str]) -> None:
    log = processes.log_file(state_dir, OPERATOR)
    offset = log.stat().st_size if log.exists() else 0
    env = {
        **running.env(),
        "PROCON_DRIFT_INTERVAL": os.environ.get("PROCON_DRIFT_INTERVAL", "60"),
        "PROCON_CLUSTER_NAME": "procon-dev",
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    for plugin in _in_demo():
        assert plugin.demo is not None
        env.update(plugin.demo.operator_env(emulators[plugin.name]))
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
    emulators = {
        p.name: _start_emulator(running.state_dir, p.name, emulator_process(p.name)) for p in _in_demo()
    }
    _start_operator(running.state_dir, running, emulators)
    env = running.env()
    for name in emulators:
        subprocess.run(
            ["kubectl", "apply", "-n", "default", "-f", str(_quickstart_dir() / f"{name}.yaml")],
            env=env,
            check=True,
            capture_output=True,
        )
    for name in map(quickstart, emulators):
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
    titles = {p.name: p.title for p in _in_demo()}
    served = ",\n".join(f"the {titles[name]} emulator at {url}" for name, url in emulators.items())
    first = next(iter(emulators), "")
    states = "\n".join(f"  curl -s {url}/_emulator/state" for url in emulators.values())
    print(
        f"""procon demo is up: Kubernetes at {running.server},
{served},
the operator running, and {len(emulators)} quickstart connections Ready.

Look around:
  export KUBECONFIG={running.kubeconfig} PATH={running.bin_dir}:$PATH
  kubectl get pconn -o wide
  kubectl describe pconn {" ".join(map(quickstart, emulators))}
  kubectl get secret {quickstart(first)}-webhook -o yaml
  kubectl apply -f examples/                    # more connections (their keys are placeholders)
The emulators' side:
{states}

Logs: {running.state_dir / "logs"}
Stop it with: procon dev down --state-dir {state_dir}"""
    )
    return 0


def down(state_dir: Path) -> int:
    names = (OPERATOR, *(emulator_process(p.name) for p in _in_demo()))
    stopped = [name for name in names if processes.stop(state_dir.resolve(), name)]
    if control_plane.down(state_dir):
        stopped.append("control plane")
    print("stopped: " + ", ".join(stopped) if stopped else "the procon demo was not running")
    return 0
