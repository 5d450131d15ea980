"""stripe-mock, Stripe's official mock of its API, built from its Go module for the contract tests.

stripe-mock (pinned in ``hack/stripe-mock/go.mod``) checks each request against the OpenAPI
spec it embeds, so the Stripe driver is held to Stripe's own schema and not only to procon's
emulator (docs/processors/stripe.md). Built and cached by the generic Go-tool machinery of
:mod:`procon.dev.toolchain`, like the control plane.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from procon.dev.toolchain import (
    ToolchainError,
    build_key,
    build_once,
    cache_root,
    go,
    go_module_dir,
    hack_module,
    module_version,
    run_logged,
)

STRIPE_MOCK_MODULE = "github.com/stripe/stripe-mock"


@dataclass(frozen=True)
class StripeMock:
    """Stripe's official mock of its API, and the OpenAPI spec it validates requests against."""

    binary: Path
    spec: Path  # spec3.json, as embedded in the binary
    version: str  # the stripe-mock module version, e.g. v0.203.0


def ensure_stripe_mock(*, verbose: bool = True) -> StripeMock:
    """Return ``hack/stripe-mock`` built (stripe-mock and a copy of its spec), building it first if needed.

    The spec is copied next to the binary from the module, so tests can compare the emulator's
    value lists with the very spec the binary serves, even after the Go module cache is cleaned.
    """
    src = hack_module("stripe-mock")
    version = module_version(src, STRIPE_MOCK_MODULE)
    entry = (
        cache_root() / "stripe-mock" / f"{version}-{build_key(src, names=('go.mod', 'go.sum', 'tools.go'))}"
    )
    tool = StripeMock(binary=entry / "stripe-mock", spec=entry / "spec3.json", version=version)

    def build(log: Path) -> None:
        ldflags = f"-s -w -X main.version={version}"
        partial = entry / "stripe-mock.partial"
        run_logged(
            [go(), "build", "-trimpath", "-ldflags", ldflags, "-o", str(partial), STRIPE_MOCK_MODULE],
            cwd=src,
            log=log,
        )
        spec = go_module_dir(src, STRIPE_MOCK_MODULE) / "embedded" / "openapi" / "spec3.json"
        if not spec.is_file():
            raise ToolchainError(f"{STRIPE_MOCK_MODULE} {version} has no {spec.name}; see {log}")
        shutil.copyfile(spec, entry / "spec3.json.partial")
        (entry / "spec3.json.partial").rename(tool.spec)
        partial.rename(tool.binary)

    build_once(
        entry,
        [tool.binary, tool.spec],
        f"building stripe-mock {version} from {STRIPE_MOCK_MODULE}",
        build,
        verbose=verbose,
    )
    return tool
