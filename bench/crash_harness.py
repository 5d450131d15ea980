"""Kill the operator at random points of its work, restart it, and count what breaks.

Runs the real pieces: the local control plane, the Stripe, Checkout.com and Adyen
emulators (in this process, with processor-like latency: tens to hundreds of
milliseconds a call, so a reconcile lasts long enough for a kill to land inside
it), and the operator as a process of its own. Each round:

1. applies one random action to a small pool of connections: create, URL
   change, events change, signing-secret rotation, deletion (under the
   connection's ``deletionPolicy``, Delete or Orphan);
2. optionally injects faults for that round (5xx answers, a committed create
   whose answer fails);
3. waits for the operator's first processor write (a create, update or delete) and
   SIGKILLs the operator's process group a random delay later, weighted toward
   the first few hundred milliseconds (a share of kills aims inside the write
   itself); sometimes kills it again while it recovers;
4. right after each kill, checks that every published pair is intact (the
   Secret names a webhook the processor still has, signing with the published
   secret): a crash leaves the old pair or the new one, never a gap;
5. restarts it, waits until everything has settled (conditions watched, no
   fixed sleeps), and checks both sides:

   - every live connection has exactly one owned webhook, matching its spec
     (URL, events, enabled), whose secret is the published one (the signing
     Secret's value and ``endpointId``; Stripe's stored endpoint secret, the
     Checkout.com workflow action's key) and which its status names;
   - no webhook is left behind by a connection deleted under ``Delete``;
   - a connection deleted under ``Orphan`` leaves its webhook, exactly once;
   - no owned webhook lacks a live owner.

   A violation counts only if it is still there at a second settled look, so
   a check that raced a reconcile pass is not mistaken for a fault.

At the end it scans the operator's log for every key, token and signing secret
the run saw. It prints rounds, kills, kills that landed during a processor
write, and each violation with the round that found it.

Each operator is a fresh process running ``procon.cli.main(["run", ...])``, the
code ``procon run`` runs. To keep rounds fast, a fork server imports the operator
once (Python and kopf take seconds to import on a busy machine) and forks each
operator from it; ``--cold-start`` starts each one with ``python -m procon.cli run``.
A round takes a few seconds; ``--settle-every N`` checks every N rounds instead,
so the next action lands on an operator still recovering from the last kill.

Usage: python bench/crash_harness.py [--seed N] [--rounds N] [--processor stripe|checkout|adyen|both|all]
                                     [--state-dir DIR] [--fault-share F] [--rekill-share F]
                                     [--settle-every N] [--cold-start] [-v]
Exits 1 when it found a violation.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, get_args

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from bench._harness import Emulators, bench_cluster, operator_environment  # noqa: E402
from kubernetes import client as k8s  # noqa: E402
from kubernetes import config as k8s_config  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402
from tests.integration.conftest import Kubectl  # noqa: E402
from tests.integration.operator_harness import (  # noqa: E402
    ANALYTICS_PERMISSIONS,
    CheckoutClient,
    StripeAccount,
    checkout_connection,
    checkout_secret,
    connection,
    key_secret,
    metrics_reader_token,
    scrape_metrics,
)

from procon.api.v1alpha1 import GROUP, PLURAL, VERSION  # noqa: E402
from procon.dev import cluster as control_plane  # noqa: E402
from procon.dev.processes import free_port  # noqa: E402
from procon.emulators.adyen import AdyenEmulator  # noqa: E402
from procon.emulators.checkout import CheckoutEmulator  # noqa: E402
from procon.emulators.faults import CommitFailureMode, FaultPlan, RequestRecord  # noqa: E402
from procon.emulators.stripe import StripeEmulator  # noqa: E402
from procon.processors.adyen.webhook import owner_of  # noqa: E402
from procon.processors.checkout.workflows import observed_webhook  # noqa: E402
from procon.reconcile.ownership import CLUSTER, MANAGED_BY, MANAGED_BY_VALUE, NAMESPACE, UID  # noqa: E402

ROTATE = "procon.dev/rotate-signing-secret"
SIGNING_KEY = "signingSecret"
ENDPOINT_ID_KEY = "endpointId"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_PATH = "/connect/token"  # Checkout.com's OAuth token: a POST that changes nothing at the processor


def is_write(method: str, path: str) -> bool:
    """A processor call that changes the account's webhooks."""
    return method not in READ_METHODS and not path.endswith(TOKEN_PATH)


LOG_OVERLAP = 512  # bytes of the log scanned twice, so a secret across two scans is found
# A fork server: imports the operator once, then forks a fresh process running
# `procon.cli.main(["run", ...])` for each line "run PORT" on stdin (PORT: its metrics port),
# and answers its pid.
# Each child is a session (and process group) of its own, its output appended to the log.
FORK_SERVER = """
import os, signal, sys
import kopf, procon.cli, procon.k8s.handlers
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
log_path, args = sys.argv[1], sys.argv[2:]
while (line := sys.stdin.readline()):
    command, _, port = line.strip().partition(" ")
    if command != "run":
        continue
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        os.environ["PROCON_METRICS_PORT"] = port
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        try:
            code = procon.cli.main(args)
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    print(pid, flush=True)
"""


@dataclass(frozen=True)
class HarnessSettings:
    """What a run does; the defaults are what the bench and the suite use."""

    seed: int = 1
    rounds: int = 20
    processors: tuple[str, ...] = ("stripe", "checkout")
    pool_min: int = 2
    pool_max: int = 3
    latency: float = 0.03  # every processor call waits this much,
    latency_jitter: float = 0.12  # plus a uniform draw up to this
    fault_share: float = 0.3  # rounds with faults injected until the kill
    rekill_share: float = 0.25  # rounds whose recovery is killed too
    write_wait: float = 3.0  # how long to wait for the round's first processor write
    settle_every: int = 1  # settle and check after every this many rounds
    settle_timeout: float = 45.0
    quiet: float = 0.3  # no processor call for this long, and conditions hold: settled
    drift_interval: float = 600.0  # long: anything healed only by a drift check is found first
    cold_start: bool = False
    verbose: bool = False


@dataclass(frozen=True)
class Violation:
    """An invariant that did not hold; ``key`` names it, so one found again later counts once."""

    round: int  # the settled check that found it
    processor: str
    invariant: str
    subject: str
    detail: str
    since: int = 0  # the first round since the check before it

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.processor, self.invariant, self.subject)

    def __str__(self) -> str:
        return f"round {self.round} [{self.processor}] {self.invariant}: {self.subject}: {self.detail}"


@dataclass
class Kill:
    """One SIGKILL, and what the processor was serving at that moment."""

    round: int
    at: float  # time.monotonic() of the kill
    after_action: float  # seconds from the action to the kill
    after_write: float | None  # seconds from the first processor write to the kill
    during_write: bool = False
    during_call: bool = False
    writes: tuple[str, ...] = ()  # the writes being served at the kill


@dataclass
class RoundLog:
    """What one round did, for the report of a violation it led to."""

    number: int
    processor: str
    action: str
    target: str
    faults: str
    acted: float = 0.0  # time.monotonic() of the action
    kills: list[Kill] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        kills = "; ".join(
            f"kill {k.after_action:.3f}s after the action"
            + (f", {k.after_write:.3f}s after the first write" if k.after_write is not None else ", no write")
            + (f", during {', '.join(k.writes)}" if k.writes else "")
            for k in self.kills
        )
        return f"{self.action} {self.target} ({self.processor}, faults: {self.faults}): {kills}"


@dataclass
class Report:
    """The figures of a run, and every violation with the rounds before it."""

    rounds: int = 0
    kills: int = 0
    kills_during_write: int = 0
    kills_during_call: int = 0
    kills_by_processor: Counter[str] = field(default_factory=Counter)
    writes_hit_by_processor: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    history: list[RoundLog] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [
            f"rounds: {self.rounds}, kills: {self.kills}, kills during a processor write: "
            f"{self.kills_during_write}, during any processor call: {self.kills_during_call}, "
            f"violations: {len(self.violations)}, {self.seconds:.0f}s",
            "  kills by processor: "
            + ", ".join(
                f"{p} {n} ({self.writes_hit_by_processor[p]} during a write)"
                for p, n in sorted(self.kills_by_processor.items())
            ),
            "  actions: " + ", ".join(f"{a} {n}" for a, n in sorted(self.actions.items())),
        ]
        for violation in self.violations:
            lines.append(f"  VIOLATION {violation}")
            for number in range(max(violation.since, 1), violation.round + 1):
                if number <= len(self.history):
                    lines.append(f"    round {number}: {self.history[number - 1].describe()}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Owned:
    """An owned webhook at the processor, as the emulator holds it."""

    id: str
    uid: str
    url: str
    events: frozenset[str]
    enabled: bool
    secret: str | None


@dataclass
class Tracked:
    """A connection the harness made, and what it expects of it."""

    name: str
    processor: str
    policy: str
    url: str
    events: tuple[str, ...]
    uid: str = ""
    rotation: str | None = None
    versions: int = 0


class Side(Protocol):
    """One processor: its emulator, how to make connections for it, and what it holds."""

    @property
    def name(self) -> str: ...

    @property
    def emulator(self) -> Any: ...

    @property
    def events(self) -> tuple[str, ...]: ...

    def manifests(self, tracked: Tracked) -> list[dict[str, Any]]: ...

    def owned(self) -> list[Owned]: ...

    def remove(self, webhook_id: str) -> None: ...

    def secrets(self) -> set[str]: ...


def _owned_by(metadata: dict[str, str], cluster: str, namespace: str) -> bool:
    """Tagged by this run's operator for a connection in this run's namespace."""
    return (
        metadata.get(MANAGED_BY) == MANAGED_BY_VALUE
        and metadata.get(CLUSTER) == cluster
        and metadata.get(NAMESPACE) == namespace
    )


class StripeSide:
    """One Stripe account and one restricted key for every connection; secrets read from the emulator."""

    name = "stripe"
    events: tuple[str, ...] = (
        "charge.succeeded",
        "charge.failed",
        "charge.refunded",
        "payout.paid",
        "invoice.paid",
    )

    def __init__(self, emulator: StripeEmulator, cluster: str, namespace: str) -> None:
        self.emulator = emulator
        self._cluster, self._namespace = cluster, namespace
        self.account = StripeAccount(emulator)
        self._key = self.account.key(ANALYTICS_PERMISSIONS)

    def manifests(self, tracked: Tracked) -> list[dict[str, Any]]:
        body = connection(tracked.name, url=tracked.url, events=tracked.events, deletionPolicy=tracked.policy)
        return [key_secret(tracked.name, self._key), body]

    def owned(self) -> list[Owned]:
        found = []
        for endpoint in self.emulator.endpoints(self.account.id):
            metadata = endpoint.get("metadata") or {}
            if not _owned_by(metadata, self._cluster, self._namespace):
                continue
            try:
                secret: str | None = self.emulator.endpoint_secret(endpoint["id"])
            except KeyError:  # deleted since listed
                continue
            found.append(
                Owned(
                    id=endpoint["id"],
                    uid=metadata.get(UID, ""),
                    url=endpoint["url"],
                    events=frozenset(endpoint["enabled_events"]),
                    enabled=endpoint["status"] == "enabled",
                    secret=secret,
                )
            )
        return found

    def remove(self, webhook_id: str) -> None:
        self.emulator.delete_endpoint(webhook_id)

    def secrets(self) -> set[str]:
        return {*self.account.keys, *self.emulator.issued_secrets()}


class CheckoutSide:
    """One Checkout.com client and OAuth access key; a workflow's secret is its webhook action's key."""

    name = "checkout"
    events: tuple[str, ...] = (
        "payment_approved",
        "payment_declined",
        "payment_captured",
        "payment_refunded",
        "dispute_received",
    )

    def __init__(self, emulator: CheckoutEmulator, cluster: str, namespace: str) -> None:
        self.emulator = emulator
        self._cluster, self._namespace = cluster, namespace
        self.client = CheckoutClient(emulator)
        self._access = self.client.access_key()
        self._seen: set[str] = {self._access[1]}

    def manifests(self, tracked: Tracked) -> list[dict[str, Any]]:
        body = checkout_connection(
            tracked.name, self.client, url=tracked.url, events=tracked.events, deletionPolicy=tracked.policy
        )
        return [checkout_secret(tracked.name, access_key=self._access), body]

    def owned(self) -> list[Owned]:
        found = []
        for workflow in self.emulator.workflows(self.client.id):
            observed = observed_webhook(workflow)
            if not _owned_by(dict(observed.metadata), self._cluster, self._namespace):
                continue
            actions = [a for a in workflow.get("actions") or [] if a.get("type") == "webhook"]
            key = ((actions[0].get("signature") or {}).get("key")) if actions else None
            if key:
                self._seen.add(key)
            found.append(
                Owned(
                    id=observed.id,
                    uid=observed.metadata.get(UID, ""),
                    url=observed.url,
                    events=frozenset(observed.events),
                    enabled=observed.enabled,
                    secret=key,
                )
            )
        return found

    def remove(self, webhook_id: str) -> None:
        self.emulator.delete_workflow(webhook_id)

    def secrets(self) -> set[str]:
        return {*self._seen, *self.emulator.issued_tokens()}


class AdyenSide:
    """The demo fixture's company account and its operator key; a webhook's secret is its HMAC key."""

    name = "adyen"
    company = "ProconDemoCompany"
    api_key = "AQEprocondemooperatortestkey00000000001"  # the fixture's company-level operator key
    events: tuple[str, ...] = ("AUTHORISATION", "CANCELLATION", "CAPTURE", "REFUND", "CHARGEBACK")

    def __init__(self, emulator: AdyenEmulator, cluster: str, namespace: str) -> None:
        self.emulator = emulator
        self._cluster, self._namespace = cluster, namespace

    def manifests(self, tracked: Tracked) -> list[dict[str, Any]]:
        body = connection(
            tracked.name,
            url=tracked.url,
            events=tracked.events,
            permissions=("management-api-webhooks-read-and-write",),
            deletionPolicy=tracked.policy,
        )
        body["spec"]["processor"] = "adyen"
        body["spec"]["adyen"] = {"companyAccount": self.company}
        return [key_secret(tracked.name, self.api_key), body]

    def owned(self) -> list[Owned]:
        found = []
        for webhook in self.emulator.webhooks(environment="test", company=self.company):
            owner = owner_of(webhook.get("description"))
            if not _owned_by(owner, self._cluster, self._namespace):
                continue
            found.append(
                Owned(
                    id=webhook["id"],
                    uid=owner.get(UID, ""),
                    url=webhook["url"],
                    events=frozenset(
                        (webhook.get("additionalSettings") or {}).get("includeEventCodes") or ()
                    ),
                    enabled=bool(webhook.get("active")),
                    secret=webhook.get("hmacKey"),
                )
            )
        return found

    def remove(self, webhook_id: str) -> None:
        self.emulator.delete_webhook(webhook_id)

    def secrets(self) -> set[str]:
        return {self.api_key, *self.emulator.hmac_keys_seen()}


class Operator:
    """``procon run`` in its own process group, restarted after each kill; the log is appended to.

    Started by a fork server that has imported the operator once (Python and kopf take
    seconds to import on a busy machine), or with ``cold_start`` as ``python -m procon.cli run``.
    """

    ARGS = ("run", "--log-level=debug")

    def __init__(self, env: dict[str, str], log_path: Path, *, cold_start: bool) -> None:
        self._env, self.log_path, self._cold = env, log_path, cold_start
        self._pid: int | None = None
        self._cold_process: subprocess.Popen[bytes] | None = None
        self._server: subprocess.Popen[str] | None = None
        self.metrics_port = 0
        self.metrics_token: str | None = None  # the operator asks the API server about every scraper
        log_path.touch()

    def _fork(self, metrics_port: int) -> int:
        if self._server is None or self._server.poll() is not None:
            self._server = subprocess.Popen(
                [sys.executable, "-c", FORK_SERVER, str(self.log_path), *self.ARGS],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=self._env,
                text=True,
                start_new_session=True,
            )
        assert self._server.stdin is not None
        assert self._server.stdout is not None
        self._server.stdin.write(f"run {metrics_port}\n")
        self._server.stdin.flush()
        answer = self._server.stdout.readline()
        if not answer.strip().isdigit():
            raise RuntimeError(f"the fork server did not start the operator; see {self.log_path}")
        return int(answer)

    def _alive(self) -> bool:
        if self._cold_process is not None:
            return self._cold_process.poll() is None
        if self._pid is None:
            return False
        try:
            os.kill(self._pid, 0)
        except ProcessLookupError:
            return False
        return True

    def start(self, timeout: float = 60.0) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.metrics_port = free_port()
        if self._cold:
            with self.log_path.open("ab") as log:
                self._cold_process = subprocess.Popen(
                    [sys.executable, "-m", "procon.cli", *self.ARGS],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**self._env, "PROCON_METRICS_PORT": str(self.metrics_port)},
                    start_new_session=True,  # a process group of its own, killed whole
                )
            self._pid = self._cold_process.pid
        else:
            self._pid = self._fork(self.metrics_port)
        deadline = time.monotonic() + timeout
        with self.log_path.open("rb") as log:
            log.seek(offset)
            seen = b""
            while b"procon started" not in seen:
                if not self._alive():
                    raise RuntimeError(f"the operator exited; see {self.log_path}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the operator did not start within {timeout:.0f}s")
                seen = seen[-64:] + log.read()
                time.sleep(0.02)

    def passes(self) -> int:
        """Reconcile passes this operator process has finished (any outcome); -1 if unknown yet."""
        try:
            text = scrape_metrics(self.metrics_port, self.metrics_token)
        except httpx.HTTPError:
            return -1
        return sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in text.splitlines()
            if line.startswith("procon_reconcile_total{")
        )

    def kill(self) -> float:
        """SIGKILL the operator's whole process group; returns when it happened (monotonic)."""
        assert self._pid is not None
        at = time.monotonic()
        self._signal(signal.SIGKILL)
        self._wait_gone(10.0)
        return at

    def _signal(self, signal_number: int) -> None:
        """Signal the operator's process group; the process alone if it has not made its group yet
        (a start that failed early)."""
        assert self._pid is not None
        try:
            os.killpg(self._pid, signal_number)
        except ProcessLookupError:
            with contextlib.suppress(ProcessLookupError):  # gone already
                os.kill(self._pid, signal_number)

    def _wait_gone(self, timeout: float) -> None:
        if self._cold_process is not None:
            self._cold_process.wait(timeout)
            return
        deadline = time.monotonic() + timeout
        while self._alive():
            if time.monotonic() > deadline:
                raise RuntimeError(f"operator process {self._pid} outlived SIGKILL")
            time.sleep(0.005)

    def stop(self) -> None:
        if self._pid is not None and self._alive():
            try:
                self._signal(signal.SIGTERM)
                self._wait_gone(20.0)
            except (RuntimeError, subprocess.TimeoutExpired):
                self._signal(signal.SIGKILL)
                self._wait_gone(10.0)
        if self._server is not None and self._server.poll() is None:
            self._server.kill()
            self._server.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Kube:
    """The harness's own view of the cluster: the Kubernetes Python client, faster than kubectl."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        api = k8s_config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        # Typed Any: the harness sends and reads plain dicts, which the client accepts.
        self.core: Any = k8s.CoreV1Api(api)
        self.custom: Any = k8s.CustomObjectsApi(api)
        self.namespace = namespace

    def create_namespace(self) -> None:
        self.core.create_namespace({"metadata": {"name": self.namespace}})

    def delete_namespace(self) -> None:
        try:
            self.core.delete_namespace(self.namespace)
        except ApiException as error:
            if error.status != 404:
                raise

    def apply(self, manifests: Iterable[dict[str, Any]]) -> dict[str, Any]:
        created: dict[str, Any] = {}
        for manifest in manifests:
            if manifest["kind"] == "Secret":
                self.core.create_namespaced_secret(self.namespace, manifest)
            else:
                created = self.custom.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, manifest
                )
        return created

    def patch(self, name: str, body: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name, body)

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def connections(self) -> dict[str, dict[str, Any]]:
        listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        return {item["metadata"]["name"]: item for item in listed["items"]}

    def secrets(self) -> dict[str, dict[str, str]]:
        found = {}
        for secret in self.core.list_namespaced_secret(self.namespace).items:
            data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (secret.data or {}).items()}
            found[secret.metadata.name] = data
        return found


def _ready_at_generation(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"].get("generation"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _conditions(obj: dict[str, Any] | None) -> str:
    if obj is None:
        return "(gone)"
    status = obj.get("status") or {}
    shown = [f"{c.get('type')}={c.get('status')}/{c.get('reason')}" for c in status.get("conditions") or []]
    return (
        f"gen {obj['metadata'].get('generation')} observed {status.get('observedGeneration')}, "
        + ", ".join(shown)
        + (f"; {c_msg}" if (c_msg := _ready_message(status)) else "")
    )


def _ready_message(status: dict[str, Any]) -> str:
    for c in status.get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") != "True":
            return str(c.get("message", ""))[:200]
    return ""


class Harness:
    """One run: a namespace, both emulators, the operator, and the rounds; ``run()`` returns the report."""

    def __init__(
        self,
        cluster: control_plane.Cluster,
        settings: HarnessSettings,
        workdir: Path,
        out: Callable[[str], None] = print,
    ) -> None:
        self.settings = settings
        self.rng = random.Random(settings.seed)  # noqa: S311 - reproducible choices, not secrets
        self.out = out
        self.namespace = f"crash-{settings.seed}-{os.getpid()}-{int(time.time()) % 100000}"
        self.cluster_name = f"crash-{settings.seed}"
        self.kube = Kube(cluster.kubeconfig, self.namespace)
        self.emulators = emulators = Emulators.from_demo_fixtures(seed=settings.seed)
        self.stripe, self.checkout, self.adyen = emulators.stripe, emulators.checkout, emulators.adyen
        emulators.start()
        self.sides: dict[str, Side] = {}
        if "stripe" in settings.processors:
            self.sides["stripe"] = StripeSide(self.stripe, self.cluster_name, self.namespace)
        if "checkout" in settings.processors:
            self.sides["checkout"] = CheckoutSide(self.checkout, self.cluster_name, self.namespace)
        if "adyen" in settings.processors:
            self.sides["adyen"] = AdyenSide(self.adyen, self.cluster_name, self.namespace)
        env = operator_environment(
            cluster,
            emulators,
            drift_interval=settings.drift_interval,
            cluster_name=self.cluster_name,
            namespaces=(self.namespace,),
        )
        self.operator = Operator(env, workdir / "crash-operator.log", cold_start=settings.cold_start)
        self.operator.metrics_token = metrics_reader_token(Kubectl(cluster))
        self.trace_path = workdir / "processor-calls.trace"
        self.live: dict[str, Tracked] = {}
        self.deleted: dict[str, Tracked] = {}  # uid -> a connection deleted under Delete
        self.orphaned: dict[str, Tracked] = {}  # uid -> deleted under Orphan, webhook still to verify
        self.released: set[str] = set()  # uids whose orphaned webhook was verified and removed
        self.gone: set[str] = set()  # names deleted, waiting to disappear
        self.published: set[str] = set()
        self.counter = 0
        self.report = Report()
        self._window: list[RoundLog] = []  # rounds since the last settled check
        self._marks: dict[int, int] = {}  # per emulator: requests already classified
        self._log_scanned = 0  # bytes of the operator log already scanned for secrets
        self._calm = FaultPlan(
            latency_seconds=settings.latency, latency_jitter_seconds=settings.latency_jitter
        )

    # --- the run --------------------------------------------------------------

    def run(self) -> Report:
        started = time.monotonic()
        self.kube.create_namespace()
        for emulator in (self.stripe, self.checkout, self.adyen):
            emulator.set_faults(self._calm)
        try:
            self.operator.start()
            for side in self.sides.values():
                for _ in range(self.settings.pool_min):
                    self._create(side)
            self._settle(0)
            for number in range(1, self.settings.rounds + 1):
                self._round(number)
            self._check_log(self.settings.rounds)
        finally:
            self.report.seconds = time.monotonic() - started
            self.operator.stop()
            self.kube.delete_namespace()
            self.emulators.stop()
        return self.report

    def _round(self, number: int) -> None:
        side = self.sides[self.rng.choice(sorted(self.sides))]
        action, target = self._choose(side)
        faults = self._inject(side) if self.rng.random() < self.settings.fault_share else "none"
        log = RoundLog(number, side.name, action, target, faults)
        self.report.history.append(log)
        self.report.rounds += 1
        if action != "delete":  # counted with its policy when carried out
            self.report.actions[action] += 1
        acted = log.acted = time.monotonic()
        done = self._act(side, action, target)
        kill_at, first_write = self._aim(side, acted, done)
        log.kills.append(self._kill(number, acted, kill_at, first_write))
        side.emulator.set_faults(self._calm)
        self._check_crash_point(number, len(log.kills))
        restarting = time.monotonic()
        self.operator.start()
        log.timings["restart"] = time.monotonic() - restarting
        if self.rng.random() < self.settings.rekill_share:
            restarted = time.monotonic()
            kill_at, first_write = self._aim(side, restarted, done)
            log.kills.append(self._kill(number, restarted, kill_at, first_write))
            self._check_crash_point(number, len(log.kills))
            self.operator.start()
        self._window.append(log)
        if number % self.settings.settle_every and number != self.settings.rounds:
            return  # the next action lands on an operator still recovering from this kill
        settling = time.monotonic()
        self._settle(number)
        log.timings["settle"] = time.monotonic() - settling
        log.timings["round"] = time.monotonic() - acted
        self._classify()
        if self.settings.verbose:
            for shown in self._window:
                times = ", ".join(f"{k} {v:.1f}s" for k, v in shown.timings.items())
                self.out(f"round {shown.number}: {shown.describe()} [{times}]")
        self._window = []

    def _choose(self, side: Side) -> tuple[str, str]:
        mine = sorted(name for name, t in self.live.items() if t.processor == side.name)
        if len(mine) < self.settings.pool_min:
            return "create", ""
        weights = {"create": 1.0 if len(mine) < self.settings.pool_max else 0.0}
        weights.update({"url": 2.0, "events": 2.0, "rotate": 2.0, "delete": 1.5})
        action = self.rng.choices(list(weights), list(weights.values()))[0]
        return action, ("" if action == "create" else self.rng.choice(mine))

    def _inject(self, side: Side) -> str:
        mode: CommitFailureMode = self.rng.choice(get_args(CommitFailureMode))
        plan = dataclasses.replace(
            self._calm,
            error_rate=0.3,
            commit_then_fail=1,
            commit_then_fail_mode=mode,
            commit_then_fail_method="POST",
            seed=self.rng.randrange(2**31),
        )
        side.emulator.set_faults(plan)
        return f"30% 5xx, one POST committed then failed ({mode})"

    def _act(self, side: Side, action: str, target: str) -> Callable[[], bool]:
        """Carry out the action; returns a probe that says whether the operator has finished it."""
        if action == "create":
            tracked = self._create(side)
            return lambda: self._finished(tracked.name)
        tracked = self.live[target]
        if action == "url":
            tracked.versions += 1
            tracked.url = self._url(side, tracked.name, tracked.versions)
            self.kube.patch(tracked.name, {"spec": {"webhook": {"url": tracked.url}}})
        elif action == "events":
            tracked.events = self._events(side, exclude=tracked.events)
            self.kube.patch(tracked.name, {"spec": {"webhook": {"events": list(tracked.events)}}})
        elif action == "rotate":
            tracked.rotation = f"r{self.counter}-{self.rng.randrange(10**6)}"
            self.counter += 1
            self.kube.patch(tracked.name, {"metadata": {"annotations": {ROTATE: tracked.rotation}}})
        else:
            del self.live[tracked.name]
            (self.orphaned if tracked.policy == "Orphan" else self.deleted)[tracked.uid] = tracked
            self.gone.add(tracked.name)
            self.report.actions[f"delete ({tracked.policy})"] += 1
            self.kube.delete(tracked.name)
        return lambda: self._finished(tracked.name)

    def _create(self, side: Side) -> Tracked:
        self.counter += 1
        name = f"{side.name[0]}{self.counter}"
        tracked = Tracked(
            name=name,
            processor=side.name,
            policy=self.rng.choice(("Delete", "Orphan")),
            url=self._url(side, name, 0),
            events=self._events(side),
        )
        created = self.kube.apply(side.manifests(tracked))
        tracked.uid = created["metadata"]["uid"]
        self.live[name] = tracked
        return tracked

    @staticmethod
    def _url(side: Side, name: str, version: int) -> str:
        return f"https://hooks.example.com/{side.name}/{name}/v{version}"

    def _events(self, side: Side, exclude: Sequence[str] = ()) -> tuple[str, ...]:
        while True:
            chosen = tuple(sorted(self.rng.sample(side.events, self.rng.randint(1, 3))))
            if chosen != tuple(sorted(exclude)):
                return chosen

    # --- kills --------------------------------------------------------------------

    def _aim(self, side: Side, since: float, done: Callable[[], bool]) -> tuple[float, float | None]:
        """When to kill: a random delay after the first processor write received since ``since``.

        A third of the kills aim inside that write (its latency is at least ``latency``); the
        rest fall in the next few hundred milliseconds, some up to a second and a half. If the
        operator finishes without a write (an Orphan deletion, say), or none comes in time,
        the kill is due at once.
        """
        deadline = since + self.settings.write_wait
        first: float | None = None
        next_check = 0.0
        while first is None and time.monotonic() < deadline:
            first = self._first_write(side, since)
            if first is None:
                now = time.monotonic()
                if now >= next_check:
                    if done():
                        break
                    next_check = now + 0.1
                time.sleep(0.003)
        bucket = self.rng.random()
        if bucket < 1 / 3:
            delay = self.rng.uniform(0.0, self.settings.latency * 0.8)
        elif bucket < 0.8:
            delay = self.rng.uniform(0.0, 0.4)
        else:
            delay = self.rng.uniform(0.4, 1.5)
        base = first if first is not None else time.monotonic()
        return base + delay, first

    @staticmethod
    def _first_write(side: Side, since: float) -> float | None:
        arrivals = [r.received for r in side.emulator.faults.in_flight if is_write(r.method, r.path)]
        arrivals += [
            r.received
            for r in side.emulator.requests[-50:]
            if is_write(r.method, r.path) and r.received >= since
        ]
        candidates = [t for t in arrivals if t >= since]
        return min(candidates) if candidates else None

    def _kill(self, number: int, since: float, at: float, first_write: float | None) -> Kill:
        wait = at - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        killed = self.operator.kill()
        self.report.kills += 1
        return Kill(
            round=number,
            at=killed,
            after_action=killed - since,
            after_write=(killed - first_write) if first_write is not None else None,
        )

    def _classify(self) -> None:
        """After settling (every request answered): which of the window's kills fell inside a call."""
        records: list[RequestRecord] = []
        for emulator in (self.stripe, self.checkout, self.adyen):
            requests = emulator.requests
            records += requests[self._marks.get(id(emulator), 0) :]
            self._marks[id(emulator)] = len(requests)
        self._trace(records)
        for log in self._window:
            for kill in log.kills:
                serving = [r for r in records if r.received <= kill.at < r.answered]
                writes = tuple(f"{r.method} {r.route}" for r in serving if is_write(r.method, r.path))
                kill.during_call = bool(serving)
                kill.during_write = bool(writes)
                kill.writes = writes
                self.report.kills_by_processor[log.processor] += 1
                if kill.during_call:
                    self.report.kills_during_call += 1
                if kill.during_write:
                    self.report.kills_during_write += 1
                    self.report.writes_hit_by_processor[log.processor] += 1

    def _trace(self, records: list[RequestRecord]) -> None:
        """Append the window's processor calls, actions and kills, in time order, to a trace file:
        what a violation's diagnosis starts from (times are time.monotonic(), the operator log's
        are wall-clock)."""
        lines = [
            (r.received, f"{r.received:.3f} {r.answered:.3f} {r.method} {r.path} {r.status} {r.fault or ''}")
            for r in records
        ]
        for log in self._window:
            lines.append(
                (
                    log.acted,
                    f"{log.acted:.3f} ROUND {log.number}: {log.action} {log.target} "
                    f"({log.processor}, faults: {log.faults})",
                )
            )
            lines += [(k.at, f"{k.at:.3f} KILL (round {log.number})") for k in log.kills]
        with self.trace_path.open("a") as trace:
            trace.writelines(line + "\n" for _, line in sorted(lines))

    # --- settling and checking ------------------------------------------------------

    def _finished(self, name: str) -> bool:
        """Whether the operator has carried out what the harness asked of ``name``."""
        try:
            obj = self.kube.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                return name in self.gone
            raise
        return name not in self.gone and self._settled_connection(obj) is None

    def _settled_connection(self, obj: dict[str, Any]) -> str | None:
        """None when the connection is Ready at its generation with its rotation done; else why not."""
        tracked = self.live[obj["metadata"]["name"]]
        if not _ready_at_generation(obj):
            return _conditions(obj)
        handled = (obj.get("status") or {}).get("signingSecretRotation")
        if tracked.rotation is not None and handled != tracked.rotation:
            return f"rotation {tracked.rotation} not carried out (status says {handled})"
        return None

    def _pending(self) -> list[tuple[str, str]]:
        """(name, why) of every connection not yet where the harness expects it."""
        connections = self.kube.connections()
        pending = []
        for name in sorted(self.live):
            obj = connections.get(name)
            why = "not found" if obj is None else self._settled_connection(obj)
            if why is not None:
                pending.append((name, why))
        for name in sorted(self.gone):
            if name in connections:
                pending.append((name, "deleted, still there: " + _conditions(connections[name])))
            else:
                self.gone.discard(name)
        return pending

    def _quiet_for(self) -> float:
        """Seconds since the last processor call was answered; 0 while one is being served."""
        now, quiet = time.monotonic(), float("inf")
        for emulator in (self.stripe, self.checkout, self.adyen):
            if emulator.faults.in_flight:
                return 0.0
            requests = emulator.requests
            if requests:
                quiet = min(quiet, now - requests[-1].answered)
        return quiet

    def _settle(self, number: int, quiet: float | None = None) -> bool:
        """Wait until every connection is where it should be and the processors have been quiet."""
        quiet = self.settings.quiet if quiet is None else quiet
        deadline = time.monotonic() + self.settings.settle_timeout
        while True:
            pending = self._pending()
            passes = self.operator.passes()
            if passes < len(self.live):
                # Every live connection's loop has run once since the restart: its first pass
                # is what finds and repairs what the kill left.
                pending.append(("operator", f"{passes} reconcile passes since the restart"))
            if not pending and self._quiet_for() >= quiet:
                break
            if time.monotonic() > deadline:
                for name, why in pending:
                    processor = self.live[name].processor if name in self.live else "-"
                    self._violation(
                        Violation(
                            number,
                            processor,
                            "settles",
                            name,
                            f"not settled after {self.settings.settle_timeout:.0f}s: {why}",
                        )
                    )
                return False
            time.sleep(0.05)
        found = self._check(number)
        if found:
            # A second settled look: only what is still wrong counts.
            time.sleep(quiet)
            if self._settle_quietly(quiet * 2):
                still = {v.key for v in self._check(number)}
                found = [v for v in found if v.key in still]
        for violation in found:
            self._violation(violation)
        self._release_orphans()
        self._check_log(number)
        return True

    def _settle_quietly(self, quiet: float) -> bool:
        deadline = time.monotonic() + self.settings.settle_timeout
        while time.monotonic() < deadline:
            if not self._pending() and self._quiet_for() >= quiet:
                return True
            time.sleep(0.05)
        return False

    def _violation(self, violation: Violation) -> None:
        if any(v.key == violation.key for v in self.report.violations):
            return  # reported once, when first found
        since = self._window[0].number if self._window else violation.round
        violation = dataclasses.replace(violation, since=since)
        self.report.violations.append(violation)
        self.out(f"VIOLATION {violation}")

    def _check(self, number: int) -> list[Violation]:
        connections = self.kube.connections()
        secrets = self.kube.secrets()
        found: list[Violation] = []
        for side in self.sides.values():

            def violation(invariant: str, subject: str, detail: str, side: Side = side) -> None:
                found.append(Violation(number, side.name, invariant, subject, detail))

            by_uid: dict[str, list[Owned]] = {}
            for webhook in side.owned():
                by_uid.setdefault(webhook.uid, []).append(webhook)
            mine = [t for t in self.live.values() if t.processor == side.name]
            for tracked in mine:
                webhooks = by_uid.get(tracked.uid, [])
                if len(webhooks) != 1:
                    ids = ", ".join(w.id for w in webhooks) or "none"
                    violation("exactly-one-owned-webhook", tracked.name, f"{len(webhooks)} ({ids})")
                    continue
                webhook = webhooks[0]
                problems = []
                if webhook.url != tracked.url:
                    problems.append(f"URL {webhook.url}, spec {tracked.url}")
                if webhook.events != frozenset(tracked.events):
                    problems.append(f"events {sorted(webhook.events)}, spec {sorted(tracked.events)}")
                if not webhook.enabled:
                    problems.append("disabled")
                if problems:
                    violation("webhook-matches-spec", tracked.name, f"{webhook.id}: " + "; ".join(problems))
                published = secrets.get(f"{tracked.name}-webhook")
                if published is None:
                    violation("secret-is-published", tracked.name, "no signing Secret")
                else:
                    if published.get(SIGNING_KEY):
                        self.published.add(published[SIGNING_KEY])
                    if published.get(ENDPOINT_ID_KEY) != webhook.id:
                        violation(
                            "published-secret-is-the-webhooks",
                            tracked.name,
                            f"the Secret names {published.get(ENDPOINT_ID_KEY)!r}, "
                            f"the webhook is {webhook.id}",
                        )
                    elif published.get(SIGNING_KEY) != webhook.secret:
                        violation(
                            "published-secret-is-the-webhooks",
                            tracked.name,
                            f"the Secret's signing secret is not webhook {webhook.id}'s",
                        )
                obj = connections.get(tracked.name) or {}
                named = ((obj.get("status") or {}).get("webhook") or {}).get("id")
                if named != webhook.id:
                    violation(
                        "status-names-the-live-webhook",
                        tracked.name,
                        f"status names {named}, the live webhook is {webhook.id}",
                    )
            live_uids = {t.uid for t in mine}
            for uid, webhooks in by_uid.items():
                ids = ", ".join(w.id for w in webhooks)
                if uid in live_uids:
                    continue
                if uid in self.orphaned:
                    if len(webhooks) != 1:
                        violation("orphan-leaves-its-webhook-once", self.orphaned[uid].name, f"{ids} remain")
                elif uid in self.deleted:
                    violation("delete-leaves-no-webhook", self.deleted[uid].name, f"{ids} left behind")
                else:
                    gone = "released orphan" if uid in self.released else "unknown"
                    violation("no-webhook-without-owner", uid or "(no uid)", f"{ids} ({gone} owner)")
            for uid, tracked in self.orphaned.items():
                if tracked.processor == side.name and uid not in by_uid:
                    violation("orphan-leaves-its-webhook-once", tracked.name, "its webhook was deleted")
        return found

    def _check_crash_point(self, number: int, kill: int) -> None:
        """Right after a kill: every published pair is intact, the old one or the new one.

        A Secret that names a webhook the processor no longer has, or one that signs with
        another secret, leaves receivers without deliveries they can verify until the
        operator is back. The exception is a Checkout.com rotation under way: a workflow's
        key changes in place, so for a moment the published key is ahead of the workflow's.
        """
        deadline = time.monotonic() + 5.0
        while (
            any(e.faults.in_flight for e in (self.stripe, self.checkout, self.adyen))
            and time.monotonic() < deadline
        ):
            time.sleep(0.005)  # what the processor received before the kill is still served
        secrets = self.kube.secrets()
        connections = self.kube.connections()
        for side in self.sides.values():
            owned = {w.id: w for w in side.owned()}
            for tracked in [t for t in self.live.values() if t.processor == side.name]:
                published = secrets.get(f"{tracked.name}-webhook") or {}
                webhook_id = published.get(ENDPOINT_ID_KEY)
                if not webhook_id:
                    continue  # nothing published yet
                webhook = owned.get(webhook_id)
                subject = f"{tracked.name} (kill {kill})"
                if webhook is None or webhook.uid != tracked.uid:
                    self._violation(
                        Violation(
                            number,
                            side.name,
                            "crash-leaves-a-published-pair",
                            subject,
                            f"the Secret names {webhook_id}, which the processor no longer has",
                        )
                    )
                    continue
                obj = connections.get(tracked.name) or {}
                handled = (obj.get("status") or {}).get("signingSecretRotation")
                rotating = side.name == "checkout" and tracked.rotation not in (None, handled)
                if webhook.secret != published.get(SIGNING_KEY) and not rotating:
                    self._violation(
                        Violation(
                            number,
                            side.name,
                            "crash-leaves-a-published-pair",
                            subject,
                            f"the Secret's signing secret is not webhook {webhook_id}'s",
                        )
                    )

    def _release_orphans(self) -> None:
        """Remove verified orphans' webhooks, as their owner's team would, keeping the account small."""
        for uid, tracked in list(self.orphaned.items()):
            if tracked.name in self.gone:
                continue  # not deleted yet: checked at a later round
            side = self.sides[tracked.processor]
            for webhook in side.owned():
                if webhook.uid == uid:
                    side.remove(webhook.id)
            del self.orphaned[uid]
            self.released.add(uid)

    def _check_log(self, number: int) -> None:
        """No key, token or signing secret in the operator's log, in clear or base64.

        Scans what the log gained since the last check (a secret cannot be logged before it
        exists), with a little overlap so nothing is missed across the boundary.
        """
        secrets = set(self.published) | {self.operator.metrics_token or ""}
        for side in self.sides.values():
            secrets |= side.secrets()
        with self.operator.log_path.open("rb") as log:
            log.seek(max(0, self._log_scanned - LOG_OVERLAP))
            chunk = log.read().decode(errors="replace")
            self._log_scanned = log.tell()
        for secret in sorted(s for s in secrets if s and len(s) >= 12):
            for form, needle in (
                ("in clear", secret),
                ("base64", base64.b64encode(secret.encode()).decode()),
            ):
                if needle in chunk:
                    context = chunk[max(0, chunk.index(needle) - 80) : chunk.index(needle)]
                    self._violation(
                        Violation(
                            number, "-", "no-secret-in-log", f"{secret[:6]}...", f"{form}, after {context!r}"
                        )
                    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument(
        "--processor",
        choices=("stripe", "checkout", "adyen", "both", "all"),
        default="both",
        help="both: Stripe and Checkout.com (the default, as before); all: Adyen too",
    )
    parser.add_argument("--fault-share", type=float, default=HarnessSettings.fault_share)
    parser.add_argument("--rekill-share", type=float, default=HarnessSettings.rekill_share)
    parser.add_argument(
        "--settle-every",
        type=int,
        default=1,
        help="settle and check after every N rounds (default 1); between them each action "
        "lands on an operator still recovering from the last kill",
    )
    parser.add_argument(
        "--cold-start", action="store_true", help="start each operator with python -m procon.cli"
    )
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="reuse a control plane (default: a fresh one)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print every round")
    args = parser.parse_args()

    settings = HarnessSettings(
        seed=args.seed,
        rounds=args.rounds,
        processors={"both": ("stripe", "checkout"), "all": ("stripe", "checkout", "adyen")}.get(
            args.processor, (args.processor,)
        ),
        fault_share=args.fault_share,
        rekill_share=args.rekill_share,
        settle_every=max(1, args.settle_every),
        cold_start=args.cold_start,
        verbose=args.verbose,
    )
    workdir = Path(tempfile.mkdtemp(prefix="procon-crash-run-"))
    with bench_cluster(args.state_dir, prefix="procon-crash-", remove=False) as running:
        report = Harness(running, settings, workdir).run()
    print(report.summary())
    print(f"operator log: {workdir / 'crash-operator.log'}")
    print(f"processor calls, actions and kills: {workdir / 'processor-calls.trace'}")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
