"""procon's annotations read defensively: a malformed or unknown one is named and ignored, never raised."""

from __future__ import annotations

import json

import pytest

from procon.reconcile import annotations as a

RECORD = json.dumps({"key": "procon-abc", "params": "0123456789abcdef"})


def test_a_well_formed_set_has_no_problems() -> None:
    values = {
        a.PAUSED: "false",
        a.ROTATE_SIGNING_SECRET: "2026-11-22T15:00:00Z",
        a.PENDING_CREATE: RECORD,
        "procon.dev/last-handled-configuration": "{}",
        "procon.dev/kopf-managed": "yes",
        "procon.dev/connection_deleted": "{}",
        "example.com/anything": "[]",
    }
    assert a.problems(values) == []
    assert a.pending_create(RECORD) == a.PendingCreate("procon-abc", "0123456789abcdef")
    assert a.rotation(values) == "2026-11-22T15:00:00Z"
    assert not a.is_paused(values)


@pytest.mark.parametrize(
    "raw",
    [
        "[]",
        "{}",
        "null",
        "not json",
        "[" * 200_000 + "]" * 200_000,  # would raise RecursionError from json.loads
        json.dumps({"key": 1, "params": "x"}),
        json.dumps({"key": "k", "params": "p", "pad": "x" * 2000}),
    ],
    ids=["list", "empty", "null", "text", "deeply-nested", "wrong-types", "oversized"],
)
def test_a_malformed_pending_create_is_ignored_with_a_problem(raw: str) -> None:
    assert a.pending_create(raw) is None
    (problem,) = a.problems({a.PENDING_CREATE: raw})
    assert problem.annotation == a.PENDING_CREATE
    assert "not a record procon wrote" in problem.message
    assert len(problem.message) < 300  # a huge value is described by its length, not repeated


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        (a.PAUSED, "yes", "'yes', neither true nor false"),
        (a.PAUSED, "True", "neither true nor false"),
        (a.ROTATE_SIGNING_SECRET, "r1\nr2", "no rotation was made"),
        (a.ROTATE_SIGNING_SECRET, "x" * 300, "a value of 300 characters"),
        ("procon.dev/pause", "true", "not an annotation procon uses"),
    ],
)
def test_other_procon_annotations_with_values_procon_cannot_use(name: str, value: str, says: str) -> None:
    (problem,) = a.problems({name: value})
    assert says in problem.message
    assert not a.is_paused({name: value})
    assert a.rotation({name: value}) is None


def test_one_warning_per_distinct_value() -> None:
    first = a.problems({a.PAUSED: "yes"})[0]
    assert a.problems({a.PAUSED: "yes"})[0].value_digest == first.value_digest
    assert a.problems({a.PAUSED: "no"})[0].value_digest != first.value_digest
