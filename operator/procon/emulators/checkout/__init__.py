"""A stateful emulator of the parts of Checkout.com's API that procon uses.

It follows the Checkout.com facts in ``docs/processors/checkout.md``: OAuth client credentials and secret
keys with scopes, account-specific hosts, the Workflows API with its
validation and status codes, event types, scope probes, error bodies and the
``Cko-Request-Id``/``Cko-Version`` headers. Every behaviour not backed by a
confirmed fact is marked ``ASSUMPTION`` in the code; the unconfirmed ones a
client could trip over are fixture settings.

How to address it
-----------------

One server (``http://127.0.0.1:PORT``) is every Checkout.com host: the API,
the OAuth token endpoint (``POST /connect/token``), the balances host, and
each account's prefixed hosts. Which account a host names is read from the
``Host`` header:

- unprefixed (classic) API and token host: use ``http://127.0.0.1:PORT``
  as both ``PROCON_CHECKOUT_API_BASE`` and ``PROCON_CHECKOUT_AUTH_BASE``;
  nothing else is needed. Any host name whose first label is ``api``,
  ``access``, ``balances``, ``files``, ``transfers``, ``forward``,
  ``sandbox``, ``www`` or ``localhost``, and any IP literal, is unprefixed too.
- prefixed (account-specific) hosts: send the request to
  ``127.0.0.1:PORT`` with ``Host: {prefix}.api.checkout.test`` (the token host
  likewise: ``Host: {prefix}.access.checkout.test``); only the first label
  counts, the rest of the name is free. The easy way with httpx is to
  configure ``PROCON_CHECKOUT_API_BASE=http://api.checkout.test:PORT`` and
  ``PROCON_CHECKOUT_AUTH_BASE=http://access.checkout.test:PORT``, let the
  operator derive ``http://{prefix}.api.checkout.test:PORT`` as it does for
  the real hosts, and give its ``httpx.AsyncClient`` the transport
  ``CheckoutEmulator.transport()`` (``procon.emulators.transport.EmulatorTransport(base_url)``),
  which connects every request to the emulator while httpx keeps the URL's
  host in the ``Host`` header. (``*.checkout.test`` never resolves in DNS.)

The balances API, a separate host at Checkout.com (``balances.checkout.com``,
never prefixed), is served on the same server at ``/balances/{entity_id}``, but
only to a ``Host`` whose first label is ``balances`` (``balances.checkout.test``
or ``balances.sandbox.checkout.com`` through the transport); any other host
answers it with a 404, as for an unknown path.

Sandbox and production are told apart by the credential's account, and also by
the host where its name says: a ``sandbox`` label is a sandbox host, a
``checkout.com`` name without one a production host, and a credential of the
other environment is refused there (a 401, or ``invalid_client`` at the token
endpoint). To exercise that, use Checkout.com's real host names with the
transport; the emulator's own names (``*.checkout.test``, the IP address) serve
both environments.

Modules
-------

- ``emulator.EMULATOR``: how the shared machinery (``procon.emulators``: server,
  control API, fixture loading, fault injection, ``procon emulate checkout``) builds this one;
- ``emulator.CheckoutEmulator``: state + faults + server, the object tests use;
- ``app.create_app``: the aiohttp application over a ``CheckoutState``;
- ``fixture``: the YAML/dict format the state starts from;
- ``control``: its own ``/_emulator/`` routes (settings, keys, tokens, workflows, events);
- ``transport`` (shared, ``procon.emulators.transport``): httpx transports that map any host to the emulator;
- pure parts: ``hosts``, ``scopes``, ``auth``, ``tokens``, ``workflows``,
  ``catalog``, ``probes``, ``delivery``, ``events``, ``manage``, ``errors``.
"""

from procon.emulators.checkout.app import create_app
from procon.emulators.checkout.emulator import EMULATOR, CheckoutEmulator
from procon.emulators.checkout.fixture import load_fixture, state_from_fixture
from procon.emulators.checkout.state import CheckoutSettings, CheckoutState
from procon.emulators.fixtures import FixtureError
from procon.emulators.transport import EmulatorSyncTransport, EmulatorTransport

__all__ = [
    "EMULATOR",
    "CheckoutEmulator",
    "CheckoutSettings",
    "CheckoutState",
    "EmulatorSyncTransport",
    "EmulatorTransport",
    "FixtureError",
    "create_app",
    "load_fixture",
    "state_from_fixture",
]
