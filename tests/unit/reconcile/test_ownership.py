"""The ownership tag: its wire names are a contract with every webhook already created."""

from __future__ import annotations

import pytest

from procon.reconcile.ownership import Owner, Relation, describe_owner, relation

OWNER = Owner(cluster="c-1", namespace="shop", name="stripe", uid="uid-1")


def test_the_tag_written_on_a_webhook_has_these_exact_names_and_values() -> None:
    """Webhooks created by earlier versions carry these names: a rename would make every one of
    them foreign (never updated, never deleted, and a conflict for its own connection)."""
    assert OWNER.metadata() == {
        "procon-managed-by": "procon.dev",
        "procon-cluster": "c-1",
        "procon-namespace": "shop",
        "procon-name": "stripe",
        "procon-uid": "uid-1",
    }


def test_a_webhook_tagged_by_an_earlier_version_is_recognised() -> None:
    written_before = {
        "procon-managed-by": "procon.dev",
        "procon-cluster": "c-1",
        "procon-namespace": "shop",
        "procon-name": "stripe",
        "procon-uid": "uid-1",
        "procon-connect": "false",  # a driver's own key does not change whose it is
    }
    assert relation(written_before, OWNER) is Relation.MINE
    assert relation({**written_before, "procon-uid": "uid-0"}, OWNER) is Relation.PREDECESSOR
    assert relation({**written_before, "procon-cluster": "c-2", "procon-uid": "uid-0"}, OWNER) is (
        Relation.SIBLING
    )
    assert relation({**written_before, "procon-managed-by": "someone"}, OWNER) is Relation.FOREIGN


@pytest.mark.parametrize(
    ("metadata", "described"),
    [
        ({"procon-cluster": "c-1", "procon-namespace": "shop", "procon-name": "other"}, "shop/other"),
        (
            {"procon-cluster": "c-2", "procon-namespace": "shop", "procon-name": "stripe"},
            "shop/stripe in cluster c-2",
        ),
        # A tag missing its parts (edited by hand at the processor) is still described.
        ({"procon-managed-by": "procon.dev"}, "?/? in cluster ?"),
        ({"procon-cluster": "c-1"}, "?/?"),
    ],
)
def test_describe_owner(metadata: dict[str, str], described: str) -> None:
    assert describe_owner(metadata, OWNER) == described
