"""``procon emulate NAME --fixture FILE [--port N] [--host H]``: serve an emulator until Ctrl-C.

``NAME`` is any emulator package below ``procon.emulators`` (see ``discovery``): the
command finds them without naming them, so a new emulator needs no edit here.
Imports of aiohttp and the emulators are deferred to the command itself, so
registering the parser keeps ``procon`` quick to start.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from procon.emulators.discovery import emulator_names


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register ``emulate`` on the ``procon`` command's subparsers."""
    emulate = subparsers.add_parser("emulate", help="serve a local emulator of a payment processor's API")
    emulate.add_argument("processor", choices=emulator_names(), help="which processor's API to serve")
    emulate.add_argument(
        "--fixture",
        type=Path,
        required=True,
        help="YAML file declaring accounts and keys (its shape: the emulator's fixture module)",
    )
    emulate.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    emulate.add_argument("--port", type=int, default=0, help="port to listen on (default: 0, any free port)")
    emulate.add_argument("--seed", type=int, default=None, help="seed for fault injection draws")
    emulate.add_argument("--quiet", action="store_true", help="do not log each request")
    emulate.set_defaults(func=_cmd_emulate)


def _cmd_emulate(args: argparse.Namespace) -> int:
    from procon.emulators.discovery import emulator_kind
    from procon.emulators.faults import FaultInjector
    from procon.emulators.fixtures import FixtureError
    from procon.emulators.server import serve_forever

    kind = emulator_kind(args.processor)
    try:
        state = kind.state_from_fixture(args.fixture)
    except FixtureError as error:
        print(f"procon: {error}", file=sys.stderr)
        return 1
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    def announce(base_url: str) -> None:
        print(
            f"{kind.title} emulator listening on {base_url} "
            f"({kind.addressing.replace('{base_url}', base_url)}control API: {base_url}/_emulator/state)",
            flush=True,
        )

    app = kind.create_app(state, FaultInjector(seed=args.seed))
    serve_forever(app, args.host, args.port, on_ready=announce, access_log=not args.quiet)
    return 0
