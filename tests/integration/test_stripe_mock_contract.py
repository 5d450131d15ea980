"""The Stripe driver's requests, checked by Stripe's own validator; the emulator, checked by Stripe's spec.

stripe-mock (Stripe's official mock, ``hack/stripe-mock``, built from its Go module and cached like
the control plane) validates every request against the OpenAPI spec it embeds. It is stateless:
answers are fixtures, so these tests judge whether each request is *valid*, never what it did.

The driver's whole repertoire runs against it once per module, through a small recording proxy
that notes every exchange (and, to make the driver page, claims ``has_more`` on first pages):
verification, every permission probe, listing with pagination, creates with every field and with
the fewest, each kind of update, delete; with a restricted and a secret key; for the key's own
account and for a connected account (``Stripe-Account``). Every request must pass validation,
except the empty creates that probe write permissions, which must be refused for a parameter the
spec requires.

The emulator's value lists (event types, webhook API versions) and the parameters its probe
endpoints accept are compared with the same spec, so Stripe accepting something the emulator
refuses (or the reverse) fails here.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import threading
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web

from procon.api.v1alpha1 import Mode
from procon.emulators.stripe import probes as emulator_probes
from procon.emulators.stripe.openapi import StripeSpec, data_files
from procon.emulators.stripe.stripe_mock import StripeMock, ensure_stripe_mock
from procon.emulators.stripe.webhooks import CREATE_PARAMS, LIST_PARAMS, UPDATE_PARAMS
from procon.processors.base import (
    Credentials,
    TransientProcessorError,
)
from procon.processors.stripe import permissions as perms
from procon.processors.stripe.driver import StripeDriver
from procon.processors.stripe.webhook import CONNECT, StripeChanges, StripeDesired, StripeTarget
from procon.reconcile.ownership import Owner
from tests.waiting import wait_for

# stripe-mock accepts any key of the shape sk|rk _test_ <rest> (docs/processors/stripe.md,
# "Checked against Stripe's own validator (stripe-mock)").
RESTRICTED_KEY = "rk_test_51ContractRestrictedKey000000000000"
SECRET_KEY = "sk_test_51ContractSecretKey0000000000000000"
CONNECTED = "acct_1ContractConnected01"
WEBHOOK_ID = "we_1ContractWebhook000001"
# The ownership tag the reconciler writes, at the longest names Kubernetes allows.
OWNER = {
    **Owner(
        cluster="c" * 40, namespace="n" * 63, name="m" * 253, uid="0b9e8a0e-5c1f-4f57-9d6e-6f2b1c3d4e5f"
    ).metadata(),
    CONNECT: "true",
}
LISTENING = re.compile(r"^Listening for HTTP at address: (\S+)$")
# stripe-mock's refusal of a missing required parameter, from its JSON Schema validator.
MISSING_PROPERTY = re.compile(r"object property '([a-z_]+)' is required")
NO_SECRET = "Stripe created the webhook endpoint but returned no signing secret"


# stripe-mock


@dataclass
class RunningMock:
    base_url: str
    output: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def stripe_mock_tool() -> StripeMock:
    return ensure_stripe_mock()


@pytest.fixture(scope="module")
def stripe_mock(stripe_mock_tool: StripeMock) -> Iterator[RunningMock]:
    """stripe-mock on free loopback ports.

    Both listeners are given explicitly: with ``-http-addr`` alone stripe-mock also opens HTTPS on
    its default port on every interface.
    """
    process = subprocess.Popen(
        [str(stripe_mock_tool.binary), "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = RunningMock(base_url="")

    def drain() -> None:  # read to the end, so a full pipe never blocks stripe-mock
        assert process.stdout is not None
        for line in process.stdout:
            running.output.append(line.rstrip("\n"))

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:

        def address() -> str | None:
            if process.poll() is not None:
                raise AssertionError(f"stripe-mock exited ({process.returncode}): {running.output}")
            found = (LISTENING.match(line) for line in list(running.output))
            return next((f"http://{m.group(1)}" for m in found if m), None)

        running.base_url = wait_for(address, timeout=60, what="stripe-mock to listen")
        yield running
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.join(timeout=10)


# The recording proxy


@dataclass(frozen=True)
class Exchange:
    """One request the driver sent and stripe-mock's verdict on it."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...]  # query string, then form body, decoded
    connected_account: str | None
    status: int
    error: str | None

    @property
    def names(self) -> set[str]:
        """Top-level parameter names: ``metadata[k]`` -> ``metadata``."""
        return {name.split("[", 1)[0] for name, _ in self.params}

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params)
        where = f" as {self.connected_account}" if self.connected_account else ""
        return f"{self.method} {self.path}?{query}{where} -> {self.status} {self.error or ''}".rstrip()


async def recording_proxy(target: str, exchanges: list[Exchange]) -> web.AppRunner:
    """A proxy in front of stripe-mock noting each exchange; first webhook list pages claim more."""
    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with session.request(
            request.method, target + request.path_qs, headers=headers, data=body
        ) as answer:
            payload = await answer.read()
            status = answer.status
            content_type = answer.headers.get("Content-Type", "application/json")
            error = (await answer.json())["error"]["message"] if status >= 400 else None
            if (
                status == 200
                and request.method == "GET"
                and request.path == "/v1/webhook_endpoints"
                and "starting_after" not in request.query
            ):
                # stripe-mock answers one page; claiming another makes the driver send starting_after.
                page = json.loads(payload)
                page["has_more"] = True
                payload = json.dumps(page).encode()
        form = parse_qsl(body.decode(), keep_blank_values=True) if request.method == "POST" else []
        exchanges.append(
            Exchange(
                method=request.method,
                path=request.path,
                params=(*parse_qsl(request.query_string, keep_blank_values=True), *form),
                connected_account=request.headers.get("Stripe-Account"),
                status=status,
                error=error,
            )
        )
        return web.Response(status=status, body=payload, content_type=content_type.split(";")[0])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)

    async def close_session(_: web.Application) -> None:
        await session.close()

    app.on_cleanup.append(close_session)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def proxy_url(runner: web.AppRunner) -> str:
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


# The repertoire


@dataclass
class Repertoire:
    exchanges: list[Exchange]
    outcomes: dict[str, Any]  # what each driver call returned or raised, by a label


async def _outcome(label: str, outcomes: dict[str, Any], call: Awaitable[Any]) -> None:
    try:
        outcomes[label] = await call
    except Exception as error:
        outcomes[label] = error


def _desired(**overrides: Any) -> StripeDesired:
    fields: dict[str, Any] = {
        "url": "https://hooks.example.com/stripe",
        "events": ("charge.succeeded", "financial_connections.account.upcoming_deactivation"),
        "description": "procon contract test",
        "metadata": OWNER,
        "api_version": "2026-08-26.dahlia",
        "connect": True,
    }
    fields.update(overrides)
    return StripeDesired(**fields)


# Each update the reconciler makes, alone and together.
UPDATES = {
    "events": StripeChanges(events=("*",)),
    "description": StripeChanges(description="a new description"),
    "description-unset": StripeChanges(description=""),
    "metadata": StripeChanges(metadata={**OWNER, "procon-connect": "false"}),
    "metadata-unset-key": StripeChanges(metadata={"procon-connect": ""}),
    "disable": StripeChanges(enabled=False),
    "enable": StripeChanges(enabled=True),
    "all": StripeChanges(
        events=("charge.failed", "charge.succeeded"), description="all", enabled=True, metadata=OWNER
    ),
}


async def run_repertoire(base_url: str) -> Repertoire:
    exchanges: list[Exchange] = []
    outcomes: dict[str, Any] = {}
    runner = await recording_proxy(base_url, exchanges)
    # No SDK retries: one driver call, one request, one verdict.
    driver = StripeDriver(proxy_url(runner), max_network_retries=0)
    try:
        targets = {"own": None, "connected": CONNECTED}
        every_permission = [*perms.READ_PROBES, *perms.WRITE_PROBES, *perms.VERIFIED_BY_USE]
        for key_name, key in (("restricted", RESTRICTED_KEY), ("secret", SECRET_KEY)):
            credentials = Credentials({"apiKey": key})
            for target_name, connected in targets.items():
                target = StripeTarget(mode=Mode.TEST, connected_account=connected)
                label = f"{key_name}/{target_name}"

                def record(what: str, call: Awaitable[Any], label: str = label) -> Awaitable[None]:
                    return _outcome(f"{label}/{what}", outcomes, call)

                await record("verify", driver.verify(credentials, target))
                await record("permissions", driver.check_permissions(credentials, target, every_permission))
                await record("list", driver.list_webhooks(credentials, target))
                await record(
                    "create-full",
                    driver.create_webhook(credentials, target, _desired(), idempotency_key=f"{label}/1"),
                )
                await record(
                    "create-minimal",
                    driver.create_webhook(
                        credentials,
                        target,
                        _desired(description=None, api_version=None, connect=False),
                        idempotency_key=f"{label}/2",
                    ),
                )
                for name, changes in UPDATES.items():
                    await record(
                        f"update-{name}", driver.update_webhook(credentials, target, WEBHOOK_ID, changes)
                    )
                await record("delete", driver.delete_webhook(credentials, target, WEBHOOK_ID))
    finally:
        await driver.aclose()
        await runner.cleanup()
    return Repertoire(exchanges, outcomes)


@pytest.fixture(scope="module")
def repertoire(stripe_mock: RunningMock) -> Repertoire:
    return asyncio.run(run_repertoire(stripe_mock.base_url))


def _is_empty_write_probe(exchange: Exchange) -> bool:
    return (
        exchange.method == "POST"
        and not exchange.params
        and any(exchange.path == path for path, _ in perms.WRITE_PROBE_REQUIRED.values())
    )


# The driver against stripe-mock


def test_every_request_passes_stripes_validation(repertoire: Repertoire) -> None:
    """Zero failed validations over the whole repertoire, the deliberately empty creates aside."""
    failed = [str(e) for e in repertoire.exchanges if e.status != 200 and not _is_empty_write_probe(e)]
    assert failed == []
    validated = [e for e in repertoire.exchanges if not _is_empty_write_probe(e)]
    # 4 runs (2 keys x 2 targets): verify 1, probes 26 (restricted key only), list 2, creates 2,
    # updates 8, delete 1.
    probes = len(perms.READ_PROBES) + len(perms.WRITE_PROBES)
    expected = 4 * (1 + 2 + 2 + len(UPDATES) + 1) + 2 * probes - 2 * len(perms.WRITE_PROBE_REQUIRED)
    assert len(validated) == expected


def test_each_empty_write_probe_is_refused_for_a_parameter_the_spec_requires(
    repertoire: Repertoire, stripe_spec: StripeSpec
) -> None:
    """The empty creates must be refused (else they could make an object), naming a missing
    parameter: the refusal procon reads as "the write permission is held"."""
    empty = [e for e in repertoire.exchanges if _is_empty_write_probe(e)]
    assert len(empty) == 2 * len(perms.WRITE_PROBE_REQUIRED)  # restricted key, both targets
    for exchange in empty:
        assert exchange.status == 400, str(exchange)
        missing = MISSING_PROPERTY.search(exchange.error or "")
        assert missing, str(exchange)
        (required,) = (r for p, r in perms.WRITE_PROBE_REQUIRED.values() if p == exchange.path)
        assert missing.group(1) in required
        assert required == spec_required("POST", exchange.path, stripe_spec)


def spec_required(method: str, path: str, spec: StripeSpec) -> frozenset[str]:
    """What the spec requires of a request; nothing where it has no such operation."""
    if not spec.has_operation(method, path):
        return frozenset()
    return spec.required_form_parameters(method, path)


def test_the_repertoire_covers_what_the_driver_sends(repertoire: Repertoire) -> None:
    """Every kind of request the driver makes was validated, for both targets."""
    for connected in (None, CONNECTED):
        sent = [e for e in repertoire.exchanges if e.connected_account == connected]
        paths = {(e.method, e.path) for e in sent}
        assert ("GET", "/v1/account") in paths
        for probe in (*perms.READ_PROBES.values(), *perms.WRITE_PROBES.values()):
            assert (probe.method, probe.path) in paths, probe
        pages = [e for e in sent if e.method == "GET" and e.path == "/v1/webhook_endpoints"]
        assert any(dict(e.params).get("starting_after") for e in pages), "no second page was asked for"
        assert all(dict(e.params).get("limit") == "100" for e in pages if "starting_after" in e.names)
        creates = [e for e in sent if e.method == "POST" and e.path == "/v1/webhook_endpoints"]
        assert {"url", "enabled_events", "description", "metadata", "api_version", "connect"} <= set.union(
            *(e.names for e in creates)
        )
        assert ("connect", "true") in {p for e in creates for p in e.params}
        updates = [e for e in sent if e.method == "POST" and e.path == f"/v1/webhook_endpoints/{WEBHOOK_ID}"]
        assert {"enabled_events", "description", "metadata", "disabled"} <= set.union(
            *(e.names for e in updates)
        )
        assert {("disabled", "true"), ("disabled", "false"), ("description", "")} <= {
            p for e in updates for p in e.params
        }
        assert ("DELETE", f"/v1/webhook_endpoints/{WEBHOOK_ID}") in paths


def test_the_driver_reads_stripe_mocks_answers(repertoire: Repertoire) -> None:
    """What the driver made of each valid answer: stripe-mock's fixtures carry no signing secret,
    so a create ends in the driver's own refusal, after the request was accepted."""
    for label, outcome in repertoire.outcomes.items():
        what = label.rsplit("/", 1)[1]
        if what.startswith("create"):
            assert isinstance(outcome, TransientProcessorError), (label, outcome)
            assert str(outcome) == NO_SECRET
        else:
            assert not isinstance(outcome, Exception), (label, outcome)
    report = repertoire.outcomes["restricted/own/permissions"]
    assert report.probes == len(perms.READ_PROBES) + len(perms.WRITE_PROBES)
    assert set(perms.WRITE_PROBE_REQUIRED) <= set(report.granted)  # refused for a missing parameter


# The emulator against the spec


@pytest.fixture(scope="module")
def stripe_spec(stripe_mock_tool: StripeMock) -> StripeSpec:
    return StripeSpec.load(stripe_mock_tool.spec)


def test_the_spec_is_the_one_the_project_pins(stripe_mock_tool: StripeMock, stripe_spec: StripeSpec) -> None:
    assert stripe_mock_tool.version == "v0.203.0"
    assert stripe_spec.version == "2026-08-26.dahlia"


def test_the_emulators_value_lists_are_the_specs(stripe_spec: StripeSpec) -> None:
    """Event types and webhook API versions: refresh with ``python -m procon.emulators.stripe.openapi``."""
    data = Path(__file__).resolve().parents[2] / "operator" / "procon" / "emulators" / "stripe" / "data"
    for name, text in data_files(stripe_spec).items():
        committed = (data / name).read_text(encoding="utf-8").split()
        from_spec = text.split()
        assert sorted(set(from_spec) - set(committed)) == [], f"{name} lacks what Stripe accepts"
        assert sorted(set(committed) - set(from_spec)) == [], f"{name} has what Stripe refuses"
        assert committed == from_spec, f"{name} is not in the spec's order"


def test_the_emulators_webhook_parameters_are_the_specs(stripe_spec: StripeSpec) -> None:
    path = "/v1/webhook_endpoints"
    assert stripe_spec.form_parameters("POST", path) == CREATE_PARAMS
    assert stripe_spec.form_parameters("POST", path + "/{webhook_endpoint}") == UPDATE_PARAMS
    assert stripe_spec.query_parameters(path) == LIST_PARAMS
    assert stripe_spec.required_form_parameters("POST", path) == {"url", "enabled_events"}


def test_the_emulators_probe_endpoints_take_the_specs_parameters(stripe_spec: StripeSpec) -> None:
    """Each list probe accepts exactly the spec's query parameters (report types: no ``limit``); an
    empty create, where modelled, is refused for the parameters the spec requires; and every empty
    create the driver sends is modelled."""
    for probe in emulator_probes.LIST_PROBES:
        assert probe.accepts == stripe_spec.query_parameters(probe.path), probe.path
        if probe.required_to_create:
            assert set(probe.required_to_create) == spec_required("POST", probe.path, stripe_spec), probe.path
    assert stripe_spec.query_parameters("/v1/accounts") == emulator_probes.CONNECTED_ACCOUNTS_LIST_PARAMS
    for object_probe in emulator_probes.OBJECT_PROBES:
        retrieve = next(
            p for p in stripe_spec.document["paths"] if p.startswith(object_probe.collection + "/{")
        )
        assert object_probe.accepts == stripe_spec.query_parameters(retrieve)
    modelled = {probe.path for probe in emulator_probes.LIST_PROBES if probe.required_to_create}
    assert {path for path, _ in perms.WRITE_PROBE_REQUIRED.values()} <= modelled
    for write_probe in emulator_probes.WRITE_OBJECT_PROBES:
        assert spec_required("POST", write_probe.collection, stripe_spec) == frozenset()


def test_every_driver_write_probe_is_safe_by_the_spec(stripe_spec: StripeSpec) -> None:
    """An empty create is sent only where the spec makes it fail; elsewhere the probe is an empty
    update of an ID that cannot exist."""
    for permission, probe in perms.WRITE_PROBES.items():
        if probe.granted_on == "granted-on-400":
            assert spec_required("POST", probe.path, stripe_spec), permission
        else:
            assert probe.granted_on == "granted-on-404"
            collection, object_id = probe.path.rsplit("/", 1)
            assert "procon_probe" in object_id
            template = next(
                p
                for p in stripe_spec.document["paths"]
                if re.fullmatch(re.escape(collection) + r"/\{[a-z_]+\}", p)
            )
            assert stripe_spec.has_operation("POST", template)
            assert spec_required("POST", template, stripe_spec) == frozenset()
