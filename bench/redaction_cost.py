"""Measure what redaction costs per call as the number of registered secret values grows.

Every event, condition message and log line passes through redaction, so its
cost must not grow with the number of connections. For each count of
registered values (two per connection, as a credentials Secret and a signing
secret give), it prints the time per call of:

- ``redact(text, scope)``: what an event or a condition message costs;
- ``redact_all(text)``: what a log line costs (every scope's values apply);

for a short text (an event message, ~350 characters) and a long one (a
debug log line with an object body, ~5 KB). It also shows the register's
bound (registering more values than it holds keeps the most recent) and the
memory the register takes.

Usage: python bench/redaction_cost.py [--counts 0,1000,10000,600000]
"""

from __future__ import annotations

import argparse
import secrets
import string
import time
import tracemalloc
from collections.abc import Callable

from procon import redaction

ALNUM = string.ascii_letters + string.digits
SHORT = (
    "created webhook we_1Pabcdefghijklmnop at https://hooks.example.com/stripe/events?tenant=alpha "
    "delivers 12 event types; "
) * 3
LONG = SHORT * 15


def per_call(function: Callable[[], object], budget: float = 0.5) -> float:
    """Seconds per call, repeating for about ``budget`` seconds."""
    calls, started = 0, time.perf_counter()
    while True:
        function()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed > budget:
            return elapsed / calls


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", default="0,1000,10000,600000")
    args = parser.parse_args()
    print(f"{'values':>8} {'held':>7} {'memory':>8} {'text':>6} {'redact(scope)':>14} {'redact_all':>11}")
    for count in (int(c) for c in args.counts.split(",")):
        register = redaction.SecretRegister()
        redaction._register = register  # a fresh register per row
        tracemalloc.start()
        for n in range(count // 2):
            values = ["".join(secrets.choice(ALNUM) for _ in range(40)) for _ in range(2)]
            redaction.remember(f"ns-{n}/connection", values)
            del values
        memory = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        scope = f"ns-{count // 2 - 1}/connection"
        for label, text in (("short", SHORT), ("long", LONG)):
            scoped = per_call(lambda: redaction.redact(text, scope))  # noqa: B023
            everything = per_call(lambda: redaction.redact_all(text))  # noqa: B023
            print(
                f"{count:>8} {register.count():>7} {memory / 2**20:>5.1f}MiB {label:>6} "
                f"{scoped * 1e6:>11.0f} µs {everything * 1e6:>8.0f} µs"
            )


if __name__ == "__main__":
    main()
