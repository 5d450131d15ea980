"""A stateful emulator of the parts of Adyen's Management API v3 that procon uses.

It follows docs/processors/adyen.md: API keys in ``X-API-Key`` of company- or
merchant-level API credentials with roles, ``GET /me``, company- and
merchant-level webhook configurations (list with pages, create, get, update,
delete, ``generateHmac``, ``test``), HMAC keys and their check values, test and
live environments, and Adyen's error bodies. Every behaviour not backed by a
documented fact is marked ``ASSUMPTION`` in the code; the unconfirmed ones a
client could trip over are fixture settings.

How to address it
-----------------

``http://127.0.0.1:PORT/v3`` is the Management API of both environments: each
key is served in its own (test or live). To hold keys to one environment, as
Adyen's separate hosts do, use a base URL per environment; there a key of the
other environment gets a 401:

- ``http://127.0.0.1:PORT/test/v3`` and ``http://127.0.0.1:PORT/live/v3``
  (``AdyenEmulator.api_base_for``): no proxy or name resolution needed;
- or hosts named like Adyen's, ``http://management-live.adyen.test:PORT/v3``
  (``url_for``), with the emulator as HTTP proxy or through ``transport()``.

Request counts are keyed by route template, which includes the prefix when one
is used (``/{environment}/{version}/me``).

Modules
-------

- ``emulator.EMULATOR``: how the shared machinery (``procon.emulators``: server,
  control API, fixture loading, fault injection, ``procon emulate adyen``) builds this one;
- ``emulator.AdyenEmulator``: state + faults + server, the object tests use;
- ``app.create_app``: the aiohttp application over an ``AdyenState``;
- ``fixture``: the YAML/dict format the state starts from;
- ``control``: its own ``/_emulator/`` routes; ``manage``: out-of-band changes;
- pure parts: ``roles``, ``webhooks``, ``notifications``, ``errors``, ``state``.
"""

from procon.emulators.adyen.app import create_app
from procon.emulators.adyen.emulator import EMULATOR, AdyenEmulator
from procon.emulators.adyen.fixture import load_fixture, state_from_fixture
from procon.emulators.adyen.state import AdyenSettings, AdyenState
from procon.emulators.fixtures import FixtureError

__all__ = [
    "EMULATOR",
    "AdyenEmulator",
    "AdyenSettings",
    "AdyenState",
    "FixtureError",
    "create_app",
    "load_fixture",
    "state_from_fixture",
]
