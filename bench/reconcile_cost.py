"""Measure what one connection costs: time from apply to Ready, and processor calls.

Runs the real pieces: the local control plane, the Stripe, Checkout.com and
Adyen emulators, and the operator as a process. For each processor it prints:

- apply-to-Ready time per connection (median and max over --runs);
- processor API calls of the first reconcile, by route;
- processor API calls of one unchanged drift check, by route.

Usage: python bench/reconcile_cost.py [--runs 5] [--state-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._harness import (  # noqa: E402
    bench_cluster,
    kubectl,
    operator_environment,
    running_emulators,
)
from bench._harness import processor_calls as calls  # noqa: E402
from tests.integration.operator_harness import (  # noqa: E402
    ANALYTICS_PERMISSIONS,
    CheckoutClient,
    StripeAccount,
    checkout_connection,
    checkout_secret,
    connection,
    key_secret,
    start_operator,
)
from tests.integration.test_adyen_connections import (  # noqa: E402
    AdyenCompany,
    adyen_connection,
    adyen_secret,
)

from procon.dev import cluster as control_plane  # noqa: E402

DRIFT_INTERVAL = 5.0


def settled(emulator: Any, *, quiet: float = 1.0, timeout: float = 30.0) -> Counter[str]:
    """Wait for a burst of calls to start and then stop for ``quiet`` seconds; return it."""
    deadline = time.monotonic() + timeout
    seen: Counter[str] = Counter()
    last_change = time.monotonic()
    while time.monotonic() < deadline:
        now = calls(emulator)
        if now != seen:
            seen, last_change = now, time.monotonic()
        elif seen and time.monotonic() - last_change >= quiet:
            return seen
        time.sleep(0.05)
    raise RuntimeError("no burst of processor calls settled in time")


def measure(
    running: control_plane.Cluster,
    namespace: str,
    emulator: Any,
    make: Callable[[str], list[dict[str, Any]]],
    runs: int,
) -> tuple[list[float], Counter[str], Counter[str]]:
    """Apply-to-Ready times; the calls of the first connection's first reconcile and of its first
    drift check, counted while it is the only connection of this processor (so no other
    connection's calls mix in)."""
    durations: list[float] = []
    first: Counter[str] = Counter()
    drift: Counter[str] = Counter()
    for run in range(runs):
        name = f"bench{run}"
        emulator.reset_counters()
        started = time.monotonic()
        kubectl(running, "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(make(name)))
        kubectl(running, "wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", f"pconn/{name}")
        durations.append(time.monotonic() - started)
        if run == 0:
            first = settled(emulator)
            emulator.reset_counters()
            # The next check comes within 1.2 x the drift interval; its calls arrive together.
            drift = settled(emulator, timeout=DRIFT_INTERVAL * 2)
    return durations, first, drift


def report(title: str, durations: list[float], first: Counter[str], drift: Counter[str]) -> None:
    print(
        f"{title}: apply-to-Ready over {len(durations)} connections: "
        f"median {statistics.median(durations):.2f}s, max {max(durations):.2f}s"
    )
    print(f"  calls, first reconcile: {sum(first.values())}")
    for route, count in sorted(first.items()):
        print(f"    {count:3d}  {route}")
    print(f"  calls, one unchanged drift check: {sum(drift.values())}")
    for route, count in sorted(drift.items()):
        print(f"    {count:3d}  {route}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="reuse a control plane (default: a fresh one)"
    )
    args = parser.parse_args()

    with (
        bench_cluster(args.state_dir, remove=False) as running,
        running_emulators() as emulators,
    ):
        stripe, checkout, adyen = emulators.stripe, emulators.checkout, emulators.adyen
        state_dir = running.state_dir
        operator = start_operator(
            operator_environment(running, emulators, drift_interval=DRIFT_INTERVAL, cluster_name="bench"),
            state_dir / "bench-operator.log",
        )
        namespaces: list[str] = []
        try:

            def stripe_connection(name: str) -> list[dict[str, Any]]:
                return [key_secret(name, StripeAccount(stripe).key(ANALYTICS_PERMISSIONS)), connection(name)]

            def checkout_oauth(name: str) -> list[dict[str, Any]]:
                client = CheckoutClient(checkout)
                return [
                    checkout_secret(name, access_key=client.access_key()),
                    checkout_connection(name, client),
                ]

            def checkout_key(name: str) -> list[dict[str, Any]]:
                client = CheckoutClient(checkout)
                return [
                    checkout_secret(name, secret_key=client.secret_key()),
                    checkout_connection(name, client),
                ]

            def adyen_company(name: str) -> list[dict[str, Any]]:
                company = AdyenCompany(adyen)
                return [adyen_secret(name, company.api_key()), adyen_connection(name, company)]

            for title, emulator, make in [
                ("Stripe, restricted key, 6 permissions", stripe, stripe_connection),
                ("Checkout.com, OAuth, 5 scopes", checkout, checkout_oauth),
                ("Checkout.com, secret key, 5 scopes", checkout, checkout_key),
                ("Adyen, company-level API key, 1 role", adyen, adyen_company),
            ]:
                namespace = f"bench-{len(namespaces)}-{int(time.time())}"
                namespaces.append(namespace)
                kubectl(running, "create", "namespace", namespace)
                report(title, *measure(running, namespace, emulator, make, args.runs))
                # Gone before the next processor is measured, so no drift check of
                # these connections counts towards the next one's figures.
                kubectl(running, "delete", "namespace", namespace, "--wait=true", "--timeout=120s")
        finally:
            operator.stop()
            for namespace in namespaces:
                kubectl(running, "delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
    return 0


if __name__ == "__main__":
    sys.exit(main())
