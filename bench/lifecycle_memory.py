"""Measure what the operator keeps after connections are gone: its memory before and after churn.

Runs the real pieces: the local control plane, the Stripe emulator and the
operator as a process. It creates and deletes connections (a quarter each
deleted, paused then deleted, orphaned, deleted with their namespace; see
``tests/integration/churn.py``), first ``--warm-up`` of them so that caches,
pools and the allocator settle, then ``--cycles`` more, and prints the
operator's resident memory (VmRSS) after each phase, and the entries it
still keeps per connection (``procon_connection_state_entries``) when the
operator exports them.

Usage: python bench/lifecycle_memory.py [--warm-up 40] [--cycles 300] [--state-dir DIR]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._harness import (  # noqa: E402
    bench_cluster,
    operator_environment,
    running_emulators,
)
from bench._harness import process_memory_mib as rss_mib  # noqa: E402
from tests.integration.churn import churn  # noqa: E402
from tests.integration.conftest import Kubectl  # noqa: E402
from tests.integration.operator_harness import (  # noqa: E402
    OperatorProcess,
    metrics_reader_token,
    start_operator,
)

from procon.dev.processes import free_port  # noqa: E402


def state_entries(operator: OperatorProcess) -> dict[str, float]:
    text = operator.scrape()
    found = re.findall(r'^procon_connection_state_entries\{store="([^"]+)"\} (\S+)$', text, re.MULTILINE)
    return {store: float(value) for store, value in found}


def settle(quiet: float = 3.0) -> None:
    """A few idle seconds, so the operator has handled the last watch events before it is measured."""
    time.sleep(quiet)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warm-up", type=int, default=40)
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="reuse a control plane (default: a fresh one)"
    )
    args = parser.parse_args()

    with (
        bench_cluster(args.state_dir, remove=False) as running,
        running_emulators() as emulators,
    ):
        kubectl = Kubectl(running)
        stripe = emulators.stripe
        operator = start_operator(
            operator_environment(
                running,
                emulators,
                drift_interval=300,
                cluster_name="bench",
                PROCON_METRICS_PORT=str(free_port()),
            ),
            running.state_dir / "lifecycle-operator.log",
            ["--log-level=info"],
        )
        try:
            operator.metrics_token = metrics_reader_token(kubectl)
            pid = operator.process.pid
            print(f"operator started: {rss_mib(pid):.1f} MiB")
            started = time.monotonic()
            churn(kubectl, stripe, args.warm_up, batch=args.batch)
            settle()
            warm = rss_mib(pid)
            kept = state_entries(operator)
            print(f"after {args.warm_up} warm-up connections: {warm:.1f} MiB; kept: {kept}")
            churn(kubectl, stripe, args.cycles, batch=args.batch)
            settle()
            after = rss_mib(pid)
            elapsed = time.monotonic() - started
            print(f"after {args.cycles} more connections: {after:.1f} MiB; kept: {state_entries(operator)}")
            print(
                f"growth over {args.cycles} create/delete cycles: {after - warm:+.1f} MiB "
                f"({(after - warm) * 1024 / args.cycles:.1f} KiB per connection); {elapsed:.0f}s in all"
            )
        finally:
            operator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
