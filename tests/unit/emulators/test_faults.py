"""Fault injection, request counting and the emulator server, seen through the Stripe emulator and SDK."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import stripe
from aiohttp import web

from procon.emulators.faults import ExecutionGate, FaultInjector, FaultKind, FaultPlan
from procon.emulators.server import EmulatorServer, redact_keys
from procon.emulators.stripe import StripeEmulator
from tests.unit.emulators.conftest import DEMO_FIXTURE, HOOK, PLATFORM, SK_TEST, ClientFactory, bearer

ENDPOINTS = "/v1/webhook_endpoints"


def create(client: stripe.StripeClient, idempotency_key: str | None = None) -> stripe.WebhookEndpoint:
    options: stripe.RequestOptions = {"idempotency_key": idempotency_key} if idempotency_key else {}
    return client.v1.webhook_endpoints.create({"url": HOOK, "enabled_events": ["*"]}, options)


# The plan


@pytest.mark.parametrize(
    "fields",
    [
        {"error_rate": 1.5},
        {"rate_limit_rate": -0.1},
        {"error_rate": 0.6, "rate_limit_rate": 0.6},
        {"latency_seconds": -1},
        {"commit_then_fail": -1},
        {"commit_then_fail_mode": "explode"},
        {"rate_limit_count": -1},
        {"rate_limit_retry_after": -2.0},
    ],
)
def test_impossible_plans_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        FaultPlan(**fields)  # type: ignore[arg-type]


def test_plans_round_trip_through_json_and_refuse_unknown_fields_or_types() -> None:
    plan = FaultPlan(error_rate=0.25, rate_limit_should_retry=False, commit_then_fail=2, seed=3)
    assert FaultPlan.from_json(plan.to_json()) == plan
    with pytest.raises(ValueError, match="unknown"):
        FaultPlan.from_json({"eror_rate": 1})
    with pytest.raises(ValueError, match="wrong type"):
        FaultPlan.from_json({"error_rate": "high"})
    with pytest.raises(ValueError, match="wrong type"):
        FaultPlan.from_json({"rate_limit_should_retry": "yes"})


def test_draws_are_reproducible_from_a_seed() -> None:
    def draws(seed: int) -> list[FaultKind | None]:
        injector = FaultInjector(FaultPlan(error_rate=0.3, rate_limit_rate=0.3, seed=seed))
        return [injector.draw_fault("/v1/x")[0] for _ in range(200)]

    first, second = draws(11), draws(11)
    assert first == second
    assert draws(12) != first
    errors = first.count(FaultKind.SERVER_ERROR)
    assert 30 < errors < 90  # about 60 in 200
    assert 30 < first.count(FaultKind.RATE_LIMITED) < 90
    assert first.count(None) + errors + first.count(FaultKind.RATE_LIMITED) == 200


def test_updating_a_plan_keeps_the_commit_failures_still_to_come() -> None:
    injector = FaultInjector(FaultPlan(commit_then_fail=2))
    assert injector.claim_commit_failure("POST", "/v1/webhook_endpoints") == "error"
    plan = injector.update(latency_seconds=0.5)
    assert plan.commit_then_fail == 1
    assert injector.plan.latency_seconds == 0.5


def test_the_plan_can_change_from_another_thread_while_serving(
    emu: StripeEmulator, http: httpx.Client
) -> None:
    changer = threading.Thread(target=emu.set_faults, kwargs={"error_rate": 1.0})
    changer.start()
    changer.join(timeout=10)
    assert http.get("/v1/balance", headers=bearer(SK_TEST)).status_code == 500
    emu.faults.clear()
    assert http.get("/v1/balance", headers=bearer(SK_TEST)).status_code == 200


# Faults on the wire


def test_server_errors_come_before_anything_happens(emu: StripeEmulator, make_client: ClientFactory) -> None:
    client = make_client()
    emu.set_faults(error_rate=1.0)
    with pytest.raises(stripe.APIError) as caught:
        create(client, "first-try")
    assert caught.value.http_status == 500
    assert caught.value.error.type == "api_error"
    assert emu.endpoints(PLATFORM) == []
    emu.set_faults()
    created = create(client, "first-try")  # nothing was saved under the key either
    assert "Idempotent-Replayed" not in created.last_response.headers


@pytest.mark.parametrize(("should_retry", "header"), [(None, None), (True, "true"), (False, "false")])
def test_rate_limits_carry_the_retry_hint_the_plan_asks_for(
    emu: StripeEmulator, http: httpx.Client, should_retry: bool | None, header: str | None
) -> None:
    emu.set_faults(rate_limit_rate=1.0, rate_limit_should_retry=should_retry)
    response = http.get(ENDPOINTS, headers=bearer(SK_TEST))
    assert response.status_code == 429
    assert response.headers.get("Stripe-Should-Retry") == header
    assert response.headers["Request-Id"].startswith("req_")
    error = response.json()["error"]
    assert (error["code"], error["type"]) == ("rate_limit", "invalid_request_error")


def test_a_burst_of_rate_limits_carries_retry_after_and_ends(emu: StripeEmulator, http: httpx.Client) -> None:
    emu.set_faults(rate_limit_count=2, rate_limit_retry_after=3, path_prefix=ENDPOINTS)
    assert http.get("/v1/account", headers=bearer(SK_TEST)).status_code == 200  # not under the prefix
    refused = [http.get(ENDPOINTS, headers=bearer(SK_TEST)) for _ in range(2)]
    assert [r.status_code for r in refused] == [429, 429]
    assert {r.headers.get("Retry-After") for r in refused} == {"3"}
    assert http.get(ENDPOINTS, headers=bearer(SK_TEST)).status_code == 200
    assert emu.faults.plan.rate_limit_count == 0
    assert emu.count("GET", ENDPOINTS, 429, fault=FaultKind.RATE_LIMITED) == 2


def test_rate_limits_carry_no_retry_after_unless_asked(emu: StripeEmulator, http: httpx.Client) -> None:
    emu.set_faults(rate_limit_rate=1.0)
    assert "Retry-After" not in http.get(ENDPOINTS, headers=bearer(SK_TEST)).headers


def test_rate_limits_raise_rate_limit_error_and_the_sdk_retries_only_when_told(
    emu: StripeEmulator, make_client: ClientFactory
) -> None:
    emu.set_faults(rate_limit_rate=1.0)
    with pytest.raises(stripe.RateLimitError) as caught:
        make_client(max_network_retries=1).v1.webhook_endpoints.list()
    assert caught.value.error.code == "rate_limit"
    assert emu.count("GET", ENDPOINTS, 429) == 1  # no header: the SDK does not retry a 429
    emu.reset_counters()
    emu.set_faults(rate_limit_rate=1.0, rate_limit_should_retry=True)
    with pytest.raises(stripe.RateLimitError):
        make_client(max_network_retries=1).v1.webhook_endpoints.list()
    assert emu.count("GET", ENDPOINTS, 429) == 2


def test_lock_timeouts_are_429s_with_their_own_code(emu: StripeEmulator, make_client: ClientFactory) -> None:
    emu.set_faults(lock_timeout_rate=1.0)
    with pytest.raises(stripe.RateLimitError) as caught:
        make_client().v1.webhook_endpoints.list()
    assert caught.value.error.code == "lock_timeout"
    assert caught.value.headers["Stripe-Should-Retry"] == "true"
    assert emu.count(fault=FaultKind.LOCK_TIMEOUT) == 1


def test_latency_delays_answers(emu: StripeEmulator, http: httpx.Client) -> None:
    emu.set_faults(latency_seconds=0.3)
    started = time.monotonic()
    assert http.get("/v1/balance", headers=bearer(SK_TEST)).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_latency_jitter_draws_each_delay_from_the_range_and_is_seeded() -> None:
    def delays(seed: int) -> list[float]:
        injector = FaultInjector(FaultPlan(latency_seconds=0.02, latency_jitter_seconds=0.2, seed=seed))
        return [injector.latency(injector.plan, "/v1/x") for _ in range(200)]

    drawn = delays(5)
    assert drawn == delays(5)
    assert all(0.02 <= d <= 0.22 for d in drawn)
    assert max(drawn) - min(drawn) > 0.1  # spread over the range, not one value
    outside = FaultInjector(
        FaultPlan(latency_seconds=0.5, latency_jitter_seconds=0.5, path_prefix="/v1/webhook")
    )
    assert outside.latency(outside.plan, "/v1/balance") == 0.0
    with pytest.raises(ValueError, match="must"):
        FaultPlan(latency_jitter_seconds=-0.1)


def test_requests_are_timed_and_visible_while_being_served(emu: StripeEmulator, http: httpx.Client) -> None:
    """A test that kills a client must know whether the kill fell while a request was being served."""
    emu.set_faults(latency_seconds=0.5)
    answered: list[int] = []
    caller = threading.Thread(
        target=lambda: answered.append(http.get("/v1/balance", headers=bearer(SK_TEST)).status_code)
    )
    before = time.monotonic()
    caller.start()
    deadline = time.monotonic() + 5
    while not emu.faults.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    (serving,) = emu.faults.in_flight
    assert (serving.method, serving.path) == ("GET", "/v1/balance")
    caller.join(timeout=10)
    assert answered == [200]
    assert emu.faults.in_flight == []
    (record,) = emu.requests
    assert before <= record.received == serving.received
    assert record.answered - record.received >= 0.5


def test_random_faults_only_hit_the_path_prefix(emu: StripeEmulator, http: httpx.Client) -> None:
    emu.set_faults(error_rate=1.0, path_prefix=ENDPOINTS)
    assert http.get("/v1/balance", headers=bearer(SK_TEST)).status_code == 200
    assert http.get(ENDPOINTS, headers=bearer(SK_TEST)).status_code == 500


def test_commit_then_fail_commits_then_answers_500_and_a_retry_replays(
    emu: StripeEmulator, make_client: ClientFactory
) -> None:
    client = make_client()
    emu.set_faults(commit_then_fail=1, commit_then_fail_path_prefix=ENDPOINTS)
    client.v1.webhook_endpoints.list()  # a GET does not match the POST the failure waits for
    with pytest.raises(stripe.APIError) as caught:
        create(client, "create-1")
    assert caught.value.http_status == 500
    [stored] = emu.endpoints(PLATFORM)
    replayed = create(client, "create-1")
    assert replayed.id == stored["id"]
    assert replayed.secret == emu.endpoint_secret(stored["id"])
    assert replayed.last_response.headers["Idempotent-Replayed"] == "true"
    assert emu.faults.plan.commit_then_fail == 0
    assert emu.count("POST", ENDPOINTS, 500, fault=FaultKind.COMMIT_THEN_FAIL) == 1


def test_commit_then_drop_closes_the_connection_after_committing(
    emu: StripeEmulator, make_client: ClientFactory
) -> None:
    client = make_client()
    emu.set_faults(commit_then_fail=1, commit_then_fail_mode="drop")
    with pytest.raises(stripe.APIConnectionError):
        create(client, "create-2")
    assert len(emu.endpoints(PLATFORM)) == 1
    assert emu.count(fault=FaultKind.DROPPED) == 1
    assert emu.requests[-1].status is None
    assert create(client, "create-2").id == emu.endpoints(PLATFORM)[0]["id"]


def test_processor_error_after_commit_is_saved_and_replayed_to_every_retry(
    emu: StripeEmulator, make_client: ClientFactory
) -> None:
    """Stripe's own 500 once execution began is the key's saved answer.

    See docs/processors/stripe.md, "Idempotency".
    """
    client = make_client()
    emu.set_faults(
        commit_then_fail=1, commit_then_fail_mode="processor_error", commit_then_fail_path_prefix=ENDPOINTS
    )
    with pytest.raises(stripe.APIError) as caught:
        create(client, "create-3")
    assert caught.value.http_status == 500
    assert "Idempotent-Replayed" not in caught.value.headers
    [stored] = emu.endpoints(PLATFORM)  # committed all the same
    assert emu.count("POST", ENDPOINTS, 500, fault=FaultKind.PROCESSOR_ERROR) == 1
    for _ in range(3):  # no more faults planned: the saved 500 itself comes back
        with pytest.raises(stripe.APIError) as again:
            create(client, "create-3")
        assert again.value.http_status == 500
        assert again.value.headers["Idempotent-Replayed"] == "true"
    assert emu.endpoints(PLATFORM) == [stored]
    # A new key is a new create.
    assert create(client, "create-4").id != stored["id"]


def test_the_sdks_own_retries_receive_the_saved_500_marked_as_a_replay(
    emu: StripeEmulator, make_client: ClientFactory
) -> None:
    emu.set_faults(
        commit_then_fail=1, commit_then_fail_mode="processor_error", commit_then_fail_path_prefix=ENDPOINTS
    )
    with pytest.raises(stripe.APIError) as caught:
        create(make_client(max_network_retries=2), "create-5")
    assert caught.value.headers["Idempotent-Replayed"] == "true"
    assert emu.count("POST", ENDPOINTS, 500) == 3
    assert len(emu.endpoints(PLATFORM)) == 1


def test_processor_error_without_an_idempotency_layer_looks_like_a_proxys() -> None:
    injector = FaultInjector(FaultPlan(commit_then_fail=1, commit_then_fail_mode="processor_error"))
    # An application that saves answers claims this kind itself; the middleware leaves it alone.
    assert injector.claim_commit_failure("POST", "/workflows", ("error", "drop")) is None
    assert injector.claim_commit_failure("POST", "/workflows") == "processor_error"


def test_failed_validation_does_not_use_up_a_commit_failure(emu: StripeEmulator, http: httpx.Client) -> None:
    emu.set_faults(commit_then_fail=1)
    refused = http.post(
        ENDPOINTS, data={"url": "https://localhost/x", "enabled_events[0]": "*"}, headers=bearer(SK_TEST)
    )
    assert refused.status_code == 400
    assert emu.faults.plan.commit_then_fail == 1


# Counting


def test_requests_are_counted_by_method_route_template_and_status(
    emu: StripeEmulator, make_client: ClientFactory, http: httpx.Client
) -> None:
    client = make_client()
    created = create(client)
    client.v1.webhook_endpoints.retrieve(created.id)
    client.v1.webhook_endpoints.update(created.id, {"description": "x"})
    client.v1.webhook_endpoints.delete(created.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.webhook_endpoints.retrieve(created.id)
    http.get("/_emulator/state")
    assert emu.count("POST", ENDPOINTS, 200) == 1
    assert emu.count("GET", f"{ENDPOINTS}/{{id}}") == 2
    assert emu.count("GET", f"{ENDPOINTS}/{{id}}", 404) == 1
    assert emu.count("POST", f"{ENDPOINTS}/{{id}}", 200) == 1
    assert emu.count("DELETE", f"{ENDPOINTS}/{{id}}", 200) == 1
    assert emu.count() == 5  # control routes are not counted
    assert emu.faults.counters[("GET", f"{ENDPOINTS}/{{id}}", 200)] == 1
    assert emu.requests[0].path == ENDPOINTS
    emu.reset_counters()
    assert emu.count() == 0


def test_control_routes_are_never_faulted(emu: StripeEmulator, http: httpx.Client) -> None:
    emu.set_faults(error_rate=1.0, latency_seconds=5.0)
    started = time.monotonic()
    assert http.get("/_emulator/state").status_code == 200
    assert http.get("/_emulator/requests").status_code == 200
    assert time.monotonic() - started < 5.0


def test_the_control_api_sets_faults_and_reports_requests(emu: StripeEmulator, http: httpx.Client) -> None:
    assert http.put("/_emulator/faults", json={"error_rate": 1.0, "seed": 5}).status_code == 200
    assert emu.faults.plan.error_rate == 1.0
    assert http.get("/v1/balance", headers=bearer(SK_TEST)).status_code == 500
    assert http.get("/_emulator/faults").json()["error_rate"] == 1.0
    assert http.put("/_emulator/faults", json={"error_rate": 2}).status_code == 400
    assert http.put("/_emulator/faults", json={"nonsense": 1}).status_code == 400
    report = http.get("/_emulator/requests").json()
    assert report["counters"] == [{"method": "GET", "route": "/v1/balance", "status": 500, "count": 1}]
    assert report["requests"][0]["fault"] == "server_error"
    assert http.delete("/_emulator/requests").status_code == 200
    assert emu.count() == 0
    assert http.put("/_emulator/faults", json={}).json()["error_rate"] == 0.0


# The gate and the server


def test_a_gate_reports_nothing_held_when_nothing_is() -> None:
    gate = ExecutionGate()
    gate.close()
    assert gate.wait_for_waiting(1, timeout=0.05) is False
    assert gate.is_open is False
    gate.open()
    assert gate.is_open is True


def test_stopping_releases_held_requests() -> None:
    with StripeEmulator.from_fixture(DEMO_FIXTURE) as emulator:
        client = stripe.StripeClient(
            SK_TEST,
            base_addresses={"api": emulator.base_url},
            http_client=stripe.HTTPXClient(allow_sync_methods=True),
        )
        outcome: list[str] = []

        def attempt() -> None:
            try:
                create(client)
                outcome.append("answered")
            except stripe.StripeError:
                outcome.append("failed")

        emulator.faults.hold.close()
        worker = threading.Thread(target=attempt)
        worker.start()
        assert emulator.faults.hold.wait_for_waiting(1, timeout=10)
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert outcome in (["answered"], ["failed"])


def test_a_server_serves_once_and_stops() -> None:
    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    server = EmulatorServer(app)
    with server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert httpx.get(server.base_url + "/").text == "hello"
    assert not server.running
    with pytest.raises(RuntimeError, match="once"):
        server.start()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url


def test_logs_never_show_keys() -> None:
    line = f"POST /_emulator/keys/{SK_TEST}/grant and rk_live_abcdef123456 and sk_sbox_zz99zz99"
    redacted = redact_keys(line)
    assert SK_TEST not in redacted
    assert "sk_test_***" in redacted
    assert "rk_live_***" in redacted
    assert "sk_sbox_***" in redacted


def test_the_cli_serves_a_fixture_until_interrupted() -> None:
    command = [
        sys.executable,
        "-m",
        "procon.cli",
        "emulate",
        "stripe",
        "--fixture",
        str(DEMO_FIXTURE),
        "--quiet",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the emulator printed nothing within 30s"
        line = process.stdout.readline()
        base_url = line.split(" listening on ")[1].split()[0]
        assert httpx.get(f"{base_url}/v1/balance", headers=bearer(SK_TEST)).json()["livemode"] is False
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.parametrize(
    ("signum", "sigint_ignored"),
    [(signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["sigint-inherited-ignored", "sigterm"],
)
def test_the_cli_stops_on_sigint_even_inherited_ignored_and_on_sigterm(
    signum: signal.Signals, sigint_ignored: bool
) -> None:
    """A background job of a non-interactive shell starts with SIGINT ignored, and a container is
    stopped with SIGTERM: the emulator stops cleanly on either."""

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    command = [
        sys.executable,
        "-m",
        "procon.cli",
        "emulate",
        "stripe",
        "--fixture",
        str(DEMO_FIXTURE),
        "--quiet",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ignore_sigint if sigint_ignored else None,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the emulator printed nothing within 30s"
        assert " listening on " in process.stdout.readline()
        process.send_signal(signum)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def test_the_cli_reports_a_bad_fixture(tmp_path: Path) -> None:
    fixture = tmp_path / "bad.yaml"
    fixture.write_text("accounts:\n  - id: acct_1\n    keys: [{key: sk_nonsense_123}]\n")
    result = subprocess.run(
        [sys.executable, "-m", "procon.cli", "emulate", "stripe", "--fixture", str(fixture)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "accounts[0].keys[0]" in result.stderr
    assert "sk_nonsense_123" not in result.stderr
