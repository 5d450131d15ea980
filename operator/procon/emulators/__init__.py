"""Local, stateful stand-ins for the payment-processor APIs procon talks to.

The operator cannot be tested against real Stripe or Checkout.com accounts in CI,
and stateless mocks cannot tell whether a reconcile loop converges. The emulators
keep state (accounts, keys, webhook endpoints), answer with the processors'
documented status codes, bodies and headers, and let tests inject faults, so the
operator cannot tell an emulator from the real API except by its address.

- ``procon.emulators.server``: runs an aiohttp application in a background thread;
- ``procon.emulators.faults``: fault injection and request counting shared by all emulators;
- ``procon.emulators.stripe``: the Stripe emulator;
- ``procon.emulators.cli``: ``procon emulate ...``.
"""
