"""procon: payment-processor connections declared in Git, reconciled by a Kubernetes operator.

The tree, from the inside out:

- ``procon.api``: the ProcessorConnection types and the CRD generated from them;
- ``procon.dev``: the local control plane and demo used by people and tests;
- ``procon.cli``: the ``procon`` command.
"""

__version__ = "0.1.0"
