"""Conditions follow kstatus: what Flux and Argo CD read from them."""

from __future__ import annotations

from procon.reconcile.conditions import Assessment, Verdict, build, same_conditions

OK = Verdict("True", "Fine", "fine")


def by_type(conditions: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {c["type"]: c for c in conditions}


def test_first_sight_is_not_ready_and_reconciling() -> None:
    c = by_type(build(Assessment(starting=True), generation=1))
    assert (c["Ready"]["status"], c["Reconciling"]["status"], c["Stalled"]["status"]) == (
        "False",
        "True",
        "False",
    )
    assert all(x["observedGeneration"] == 1 for x in c.values())


def test_all_true_is_ready() -> None:
    c = by_type(build(Assessment(credentials=OK, permissions=OK, webhook=OK), generation=3))
    assert c["Ready"]["status"] == "True"
    assert c["Reconciling"]["status"] == "False"
    assert c["Stalled"]["status"] == "False"


def test_stalled_names_its_reason_in_ready() -> None:
    bad = Verdict("False", "InvalidCredentials", "no")
    c = by_type(build(Assessment(credentials=bad, stalled=bad), generation=2))
    assert (c["Ready"]["status"], c["Ready"]["reason"]) == ("False", "InvalidCredentials")
    assert (c["Stalled"]["status"], c["Stalled"]["reason"]) == ("True", "InvalidCredentials")
    assert c["Reconciling"]["status"] == "False"


def test_retrying_is_reconciling_not_stalled() -> None:
    c = by_type(build(Assessment(retrying="Stripe is unavailable"), generation=2))
    assert (c["Reconciling"]["status"], c["Reconciling"]["reason"]) == ("True", "RetryingAfterError")
    assert c["Stalled"]["status"] == "False"
    assert c["Ready"]["reason"] == "ProcessorUnavailable"


def test_transition_time_kept_unless_status_flips() -> None:
    first = build(Assessment(credentials=OK, permissions=OK, webhook=OK), generation=1)
    for c in first:
        c["lastTransitionTime"] = "2000-01-01T00:00:00Z"
    again = by_type(
        build(Assessment(credentials=OK, permissions=OK, webhook=OK), generation=2, previous=first)
    )
    assert again["Ready"]["lastTransitionTime"] == "2000-01-01T00:00:00Z"
    bad = Verdict("False", "X", "x")
    flipped = by_type(build(Assessment(credentials=bad, stalled=bad), generation=2, previous=first))
    assert flipped["Ready"]["lastTransitionTime"] != "2000-01-01T00:00:00Z"
    assert flipped["CredentialsValid"]["lastTransitionTime"] != "2000-01-01T00:00:00Z"


def test_same_conditions_ignores_times_only() -> None:
    a = build(Assessment(credentials=OK, permissions=OK, webhook=OK), generation=1)
    b = [{**c, "lastTransitionTime": "1999-01-01T00:00:00Z"} for c in a]
    assert same_conditions(a, b)
    c = build(Assessment(credentials=OK, permissions=OK, webhook=OK), generation=2)
    assert not same_conditions(a, c)


def test_long_messages_are_capped() -> None:
    long = Verdict("False", "X", "m" * 5000)
    c = by_type(build(Assessment(credentials=long, stalled=long), generation=1))
    assert len(str(c["CredentialsValid"]["message"])) == 1024


def test_messages_are_redacted_whoever_built_them() -> None:
    """A message carrying a key, a signing key registered as secret, or an account id is written
    redacted: the condition list is the last stop before status."""
    from procon.redaction import remember

    signing_key = "procon-generated-signing-key-0123456789"
    remember("ns/shop", [signing_key], part="signing")
    leaky = Verdict(
        "False",
        "InvalidCredentials",
        f"Invalid API Key provided: rk_test_51Abcdefghijklmnop on account acct_1PJBLEBBLEfV; {signing_key}",
    )
    c = by_type(build(Assessment(credentials=leaky, stalled=leaky), generation=1, scope="ns/shop"))
    for condition in c.values():
        message = str(condition["message"])
        assert "rk_test_51Abc" not in message
        assert "acct_1PJBLEBBLEfV" not in message
        assert signing_key not in message
    assert "acct_…LEfV" in str(c["CredentialsValid"]["message"])
