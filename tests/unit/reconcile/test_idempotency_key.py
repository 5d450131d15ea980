"""Create keys are random: nothing about the connection derives them, and no two creates share one."""

from __future__ import annotations

from procon.reconcile.reconciler import new_idempotency_key


def test_keys_are_fresh_and_within_stripes_limit() -> None:
    keys = {new_idempotency_key() for _ in range(1000)}
    assert len(keys) == 1000
    assert all(len(k) <= 255 for k in keys)  # Stripe's limit
