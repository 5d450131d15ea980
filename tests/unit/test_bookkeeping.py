"""procon's kopf diff base: no copy of the object, and kopf still tells a deletion from a change."""

from __future__ import annotations

from typing import Any

import kopf
from kopf._cogs.structs import diffs
from kopf._core.intents import causes

from procon.k8s.bookkeeping import NoDiffBase
from procon.k8s.handlers import KOPF_FINALIZER as FINALIZER

BIG = {f"notes.example.com/part-{i}": "x" * 50_000 for i in range(4)}


def body(**metadata: Any) -> kopf.Body:
    raw = {
        "apiVersion": "procon.dev/v1alpha1",
        "kind": "ProcessorConnection",
        "metadata": {"namespace": "shop", "name": "stripe", "annotations": BIG, **metadata},
        "spec": {"processor": "stripe"},
    }
    return kopf.Body(raw)  # type: ignore[arg-type]


def reason(storage: NoDiffBase, obj: kopf.Body, event: str = "MODIFIED") -> causes.Reason:
    old, new = storage.fetch(body=obj), storage.build(body=obj)
    cause = causes.detect_changing_cause(
        finalizer=FINALIZER,
        raw_event={"type": event, "object": dict(obj)},  # type: ignore[typeddict-item]
        body=obj,
        old=old,
        new=new,
        diff=diffs.diff(old, new),
        resource=None,
        indices=None,
        logger=None,
        patch=kopf.Patch(),
        memo=None,
    )
    return cause.reason


def test_nothing_of_the_object_is_written() -> None:
    storage = NoDiffBase()
    patch = kopf.Patch()
    storage.store(body=body(), patch=patch, essence=storage.build(body=body()))
    assert not patch


def test_changes_are_no_ops_and_a_deletion_is_a_deletion() -> None:
    storage = NoDiffBase()
    assert reason(storage, body()) is causes.Reason.NOOP  # never a creation: on.create is not used
    deleting = body(deletionTimestamp="2026-01-01T00:00:00Z", finalizers=[FINALIZER])
    assert reason(storage, deleting) is causes.Reason.DELETE
    released = body(deletionTimestamp="2026-01-01T00:00:00Z")
    assert reason(storage, released) is causes.Reason.FREE
