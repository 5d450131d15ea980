"""The Stripe driver against the emulator, without Kubernetes: verification, probes, caching, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from procon.api.v1alpha1 import Mode
from procon.emulators.stripe import StripeEmulator
from procon.processors import calls
from procon.processors.base import (
    Credentials,
    CredentialsRejected,
    EndpointLimitReached,
    IdempotencyKeySpent,
    NotFound,
    PermissionDenied,
    ProcessorError,
    RateLimited,
    RequestRejected,
    TransientProcessorError,
)
from procon.processors.calls import CallAdmission, RateLimit
from procon.processors.stripe.driver import StripeDriver, key_fingerprint, mode_of_key
from procon.processors.stripe.permissions import WRITE_PROBES
from procon.processors.stripe.webhook import StripeChanges, StripeDesired, StripeTarget

ACCOUNT = "acct_1DriverTest0001"
FULL = "rk_test_51DriverFullAccessKey0000000000000000"
NARROW = "rk_test_51DriverNarrowKey00000000000000000000"
SECRET = "sk_test_51DriverSecretKey00000000000000000000"
EXPIRED = "rk_test_51DriverExpiredKey0000000000000000000"
TEST = StripeTarget(mode=Mode.TEST)


@pytest.fixture(scope="module")
def emulator() -> Iterator[StripeEmulator]:
    fixture = {
        "accounts": [
            {
                "id": ACCOUNT,
                "keys": [
                    {"key": SECRET},
                    {
                        "key": FULL,
                        "permissions": ["rak_charge_read", "rak_dispute_read", "rak_webhook_write"],
                    },
                    {"key": NARROW, "permissions": ["rak_webhook_read"]},
                    {"key": EXPIRED, "permissions": ["rak_webhook_write"], "expired": True},
                ],
            }
        ]
    }
    with StripeEmulator.from_fixture(fixture) as emu:
        yield emu


@pytest.fixture(autouse=True)
def clean(emulator: StripeEmulator) -> None:
    emulator.reset()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def creds(key: str) -> Credentials:
    return Credentials({"apiKey": key})


def driver(emulator: StripeEmulator, **kwargs: Any) -> StripeDriver:
    return StripeDriver(emulator.base_url, **kwargs)


def test_mode_and_fingerprint() -> None:
    assert mode_of_key("rk_live_51abc") is Mode.LIVE
    assert mode_of_key("sk_test_51abc") is Mode.TEST
    assert mode_of_key("pk_test_51abc") is None
    assert key_fingerprint(FULL) == key_fingerprint(FULL)
    assert FULL not in key_fingerprint(FULL)


def test_verify_restricted_key_learns_the_account_from_the_refusal(emulator: StripeEmulator) -> None:
    account = run(driver(emulator).verify(creds(FULL), TEST))
    assert (account.id, account.mode) == (ACCOUNT, Mode.TEST)


def test_verify_refusals(emulator: StripeEmulator) -> None:
    d = driver(emulator)
    for key, reason in [
        (EXPIRED, "ExpiredCredentials"),
        ("rk_test_51Unknown0000000000000000000000000", "InvalidCredentials"),
        ("pk_test_51Publishable00000000000000000000", "InvalidCredentials"),
    ]:
        with pytest.raises(CredentialsRejected) as caught:
            run(d.verify(creds(key), TEST))
        assert caught.value.reason == reason
        assert key[12:] not in str(caught.value)
    with pytest.raises(CredentialsRejected) as caught:
        run(d.verify(creds(FULL), StripeTarget(mode=Mode.LIVE)))
    assert caught.value.reason == "ModeMismatch"


def test_permissions_probed_once_then_cached(emulator: StripeEmulator) -> None:
    d = driver(emulator)
    required = ["rak_charge_read", "rak_dispute_read", "rak_webhook_write", "rak_sku_read"]

    async def twice() -> tuple[Any, Any]:
        await d.verify(creds(FULL), TEST)
        first = await d.check_permissions(creds(FULL), TEST, required)
        second = await d.check_permissions(creds(FULL), TEST, required)
        return first, second

    first, second = run(twice())
    assert first.missing == ()
    assert first.unverifiable == ("rak_sku_read",)
    assert first.probes == 2
    assert second.probes == 0  # an unchanged key costs no probes


def test_missing_permissions_are_probed_again(emulator: StripeEmulator) -> None:
    d = driver(emulator)

    async def scenario() -> tuple[Any, Any]:
        await d.verify(creds(NARROW), TEST)
        before = await d.check_permissions(creds(NARROW), TEST, ["rak_charge_read"])
        emulator.grant(NARROW, "rak_charge_read")
        after = await d.check_permissions(creds(NARROW), TEST, ["rak_charge_read"])
        return before, after

    before, after = run(scenario())
    assert before.missing == ("rak_charge_read",)
    assert after.missing == ()
    assert after.probes == 1


def test_cache_expires(emulator: StripeEmulator) -> None:
    now = [0.0]
    d = driver(emulator, permission_cache_ttl=60, clock=lambda: now[0])

    async def scenario() -> tuple[int, int]:
        await d.verify(creds(FULL), TEST)
        await d.check_permissions(creds(FULL), TEST, ["rak_charge_read"])
        cached = (await d.check_permissions(creds(FULL), TEST, ["rak_charge_read"])).probes
        now[0] = 61
        await d.verify(creds(FULL), TEST)
        expired = (await d.check_permissions(creds(FULL), TEST, ["rak_charge_read"])).probes
        return cached, expired

    assert run(scenario()) == (0, 1)


def test_secret_keys_hold_everything_without_probes(emulator: StripeEmulator) -> None:
    report = run(
        driver(emulator).check_permissions(creds(SECRET), TEST, ["rak_charge_read", "rak_payout_read"])
    )
    assert report.missing == ()
    assert report.probes == 0


def test_webhook_lifecycle(emulator: StripeEmulator) -> None:
    d = driver(emulator)
    desired = StripeDesired(
        url="https://hooks.example.com/x", events=("charge.succeeded",), description=None, metadata={"k": "v"}
    )

    async def scenario() -> None:
        created = await d.create_webhook(creds(FULL), TEST, desired, idempotency_key="k-1")
        assert created.signing_secret.startswith("whsec_")
        assert created.replayed is False
        replay = await d.create_webhook(creds(FULL), TEST, desired, idempotency_key="k-1")
        assert replay.webhook.id == created.webhook.id
        assert replay.signing_secret == created.signing_secret
        assert replay.replayed is True
        listed = await d.list_webhooks(creds(FULL), TEST)
        assert [w.id for w in listed] == [created.webhook.id]
        updated = await d.update_webhook(
            creds(FULL), TEST, created.webhook.id, StripeChanges(enabled=False, events=("payout.paid",))
        )
        assert (updated.enabled, updated.events) == (False, ("payout.paid",))
        await d.delete_webhook(creds(FULL), TEST, created.webhook.id)
        with pytest.raises(NotFound):
            await d.delete_webhook(creds(FULL), TEST, created.webhook.id)

    run(scenario())


def test_listing_pages_through_more_than_a_hundred(emulator: StripeEmulator) -> None:
    emulator.update_settings(endpoint_limit=150)
    for i in range(120):
        emulator.create_endpoint(ACCOUNT, f"https://h{i}.example.com", ["charge.succeeded"])
    listed = run(driver(emulator).list_webhooks(creds(SECRET), TEST))
    assert len({w.id for w in listed}) == 120


def test_write_refusals_and_limits(emulator: StripeEmulator) -> None:
    d = driver(emulator)
    desired = StripeDesired(
        url="https://hooks.example.com/x", events=("charge.succeeded",), description=None, metadata={}
    )
    with pytest.raises(PermissionDenied) as denied:
        run(d.create_webhook(creds(NARROW), TEST, desired, idempotency_key="k-2"))
    assert denied.value.permission == "rak_webhook_write"
    assert NARROW[12:] not in str(denied.value)
    bad = StripeDesired(
        url="https://localhost/x", events=("charge.succeeded",), description=None, metadata={}
    )
    with pytest.raises(RequestRejected):
        run(d.create_webhook(creds(FULL), TEST, bad, idempotency_key="k-3"))
    for i in range(16):
        emulator.create_endpoint(ACCOUNT, f"https://h{i}.example.com", ["charge.succeeded"])
    with pytest.raises(EndpointLimitReached):
        run(d.create_webhook(creds(FULL), TEST, desired, idempotency_key="k-4"))


def test_server_errors_are_retried_then_transient(emulator: StripeEmulator) -> None:
    emulator.set_faults(error_rate=1.0)
    with pytest.raises(TransientProcessorError):
        run(driver(emulator, max_network_retries=2).list_webhooks(creds(FULL), TEST))
    assert emulator.count("GET", "/v1/webhook_endpoints") == 3  # one try and two retries


def test_rate_limits_follow_stripe_should_retry(emulator: StripeEmulator) -> None:
    emulator.set_faults(rate_limit_rate=1.0, rate_limit_should_retry=None)
    with pytest.raises(TransientProcessorError):
        run(driver(emulator, max_network_retries=2).list_webhooks(creds(FULL), TEST))
    assert emulator.count("GET", "/v1/webhook_endpoints") == 1  # a bare 429 is not retried by the SDK
    emulator.reset_counters()
    emulator.set_faults(rate_limit_rate=1.0, rate_limit_should_retry=True)
    with pytest.raises(TransientProcessorError):
        run(driver(emulator, max_network_retries=2).list_webhooks(creds(FULL), TEST))
    assert emulator.count("GET", "/v1/webhook_endpoints") == 3


@pytest.mark.parametrize("permission", sorted(WRITE_PROBES))
def test_every_write_probe_tells_held_from_missing(emulator: StripeEmulator, permission: str) -> None:
    """Each write probe answers "held" for a key with the write and "missing" for one without,
    and neither creates anything (the emulator refuses the empty create either way)."""
    account = "acct_1WriteProbes0001"
    holder = "rk_test_51WriteProbeHolder000000000000000000"
    lacker = "rk_test_51WriteProbeLacker000000000000000000"
    read = permission.removesuffix("_write") + "_read"
    emulator.add_accounts(
        {
            "accounts": [
                {
                    "id": account,
                    "keys": [
                        {"key": holder, "permissions": [permission]},
                        {"key": lacker, "permissions": [read]},
                    ],
                }
            ]
        }
    )
    d = driver(emulator)

    async def scenario() -> tuple[Any, Any]:
        await d.verify(creds(holder), TEST)
        await d.verify(creds(lacker), TEST)
        return (
            await d.check_permissions(creds(holder), TEST, [permission]),
            await d.check_permissions(creds(lacker), TEST, [permission]),
        )

    held, lacked = run(scenario())
    assert (held.missing, held.probes) == ((), 1)
    assert lacked.missing == (permission,)


def test_setup_intent_write_is_unverifiable_not_probed(emulator: StripeEmulator) -> None:
    """An empty SetupIntent create would succeed at Stripe (every parameter is optional), so it is
    never sent: the permission is reported as unverifiable."""
    report = run(driver(emulator).check_permissions(creds(FULL), TEST, ["rak_setup_intent_write"]))
    assert (report.missing, report.unverifiable, report.probes) == ((), ("rak_setup_intent_write",), 0)
    assert emulator.count("POST", "/v1/setup_intents") == 0


def test_lock_timeouts_are_retried_then_transient(emulator: StripeEmulator) -> None:
    """Stripe's 429 lock_timeout ("object busy") carries Stripe-Should-Retry: retried like a 5xx."""
    emulator.set_faults(lock_timeout_rate=1.0)
    with pytest.raises(TransientProcessorError):
        run(driver(emulator, max_network_retries=2).list_webhooks(creds(FULL), TEST))
    assert emulator.count("GET", "/v1/webhook_endpoints") == 3


def test_a_dropped_create_is_retried_with_its_idempotency_key(emulator: StripeEmulator) -> None:
    """The create commits, the connection drops: the SDK's retry replays the same idempotency key,
    so Stripe answers with the first endpoint and its secret, and no second endpoint exists."""
    emulator.set_faults(
        commit_then_fail=1, commit_then_fail_mode="drop", commit_then_fail_path_prefix="/v1/webhook_endpoints"
    )
    desired = StripeDesired(
        url="https://hooks.example.com/x", events=("charge.succeeded",), description=None, metadata={}
    )
    created = run(driver(emulator).create_webhook(creds(FULL), TEST, desired, idempotency_key="k-drop"))
    endpoints = emulator.endpoints(ACCOUNT)
    assert [e["id"] for e in endpoints] == [created.webhook.id]
    assert created.signing_secret == emulator.endpoint_secret(created.webhook.id)
    assert emulator.count("POST", "/v1/webhook_endpoints") == 2


def test_a_saved_500_spends_the_idempotency_key(emulator: StripeEmulator) -> None:
    """Stripe saved its own 500 under the key: the SDK's retry gets it replayed, and so would every
    later retry for a day. The driver says so, distinctly from an ordinary transient error."""
    emulator.set_faults(
        commit_then_fail=1,
        commit_then_fail_mode="processor_error",
        commit_then_fail_path_prefix="/v1/webhook_endpoints",
    )
    desired = StripeDesired(
        url="https://hooks.example.com/x", events=("charge.succeeded",), description=None, metadata={}
    )
    with pytest.raises(IdempotencyKeySpent) as caught:
        run(driver(emulator).create_webhook(creds(FULL), TEST, desired, idempotency_key="k-saved"))
    assert isinstance(caught.value, TransientProcessorError)  # retrying can help, under a new key
    assert "k-saved" not in str(caught.value)
    assert len(emulator.endpoints(ACCOUNT)) == 1  # it did commit
    # A 500 that was not saved (before execution) is an ordinary transient error.
    emulator.set_faults(error_rate=1.0)
    with pytest.raises(TransientProcessorError) as plain:
        run(
            driver(emulator, max_network_retries=1).create_webhook(
                creds(FULL), TEST, desired, idempotency_key="k-2"
            )
        )
    assert not isinstance(plain.value, IdempotencyKeySpent)


def test_permanent_errors_are_sent_once(emulator: StripeEmulator) -> None:
    """A 401 or a 403 cannot get better by asking again: one request each, no retry."""
    d = driver(emulator, max_network_retries=2)

    async def scenario() -> None:  # one event loop, as in the operator
        with pytest.raises(CredentialsRejected):
            await d.list_webhooks(creds("rk_test_51Unknown0000000000000000000000000"), TEST)
        with pytest.raises(PermissionDenied):
            await d.delete_webhook(creds(NARROW), TEST, "we_procon_probe")

    run(scenario())
    assert [(r.method, r.status) for r in emulator.requests] == [("GET", 401), ("DELETE", 403)]


def test_a_validation_error_is_sent_once(emulator: StripeEmulator) -> None:
    bad = StripeDesired(
        url="https://localhost/x", events=("charge.succeeded",), description=None, metadata={}
    )
    with pytest.raises(RequestRejected):
        run(
            driver(emulator, max_network_retries=2).create_webhook(
                creds(FULL), TEST, bad, idempotency_key="k-5"
            )
        )
    assert emulator.count("POST", "/v1/webhook_endpoints") == 1


@pytest.mark.parametrize("key", [FULL, SECRET])
def test_a_name_stripe_does_not_publish_is_unknown_never_held(emulator: StripeEmulator, key: str) -> None:
    """A typo is not a permission: reported as unknown and not probed, even for a secret key
    (which holds every real permission)."""
    d = driver(emulator)

    async def scenario() -> Any:
        await d.verify(creds(key), TEST)
        return await d.check_permissions(
            creds(key), TEST, ["rak_charge_raed", "charge_read", "rak_charge_read", "rak_sku_read"]
        )

    report = run(scenario())
    assert report.unknown == ("rak_charge_raed", "charge_read")
    assert "rak_charge_raed" not in report.granted
    assert "rak_charge_read" in report.granted
    assert report.unverifiable == (() if key == SECRET else ("rak_sku_read",))


def test_every_permission_procon_probes_is_a_published_one() -> None:
    from procon.processors.stripe import permissions as perms

    probed = {*perms.READ_PROBES, *perms.WRITE_PROBES, *perms.VERIFIED_BY_USE, *perms.UNPROBEABLE}
    assert probed <= perms.KNOWN_PERMISSIONS


def test_forget_drops_what_is_cached_for_a_key_and_expired_entries_go(emulator: StripeEmulator) -> None:
    """A cache keyed by key fingerprints must not outlive the connections that fill it."""
    now = [0.0]
    d = driver(emulator, permission_cache_ttl=60, clock=lambda: now[0])

    async def scenario() -> list[int]:
        sizes = []
        await d.verify(creds(FULL), TEST)
        await d.check_permissions(creds(FULL), TEST, ["rak_charge_read"])
        sizes.append(d.cached_entries())
        d.forget(creds(FULL), TEST)
        sizes.append(d.cached_entries())
        probes = (await d.check_permissions(creds(FULL), TEST, ["rak_charge_read"])).probes
        assert probes == 1  # forgotten: probed afresh
        now[0] = 61  # FULL's entry has expired; caching another key sweeps it out
        await d.verify(creds(NARROW), TEST)
        sizes.append(d.cached_entries())
        return sizes

    assert run(scenario()) == [1, 0, 1]


def test_a_rate_limit_is_surfaced_with_its_retry_after_and_pauses_the_account(
    emulator: StripeEmulator,
) -> None:
    """Stripe documents no Retry-After; one that comes is honoured, for the whole account."""
    clock = [100.0]
    admission = CallAdmission(4, clock=lambda: clock[0])
    bucket = admission.bucket("account", "stripe", RateLimit(per_second=20.0, burst=10))
    emulator.set_faults(rate_limit_count=1, rate_limit_retry_after=4)

    async def listing() -> None:
        with calls.scope(admission, bucket):
            await driver(emulator).list_webhooks(creds(FULL), TEST)

    with pytest.raises(RateLimited) as refused:
        run(listing())
    assert refused.value.retry_after == 4.0
    assert bucket.paused_until == 104.0
    emulator.set_faults(rate_limit_count=1)
    with pytest.raises(RateLimited) as refused:
        run(driver(emulator).list_webhooks(creds(FULL), TEST))
    assert refused.value.retry_after is None


def test_a_lock_timeout_pauses_nobody(emulator: StripeEmulator) -> None:
    admission = CallAdmission(4)
    bucket = admission.bucket("account", "stripe", RateLimit(per_second=20.0, burst=10))
    emulator.set_faults(lock_timeout_rate=1.0)

    async def listing() -> None:
        with calls.scope(admission, bucket):
            await driver(emulator, max_network_retries=0).list_webhooks(creds(FULL), TEST)

    with pytest.raises(TransientProcessorError) as refused:
        run(listing())
    assert not isinstance(refused.value, RateLimited)
    assert admission.paused_accounts("stripe") == 0


# --- the HTTP client: the environment's proxy, chosen once; a session per event loop ----------

# A name that resolves nowhere: only a proxy can answer for it.
UNRESOLVABLE_BASE = "http://api.stripe.procon-test.invalid"


def test_requests_go_through_the_proxy_the_environment_names(
    emulator: StripeEmulator, monkeypatch: pytest.MonkeyPatch, no_proxy_variables: None
) -> None:
    # The emulator serves a request's path whatever its URL's host: it stands in for the proxy.
    monkeypatch.setenv("HTTP_PROXY", emulator.base_url)
    account = run(StripeDriver(UNRESOLVABLE_BASE, max_network_retries=0).verify(creds(FULL), TEST))
    assert account.id == ACCOUNT
    assert any(request.path == "/v1/account" for request in emulator.requests)


def test_no_proxy_exempts_the_api_base(
    emulator: StripeEmulator, monkeypatch: pytest.MonkeyPatch, no_proxy_variables: None
) -> None:
    monkeypatch.setenv("HTTP_PROXY", emulator.base_url)
    monkeypatch.setenv("NO_PROXY", "api.stripe.procon-test.invalid")
    with pytest.raises(TransientProcessorError):
        run(StripeDriver(UNRESOLVABLE_BASE, max_network_retries=0).verify(creds(FULL), TEST))
    assert emulator.requests == []


def test_one_driver_serves_one_event_loop_after_another_and_closes_its_connections(
    emulator: StripeEmulator,
) -> None:
    d = driver(emulator)

    async def list_and_close() -> list[bool]:
        await d.list_webhooks(creds(FULL), TEST)
        sessions = list(d._http._sessions.values())
        await d.aclose()
        return [session.closed for session in sessions]

    run(d.list_webhooks(creds(FULL), TEST))  # its loop ends here, its connections with it
    # The session of the loop that ended is dropped, the new loop's made and then closed.
    assert run(list_and_close()) == [True]
    assert d._http._sessions == {}


def test_a_redirect_is_an_answer_not_a_way_elsewhere() -> None:
    # Requests and the keys they carry go to the API base alone.
    reached: list[str] = []

    async def main() -> None:
        async def elsewhere(request: web.Request) -> web.Response:
            reached.append(request.path)
            return web.json_response({"object": "list", "data": [], "has_more": False})

        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(f"{other_base}{request.path_qs}")

        runners = []
        bases = []
        for handler in (elsewhere, redirect):
            application = web.Application()
            application.router.add_route("*", "/{path:.*}", handler)
            runner = web.AppRunner(application, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            runners.append(runner)
            bases.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
        other_base, api_base = bases
        d = StripeDriver(api_base, max_network_retries=0)
        try:
            with pytest.raises(ProcessorError):
                await d.list_webhooks(creds(FULL), TEST)
        finally:
            await d.aclose()
            for runner in runners:
                await runner.cleanup()

    run(main())
    assert reached == []
