"""Integration fixtures: a real kube-apiserver, etcd and controller-manager.

The control plane is the one ``procon dev cluster up`` starts, built from the
official Go modules on first use and cached; one is started per test session.
Set ``PROCON_TEST_STATE_DIR`` to reuse a running one across sessions while
iterating by hand (it is then left running).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from procon.dev import cluster as control_plane
from procon.dev.demo import install_crd


@dataclass(frozen=True)
class Kubectl:
    """kubectl against the test cluster; the same binary a person would use."""

    cluster: control_plane.Cluster

    def run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["kubectl", *args],
            input=input,
            text=True,
            capture_output=True,
            env=self.cluster.env(),
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def apply(
        self, manifest: str | dict[str, Any] | list[dict[str, Any]], *, namespace: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        if not isinstance(manifest, str):
            docs = manifest if isinstance(manifest, list) else [manifest]
            manifest = yaml.safe_dump_all(docs)
        return self.run(
            "apply",
            "--server-side",
            "--field-manager=tests",
            "-n",
            namespace,
            "-f",
            "-",
            input=manifest,
            check=check,
        )

    def get_json(self, *args: str) -> Any:
        return json.loads(self.run("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[control_plane.Cluster]:
    reuse = os.environ.get("PROCON_TEST_STATE_DIR")
    state_dir = Path(reuse) if reuse else tmp_path_factory.mktemp("controlplane")
    running = control_plane.up(state_dir, timeout=180)
    yield running
    if not reuse:
        control_plane.down(state_dir)


@pytest.fixture(scope="session")
def kubectl(cluster: control_plane.Cluster) -> Kubectl:
    return Kubectl(cluster)


@pytest.fixture(scope="session")
def crd_installed(cluster: control_plane.Cluster) -> None:
    install_crd(cluster)


@dataclass(frozen=True)
class Helm:
    """helm against the test cluster: the binary the control plane's toolchain built."""

    cluster: control_plane.Cluster

    def run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["helm", *args],
            input=input,
            text=True,
            capture_output=True,
            env=self.cluster.env(),
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result


@pytest.fixture(scope="session")
def helm(cluster: control_plane.Cluster) -> Helm:
    return Helm(cluster)


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (the namespace controller empties it)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl.run("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "no_session_operator: must run while the session's `operator` is not running "
        "(its own operator, or statuses written by hand); such tests run first",
    )
    config.addinivalue_line(
        "markers",
        "runs_last: reads what the whole session left behind (the operator log); runs after every other test",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)
    # The session `operator` watches every namespace and starts lazily, on
    # the first test that asks for it; a test that runs an operator of its
    # own, or writes statuses by hand, must come before that. A stable sort:
    # the order is otherwise unchanged.
    items.sort(
        key=lambda item: (
            item.get_closest_marker("no_session_operator") is None,
            item.get_closest_marker("runs_last") is not None,
        )
    )


@pytest.fixture(scope="session")
def stripe_emulator() -> Iterator[Any]:
    from procon.emulators.stripe import StripeEmulator

    # The demo fixture's accounts; each test adds a fresh account of its own.
    emulator = StripeEmulator.from_fixture(Path(__file__).parents[1] / "fixtures" / "stripe-demo.yaml")
    emulator.start()
    yield emulator
    emulator.stop()


# Long enough that a test waiting less than 0.8 x this proves a reaction came
# from a watch, not from the drift timer; short enough for drift tests.
DRIFT_INTERVAL = "10"
RECONCILE_TIMEOUT = "15"


@pytest.fixture(scope="session")
def checkout_emulator() -> Iterator[Any]:
    from procon.emulators.checkout import CheckoutEmulator

    emulator = CheckoutEmulator.from_fixture(Path(__file__).parents[1] / "fixtures" / "checkout-demo.yaml")
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def adyen_emulator() -> Iterator[Any]:
    from procon.emulators.adyen import AdyenEmulator

    emulator = AdyenEmulator.from_fixture(Path(__file__).parents[1] / "fixtures" / "adyen-demo.yaml")
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def operator(
    cluster: control_plane.Cluster,
    crd_installed: None,
    stripe_emulator: Any,
    checkout_emulator: Any,
    adyen_emulator: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    from procon.dev.processes import free_port
    from tests.integration.operator_harness import metrics_reader_token, operator_env, start_operator

    env = operator_env(
        cluster.env(),
        PROCON_STRIPE_API_BASE=stripe_emulator.base_url,
        PROCON_DRIFT_INTERVAL=DRIFT_INTERVAL,
        PROCON_CLUSTER_NAME="integration",
        PROCON_PERMISSION_CACHE_TTL="600",
        # Short, so a test can show a slow or endless answer ending in ReconcileTimedOut; far
        # above what a reconcile takes here, faults and their retries included.
        PROCON_RECONCILE_TIMEOUT=RECONCILE_TIMEOUT,
        # Checkout.com's hosts, account prefixes included, reach the emulator the way
        # egress reaches the internet from many clusters: through a proxy. The operator
        # builds {prefix}.api.checkout.test names as it builds them for the real hosts.
        PROCON_CHECKOUT_API_BASE="http://api.checkout.test",
        PROCON_CHECKOUT_AUTH_BASE="http://access.checkout.test",
        HTTP_PROXY=checkout_emulator.base_url,
        # Adyen's test and live are separate hosts, each refusing the other's keys: the emulator
        # serves each environment under its own path, so the operator can tell a key of the other.
        PROCON_ADYEN_TEST_API_BASE=adyen_emulator.api_base_for("test"),
        PROCON_ADYEN_LIVE_API_BASE=adyen_emulator.api_base_for("live"),
        NO_PROXY="127.0.0.1,localhost",
        PROCON_METRICS_PORT=str(free_port()),
    )
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = start_operator(env, log, [f"--liveness=http://127.0.0.1:{free_port()}/healthz"])
    process.metrics_token = metrics_reader_token(Kubectl(cluster))
    yield process
    process.stop()
