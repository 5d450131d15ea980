"""Finding missing Checkout.com scopes with few token requests."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import pytest

from procon.processors.checkout.scopes import KNOWN_SCOPES, find_missing, probe_for, split_known

SCOPES = [
    "gateway",
    "disputes:view",
    "reports:view",
    "financial-actions:view",
    "balances:view",
    "payments:search",
    "files:retrieve",
    "flow:workflows",
    "flow:events",
]


def search(scopes: Sequence[str], lacking: set[str]) -> tuple[list[str], int]:
    calls = 0

    async def grants(subset: Sequence[str]) -> bool:
        nonlocal calls
        calls += 1
        return not (set(subset) & lacking)

    return asyncio.run(find_missing(scopes, grants)), calls


def test_nothing_missing_costs_one_request() -> None:
    assert search(SCOPES, set()) == ([], 1)


@pytest.mark.parametrize("k", [1, 2, 3, 9])
def test_every_missing_subset_is_found(k: int) -> None:
    worst = 0
    for lacking in itertools.combinations(SCOPES, k):
        found, calls = search(SCOPES, set(lacking))
        assert found == sorted(lacking)
        worst = max(worst, calls)
    # Cheaper than asking for each scope alone (9 requests) when few are missing.
    if k == 1:
        assert worst <= 1 + 2 * 4
        assert worst < len(SCOPES) + 1


def test_unknown_scopes_are_set_apart() -> None:
    known, unknown = split_known(["disputes:view", "risk", "flow"])
    assert known == ["disputes:view", "flow"]
    assert unknown == ["risk"]
    assert "risk" not in KNOWN_SCOPES


def test_probes() -> None:
    assert probe_for("disputes:view", None) is not None
    assert probe_for("balances:view", None) is None  # needs an entity
    balance = probe_for("balances:view", "ent_x")
    assert balance is not None
    assert balance.host == "balances"
    assert probe_for("risk", None) is None
