"""What the operator does with a connection it first sees (after a start): a connection Ready for
its generation with every request carried out waits for its drift check; any other is reconciled
at once (procon.k8s.handlers._settled)."""

from __future__ import annotations

from typing import Any

from procon.k8s.handlers import _settled

ROTATE = "procon.dev/rotate-signing-secret"


def ready_status(generation: int = 3, **extra: Any) -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "conditions": [{"type": "Ready", "status": "True", "observedGeneration": generation}],
        **extra,
    }


def test_ready_for_its_generation_waits_for_its_drift_check() -> None:
    assert _settled(ready_status(), 3, {})


def test_a_spec_changed_while_the_operator_was_down_is_reconciled_at_once() -> None:
    assert not _settled(ready_status(), 4, {})


def test_a_connection_not_ready_is_reconciled_at_once() -> None:
    status = ready_status()
    status["conditions"][0]["status"] = "False"
    assert not _settled(status, 3, {})
    assert not _settled({}, 1, {})


def test_a_rotation_not_carried_out_yet_is_reconciled_at_once() -> None:
    """A rotation is asked for by annotation, which moves no generation: a kill before it was
    carried out leaves the status Ready at its generation (found by the crash harness)."""
    assert not _settled(ready_status(), 3, {ROTATE: "r2"})
    assert not _settled(ready_status(signingSecretRotation="r1"), 3, {ROTATE: "r2"})
    assert _settled(ready_status(signingSecretRotation="r2"), 3, {ROTATE: "r2"})
