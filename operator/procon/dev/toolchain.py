"""Build the local control plane's binaries from Go modules, once, and cache them.

Why build rather than download: the machines procon is developed and tested
on reach package registries only (the Go module proxy among them), never a
release download site, and there is no container engine for kind. So etcd,
kube-apiserver, kube-controller-manager, kubectl and helm are compiled from
their official modules by ``hack/controlplane``.

The cache lives outside the repository (``$PROCON_CACHE_DIR``, default
``~/.cache/procon``) under a key made of the Kubernetes version and a hash of
everything that affects the binaries, so a checkout that changes nothing
never rebuilds, and two checkouts on different versions never collide.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HELM_VERSION = "v3.21.4"

# The binaries the control plane needs, all in one bin directory.
CONTROL_PLANE_BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
    "procon-controlplane",
)


class ToolchainError(RuntimeError):
    """A binary could not be built; the message says which and where the log is."""


@dataclass(frozen=True)
class Toolchain:
    """Where the built binaries are."""

    bin_dir: Path
    kubernetes_version: str

    def path(self, name: str) -> Path:
        return self.bin_dir / name


def source_dir() -> Path:
    """``hack/controlplane`` of the checkout this package runs from.

    ``PROCON_SOURCE_DIR`` overrides it (the root of a procon checkout); the dev
    tooling needs a source checkout, not an installed wheel.
    """
    candidates = []
    if env := os.environ.get("PROCON_SOURCE_DIR"):
        candidates.append(Path(env))
    candidates.extend(Path(__file__).resolve().parents)
    for root in candidates:
        hack = root / "hack" / "controlplane"
        if (hack / "go.mod").is_file():
            return hack
    raise ToolchainError(
        "hack/controlplane not found: `procon dev` needs a procon source checkout "
        "(or PROCON_SOURCE_DIR pointing at one)"
    )


def cache_root() -> Path:
    if env := os.environ.get("PROCON_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "procon"


def go() -> str:
    """The Go toolchain's path (every build here is a Go build)."""
    found = shutil.which("go")
    if not found:
        raise ToolchainError("the Go toolchain (`go`) is not on PATH; it builds the local control plane")
    return found


def build_key(
    src: Path,
    extra: str = "",
    names: Sequence[str] = ("go.mod", "go.sum", "main.go", "etcd/main.go", "K8S_VERSION"),
) -> str:
    """A hash of everything that decides what a build in ``src`` produces: its files and Go's version."""
    digest = hashlib.sha256(extra.encode())
    for name in names:
        digest.update(name.encode())
        digest.update((src / name).read_bytes())
    go_version = subprocess.run([go(), "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout
    digest.update(go_version.encode())
    return digest.hexdigest()[:12]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise builds of one cache entry across processes (parallel test runs, a person and CI)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_logged(cmd: list[str], *, cwd: Path, log: Path, env: dict[str, str] | None = None) -> None:
    """Run ``cmd`` with its output appended to ``log``; a failure names the log, not the output."""
    with log.open("ab") as out:
        out.write(f"$ {' '.join(cmd)}\n".encode())
        out.flush()
        result = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if result.returncode != 0:
        raise ToolchainError(f"`{' '.join(cmd[:3])} ...` failed (exit {result.returncode}); see {log}")


def ensure_toolchain(*, verbose: bool = True) -> Toolchain:
    """Return the built toolchain, building what is missing first.

    A cold build takes several minutes on two cores (kube-apiserver dominates);
    a warm one is a few file checks.
    """
    src = source_dir()
    k8s_version = (src / "K8S_VERSION").read_text().strip()
    key = build_key(src, HELM_VERSION)
    entry = cache_root() / "controlplane" / f"{k8s_version}-{key}"
    bin_dir = entry / "bin"
    toolchain = Toolchain(bin_dir=bin_dir, kubernetes_version=k8s_version)
    wanted = (*CONTROL_PLANE_BINARIES, "helm")
    if all(toolchain.path(b).exists() for b in wanted):
        return toolchain

    with _locked(entry.with_suffix(".lock")):
        if all(toolchain.path(b).exists() for b in wanted):
            return toolchain
        entry.mkdir(parents=True, exist_ok=True)
        log = entry / "build.log"
        staging = Path(tempfile.mkdtemp(prefix="bin-", dir=entry))
        started = time.monotonic()

        def say(message: str) -> None:
            if verbose:
                print(f"procon: {message}", file=sys.stderr, flush=True)

        minor = k8s_version.split(".")[1]
        ldflags = " ".join(
            [
                "-s -w",
                # Without these the binaries report v0.0.0, and clients that
                # check the server version (helm's kubeVersion) misbehave.
                f"-X k8s.io/component-base/version.gitVersion={k8s_version}",
                "-X k8s.io/component-base/version.gitMajor=1",
                f"-X k8s.io/component-base/version.gitMinor={minor}",
                "-X k8s.io/component-base/version.gitTreeState=clean",
                f"-X k8s.io/client-go/pkg/version.gitVersion={k8s_version}",
            ]
        )
        say(f"building Kubernetes {k8s_version} control plane from Go modules (first time only; log: {log})")
        run_logged(
            [
                go(),
                "build",
                "-trimpath",
                "-ldflags",
                ldflags,
                "-o",
                str(staging) + "/",
                "k8s.io/kubernetes/cmd/kube-apiserver",
                "k8s.io/kubernetes/cmd/kube-controller-manager",
                "k8s.io/kubernetes/cmd/kubectl",
                "./etcd",
                ".",
            ],
            cwd=src,
            log=log,
        )
        (staging / "controlplane").rename(staging / "procon-controlplane")
        say(f"building helm {HELM_VERSION}")
        env = {**os.environ, "GOBIN": str(staging), "GOFLAGS": "-trimpath"}
        run_logged([go(), "install", f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"], cwd=src, log=log, env=env)
        for name in wanted:
            if not (staging / name).exists():
                raise ToolchainError(f"{name} missing after build; see {log}")
        if bin_dir.exists():
            shutil.rmtree(bin_dir)
        staging.rename(bin_dir)
        say(f"built in {time.monotonic() - started:.0f}s into {bin_dir}")
    return toolchain


def hack_module(name: str) -> Path:
    """``hack/<name>``, next to ``hack/controlplane`` in the same checkout."""
    src = source_dir().parent / name
    if not (src / "go.mod").is_file():
        raise ToolchainError(f"{src} not found: building {name} needs a procon source checkout")
    return src


def build_once(
    entry: Path, outputs: Sequence[Path], what: str, build: Callable[[Path], None], *, verbose: bool
) -> None:
    """Run ``build(log)`` in cache entry ``entry`` unless every output is there already.

    Under the entry's lock, so parallel test runs build once; outputs are
    renamed into place by ``build`` only when complete, so a build killed
    halfway is simply run again.
    """
    if all(path.exists() for path in outputs):
        return
    with _locked(entry.with_suffix(".lock")):
        if all(path.exists() for path in outputs):
            return
        entry.mkdir(parents=True, exist_ok=True)
        log = entry / "build.log"
        if verbose:
            print(f"procon: {what} (log: {log})", file=sys.stderr, flush=True)
        build(log)


def module_version(src: Path, module: str) -> str:
    """The version of ``module`` that ``src/go.mod`` requires (for cache keys and reports)."""
    for line in (src / "go.mod").read_text().splitlines():
        words = line.split()
        if module in words:
            return words[words.index(module) + 1]
    raise ToolchainError(f"{src / 'go.mod'} does not require {module}")


def go_module_dir(src: Path, module: str) -> Path:
    """Where Go's module cache holds ``module`` at the version ``src/go.mod`` requires (for its files)."""
    found = subprocess.run(
        [go(), "list", "-m", "-f", "{{.Dir}}", module], cwd=src, capture_output=True, text=True, check=True
    ).stdout.strip()
    return Path(found)


def ensure_kstatus(*, verbose: bool = True) -> Path:
    """Return the path of ``hack/kstatus`` built, building it first if needed.

    It is kstatus itself (``sigs.k8s.io/cli-utils``' ``status.Compute``, the
    rules Flux's health checks apply), compiled from the Go module like the
    control plane and cached the same way, so tests judge connections by the
    real implementation rather than a re-statement of its rules.
    """
    src = hack_module("kstatus")
    version = module_version(src, "sigs.k8s.io/cli-utils")
    entry = cache_root() / "kstatus" / f"{version}-{build_key(src, names=('go.mod', 'go.sum', 'main.go'))}"
    binary = entry / "kstatus"

    def build(log: Path) -> None:
        staging = entry / "kstatus.partial"
        run_logged([go(), "build", "-trimpath", "-o", str(staging), "."], cwd=src, log=log)
        staging.rename(binary)

    build_once(entry, [binary], "building kstatus from sigs.k8s.io/cli-utils", build, verbose=verbose)
    return binary


MONITORING_CRDS = ("monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml")


def ensure_monitoring_crds(*, verbose: bool = True) -> list[Path]:
    """Return the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs, generating them first
    if needed.

    The chart's ServiceMonitor and PrometheusRule must pass a real API server's validation, so the
    tests install the real schemas: controller-gen (``sigs.k8s.io/controller-tools``) run over the
    Prometheus Operator's Go API module, both pinned in ``hack/monitoring-crds/go.mod``, built and
    cached like the control plane.
    """
    src = hack_module("monitoring-crds")
    entry = cache_root() / "monitoring-crds" / build_key(src, names=("go.mod", "go.sum", "tools.go"))
    crds = [entry / "crds" / name for name in MONITORING_CRDS]

    def build(log: Path) -> None:
        controller_gen = entry / "controller-gen"
        run_logged(
            [
                go(),
                "build",
                "-trimpath",
                "-o",
                str(controller_gen),
                "sigs.k8s.io/controller-tools/cmd/controller-gen",
            ],
            cwd=src,
            log=log,
        )
        staging = Path(tempfile.mkdtemp(prefix="crds-", dir=entry))
        run_logged(
            [
                str(controller_gen),
                "crd:crdVersions=v1,maxDescLen=0",
                "paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1",
                f"output:crd:dir={staging}",
            ],
            cwd=src,
            log=log,
        )
        for name in MONITORING_CRDS:
            if not (staging / name).exists():
                raise ToolchainError(f"controller-gen wrote no {name}; see {log}")
        if (entry / "crds").exists():
            shutil.rmtree(entry / "crds")
        staging.rename(entry / "crds")

    what = "generating the Prometheus Operator CRDs with controller-gen"
    build_once(entry, crds, what, build, verbose=verbose)
    return crds


@dataclass(frozen=True)
class PromQL:
    """Prometheus' own rule parser and PromQL engine, as procon's tests use them."""

    check: Path  # `check FILE...`: every expr and for of the PrometheusRule objects parses
    script: Path  # a test binary: PROCON_PROMQL_SCRIPT=FILE runs that promqltest script


def ensure_promql(*, verbose: bool = True) -> PromQL:
    """Return ``hack/promql`` built (the checker and the promqltest runner), building it first if needed.

    The chart's alerts are checked by Prometheus' code (``github.com/prometheus/prometheus``,
    pinned in ``hack/promql/go.mod``): their expressions parse, and they select what they claim
    to on sample series. Built and cached like the control plane.
    """
    src = hack_module("promql")
    names = ("go.mod", "go.sum", "main.go", "script_test.go")
    entry = cache_root() / "promql" / build_key(src, names=names)
    tools = PromQL(check=entry / "promql", script=entry / "promql.test")

    def build(log: Path) -> None:
        run_logged([go(), "build", "-trimpath", "-o", f"{tools.check}.partial", "."], cwd=src, log=log)
        run_logged([go(), "test", "-c", "-trimpath", "-o", f"{tools.script}.partial", "."], cwd=src, log=log)
        Path(f"{tools.check}.partial").rename(tools.check)
        Path(f"{tools.script}.partial").rename(tools.script)

    build_once(
        entry,
        [tools.check, tools.script],
        "building the PromQL checker from Prometheus",
        build,
        verbose=verbose,
    )
    return tools
