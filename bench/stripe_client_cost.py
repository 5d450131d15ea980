"""What one Stripe request costs the operator's own CPU, over the SDK's httpx client and over procon's.

A fleet's first pass sends a Stripe request or two per connection (``bench/fleet.py``), on a
machine whose cores the API server also needs, so the client's own CPU per request counts. This
starts the Stripe emulator in a process of its own (``procon emulate stripe``, the demo
fixture), then sends N listings of webhook endpoints through ``stripe.StripeClient``, K in
flight, once with the SDK's default async client (``stripe.HTTPXClient``) and once with the
client procon's Stripe driver uses, and prints each one's CPU time per request (this process
only: the emulator's is apart) and the wall time.

Usage: python bench/stripe_client_cost.py [--requests 3000] [--in-flight 16] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

import stripe  # noqa: E402

from procon.processors.stripe.driver import CappedAIOHTTPClient  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "stripe-demo.yaml"
KEY = "rk_test_51PJBLEBBLEfVdemoOperatorRestrictedqs8Kgd"  # the demo fixture's operator key


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "procon.cli", "emulate", "stripe", "--fixture", str(FIXTURE), "--quiet"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "operator"), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    for line in process.stdout:
        found = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        if found:
            return process, found.group(1)
        if time.monotonic() > deadline:
            break
    process.kill()
    raise SystemExit("the Stripe emulator did not say where it listens")


async def measure(http_client: Any, base: str, requests: int, in_flight: int) -> tuple[float, float]:
    client = stripe.StripeClient(
        "sk_test_unused", base_addresses={"api": base}, http_client=http_client, max_network_retries=0
    )
    room = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with room:
            await client.raw_request_async("get", "/v1/webhook_endpoints", api_key=KEY, limit=100)

    await one()  # connections and TLS contexts made before the clock starts
    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.gather(*(one() for _ in range(requests)))
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    await http_client.close_async()
    return 1000 * cpu / requests, wall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    process, base = start_emulator()
    try:
        print(f"{args.requests} GET /v1/webhook_endpoints, {args.in_flight} in flight, emulator at {base}")
        for round_ in range(1, args.rounds + 1):
            for name, make in (
                ("SDK's httpx client", lambda: stripe.HTTPXClient(timeout=30)),
                ("procon's aiohttp client", lambda: CappedAIOHTTPClient(base, timeout=30)),
            ):
                per_request, wall = asyncio.run(measure(make(), base, args.requests, args.in_flight))
                print(f"  round {round_}: {name:24s} {per_request:5.2f} ms CPU per request, {wall:5.1f} s")
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
