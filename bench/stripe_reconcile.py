"""Measure what one Stripe connection costs: time from apply to Ready, and processor calls.

Runs the real pieces: the local control plane, the Stripe emulator, and the
operator as a process. Prints:

- apply-to-Ready time per connection (median and max over --runs);
- Stripe API calls of the first reconcile, by route;
- Stripe API calls of one unchanged drift check, by route.

Usage: python bench/stripe_reconcile.py [--runs 5] [--state-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from procon.dev import cluster as control_plane  # noqa: E402
from procon.dev.demo import install_crd  # noqa: E402
from procon.emulators.stripe import StripeEmulator  # noqa: E402
from tests.integration.operator_harness import (  # noqa: E402
    ANALYTICS_PERMISSIONS,
    StripeAccount,
    connection,
    key_secret,
    operator_env,
    start_operator,
)

DRIFT_INTERVAL = 5.0


def kubectl(running: control_plane.Cluster, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        ["kubectl", *args], input=stdin, text=True, capture_output=True, check=True, env=running.env()
    ).stdout


def calls(emulator: StripeEmulator) -> Counter[str]:
    return Counter(f"{r.method} {r.route}" for r in emulator.requests if not r.path.startswith("/_emulator"))


def wait_ready(running: control_plane.Cluster, namespace: str, name: str, timeout: float = 60) -> None:
    kubectl(running, "wait", "-n", namespace, "--for=condition=Ready", f"--timeout={int(timeout)}s", f"pconn/{name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--state-dir", type=Path, default=None, help="reuse a control plane (default: a fresh one)")
    args = parser.parse_args()

    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="procon-bench-"))
    running = control_plane.up(state_dir)
    install_crd(running)
    namespace = f"bench-{int(time.time())}"
    kubectl(running, "create", "namespace", namespace)
    emulator = StripeEmulator.from_fixture(ROOT / "tests" / "fixtures" / "stripe-demo.yaml")
    emulator.start()
    operator = start_operator(
        operator_env(
            running.env(),
            PROCON_STRIPE_API_BASE=emulator.base_url,
            PROCON_DRIFT_INTERVAL=str(DRIFT_INTERVAL),
            PROCON_CLUSTER_NAME="bench",
        ),
        state_dir / "bench-operator.log",
    )
    try:
        durations = []
        first_reconcile: Counter[str] = Counter()
        for run in range(args.runs):
            account = StripeAccount(emulator)
            name = f"bench{run}"
            docs = [key_secret(name, account.key(ANALYTICS_PERMISSIONS)), connection(name)]
            emulator.reset_counters()
            started = time.monotonic()
            kubectl(running, "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(docs))
            wait_ready(running, namespace, name)
            durations.append(time.monotonic() - started)
            first_reconcile = calls(emulator)

        # One drift check of an unchanged connection: checks are at least 0.8 x the
        # interval apart, so a window of 1.1 x catches exactly one per connection.
        kubectl(running, "delete", "pconn", "--all", "-n", namespace, "--wait=true")
        account = StripeAccount(emulator)
        docs = [key_secret("drift", account.key(ANALYTICS_PERMISSIONS)), connection("drift")]
        kubectl(running, "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(docs))
        wait_ready(running, namespace, "drift")
        emulator.reset_counters()
        time.sleep(DRIFT_INTERVAL * 1.25)
        drift = calls(emulator)

        print(f"apply-to-Ready over {len(durations)} connections: "
              f"median {statistics.median(durations):.2f}s, max {max(durations):.2f}s")
        print(f"Stripe calls, first reconcile (last run): {sum(first_reconcile.values())}")
        for route, count in sorted(first_reconcile.items()):
            print(f"  {count:3d}  {route}")
        print(f"Stripe calls, one unchanged drift check: {sum(drift.values())}")
        for route, count in sorted(drift.items()):
            print(f"  {count:3d}  {route}")
    finally:
        operator.stop()
        emulator.stop()
        kubectl(running, "delete", "namespace", namespace, "--wait=false")
        if args.state_dir is None:
            control_plane.down(state_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
