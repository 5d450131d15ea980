"""The Checkout.com driver against the in-process emulator, without Kubernetes.

The driver talks to Checkout.com's real host names (``api.sandbox.checkout.com``,
``balances.checkout.com``, ``{prefix}.access...``): the emulator's transport
sends every request to the emulator and keeps the name as ``Host``, so the host
the driver picked is what the emulator judges.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from procon.api.v1alpha1 import Mode
from procon.emulators.checkout import CheckoutEmulator
from procon.processors import calls
from procon.processors.base import (
    Credentials,
    CredentialsRejected,
    PermissionDenied,
    ProcessorError,
    RateLimited,
    TransientProcessorError,
)
from procon.processors.calls import CallAdmission, RateLimit
from procon.processors.checkout.driver import CheckoutDriver, _Token
from procon.processors.checkout.hosts import balances_base, mode_of_secret_key
from procon.processors.checkout.http import BACKOFF_CAP, backoff_delay
from procon.processors.checkout.webhook import CheckoutDesired, CheckoutTarget
from procon.reconcile.ownership import CLUSTER, NAME, NAMESPACE, UID

T = TypeVar("T")

CLIENT = "cli_vkuhvk4vjn2edkps7dfsq6emqm"
LIVE_CLIENT = "cli_l1vep7odjn2edkps7dfsq6emqm"
ENTITY = "ent_eu3fkzbjqmdeeq4kdtovdvkbbm"
UNKNOWN_CLIENT = "cli_1234domaxjn2edkps7dfsq6emqm"  # a prefix no account has


def sandbox_key(word: str) -> str:
    """A default-platform sandbox key of the SDK's shape, built here so no key sits in the file whole."""
    return "sk_sbox_" + (word + "a" * 26)[:26] + "2"


SK_FULL = sandbox_key("driverfullaccess")
SK_WORKFLOWS = sandbox_key("driverworkflowsonly")
SK_NONE = sandbox_key("driverholdsnothing")
OPERATOR = ("ack_driveroperator", "driver-operator-access-key-secret")
READ_ONLY = ("ack_driverreadonly", "driver-read-only-access-key-secret")
PRODUCTION = ("ack_driverproduction", "driver-production-access-key-secret")
SECRETS = [SK_FULL, SK_WORKFLOWS, SK_NONE, OPERATOR[1], READ_ONLY[1], PRODUCTION[1]]

SANDBOX = CheckoutTarget(mode=Mode.TEST, client_id=CLIENT, entities=(ENTITY,))
HOOK = "https://hooks.example.com/checkout"
OWNER = {CLUSTER: "unit", NAMESPACE: "payments", NAME: "webhooks", UID: "uid-1"}
FIXTURE = {
    "clients": [
        {
            "id": CLIENT,
            "mode": "sandbox",
            "entities": [ENTITY],
            "access_keys": [
                {"id": OPERATOR[0], "secret": OPERATOR[1], "scopes": ["flow", "disputes:view"]},
                {"id": READ_ONLY[0], "secret": READ_ONLY[1], "scopes": ["flow:events"]},
            ],
            "secret_keys": [
                {"key": SK_FULL},
                {"key": SK_WORKFLOWS, "scopes": ["flow:workflows"]},
                {"key": SK_NONE, "scopes": ["disputes:accept"]},
            ],
        },
        {
            "id": LIVE_CLIENT,
            "mode": "production",
            "access_keys": [{"id": PRODUCTION[0], "secret": PRODUCTION[1], "scopes": ["flow"]}],
        },
    ]
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[CheckoutEmulator]:
    with CheckoutEmulator.from_fixture(FIXTURE, seed=7) as emu:
        yield emu


@pytest.fixture(autouse=True)
def clean(emulator: CheckoutEmulator) -> None:
    emulator.reset()


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sleeps:
    """Records the backoff waits instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def make_driver(emulator: CheckoutEmulator, **kwargs: Any) -> CheckoutDriver:
    """A driver on Checkout.com's own hosts (reached through the emulator) that never really sleeps."""
    kwargs.setdefault("sleep", Sleeps())
    return CheckoutDriver(transport=emulator.transport(), **kwargs)


def run(driver: CheckoutDriver, scenario: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            return await scenario()
        finally:
            await driver.aclose()

    return asyncio.run(main())


def secret_key(key: str) -> Credentials:
    return Credentials({"secretKey": key})


def access_key(pair: tuple[str, str]) -> Credentials:
    return Credentials({"accessKeyId": pair[0], "accessKeySecret": pair[1]})


def desired(url: str = HOOK) -> CheckoutDesired:
    return CheckoutDesired(
        url=url,
        events=("payment_approved",),
        metadata=OWNER,
        signing_secret="procon-chosen-signing-key-0123456789",
    )


def token_scopes(emulator: CheckoutEmulator) -> list[list[str]]:
    """The scopes of every token the emulator issued since the reset, oldest first."""
    with emulator.state.lock:
        return [sorted(t.scopes) for t in emulator.state.tokens.values()]


def foreign_body(url: str) -> dict[str, Any]:
    return {
        "name": "made in the Dashboard",
        "conditions": [{"type": "event", "events": {"gateway": ["payment_approved"]}}],
        "actions": [{"type": "webhook", "url": url, "signature": {"method": "HMACSHA256", "key": "k" * 20}}],
    }


# Tokens


def test_tokens_are_for_exactly_the_scopes_needed_and_cached_until_shortly_before_expiry(
    emulator: CheckoutEmulator,
) -> None:
    clock = Clock()
    driver = make_driver(emulator, clock=clock)
    creds = access_key(OPERATOR)

    async def scenario() -> list[int]:
        counts = []
        report = await driver.check_permissions(creds, SANDBOX, ["disputes:view"])
        assert report.missing == ()
        counts.append(emulator.count("POST", "/connect/token"))
        await driver.list_webhooks(creds, SANDBOX)  # a token for flow:workflows alone
        await driver.list_webhooks(creds, SANDBOX)
        counts.append(emulator.count("POST", "/connect/token"))
        clock.now += 3600 - 60 - 1  # the token lives 3600 s; the driver renews 60 s early
        await driver.list_webhooks(creds, SANDBOX)
        counts.append(emulator.count("POST", "/connect/token"))
        clock.now += 2
        await driver.list_webhooks(creds, SANDBOX)
        counts.append(emulator.count("POST", "/connect/token"))
        return counts

    assert run(driver, scenario) == [1, 2, 2, 3]
    assert token_scopes(emulator) == [
        ["disputes:view", "flow:workflows"],
        ["flow:workflows"],
        ["flow:workflows"],
    ]


def test_a_replaced_access_key_secret_is_not_served_from_the_token_cache(emulator: CheckoutEmulator) -> None:
    driver = make_driver(emulator)
    replaced = access_key((OPERATOR[0], "the-secret-after-a-rotation-in-the-secret"))

    async def scenario() -> None:
        await driver.verify(access_key(OPERATOR), SANDBOX)
        with pytest.raises(CredentialsRejected) as caught:
            await driver.verify(replaced, SANDBOX)
        assert caught.value.reason == "InvalidCredentials"

    run(driver, scenario)
    # The old secret's token, the new secret refused, then the production host asked about it.
    assert emulator.count("POST", "/connect/token") == 3
    shown = repr(driver._tokens) + repr(_Token("a-token-value-here", 1.0))
    assert OPERATOR[1] not in shown
    assert "a-token-value-here" not in shown


def test_an_access_key_without_a_scope_is_found_by_token_requests(emulator: CheckoutEmulator) -> None:
    driver = make_driver(emulator)
    report = run(
        driver,
        lambda: driver.check_permissions(access_key(OPERATOR), SANDBOX, ["disputes:view", "reports:view"]),
    )
    assert report.missing == ("reports:view",)
    assert set(report.granted) == {"disputes:view", "flow:workflows"}
    assert emulator.count("GET", "/reports") == 0  # OAuth asks the token endpoint, never probes


# Verification


@pytest.mark.parametrize("status", [400, 401])
def test_a_bad_access_key_is_invalid_credentials(emulator: CheckoutEmulator, status: int) -> None:
    emulator.update_settings(invalid_client_status=status)
    driver = make_driver(emulator)
    with pytest.raises(CredentialsRejected) as caught:
        run(driver, lambda: driver.verify(access_key((OPERATOR[0], "not-the-secret")), SANDBOX))
    assert caught.value.reason == "InvalidCredentials"


def test_an_unknown_client_id_is_the_token_hosts_406(emulator: CheckoutEmulator) -> None:
    driver = make_driver(emulator)
    target = CheckoutTarget(mode=Mode.TEST, client_id=UNKNOWN_CLIENT)
    with pytest.raises(CredentialsRejected) as caught:
        run(driver, lambda: driver.verify(access_key(OPERATOR), target))
    assert caught.value.reason == "InvalidCredentials"
    assert "clientId" in str(caught.value)
    assert emulator.count("POST", "/connect/token", 406) == 1


@pytest.mark.parametrize(
    ("pair", "target"),
    [
        (PRODUCTION, CheckoutTarget(mode=Mode.TEST)),
        (OPERATOR, CheckoutTarget(mode=Mode.LIVE)),
        (OPERATOR, CheckoutTarget(mode=Mode.LIVE, client_id=CLIENT)),
    ],
)
def test_an_access_key_of_the_other_mode_is_a_mode_mismatch(
    emulator: CheckoutEmulator, pair: tuple[str, str], target: CheckoutTarget
) -> None:
    driver = make_driver(emulator)
    with pytest.raises(CredentialsRejected) as caught:
        run(driver, lambda: driver.verify(access_key(pair), target))
    assert caught.value.reason == "ModeMismatch"
    assert emulator.count("POST", "/connect/token") == 2  # the mode's host, then the other's


def test_an_access_key_of_its_own_mode_verifies_with_one_token_request(emulator: CheckoutEmulator) -> None:
    driver = make_driver(emulator)
    account = run(driver, lambda: driver.verify(access_key(PRODUCTION), CheckoutTarget(mode=Mode.LIVE)))
    assert account.mode is Mode.LIVE
    assert emulator.count("POST", "/connect/token") == 1


def test_one_configured_host_for_both_modes_cannot_tell_the_mode(emulator: CheckoutEmulator) -> None:
    """With a single base for both modes, as PROCON_CHECKOUT_*_BASE give today, no second host exists."""
    driver = make_driver(emulator, api_base=emulator.api_base, auth_base=emulator.auth_base)
    account = run(driver, lambda: driver.verify(access_key(OPERATOR), CheckoutTarget(mode=Mode.LIVE)))
    assert account.mode is Mode.LIVE  # unverified: the emulator's own names serve both environments


def test_per_mode_bases_tell_the_mode_too(emulator: CheckoutEmulator) -> None:
    bases = {Mode.TEST: "http://access.sandbox.checkout.test", Mode.LIVE: "http://access.checkout.com"}
    driver = make_driver(emulator, auth_base=bases)
    with pytest.raises(CredentialsRejected) as caught:
        run(driver, lambda: driver.verify(access_key(PRODUCTION), CheckoutTarget(mode=Mode.TEST)))
    assert caught.value.reason == "ModeMismatch"


@pytest.mark.parametrize("head", ["sk_test_", "sk_"])
def test_previous_platform_keys_are_unsupported_not_live(emulator: CheckoutEmulator, head: str) -> None:
    # The ABC platform's UUID shape (docs/processors/checkout.md, "Secret keys").
    key = head + str(uuid.uuid4())
    assert mode_of_secret_key(key) is None
    driver = make_driver(emulator)
    for target in (SANDBOX, CheckoutTarget(mode=Mode.LIVE)):
        with pytest.raises(CredentialsRejected) as caught:
            run(driver, functools.partial(driver.verify, secret_key(key), target))
        assert caught.value.reason == "UnsupportedCredentials"
        assert "previous-platform (ABC)" in str(caught.value)
        assert "current-platform" in str(caught.value)
        assert key not in str(caught.value)
    assert mode_of_secret_key(SK_FULL) is Mode.TEST
    assert mode_of_secret_key("sk_" + "q" * 26 + "*") is Mode.LIVE
    assert emulator.requests == []


# Scope probes for secret keys


@pytest.mark.parametrize("status", [401, 403])
def test_a_probe_refused_with_401_or_403_is_a_missing_scope(emulator: CheckoutEmulator, status: int) -> None:
    emulator.update_settings(missing_scope_status=status)
    driver = make_driver(emulator)
    report = run(
        driver,
        lambda: driver.check_permissions(
            secret_key(SK_WORKFLOWS), SANDBOX, ["disputes:view", "reports:view"]
        ),
    )
    assert report.missing == ("disputes:view", "reports:view")
    assert report.granted == ("flow:workflows",)
    assert emulator.count("GET", "/disputes", status) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_a_key_every_probe_refuses_is_invalid(emulator: CheckoutEmulator, status: int) -> None:
    emulator.update_settings(missing_scope_status=status)
    driver = make_driver(emulator)
    with pytest.raises(CredentialsRejected) as caught:
        run(driver, lambda: driver.check_permissions(secret_key(SK_NONE), SANDBOX, ["disputes:view"]))
    assert caught.value.reason == "InvalidCredentials"


def test_the_balances_probe_goes_to_the_unprefixed_balances_host(emulator: CheckoutEmulator) -> None:
    """With a clientId the API host is prefixed, the balances host never (docs/processors/checkout.md,
    "Hosts"): a probe sent to the prefixed API host would get a 404 for an unknown path and report the scope
    as held."""
    driver = make_driver(emulator)

    async def scenario() -> tuple[Any, Any]:
        lacking = await driver.check_permissions(secret_key(SK_WORKFLOWS), SANDBOX, ["balances:view"])
        holding = await driver.check_permissions(secret_key(SK_FULL), SANDBOX, ["balances:view"])
        return lacking, holding

    lacking, holding = run(driver, scenario)
    assert lacking.missing == ("balances:view",)
    assert "balances:view" in holding.granted
    assert emulator.count("GET", "/balances/{entity_id}", 404) == 0


def test_balances_are_unverifiable_when_their_host_cannot_be_derived(emulator: CheckoutEmulator) -> None:
    driver = make_driver(emulator, api_base=emulator.base_url)  # an IP address: no "api." to replace
    report = run(driver, lambda: driver.check_permissions(secret_key(SK_FULL), SANDBOX, ["balances:view"]))
    assert report.unverifiable == ("balances:view",)
    assert emulator.count("GET", "/balances/{entity_id}") == 0


def test_the_balances_host_is_derived_from_the_unprefixed_base() -> None:
    assert balances_base("https://api.sandbox.checkout.com") == "https://balances.sandbox.checkout.com"
    assert balances_base("https://api.checkout.com") == "https://balances.checkout.com"
    assert balances_base("http://api.checkout.test:8080") == "http://balances.checkout.test:8080"
    assert balances_base("https://vkuhvk4v.api.checkout.com") is None
    assert balances_base("http://127.0.0.1:8080") is None


# Retries


def test_backoff_is_exponential_jittered_and_capped() -> None:
    assert [backoff_delay(a, 0.5, 8.0, lambda: 1.0) for a in range(7)] == [0.5, 1, 2, 4, 8, 8, 8]
    assert [backoff_delay(a, 0.5, 8.0, lambda: 0.25) for a in range(3)] == [0.125, 0.25, 0.5]
    assert backoff_delay(3, 0.5, 8.0, lambda: 0.0) == 0.0


def test_reads_are_retried_with_random_capped_waits(emulator: CheckoutEmulator) -> None:
    sleeps = Sleeps()
    driver = make_driver(emulator, retries=6, sleep=sleeps)
    emulator.set_faults(error_rate=1.0)
    with pytest.raises(TransientProcessorError):
        run(driver, lambda: driver.list_webhooks(secret_key(SK_FULL), SANDBOX))
    assert emulator.count("GET", "/workflows") == 7
    assert len(sleeps.delays) == 6
    assert all(0 <= d <= min(BACKOFF_CAP, 0.5 * 2**i) for i, d in enumerate(sleeps.delays))
    assert len(set(sleeps.delays)) > 1  # random, not a fixed pattern


def test_a_create_is_sent_once_after_a_server_error(emulator: CheckoutEmulator) -> None:
    driver = make_driver(emulator)
    creds = secret_key(SK_FULL)

    async def scenario() -> None:
        await driver.resolve_events(creds, SANDBOX, ["payment_approved"])  # event types now cached
        emulator.set_faults(error_rate=1.0)
        with pytest.raises(TransientProcessorError):
            await driver.create_webhook(creds, SANDBOX, desired(), idempotency_key="unused")

    run(driver, scenario)
    assert emulator.count("POST", "/workflows") == 1


def test_a_create_whose_answer_was_dropped_is_not_sent_again(emulator: CheckoutEmulator) -> None:
    driver = make_driver(emulator)
    emulator.set_faults(
        commit_then_fail=1, commit_then_fail_mode="drop", commit_then_fail_path_prefix="/workflows"
    )
    with pytest.raises(TransientProcessorError):
        run(
            driver,
            lambda: driver.create_webhook(secret_key(SK_FULL), SANDBOX, desired(), idempotency_key="x"),
        )
    assert emulator.count("POST", "/workflows") == 1
    assert len(emulator.workflows(CLIENT)) == 1  # committed once; the next reconcile finds it by name


def test_a_rate_limited_create_is_retried(emulator: CheckoutEmulator) -> None:
    """A 429 is refused before anything happens (an assumption in the driver), so even a create retries."""
    driver = make_driver(emulator, retries=2)
    creds = secret_key(SK_FULL)

    async def scenario() -> None:
        await driver.resolve_events(creds, SANDBOX, ["payment_approved"])
        emulator.set_faults(rate_limit_rate=1.0)
        with pytest.raises(TransientProcessorError):
            await driver.create_webhook(creds, SANDBOX, desired(), idempotency_key="unused")

    run(driver, scenario)
    assert emulator.count("POST", "/workflows") == 3


def test_a_token_endpoint_outage_is_transient(emulator: CheckoutEmulator) -> None:
    driver = make_driver(emulator, retries=1)
    emulator.set_faults(error_rate=1.0)
    with pytest.raises(TransientProcessorError):
        run(driver, lambda: driver.verify(access_key(OPERATOR), SANDBOX))
    assert emulator.count("POST", "/connect/token") == 2


# Listing


def test_a_foreign_workflow_pointed_at_our_url_is_seen_by_the_next_list(emulator: CheckoutEmulator) -> None:
    """Details are read on every list: nothing in GET /workflows shows a changed URL."""
    driver = make_driver(emulator)
    creds = secret_key(SK_FULL)
    foreign = emulator.create_workflow(CLIENT, foreign_body("https://elsewhere.example.com/hook"))

    async def scenario() -> list[str]:
        await driver.create_webhook(creds, SANDBOX, desired(), idempotency_key="unused")
        first = await driver.list_webhooks(creds, SANDBOX, OWNER)
        assert {w.url for w in first} == {HOOK, "https://elsewhere.example.com/hook"}
        emulator.update_workflow(foreign["id"], actions=foreign_body(HOOK)["actions"])
        emulator.reset_counters()
        second = await driver.list_webhooks(creds, SANDBOX, OWNER)
        return [w.url for w in second]

    assert run(driver, scenario) == [HOOK, HOOK]
    # The cost: one list and one read per workflow on the account, foreign ones included.
    assert (emulator.count("GET", "/workflows"), emulator.count("GET", "/workflows/{workflow_id}")) == (1, 2)


# Secrets stay out of errors


def test_no_credential_or_token_appears_in_any_error(emulator: CheckoutEmulator) -> None:
    errors: list[ProcessorError] = []

    async def collect(driver: CheckoutDriver, call: Callable[[], Awaitable[Any]]) -> None:
        try:
            await call()
        except ProcessorError as error:
            errors.append(error)

    async def scenario(driver: CheckoutDriver) -> None:
        wrong = access_key((OPERATOR[0], "wrong-" + OPERATOR[1]))
        await collect(driver, lambda: driver.verify(wrong, SANDBOX))
        unknown = CheckoutTarget(mode=Mode.TEST, client_id=UNKNOWN_CLIENT)
        await collect(driver, lambda: driver.verify(access_key(OPERATOR), unknown))
        await collect(driver, lambda: driver.verify(access_key(PRODUCTION), SANDBOX))
        await collect(driver, lambda: driver.verify(secret_key(SK_FULL), CheckoutTarget(Mode.LIVE)))
        await collect(driver, lambda: driver.check_permissions(secret_key(SK_NONE), SANDBOX, ["flow"]))
        await collect(driver, lambda: driver.list_webhooks(access_key(READ_ONLY), SANDBOX))
        await collect(
            driver,
            lambda: driver.create_webhook(secret_key(SK_NONE), SANDBOX, desired(), idempotency_key="x"),
        )
        emulator.set_faults(error_rate=1.0)
        await collect(driver, lambda: driver.list_webhooks(access_key(OPERATOR), SANDBOX))
        await collect(driver, lambda: driver.list_webhooks(secret_key(SK_FULL), SANDBOX))

    driver = make_driver(emulator, retries=0)
    run(driver, lambda: scenario(driver))
    assert len(errors) == 9
    assert any(isinstance(e, PermissionDenied) for e in errors)
    texts = [f"{e} {e!r} {e.args!r}" for e in errors]
    for value in [*SECRETS, "wrong-" + OPERATOR[1], *emulator.issued_tokens()]:
        assert all(value not in text for text in texts)


@pytest.mark.parametrize("credential", ["secret-key", "oauth"])
def test_a_scope_checkout_does_not_publish_is_unknown_never_unverifiable(
    emulator: CheckoutEmulator, credential: str
) -> None:
    driver = make_driver(emulator)
    creds = secret_key(SK_FULL) if credential == "secret-key" else access_key(OPERATOR)
    report = run(driver, lambda: driver.check_permissions(creds, SANDBOX, ["disputes:view", "risk"]))
    assert report.unknown == ("risk",)
    assert "risk" not in report.unverifiable
    assert "risk" not in report.granted
    assert report.missing == ()


# Caches


def test_forget_drops_tokens_scopes_and_catalog_of_the_credentials(emulator: CheckoutEmulator) -> None:
    """A cache keyed by credential fingerprints must not outlive the connections that fill it."""
    driver = make_driver(emulator)

    async def scenario() -> list[int]:
        await driver.resolve_events(access_key(OPERATOR), SANDBOX, ["payment_approved"])
        await driver.check_permissions(secret_key(SK_FULL), SANDBOX, ["disputes:view"])
        before = driver.cached_entries()
        driver.forget(access_key(OPERATOR), SANDBOX)
        driver.forget(secret_key(SK_FULL), SANDBOX)
        return [before, driver.cached_entries()]

    before, after = run(driver, scenario)
    assert before >= 3  # a token, the key's scopes, the event catalog
    assert after == 0


def test_expired_scope_and_catalog_entries_are_swept_out(emulator: CheckoutEmulator) -> None:
    clock = Clock()
    driver = make_driver(emulator, clock=clock, cache_ttl=60, catalog_ttl=60)

    async def scenario() -> int:
        await driver.check_permissions(secret_key(SK_FULL), SANDBOX, ["disputes:view"])
        await driver.resolve_events(secret_key(SK_FULL), SANDBOX, ["payment_approved"])
        clock.now += 61
        await driver.check_permissions(secret_key(SK_WORKFLOWS), SANDBOX, ["flow:workflows"])
        await driver.resolve_events(secret_key(SK_WORKFLOWS), SANDBOX, ["payment_approved"])
        return driver.cached_entries()

    assert run(driver, scenario) == 2  # the new key's scopes and the fresh catalog, nothing expired


def test_the_event_catalog_outlives_the_key_caches_and_is_read_again_for_an_unknown_name(
    emulator: CheckoutEmulator,
) -> None:
    """The catalog is Checkout.com's, not a key's: a drift check long after the permission caches
    expired reads it from memory. A name it lacks may be one added since: read again, once a minute
    at most, before the name is refused."""
    clock = Clock()
    driver = make_driver(emulator, clock=clock, cache_ttl=600, catalog_ttl=86400)
    creds = secret_key(SK_FULL)
    catalog = ("GET", "/workflows/event-types")

    async def scenario() -> list[int]:
        reads = []
        await driver.resolve_events(creds, SANDBOX, ["payment_approved"])
        reads.append(emulator.count(*catalog))
        clock.now += 3600  # six permission-cache lifetimes
        await driver.resolve_events(creds, SANDBOX, ["payment_approved"])
        reads.append(emulator.count(*catalog))
        for _ in range(2):
            with pytest.raises(ProcessorError, match=r"neither a Checkout\.com event type"):
                await driver.resolve_events(creds, SANDBOX, ["payment_teleported"])
            reads.append(emulator.count(*catalog))
        clock.now += 86401
        await driver.resolve_events(creds, SANDBOX, ["payment_approved"])
        reads.append(emulator.count(*catalog))
        return reads

    assert run(driver, scenario) == [1, 1, 2, 2, 3]


def test_a_rate_limit_is_surfaced_with_its_retry_after_and_pauses_the_account(
    emulator: CheckoutEmulator,
) -> None:
    clock = [100.0]
    admission = CallAdmission(4, clock=lambda: clock[0])
    bucket = admission.bucket("account", "checkout", RateLimit(per_second=10.0, burst=5))
    driver = make_driver(emulator, retries=0)
    emulator.set_faults(rate_limit_count=1, rate_limit_retry_after=6, path_prefix="/workflows")

    async def listing() -> None:
        with calls.scope(admission, bucket):
            await driver.list_webhooks(secret_key(SK_FULL), SANDBOX)

    with pytest.raises(RateLimited) as refused:
        run(driver, listing)
    assert refused.value.retry_after == 6.0
    assert bucket.paused_until == 106.0
