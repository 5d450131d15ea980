"""The retry schedule after transient processor errors: exponential, jittered, capped at 30 s."""

from __future__ import annotations

from procon.reconcile.retry import MAX_DELAY, retry_delay


def test_doubles_from_one_second_with_jitter_in_the_upper_half() -> None:
    assert retry_delay(1, lambda: 0.999999) == 1.0 * (0.5 + 0.5 * 0.999999)
    assert retry_delay(1, lambda: 0.0) == 0.5
    assert retry_delay(4, lambda: 0.0) == 4.0
    assert retry_delay(5, lambda: 0.5) == 16 * 0.75


def test_never_more_than_the_cap_however_many_failures() -> None:
    assert MAX_DELAY == 30.0
    assert max(retry_delay(n, lambda: 0.999999) for n in range(1, 200)) <= MAX_DELAY
    assert retry_delay(100, lambda: 0.0) == MAX_DELAY / 2
