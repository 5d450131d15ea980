"""What procon registers with kopf, and why some things are not there.

kopf holds every handler until each index has seen every object; procon bounds kopf's event
workers (``KOPF_WORKERS``), and a worker waiting for the index holds its place. A start with
more connections than workers then never got there: no connection was reconciled after a
restart of a fleet. procon keeps its own map of which connections name which Secret instead.
"""

from __future__ import annotations

import asyncio

import kopf

from procon.k8s import handlers
from procon.k8s.handlers import Runtime
from procon.settings import OperatorSettings


def test_no_kopf_index_is_registered() -> None:
    registry = kopf.get_default_registry()
    assert handlers.KOPF_WORKERS is not None
    assert registry._indexing.get_all_handlers() == []


def _runtime() -> Runtime:
    return Runtime(settings=OperatorSettings(), kube=None, reconciler=None)  # type: ignore[arg-type]


def test_the_secrets_a_connection_names_follow_its_spec_and_go_with_it() -> None:
    runtime = _runtime()
    key, creds, signing, other = ("ns", "shop"), ("ns", "key"), ("ns", "signing"), ("ns", "key-2")
    runtime.names_secrets("ns", "shop", frozenset({creds, signing}))
    runtime.names_secrets("ns", "cafe", frozenset({creds}))
    assert runtime.secret_users == {creds: {"shop", "cafe"}, signing: {"shop"}}
    runtime.names_secrets("ns", "shop", frozenset({other, signing}))  # its spec names another key
    assert runtime.secret_users == {creds: {"cafe"}, signing: {"shop"}, other: {"shop"}}
    assert runtime.secrets_named[key] == frozenset({other, signing})
    runtime.names_secrets("ns", "cafe", frozenset())
    runtime.names_secrets("ns", "shop", frozenset())
    assert runtime.secret_users == {}
    assert runtime.secrets_named == {}


def test_the_stop_closes_what_the_drivers_hold_open() -> None:
    runtime = _runtime()
    closed: list[str] = []

    async def close_stripe() -> None:
        closed.append("stripe")

    async def fail() -> None:
        raise OSError("the socket was gone already")

    # One that fails keeps none of the others from closing.
    runtime.closers = [fail, close_stripe]
    asyncio.run(handlers.cleanup(memo=kopf.Memo(runtime=runtime)))
    assert closed == ["stripe"]
