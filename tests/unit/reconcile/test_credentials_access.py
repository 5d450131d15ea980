"""Who may use a credentials Secret: the opt-in label and the allowed-connections annotation."""

from __future__ import annotations

from procon.reconcile.credentials_access import (
    ALLOWED_CONNECTIONS,
    NOT_ALLOWED,
    NOT_OPTED_IN,
    allowed_connections,
    refusal,
)


def test_a_secret_that_did_not_opt_in_is_refused_naming_the_label() -> None:
    verdict = refusal("key", opted_in=False, annotations={}, connection="shop")
    assert verdict is not None
    assert verdict.reason == NOT_OPTED_IN
    assert 'procon.dev/credentials: "true"' in verdict.message


def test_an_opted_in_secret_without_the_annotation_serves_every_connection() -> None:
    assert refusal("key", opted_in=True, annotations={}, connection="anyone") is None


def test_the_annotation_lists_the_connections_that_may_use_it() -> None:
    annotations = {ALLOWED_CONNECTIONS: " shop, billing ,,"}
    assert allowed_connections(annotations) == frozenset({"shop", "billing"})
    assert refusal("key", opted_in=True, annotations=annotations, connection="billing") is None
    verdict = refusal("key", opted_in=True, annotations=annotations, connection="intruder")
    assert verdict is not None
    assert verdict.reason == NOT_ALLOWED
    assert "(billing, shop)" in verdict.message
    assert "intruder is not one of them" in verdict.message


def test_an_empty_annotation_allows_no_connection() -> None:
    verdict = refusal("key", opted_in=True, annotations={ALLOWED_CONNECTIONS: ""}, connection="shop")
    assert verdict is not None
    assert "(none)" in verdict.message
