"""A stateful emulator of the parts of Stripe's API that procon uses.

It follows the Stripe facts in docs/processors/stripe.md (auth and key
masking, restricted-key permissions, Connect, webhook endpoints with their
validation and limits, idempotency, error bodies and headers); every behaviour
not backed by a documented or observed fact is marked ``ASSUMPTION`` in the code.

- ``emulator.EMULATOR``: how the shared machinery (``procon.emulators``: server,
  control API, fixture loading, fault injection, ``procon emulate stripe``) builds this one;
- ``emulator.StripeEmulator``: state + faults + server, the object tests use;
- ``app.create_app``: the aiohttp application over a ``StripeState``;
- ``fixture``: the YAML/dict format the state starts from;
- ``control``: its own ``/_emulator/`` routes (keys, endpoints out of band);
- pure parts: ``access`` (auth, Connect, permissions), ``permissions``, ``keys``,
  ``forms`` (bracket notation), ``validation``, ``webhooks``, ``idempotency``, ``errors``.
"""

from procon.emulators.fixtures import FixtureError
from procon.emulators.stripe.app import create_app
from procon.emulators.stripe.emulator import EMULATOR, StripeEmulator
from procon.emulators.stripe.fixture import load_fixture, state_from_fixture
from procon.emulators.stripe.state import StripeState

__all__ = [
    "EMULATOR",
    "FixtureError",
    "StripeEmulator",
    "StripeState",
    "create_app",
    "load_fixture",
    "state_from_fixture",
]
