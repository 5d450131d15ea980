"""What the benchmarks share: the control plane, the emulators, the operator's environment, and
the chart installed as production installs it (its ServiceAccount, RBAC and admission policies).

Every bench runs the real pieces: the local control plane (``procon dev cluster``, built from
Go modules and cached), the processor emulators in this process, and the operator as a process
of its own pointed at them. The set-up was written once per bench before; it lives here so the
benches differ only in what they measure.

A bench script puts the repository root on ``sys.path`` and imports this as ``bench._harness``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procon.dev import cluster as control_plane
from procon.dev.demo import install_crd
from procon.emulators.adyen import AdyenEmulator
from procon.emulators.checkout import CheckoutEmulator
from procon.emulators.stripe import StripeEmulator

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
CHART = ROOT / "charts" / "procon"
# The emulators' own routes (state, faults, counters): not processor calls.
CONTROL_PREFIX = "/_emulator"
# Checkout.com's hosts, account prefixes included, reach its emulator through it as a proxy,
# as egress reaches the internet from many clusters; the operator builds {prefix}.api... names
# as it builds them for the real hosts.
CHECKOUT_API_BASE = "http://api.checkout.test"
CHECKOUT_AUTH_BASE = "http://access.checkout.test"


@contextmanager
def bench_cluster(
    state_dir: Path | None, *, prefix: str = "procon-bench-", remove: bool = True
) -> Iterator[control_plane.Cluster]:
    """A control plane with the CRD installed: the one in ``state_dir`` (left running), or a
    fresh one in a temporary directory, stopped (and, with ``remove``, deleted) at the end."""
    own = state_dir is None
    directory = Path(tempfile.mkdtemp(prefix=prefix)) if state_dir is None else state_dir
    running = control_plane.up(directory)
    try:
        install_crd(running)
        yield running
    finally:
        if own:
            control_plane.down(directory)
            if remove:
                shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Emulators:
    """The processor emulators, served from this process on localhost."""

    stripe: StripeEmulator
    checkout: CheckoutEmulator
    adyen: AdyenEmulator

    @classmethod
    def from_demo_fixtures(cls, *, seed: int | None = None) -> Emulators:
        return cls(
            StripeEmulator.from_fixture(FIXTURES / "stripe-demo.yaml", seed=seed),
            CheckoutEmulator.from_fixture(FIXTURES / "checkout-demo.yaml", seed=seed),
            AdyenEmulator.from_fixture(FIXTURES / "adyen-demo.yaml", seed=seed),
        )

    def start(self) -> None:
        self.stripe.start()
        self.checkout.start()
        self.adyen.start()

    def stop(self) -> None:
        self.stripe.stop()
        self.checkout.stop()
        self.adyen.stop()

    def operator_env(self) -> dict[str, str]:
        """The variables that point the operator's processor clients at these emulators."""
        return {
            "PROCON_STRIPE_API_BASE": self.stripe.base_url,
            "PROCON_CHECKOUT_API_BASE": CHECKOUT_API_BASE,
            "PROCON_CHECKOUT_AUTH_BASE": CHECKOUT_AUTH_BASE,
            "HTTP_PROXY": self.checkout.base_url,
            "NO_PROXY": "127.0.0.1,localhost",
            # Adyen's test and live are separate hosts, each refusing the other's keys: the
            # emulator serves each environment under a base URL of its own.
            "PROCON_ADYEN_TEST_API_BASE": self.adyen.api_base_for("test"),
            "PROCON_ADYEN_LIVE_API_BASE": self.adyen.api_base_for("live"),
        }


@contextmanager
def running_emulators(*, seed: int | None = None) -> Iterator[Emulators]:
    emulators = Emulators.from_demo_fixtures(seed=seed)
    emulators.start()
    try:
        yield emulators
    finally:
        emulators.stop()


def operator_environment(
    running: control_plane.Cluster,
    emulators: Emulators,
    *,
    drift_interval: float,
    cluster_name: str,
    namespaces: tuple[str, ...] = (),
    **extra: str,
) -> dict[str, str]:
    """The operator's environment: the cluster's kubeconfig, the emulators, the drift interval,
    the cluster identity, and the namespaces it watches (every one when empty)."""
    from tests.integration.operator_harness import operator_env

    env = operator_env(
        running.env(),
        **emulators.operator_env(),
        PROCON_DRIFT_INTERVAL=str(drift_interval),
        PROCON_CLUSTER_NAME=cluster_name,
        **extra,
    )
    if namespaces:
        env["PROCON_NAMESPACES"] = ",".join(namespaces)
    return env


def await_finalizer_policy(running: control_plane.Cluster, namespace: str, timeout: float = 60.0) -> None:
    """Wait until the chart's finalizer policy (charts/procon/README.md, "The finalizer at
    creation") is in force in ``namespace``: the API server loads a new policy a moment after its
    creation, and a run must not count the finalizer patches of connections created before."""
    probe = {
        "apiVersion": "procon.dev/v1alpha1",
        "kind": "ProcessorConnection",
        "metadata": {"name": "finalizer-policy-probe", "namespace": namespace},
        "spec": {
            "processor": "stripe",
            "mode": "test",
            "credentialsSecretRef": {"name": "probe-key"},
            "requiredPermissions": ["rak_webhook_write"],
            "webhook": {
                "url": "https://hooks.example.com/probe",
                "events": ["charge.succeeded"],
                "signingSecretRef": {"name": "probe-webhook"},
            },
        },
    }
    deadline = time.monotonic() + timeout
    while True:
        created = kubectl(
            running, "create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(probe)
        )
        if json.loads(created)["metadata"].get("finalizers"):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the finalizer policy was not in force in {namespace} after {timeout:g} s")
        time.sleep(0.2)


@dataclass(frozen=True)
class OperatorRelease:
    """The chart (``charts/procon``) installed as production installs it, watching one namespace:
    the operator's ServiceAccount, its least-privilege RBAC (a Role in the watched namespace) and
    the admission policy on its Secret writes. The control plane runs no kubelet, so the
    Deployment's pod never starts; the Deployment only says how a bench runs the operator itself:
    with the ServiceAccount's token (:meth:`kubeconfig`) instead of the admin certificate
    (``system:masters``, which skips RBAC and the admission policies) and with the Deployment's
    environment (:meth:`operator_environment`)."""

    running: control_plane.Cluster
    name: str
    namespace: str  # the release's: its ServiceAccount's and its Deployment's
    watched: str

    @classmethod
    def install(
        cls,
        running: control_plane.Cluster,
        name: str,
        namespace: str,
        watched: str,
        values: dict[str, Any],
        workdir: Path,
    ) -> OperatorRelease:
        """``helm install`` in ``namespace`` (created if missing), watching ``watched`` (which
        must exist: its Role goes there), with ``values`` on top. The CRD is the control plane's
        already (``bench_cluster``), so the release leaves it out."""
        chosen = {**values, "watchNamespaces": [watched], "crds": {"enabled": False}}
        path = workdir / f"{name}-values.json"
        path.write_text(json.dumps(chosen))  # a file keeps numbers numbers (--set makes 60.0 a string)
        installed = subprocess.run(
            ["helm", "install", name, str(CHART), "-n", namespace, "--create-namespace", "-f", str(path)],
            env=running.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if installed.returncode != 0:
            raise RuntimeError(f"helm install {name} failed:\n{installed.stderr[-2000:]}")
        # The release's finalizer policy, where the API server serves the kind (1.36+).
        policies = subprocess.run(
            [
                "kubectl",
                "get",
                "mutatingadmissionpolicies",
                "-l",
                f"app.kubernetes.io/instance={name}",
                "-o",
                "name",
            ],
            env=running.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if policies.returncode == 0 and policies.stdout.strip():
            await_finalizer_policy(running, watched)
        return cls(running, name, namespace, watched)

    def uninstall(self) -> None:
        """``helm uninstall``, then the release's namespace (helm does not delete it), waiting
        until it is gone."""
        for command in (
            ["helm", "uninstall", self.name, "-n", self.namespace],
            ["kubectl", "delete", "namespace", self.namespace, "--wait=true", "--timeout=120s"],
        ):
            subprocess.run(command, env=self.running.env(), capture_output=True, check=False)

    def _pod_spec(self) -> dict[str, Any]:
        (deployment,) = json.loads(
            kubectl(
                self.running,
                "get",
                "deployments",
                "-n",
                self.namespace,
                "-l",
                f"app.kubernetes.io/instance={self.name}",
                "-o",
                "json",
            )
        )["items"]
        spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
        return spec

    @property
    def service_account(self) -> str:
        return str(self._pod_spec()["serviceAccountName"])

    def deployment_env(self) -> dict[str, str]:
        """The operator container's environment as the release installed it: its literal
        values (an entry read from the pod itself, such as the leader election's namespace,
        has no value outside a pod and is left out)."""
        (container,) = self._pod_spec()["containers"]
        return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}

    def kubeconfig(self, path: Path, *, seconds: int) -> Path:
        """A kubeconfig with a token of the release's ServiceAccount, valid for ``seconds``."""
        return control_plane.service_account_kubeconfig(
            self.running, self.namespace, self.service_account, path, seconds=seconds
        )

    def operator_environment(self, emulators: Emulators, kubeconfig: Path, **extra: str) -> dict[str, str]:
        """The Deployment's environment, with what differs for a process on this machine: the
        ServiceAccount's ``kubeconfig`` (in a pod, its mounted token), the emulators' addresses,
        and ``extra`` (a free metrics port: the Deployment's is the pod's own)."""
        from tests.integration.operator_harness import operator_env

        installed = self.deployment_env()
        local = {**emulators.operator_env(), "KUBECONFIG": str(kubeconfig), **extra}
        env = operator_env(self.running.env(), **{**installed, **local})
        env["PROCON_NAMESPACES"] = installed["PROCON_NAMESPACES"]  # operator_env drops inherited ones
        return env


def user_of(running: control_plane.Cluster, kubeconfig: Path) -> str:
    """Who the API server takes a kubeconfig's holder for (``kubectl auth whoami``)."""
    return subprocess.run(
        ["kubectl", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
        env={**running.env(), "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def processor_calls(emulator: Any) -> Counter[str]:
    """The calls an emulator has counted, by ``METHOD route``, its control routes left out."""
    return Counter(
        f"{r.method} {r.route}" for r in emulator.requests if not r.path.startswith(CONTROL_PREFIX)
    )


def kubectl(running: control_plane.Cluster, *args: str, stdin: str | None = None) -> str:
    """kubectl against the bench's cluster; its output, or CalledProcessError with stderr."""
    return subprocess.run(
        ["kubectl", *args], input=stdin, text=True, capture_output=True, check=True, env=running.env()
    ).stdout


def process_memory_mib(pid: int, field: str = "VmRSS") -> float:
    """A process' memory from /proc (Linux): ``VmRSS`` now, or ``VmHWM``, its peak resident size."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no {field} for process {pid}")
    return int(match.group(1)) / 1024


def server_pids(state_dir: Path) -> dict[str, int]:
    """The kube-apiserver and etcd processes of the control plane in ``state_dir``."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(state_dir).encode() not in b" ".join(argv):
            continue
        program = Path(argv[0].decode()).name
        if program in ("kube-apiserver", "etcd"):
            found[program] = int(entry.name)
    if set(found) != {"kube-apiserver", "etcd"}:
        raise RuntimeError(f"kube-apiserver and etcd of {state_dir} not found (found {sorted(found)})")
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
