"""Local, stateful stand-ins for the payment-processor APIs procon talks to.

The operator cannot be tested against real processor accounts in CI, and
stateless mocks cannot tell whether a reconcile loop converges. The emulators
keep state (accounts, keys, webhooks), answer with the processors' documented
status codes, bodies and headers, and let tests inject faults, so the operator
cannot tell an emulator from the real API except by its address.

The machinery every emulator shares lives here, once:

- ``base``: ``EmulatorKind`` (the ``EMULATOR`` descriptor each emulator package
  exposes) and ``Emulator`` (state + faults + server, the object tests use);
- ``discovery``: finds the emulator packages, so adding one needs no edit outside it;
- ``app``: the application's middleware shape (answer headers, faults, the processor's API);
- ``control``: the ``/_emulator/`` control API every emulator has (state, reset, faults, requests);
- ``fixtures``: reading fixtures (YAML or a mapping) and the checks every fixture shape needs;
- ``faults``: fault injection and request counting;
- ``server``: runs an aiohttp application in a background thread, or until Ctrl-C;
- ``cli``: ``procon emulate <name>``.

Each ``procon.emulators.<name>`` package holds only its processor's API and state.
"""
