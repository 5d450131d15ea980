"""What the operator's process loads: the synchronous Kubernetes client is not among it.

kopf imports ``kubernetes`` whenever it is installed (it is, for the crash harness, in the
development environment), and that import alone costs the operator about 35 MiB. ``procon run``
marks it absent first; kopf then logs in through kubernetes_asyncio (every integration test
runs the operator that way).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_operators_process_never_imports_the_sync_client() -> None:
    out = _run(
        """
        import sys
        from procon.cli import _without_the_sync_kubernetes_client
        _without_the_sync_kubernetes_client()
        import kopf
        import procon.k8s.handlers
        from kopf._core.intents import piggybacking
        loaded = sorted(m for m in sys.modules if m == "kubernetes" or m.startswith("kubernetes."))
        print(loaded, piggybacking.has_sync_client(), piggybacking.has_async_client())
        """
    )
    assert out == "['kubernetes'] False True"  # only the marker, no module of the package


def test_without_the_marker_kopf_would_load_it() -> None:
    """The premise: in this environment kopf does import the synchronous client on its own."""
    out = _run(
        """
        import sys
        import kopf
        print(type(sys.modules.get("kubernetes")).__name__)
        """
    )
    assert out == "module"


def test_a_process_that_imported_the_client_already_keeps_it() -> None:
    """The crash harness imports the client before procon: the marker never replaces a module."""
    out = _run(
        """
        import sys
        import kubernetes
        from procon.cli import _without_the_sync_kubernetes_client
        _without_the_sync_kubernetes_client()
        print(sys.modules["kubernetes"] is kubernetes)
        """
    )
    assert out == "True"
