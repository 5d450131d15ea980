"""``procon emulate {stripe,checkout,adyen} --fixture FILE [--port N] [--host H]``: serve until Ctrl-C.

Imports of aiohttp and the emulators are deferred to the command itself, so
registering the parser keeps ``procon`` quick to start.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register ``emulate`` and its processors on the ``procon`` command's subparsers."""
    emulate = subparsers.add_parser("emulate", help="serve a local emulator of a payment processor's API")
    processors = emulate.add_subparsers(dest="processor", required=True)
    stripe = processors.add_parser("stripe", help="the Stripe API: webhook endpoints, keys, Connect")
    stripe.add_argument("--fixture", type=Path, required=True, help="YAML file declaring accounts and keys")
    stripe.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    stripe.add_argument("--port", type=int, default=0, help="port to listen on (default: 0, any free port)")
    stripe.add_argument("--seed", type=int, default=None, help="seed for fault injection draws")
    stripe.add_argument("--quiet", action="store_true", help="do not log each request")
    stripe.set_defaults(func=_cmd_emulate_stripe)
    checkout = processors.add_parser(
        "checkout", help="the Checkout.com API: OAuth, secret keys, Workflows, event types"
    )
    checkout.add_argument("--fixture", type=Path, required=True, help="YAML file declaring clients and keys")
    checkout.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    checkout.add_argument("--port", type=int, default=0, help="port to listen on (default: 0, any free port)")
    checkout.add_argument("--seed", type=int, default=None, help="seed for fault injection draws")
    checkout.add_argument("--quiet", action="store_true", help="do not log each request")
    checkout.set_defaults(func=_cmd_emulate_checkout)
    adyen = processors.add_parser("adyen", help="the Adyen Management API: /me, roles, webhooks, HMAC keys")
    adyen.add_argument(
        "--fixture", type=Path, required=True, help="YAML file declaring accounts and credentials"
    )
    adyen.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    adyen.add_argument("--port", type=int, default=0, help="port to listen on (default: 0, any free port)")
    adyen.add_argument("--seed", type=int, default=None, help="seed for fault injection draws")
    adyen.add_argument("--quiet", action="store_true", help="do not log each request")
    adyen.set_defaults(func=_cmd_emulate_adyen)


def _cmd_emulate_stripe(args: argparse.Namespace) -> int:
    from procon.emulators.faults import FaultInjector
    from procon.emulators.server import serve_forever
    from procon.emulators.stripe import FixtureError, create_app, state_from_fixture

    try:
        state = state_from_fixture(args.fixture)
    except FixtureError as error:
        print(f"procon: {error}", file=sys.stderr)
        return 1
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    def announce(base_url: str) -> None:
        print(
            f"Stripe emulator listening on {base_url} (control API: {base_url}/_emulator/state)", flush=True
        )

    app = create_app(state, FaultInjector(seed=args.seed))
    serve_forever(app, args.host, args.port, on_ready=announce, access_log=not args.quiet)
    return 0


def _cmd_emulate_checkout(args: argparse.Namespace) -> int:
    from procon.emulators.checkout import FixtureError, create_app, state_from_fixture
    from procon.emulators.faults import FaultInjector
    from procon.emulators.server import serve_forever

    try:
        state = state_from_fixture(args.fixture)
    except FixtureError as error:
        print(f"procon: {error}", file=sys.stderr)
        return 1
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    def announce(base_url: str) -> None:
        print(
            f"Checkout.com emulator listening on {base_url} (API and /connect/token; account hosts by "
            f"Host header {{prefix}}.api.checkout.test; control API: {base_url}/_emulator/state)",
            flush=True,
        )

    app = create_app(state, FaultInjector(seed=args.seed))
    serve_forever(app, args.host, args.port, on_ready=announce, access_log=not args.quiet)
    return 0


def _cmd_emulate_adyen(args: argparse.Namespace) -> int:
    from procon.emulators.adyen import FixtureError, create_app, state_from_fixture
    from procon.emulators.faults import FaultInjector
    from procon.emulators.server import serve_forever

    try:
        state = state_from_fixture(args.fixture)
    except FixtureError as error:
        print(f"procon: {error}", file=sys.stderr)
        return 1
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    def announce(base_url: str) -> None:
        print(
            f"Adyen emulator listening on {base_url} (Management API: {base_url}/v3, either environment by "
            f"key; hosts management-test.adyen.test and management-live.adyen.test by Host header; "
            f"control API: {base_url}/_emulator/state)",
            flush=True,
        )

    app = create_app(state, FaultInjector(seed=args.seed))
    serve_forever(app, args.host, args.port, on_ready=announce, access_log=not args.quiet)
    return 0
