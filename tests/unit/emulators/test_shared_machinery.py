"""The machinery every emulator shares: a new emulator package is found, served and controlled with no edit
outside it.

A toy emulator written into a temporary directory stands for the next processor: it holds only its API and
state, exposes ``EMULATOR``, and gets the command line, the control API, fixture loading, fault injection and
access-log redaction from ``procon.emulators``.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import procon.emulators
from procon import cli
from procon.emulators import server
from procon.emulators.base import Emulator, EmulatorKind
from procon.emulators.checkout import CheckoutEmulator
from procon.emulators.discovery import emulator_kind, emulator_names
from procon.emulators.faults import FaultKind
from procon.emulators.fixtures import FixtureError
from procon.emulators.stripe import StripeEmulator

TOY_KEY = "tk_live_toysecret123"

TOY_PACKAGE = '''
"""A toy processor: greetings behind a bearer key."""

import threading
from typing import Any

from aiohttp import web

from procon.emulators.app import emulator_app
from procon.emulators.base import Emulator, EmulatorKind
from procon.emulators.control import ControlRoute, json_answer, read_object
from procon.emulators.faults import FaultInjector, FaultKind
from procon.emulators.fixtures import mapping, read_fixture, strings

KEY = "{key}"


class ToyState:
    def __init__(self, greetings: list[str]) -> None:
        self.lock = threading.RLock()
        self._initial = list(greetings)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.greetings = list(self._initial)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {{"greetings": list(self.greetings)}}


def _parse(data: Any) -> ToyState:
    fields = mapping(data, "fixture", {{"greetings"}})
    return ToyState(strings(fields.get("greetings"), "fixture.greetings"))


def state_from_fixture(source: Any) -> ToyState:
    return read_fixture(source, _parse)


def _render(fault: FaultKind, should_retry: bool | None) -> web.Response:
    return web.json_response({{"fault": fault.value}}, status=429 if fault is FaultKind.RATE_LIMITED else 500)


@web.middleware
async def _api(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.headers.get("Authorization") != f"Bearer {{KEY}}":
        return web.json_response({{"error": "unauthorized"}}, status=401)
    return await handler(request)


def create_app(state: ToyState, faults: FaultInjector | None = None) -> web.Application:
    async def hello(_: web.Request) -> web.Response:
        return web.json_response(state.snapshot())

    async def add_greeting(request: web.Request) -> web.Response:
        body = await read_object(request, "{{'greeting': ...}}")
        with state.lock:
            state.greetings.append(str(body["greeting"]))
        return json_answer(state.snapshot())

    app = emulator_app(
        state,
        faults or FaultInjector(),
        answer_headers=lambda request: {{"Toy-Request-Id": "req_toy"}},
        render_fault=_render,
        api_middleware=_api,
        control_routes=[ControlRoute("POST", "greetings", add_greeting)],
    )
    app.router.add_get("/hello", hello)
    return app


EMULATOR = EmulatorKind(
    name="toy",
    title="Toy",
    state_from_fixture=state_from_fixture,
    create_app=create_app,
    key_prefixes=("tk_live_",),
)


class ToyEmulator(Emulator[ToyState]):
    kind = EMULATOR
'''


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A ``procon.emulators.toy`` package that exists only in a temporary directory."""
    package = tmp_path / "toy"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(TOY_PACKAGE.format(key=TOY_KEY)))
    monkeypatch.setattr(procon.emulators, "__path__", [*procon.emulators.__path__, str(tmp_path)])
    server._key_pattern.cache_clear()
    try:
        yield emulator_kind("toy")
    finally:
        sys.modules.pop("procon.emulators.toy", None)
        server._key_pattern.cache_clear()


def test_every_emulator_package_is_found_with_its_descriptor() -> None:
    assert {"stripe", "checkout"} <= set(emulator_names())
    for name in emulator_names():
        assert emulator_kind(name).name == name
    assert StripeEmulator.kind is emulator_kind("stripe")
    assert CheckoutEmulator.kind is emulator_kind("checkout")


def test_an_unknown_emulator_is_refused() -> None:
    with pytest.raises(LookupError, match="no emulator named 'nowhere'"):
        emulator_kind("nowhere")
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["emulate", "nowhere", "--fixture", "f.yaml"])


def test_fixture_errors_are_one_class_for_every_emulator() -> None:
    from procon.emulators.checkout.fixture import FixtureError as CheckoutFixtureError
    from procon.emulators.stripe.fixture import FixtureError as StripeFixtureError

    assert StripeFixtureError is FixtureError
    assert CheckoutFixtureError is FixtureError


def test_a_new_emulator_package_is_offered_by_the_command_line(toy: EmulatorKind[Any]) -> None:
    assert "toy" in emulator_names()
    assert toy.title == "Toy"
    args = cli.build_parser().parse_args(["emulate", "toy", "--fixture", "toy.yaml", "--port", "0"])
    assert args.processor == "toy"


def test_the_command_line_reports_a_new_emulators_bad_fixture(
    toy: EmulatorKind[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture = tmp_path / "bad.yaml"
    fixture.write_text("greetings: [1, 2]\n")
    assert cli.main(["emulate", "toy", "--fixture", str(fixture)]) == 1
    assert "fixture.greetings: expected a list of strings" in capsys.readouterr().err


def test_a_new_emulator_gets_the_control_api_faults_and_counting(toy: EmulatorKind[Any]) -> None:
    toy_emulator: type[Emulator[Any]] = sys.modules["procon.emulators.toy"].ToyEmulator
    auth = {"Authorization": f"Bearer {TOY_KEY}"}
    with (
        toy_emulator.from_fixture({"greetings": ["hi"]}) as emulator,
        httpx.Client(base_url=emulator.base_url, timeout=10) as http,
    ):
        answer = http.get("/hello", headers=auth)
        assert (answer.status_code, answer.json()) == (200, {"greetings": ["hi"]})
        assert answer.headers["Toy-Request-Id"] == "req_toy"
        assert http.get("/hello").status_code == 401

        control = http.get("/_emulator/state")  # no processor auth, no processor headers
        assert (control.status_code, control.json()) == (200, {"greetings": ["hi"]})
        assert "Toy-Request-Id" not in control.headers
        added = http.post("/_emulator/greetings", json={"greeting": "hello"})
        assert added.json() == {"greetings": ["hi", "hello"]}
        assert http.post("/_emulator/greetings", json=["no"]).status_code == 400

        assert http.put("/_emulator/faults", json={"error_rate": 1.0}).status_code == 200
        faulted = http.get("/hello", headers=auth)
        assert (faulted.status_code, faulted.json()) == (500, {"fault": "server_error"})
        assert faulted.headers["Toy-Request-Id"] == "req_toy"
        assert emulator.count("GET", "/hello", 500, fault=FaultKind.SERVER_ERROR) == 1
        counted = http.get("/_emulator/requests").json()["counters"]
        assert {"method": "GET", "route": "/hello", "status": 500, "count": 1} in counted

        reset = http.post("/_emulator/reset")
        assert reset.json() == {"greetings": ["hi"]}
        assert http.get("/hello", headers=auth).status_code == 200
        assert emulator.count() == 1


def test_the_access_log_hides_a_new_emulators_keys(toy: EmulatorKind[Any]) -> None:
    redacted = server.redact_keys(f"POST /_emulator/keys/{TOY_KEY}/grant and sk_test_abcdef123456")
    assert TOY_KEY not in redacted
    assert "tk_live_***" in redacted
    assert "sk_test_***" in redacted
