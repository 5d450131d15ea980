"""Start and stop the local control plane (etcd, kube-apiserver, kube-controller-manager).

The launcher (``hack/controlplane``) does the work; this module runs it in
the background, detached from the caller's session so it outlives
``procon dev cluster up``, and waits until it says it is ready. Tests use the
same functions from a pytest session fixture, so what people run by hand is
what CI runs.

Everything lives in one state directory::

    DIR/kubeconfig          admin kubeconfig (client certificate, group system:masters)
    DIR/bin/kubectl, helm   the matching clients
    DIR/logs/*.log          one log per component
    DIR/controlplane.pid    the launcher's pid; DIR/ready once the API server answers
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from procon.dev.toolchain import Toolchain, ensure_toolchain


class ClusterError(RuntimeError):
    """The control plane did not start or stop; the message points at the log to read."""


@dataclass(frozen=True)
class Cluster:
    """A running local control plane."""

    state_dir: Path
    server: str
    pid: int

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def bin_dir(self) -> Path:
        return self.state_dir / "bin"

    def env(self) -> dict[str, str]:
        """An environment in which ``kubectl`` and ``helm`` talk to this cluster."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as dead.
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return waited == 0


def _read_pid(state_dir: Path) -> int | None:
    try:
        return int((state_dir / "controlplane.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def status(state_dir: Path) -> Cluster | None:
    """The running cluster in ``state_dir``, or None."""
    state_dir = state_dir.resolve()
    pid = _read_pid(state_dir)
    ready = state_dir / "ready"
    if pid is None or not _alive(pid) or not ready.exists():
        return None
    info = json.loads(ready.read_text())
    return Cluster(state_dir=state_dir, server=info["server"], pid=pid)


def _link_clients(toolchain: Toolchain, bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("kubectl", "helm"):
        link = bin_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(toolchain.path(name))


def up(state_dir: Path, *, timeout: float = 120.0, verbose: bool = True) -> Cluster:
    """Start the control plane in ``state_dir`` (or return the one already running there)."""
    state_dir = state_dir.resolve()
    if running := status(state_dir):
        return running
    toolchain = ensure_toolchain(verbose=verbose)
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)
    _link_clients(toolchain, state_dir / "bin")
    (state_dir / "ready").unlink(missing_ok=True)

    log_path = state_dir / "logs" / "controlplane.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                str(toolchain.path("procon-controlplane")),
                f"--state-dir={state_dir}",
                f"--bin-dir={toolchain.bin_dir}",
                f"--ready-timeout={int(timeout)}s",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: it must outlive `procon dev cluster up`, and a
            # Ctrl-C in the caller's terminal must not reach it.
            start_new_session=True,
        )
    (state_dir / "controlplane.pid").write_text(f"{process.pid}\n")

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterError(f"the control plane exited with {process.returncode}; see {log_path}")
        if cluster := status(state_dir):
            return cluster
        time.sleep(0.1)
    down(state_dir)
    raise ClusterError(f"the control plane was not ready within {timeout:.0f}s; see {log_path}")


def down(state_dir: Path, *, timeout: float = 30.0) -> bool:
    """Stop the control plane in ``state_dir``. Returns whether one was running."""
    state_dir = state_dir.resolve()
    pid = _read_pid(state_dir)
    if pid is None or not _alive(pid):
        (state_dir / "ready").unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        # The launcher's children die with it (Pdeathsig), so this is enough.
        os.killpg(pid, signal.SIGKILL)
    (state_dir / "ready").unlink(missing_ok=True)
    (state_dir / "controlplane.pid").unlink(missing_ok=True)
    return True


def service_account_kubeconfig(
    cluster: Cluster, namespace: str, name: str, path: Path, *, seconds: int = 3600
) -> Path:
    """Write to ``path`` a kubeconfig that reaches ``cluster`` as the ServiceAccount
    ``namespace/name``: a fresh token from the TokenRequest API, valid for ``seconds``, and the
    cluster's address and CA from the admin kubeconfig. The control plane runs no kubelet to
    mount a token into a pod, so a process that is to act as a pod's ServiceAccount (RBAC and
    admission policies in force, not the admin's system:masters) is given this instead."""
    token = subprocess.run(
        ["kubectl", "create", "token", name, "-n", namespace, f"--duration={seconds}s"],
        env=cluster.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "procon",
                "cluster": {
                    "server": admin["server"],
                    "certificate-authority-data": admin["certificate-authority-data"],
                },
            }
        ],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": "procon", "user": name}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
