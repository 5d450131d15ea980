"""Conditions follow kstatus: what Flux and Argo CD read from them."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

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


# The summary conditions as (status, reason, message), one row per way a reconcile ends: kstatus,
# Flux and Argo CD read the statuses, people read the reasons and messages.
STARTING = "the operator has seen this connection and is checking it"
WAITING = "waiting for a change to the spec, the Secret or the processor account"
NO_KEY = Verdict("False", "InvalidCredentials", "the key was revoked")
MISSING = Verdict("False", "MissingPermissions", "the key lacks rak_webhook_write")


def summary(conditions: list[dict[str, object]]) -> dict[object, tuple[object, object, object]]:
    c = by_type(conditions)
    return {t: (c[t]["status"], c[t]["reason"], c[t]["message"]) for t in ("Ready", "Reconciling", "Stalled")}


@pytest.mark.parametrize(
    ("assessment", "expected"),
    [
        pytest.param(
            Assessment(starting=True),
            {
                "Ready": ("False", "Reconciling", STARTING),
                "Reconciling": ("True", "Reconciling", STARTING),
                "Stalled": ("False", "NotStalled", ""),
            },
            id="first-sight",
        ),
        pytest.param(
            Assessment(credentials=NO_KEY, stalled=NO_KEY),
            {
                "Ready": ("False", "InvalidCredentials", "the key was revoked"),
                "Reconciling": ("False", "Stalled", WAITING),
                "Stalled": ("True", "InvalidCredentials", "the key was revoked"),
            },
            id="stalled",
        ),
        pytest.param(
            Assessment(credentials=OK, retrying="Stripe answered 503", retry_reason="ProcessorUnavailable"),
            {
                "Ready": ("False", "ProcessorUnavailable", "Stripe answered 503"),
                "Reconciling": ("True", "RetryingAfterError", "Stripe answered 503"),
                "Stalled": ("False", "NotStalled", ""),
            },
            id="retrying",
        ),
        pytest.param(
            # The first failing domain condition speaks for Ready: permissions before the webhook.
            Assessment(credentials=OK, permissions=MISSING, webhook=Verdict("False", "WebhookPending", "x")),
            {
                "Ready": ("False", "MissingPermissions", "the key lacks rak_webhook_write"),
                "Reconciling": ("True", "Progressing", "the key lacks rak_webhook_write"),
                "Stalled": ("False", "NotStalled", ""),
            },
            id="progressing",
        ),
        pytest.param(
            Assessment(credentials=OK, permissions=OK, webhook=Verdict("True", "WebhookReady", "")),
            {
                "Ready": ("True", "Ready", "the connection is verified and its webhook is ready"),
                "Reconciling": ("False", "ReconcileSucceeded", ""),
                "Stalled": ("False", "NotStalled", ""),
            },
            id="ready",
        ),
        pytest.param(
            Assessment(
                credentials=OK, permissions=OK, webhook=Verdict("True", "WebhookReady", "we_1 serves")
            ),
            {
                "Ready": ("True", "Ready", "we_1 serves"),
                "Reconciling": ("False", "ReconcileSucceeded", ""),
                "Stalled": ("False", "NotStalled", ""),
            },
            id="ready-says-what-serves",
        ),
    ],
)
def test_summary_conditions_of_each_outcome(
    assessment: Assessment, expected: dict[str, tuple[str, str, str]]
) -> None:
    assert summary(build(assessment, generation=1)) == expected


def test_a_failing_domain_condition_neither_stalled_nor_retrying_is_progressing_not_ready() -> None:
    """The Progressing case: work remains (a webhook being created), nothing is wrong yet."""
    pending = Verdict("Unknown", "WebhookPending", "creating the webhook")
    c = by_type(build(Assessment(credentials=OK, permissions=OK, webhook=pending), generation=4))
    assert (c["Ready"]["status"], c["Ready"]["reason"]) == ("False", "WebhookPending")
    assert (c["Reconciling"]["status"], c["Reconciling"]["reason"]) == ("True", "Progressing")
    assert c["Stalled"]["status"] == "False"
    assert c["WebhookReady"]["status"] == "Unknown"


@pytest.fixture
def local_time_is_not_utc() -> Iterator[None]:
    """A process whose local time zone is five and a half hours off UTC."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "IST-5:30"  # POSIX form: needs no time zone database
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.usefixtures("local_time_is_not_utc")
def test_transition_times_are_utc_rfc3339_seconds() -> None:
    """The API server accepts only this form (metav1.Time), and kstatus compares it across clocks."""
    previous = [{"type": "Ready", "status": "True", "reason": "Ready", "message": ""}]  # no time yet
    for condition in build(
        Assessment(credentials=OK, permissions=OK, webhook=OK), generation=1, previous=previous
    ):
        stamp = str(condition["lastTransitionTime"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp), stamp
        written = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert abs(datetime.now(UTC) - written) < timedelta(minutes=1)


def test_same_conditions_tells_apart_every_field_but_times() -> None:
    a = [
        {"type": "Ready", "status": "True", "reason": "Ready", "message": "", "observedGeneration": 1},
        {"type": "Stalled", "status": "False", "reason": "NotStalled", "observedGeneration": 1},
    ]
    assert same_conditions(a, [{**a[0], "message": None}, {**a[1], "message": ""}])
    assert same_conditions(a, list(reversed(a)))
    # The statuses swapped between the two types: a status write must not be skipped.
    swapped = [{**a[0], "type": "Stalled"}, {**a[1], "type": "Ready"}]
    assert not same_conditions(a, swapped)
    assert not same_conditions(a, [{**a[0], "status": "False"}, a[1]])
    assert not same_conditions(a, [{**a[0], "reason": "Other"}, a[1]])
    assert not same_conditions(a, [{**a[0], "message": "changed"}, a[1]])
    assert not same_conditions(a, [a[0], {**a[1], "observedGeneration": 2}])
