"""When to try again after a transient processor error.

Exponential, so a processor in trouble is not hammered; capped low, so a
connection whose attempts keep failing is never minutes behind healthy ones
once the processor answers again; jittered, so connections that failed
together do not come back together. Pure, so the schedule is tested without
waiting.
"""

from __future__ import annotations

from collections.abc import Callable

FIRST_DELAY = 1.0
MAX_DELAY = 30.0


def retry_delay(failures: int, draw: Callable[[], float]) -> float:
    """Seconds before the next attempt after ``failures`` transient failures in a row (1 or more).

    ``FIRST_DELAY`` doubling per failure up to ``MAX_DELAY``, then scaled by a jitter in
    [0.5, 1] (``draw`` returns a number in [0, 1)).
    """
    ceiling = min(FIRST_DELAY * 2.0 ** max(failures - 1, 0), MAX_DELAY)
    return ceiling * (0.5 + 0.5 * draw())
