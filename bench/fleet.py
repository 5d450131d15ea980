"""Measure a fleet: N Stripe connections on one operator, from the apply to Ready, one unchanged
drift interval, and a restart.

Runs the real pieces (see ``bench/_harness.py``): the local control plane, the Stripe emulator in
this process, and the operator as a process of its own, as production runs it: the chart
(``charts/procon``) is installed in namespaced mode, watching only the bench's namespace, and the
operator authenticates as the chart's ServiceAccount (a token from the TokenRequest API), so the
chart's least-privilege RBAC and its admission policy on Secret writes are in force, with the
environment the chart's Deployment gives it (no leader election: one process, as before). The
control plane runs no pods, so the Deployment itself never starts. The user the API server takes
the operator for is printed (``operator_user``). The connections are spread over accounts, at
most 15 to an account (Stripe holds at most 16 webhook endpoints per account and mode:
docs/processors/stripe.md); each account has its own key in the emulator and its own credentials
Secret, each connection its own webhook URL. It prints:

- the apply's own duration (server-side apply in parallel kubectl processes), and the time from
  its end to every connection Ready at its generation. A watch (started at the apply's end, not
  polling) tells when all are Ready; then one list reads each connection's Ready
  ``lastTransitionTime`` and status write time, and the figure is the latest of them plus 1 s
  (both are truncated to the second) minus the apply's end: never early, at most about 1 s late
  (``bench/_readiness.py`` states the rule). The moment the watch saw the last one is printed
  beside it (``ready_seen_by_watch_seconds``): it is late by however far the watch lagged;
- processor calls of the first pass (apply start to all Ready, once calls have settled), by route,
  and per account (max and mean);
- over one unchanged drift interval (``--drift-interval``, set through the operator's
  ``PROCON_DRIFT_INTERVAL``, default 60 s): processor calls by route, calls per account (the
  emulator counts uses per key, and each account has one key), and Kubernetes writes;
- the operator's peak RSS (``VmHWM``) and CPU time;
- the same across a restart: SIGTERM, start again with everything Ready, and the time until the
  new process has checked every connection (its ``procon_reconcile_total`` reaches N), its calls,
  writes and memory.

Kubernetes writes are read from the API server's own ``apiserver_request_total`` (scraped with the
admin credentials before and after a window): every verb but GET, LIST and WATCH, by resource.
The metric does not name the client, so a window is one in which only the operator acts: the bench
itself only watches and reads, and its own apply (one APPLY per object) is taken off the first
pass; the chart's install, the operator's token (TokenRequest) and the check of whom it names
(SelfSubjectReview) come before the operator starts. Token and access reviews (the operator asks
the API server about each scraper of its /metrics) create nothing and are shown apart, as are
Lease renewals (the API server's own identity lease, and a leader-election lease once the
operator has one).

Usage: python bench/fleet.py [--connections 1000] [--per-account 10] [--drift-interval 60]
                             [--apply-workers 4] [--ready-timeout 1500] [--skip-restart]
                             [--state-dir DIR] [--json]
Progress goes to stderr; the figures to stdout (a JSON document with --json). Ctrl-C or SIGTERM
while waiting for Ready reports how far the run got. Exits 1 unless every connection became Ready.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import os
import re
import resource
import secrets
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._harness import (  # noqa: E402
    Emulators,
    OperatorRelease,
    bench_cluster,
    cpu_seconds,
    kubectl,
    process_memory_mib,
    processor_calls,
    running_emulators,
    server_pids,
    user_of,
)
from bench._readiness import (  # noqa: E402
    LISTING_TEMPLATE,
    ListedConnection,
    ReadyBook,
    parse_listing,
    ready_after_apply,
)
from tests.integration.conftest import Kubectl  # noqa: E402
from tests.integration.operator_harness import (  # noqa: E402
    ANALYTICS_PERMISSIONS,
    OperatorProcess,
    connection,
    key_secret,
    metrics_reader_token,
    start_operator,
)

from procon.dev import cluster as control_plane  # noqa: E402
from procon.dev.processes import free_port  # noqa: E402

# Stripe holds at most 16 webhook endpoints per account and mode (docs/processors/stripe.md); one
# is left free, as a platform would keep one for its own use.
MAX_PER_ACCOUNT = 15
READ_VERBS = frozenset({"GET", "LIST", "WATCH", "WATCHLIST"})
# Created and answered, never stored: the operator's checks of who scrapes its /metrics.
REVIEW_RESOURCES = frozenset(
    {"tokenreviews", "subjectaccessreviews", "selfsubjectaccessreviews", "localsubjectaccessreviews"}
)
LEASES = "leases"
LIST_ROUTE = "GET /v1/webhook_endpoints"
QUIET_SECONDS = 3.0  # no processor call for this long: a burst of work has ended
# No change seen by the Ready watch for this long though not all are Ready: list afresh. A list
# of N connections costs the API server about what the watch's own start does; it happens only
# when nothing changes, so when the API server has little else to do.
RESYNC_QUIET_SECONDS = 5.0
# The Ready watch's pipe from kubectl: 1 MiB (about 15,000 lines) instead of Linux's 64 KiB, so
# kubectl never waits on the bench (whose threads share one interpreter with the emulator) and
# the API server never sees the watch fall behind because of the bench.
WATCH_PIPE_BYTES = 1 << 20
ALNUM = string.ascii_letters + string.digits
LIST_TEMPLATE = (
    "{.metadata.name} {.metadata.generation} {.metadata.resourceVersion} {.status.observedGeneration} "
    '{.status.conditions[?(@.type=="Ready")].status}{"\\n"}'
)
READY_TEMPLATE = (
    "{.type} {.object.metadata.name} {.object.metadata.generation} {.object.metadata.resourceVersion} "
    "{.object.status.observedGeneration} "
    '{.object.status.conditions[?(@.type=="Ready")].status}{"\\n"}'
)


def _token(length: int) -> str:
    return "".join(secrets.choice(ALNUM) for _ in range(length))


def log(message: str) -> None:
    """Progress, on stderr, so stdout holds only the figures."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- the fleet ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    id: str
    key: str
    secret: str  # the credentials Secret its connections share


@dataclass(frozen=True)
class Fleet:
    """N connections over ceil(N / per_account) accounts, filled in turn."""

    namespace: str
    accounts: tuple[Account, ...]
    connections: tuple[tuple[str, int], ...]  # (name, account index)

    @classmethod
    def make(cls, namespace: str, size: int, per_account: int) -> Fleet:
        count = math.ceil(size / per_account)
        accounts = tuple(
            Account(f"acct_1F{_token(12)}", f"rk_test_51{_token(40)}", f"fleet-acct-{i:05d}")
            for i in range(count)
        )
        connections = tuple((f"fleet-{i:05d}", i // per_account) for i in range(size))
        return cls(namespace, accounts, connections)

    def emulator_fixture(self) -> dict[str, Any]:
        return {
            "accounts": [
                {"id": a.id, "keys": [{"key": a.key, "permissions": list(ANALYTICS_PERMISSIONS)}]}
                for a in self.accounts
            ]
        }

    def secrets(self) -> list[dict[str, Any]]:
        docs = []
        for account in self.accounts:
            doc = key_secret(account.secret, account.key)
            doc["metadata"]["name"] = account.secret
            docs.append(doc)
        return docs

    def connection_docs(self) -> list[dict[str, Any]]:
        return [
            connection(
                name,
                url=f"https://hooks.example.com/fleet/{name}",
                credentialsSecretRef={"name": self.accounts[account].secret},
            )
            for name, account in self.connections
        ]


def _as_list(docs: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})


def apply_fleet(running: control_plane.Cluster, fleet: Fleet, workdir: Path, workers: int) -> float:
    """Server-side apply: the Secrets, then the connections in ``workers`` kubectl processes at once.
    Returns the seconds it took."""
    files = [workdir / "secrets.json"]
    files[0].write_text(_as_list(fleet.secrets()))
    docs = fleet.connection_docs()
    batches = [docs[i::workers] for i in range(workers) if docs[i::workers]]
    for i, batch in enumerate(batches):
        path = workdir / f"connections-{i}.json"
        path.write_text(_as_list(batch))
        files.append(path)
    command = ["kubectl", "apply", "--server-side", "--field-manager=fleet-bench", "-n", fleet.namespace]
    started = time.monotonic()
    subprocess.run([*command, "-f", str(files[0])], env=running.env(), check=True, capture_output=True)
    processes = [
        subprocess.Popen(
            [*command, "-f", str(path)],
            env=running.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in files[1:]
    ]
    failures = []
    for process in processes:
        _, err = process.communicate()
        if process.returncode != 0:
            failures.append(err[-2000:])
    if failures:
        raise RuntimeError("kubectl apply failed:\n" + "\n".join(failures))
    return time.monotonic() - started


# --- watching from outside ------------------------------------------------------------------------


class ReadyWatch:
    """Which connections are Ready at their generation, from a ``kubectl get --watch`` (one list,
    then events; kubectl does the decoding, so the bench takes no CPU from the emulator).

    The API server closes a watcher that falls behind: when its buffer is full, the watch cache
    waits for it out of a budget shared by all watchers of the resource (at most 100 ms, refilled
    at 50 ms a second), then closes it ("Forcing ... watcher close due to unresponsiveness",
    counted in ``apiserver_terminated_watchers_total``). In a burst of writes the budget is soon
    spent, and a watcher is closed the moment its buffer is full; the events it held are lost.
    ``kubectl get --watch`` then exits quietly with status 0, and this class starts it again (at
    once, unless it failed right away): its list brings every connection up to date, and
    :attr:`restarts` counts these. The watch starts at the apply's end: nothing is Ready before,
    and the apply's burst is where watchers are closed. A list answered before newer watch events
    but read after them (:meth:`resync_if_quiet`) used to undo them, a connection that turned
    Ready meanwhile counted as not Ready until the next relist; each update now carries the
    object's resourceVersion, and older news never replaces newer (``ReadyBook``). kubectl's
    output goes through a 1 MiB pipe, so the bench's reader (one interpreter with the emulator)
    never holds kubectl, and so the watch, back.

    The time this watch sees the last connection Ready is late by how far it lags; the bench
    reports the moment from the connections' own conditions (``bench/_readiness.py``) beside it.
    """

    def __init__(self, running: control_plane.Cluster, namespace: str) -> None:
        self._running, self._namespace = running, namespace
        self._book = ReadyBook()
        self._lock = threading.Lock()
        self._changed_at = time.monotonic()
        self._relisting: threading.Thread | None = None
        self.resyncs = 0
        self.restarts = 0  # watches ended by the API server (or kubectl failing) and started again
        self._stopped = threading.Event()
        self._process: subprocess.Popen[str] | None = None
        self._thread = threading.Thread(target=self._run, name="ready-watch", daemon=True)

    def start(self) -> None:
        self._changed_at = time.monotonic()  # quiet is counted from the start, not construction
        self._thread.start()

    def _note(self, name: str, version: str, generation: str, observed: str, ready: str) -> None:
        """Record one object's state unless a newer one is known (called under the lock)."""
        if self._book.note(name, version, generation, observed, ready):
            self._changed_at = time.monotonic()

    def _run(self) -> None:
        while not self._stopped.is_set():
            launched = time.monotonic()
            self._process = subprocess.Popen(
                [
                    "kubectl",
                    "get",
                    "pconn",
                    "-n",
                    self._namespace,
                    "--watch",
                    "--output-watch-events",
                    "-o",
                    f"jsonpath={READY_TEMPLATE}",
                ],
                env=self._running.env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert self._process.stdout is not None
            with contextlib.suppress(AttributeError, OSError):  # Linux only; a larger buffer helps
                fcntl.fcntl(self._process.stdout.fileno(), fcntl.F_SETPIPE_SZ, WATCH_PIPE_BYTES)
            for line in self._process.stdout:
                parts = line.split()
                if len(parts) < 4:
                    continue
                kind, name, generation, version = parts[:4]
                observed = parts[4] if len(parts) > 4 else ""
                ready = parts[5] if len(parts) > 5 else ""
                with self._lock:
                    if kind == "DELETED":
                        self._book.forget(name)
                        self._changed_at = time.monotonic()
                    else:
                        self._note(name, version, generation, observed, ready)
            self._process.wait()
            if self._stopped.is_set():
                break
            self.restarts += 1
            log(f"the Ready watch ended after {time.monotonic() - launched:.1f}s; watching again")
            # At once, unless kubectl failed right away (the API server not answering).
            if time.monotonic() - launched < 1.0:
                self._stopped.wait(0.5)

    def resync_if_quiet(self, quiet_seconds: float) -> None:
        """List the connections once more, in the background, if nothing changed for a while."""
        with self._lock:
            if time.monotonic() - self._changed_at <= quiet_seconds:
                return
            if self._relisting is not None and self._relisting.is_alive():
                return
            self.resyncs += 1
            self._relisting = threading.Thread(target=self._relist, name="ready-relist", daemon=True)
            self._relisting.start()

    def _relist(self) -> None:
        listed = subprocess.run(
            [
                "kubectl",
                "get",
                "pconn",
                "-n",
                self._namespace,
                "-o",
                f"jsonpath={{range .items[*]}}{LIST_TEMPLATE}{{end}}",
            ],
            env=self._running.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        with self._lock:
            for line in listed.stdout.splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    name, generation, version = parts[:3]
                    observed = parts[3] if len(parts) > 3 else ""
                    ready = parts[4] if len(parts) > 4 else ""
                    self._note(name, version, generation, observed, ready)
            self._changed_at = time.monotonic()

    def counts(self) -> tuple[int, int]:
        """(Ready, seen)."""
        with self._lock:
            return self._book.counts()

    def stop(self) -> None:
        self._stopped.set()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)
        if self._thread.ident is not None:  # started (a run that failed before the apply never is)
            self._thread.join(5)


def list_readiness(running: control_plane.Cluster, namespace: str) -> list[ListedConnection]:
    """Every connection's Ready condition and status write times, in one list (kubectl decodes)."""
    text = kubectl(running, "get", "pconn", "-n", namespace, "-o", f"jsonpath={LISTING_TEMPLATE}")
    return parse_listing(text)


def rss_now(pid: int) -> float:
    """The operator's resident memory now, 0 if it has gone."""
    try:
        return process_memory_mib(pid)
    except (OSError, RuntimeError):
        return 0.0


def own_cpu_seconds() -> float:
    """This process' CPU time: the bench and the emulator serving in it."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')
# Watchers of the connections the API server closed for falling behind (the bench's or the
# operator's: the metric does not say whose).
_TERMINATED_WATCHERS = re.compile(
    r'^apiserver_terminated_watchers_total\{[^}]*resource="processorconnections"[^}]*\} (\S+)$', re.MULTILINE
)


def terminated_watchers(text: str) -> int:
    """Connection watchers closed for falling behind, from the API server's metrics text."""
    return sum(int(float(value)) for value in _TERMINATED_WATCHERS.findall(text))


def apiserver_requests(text: str) -> Counter[tuple[str, str, str, str]]:
    """The API server's ``apiserver_request_total`` by (verb, group, resource, subresource)."""
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for match in _SAMPLE.finditer(text):
        labels = dict(_LABEL.findall(match.group("labels")))
        key = (labels.get("verb", ""), labels.get("group", ""), labels.get("resource", ""))
        counts[(*key, labels.get("subresource", ""))] += int(float(match.group("value")))
    return counts


def kube_writes(
    before: Counter[tuple[str, str, str, str]],
    after: Counter[tuple[str, str, str, str]],
    bench_writes: Counter[str] | None = None,
) -> dict[str, Any]:
    """Writes between two scrapes: the operator's (every write but reviews and Leases, less
    ``bench_writes``, the bench's own apply), by ``VERB resource[/subresource]``, and the reviews
    and Lease writes apart."""
    writes: Counter[str] = Counter()
    reviews = leases = 0
    for key, count in (after - before).items():
        verb, group, resource_name, subresource = key
        if verb in READ_VERBS or not resource_name:
            continue
        if resource_name in REVIEW_RESOURCES:
            reviews += count
        elif resource_name == LEASES:
            leases += count
        else:
            shown = f"{resource_name}.{group}" if group else resource_name
            writes[f"{verb} {shown}{'/' + subresource if subresource else ''}"] += count
    writes -= bench_writes or Counter()
    return {
        "total": sum(writes.values()),
        "by_kind": dict(sorted(writes.items())),
        "reviews": reviews,
        "leases": leases,
    }


# --- windows ----------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """What the emulator and the API server have counted at one moment."""

    at: float
    calls: Counter[str]
    key_uses: list[int]
    apiserver: Counter[tuple[str, str, str, str]]
    emulator_cpu: float
    terminated_watchers: int


def snapshot(running: control_plane.Cluster, emulators: Emulators, fleet: Fleet) -> Snapshot:
    """The emulator's counts first, at the moment the snapshot stands for (they are in this
    process: no delay), then the API server's (a scrape, which takes a while under load): a
    window of processor calls between two snapshots is then as long as asked, not longer by the
    scrapes' difference (a window of 60.3 s for an interval of 60 s could hold two listings of an
    account 60 s apart)."""
    at = time.monotonic()
    calls = processor_calls(emulators.stripe)
    key_uses = [emulators.stripe.key_uses(a.key) for a in fleet.accounts]
    cpu = own_cpu_seconds()
    metrics = kubectl(running, "get", "--raw", "/metrics")
    return Snapshot(at, calls, key_uses, apiserver_requests(metrics), cpu, terminated_watchers(metrics))


def window(first: Snapshot, last: Snapshot, bench_writes: Counter[str] | None = None) -> dict[str, Any]:
    """Processor calls and Kubernetes writes between two snapshots (less ``bench_writes``)."""
    calls = last.calls - first.calls
    per_account = [b - a for a, b in zip(first.key_uses, last.key_uses, strict=True)]
    return {
        "seconds": round(last.at - first.at, 1),
        "calls_total": sum(calls.values()),
        "calls": dict(sorted(calls.items())),
        "list_calls": calls.get(LIST_ROUTE, 0),
        # Each account has one key, and the emulator counts uses per key: all calls of an account.
        "calls_per_account": {
            "max": max(per_account, default=0),
            "mean": round(sum(per_account) / max(1, len(per_account)), 2),
        },
        "only_list_calls": set(calls) <= {LIST_ROUTE},
        "kube_writes": kube_writes(first.apiserver, last.apiserver, bench_writes),
        "emulator_and_bench_cpu_seconds": round(last.emulator_cpu - first.emulator_cpu, 1),
        "connection_watchers_closed": last.terminated_watchers - first.terminated_watchers,
    }


def wait_quiet(emulators: Emulators, *, quiet: float = QUIET_SECONDS, timeout: float = 60.0) -> float:
    """Wait until the emulator has received no request for ``quiet`` seconds; the seconds waited."""
    started = time.monotonic()
    seen, since = len(emulators.stripe.requests), time.monotonic()
    while time.monotonic() - started < timeout:
        time.sleep(0.25)
        now = len(emulators.stripe.requests)
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return time.monotonic() - started


def reconciles(operator: OperatorProcess) -> int:
    """Reconcile passes the operator process has finished, any outcome (its own metric)."""
    text = operator.scrape()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("procon_reconcile_total{")
    )


# --- the run ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetSettings:
    connections: int = 1000
    per_account: int = 10
    drift_interval: float = 60.0
    apply_workers: int = 4
    ready_timeout: float = 1500.0  # from the apply's end
    restart_timeout: float = 900.0
    restart: bool = True
    progress_every: float = 10.0


# The apply, the clean-up and the steps between phases, beyond the phases' own bounds.
TOKEN_SLACK_SECONDS = 3600


def token_seconds(settings: FleetSettings) -> int:
    """How long the operator's ServiceAccount token must last: no kubelet refreshes it here, and
    the same token serves the restarted process, so it covers every phase at its longest."""
    phases = settings.ready_timeout + settings.drift_interval + settings.restart_timeout
    return math.ceil(phases) + TOKEN_SLACK_SECONDS


def chart_values(settings: FleetSettings) -> dict[str, Any]:
    """The chart's values for the bench's release (besides the watched namespace): one operator
    process, without leader election, as the bench has always run it (a Lease's renewals would
    add writes to every window), and the run's drift interval and cluster name."""
    return {
        "replicaCount": 1,
        "leaderElection": {"enabled": False},
        "config": {"clusterName": "fleet", "driftInterval": settings.drift_interval},
    }


@dataclass
class FleetBench:
    """One run on a running control plane; ``run()`` returns the figures as a JSON-able dict."""

    running: control_plane.Cluster
    settings: FleetSettings
    workdir: Path
    out: Callable[[str], None] = log
    # Delete the namespace at the end (its webhooks through the operator's finalizers): needed on a
    # control plane that outlives the run, pointless on one that is torn down after it.
    delete_namespace: bool = True
    report: dict[str, Any] = field(default_factory=dict)

    def run(self, emulators: Emulators) -> dict[str, Any]:
        s = self.settings
        namespace = f"fleet-{os.getpid()}-{int(time.time()) % 100000}"
        fleet = Fleet.make(namespace, s.connections, s.per_account)
        emulators.stripe.add_accounts(fleet.emulator_fixture())
        self.report.update(
            connections=s.connections,
            accounts=len(fleet.accounts),
            per_account=s.per_account,
            drift_interval=s.drift_interval,
            load_average_start=load_average(),
            cores=os.cpu_count(),
        )
        kube = Kubectl(self.running)
        token = metrics_reader_token(kube)
        kubectl(self.running, "create", "namespace", namespace)
        watch = ReadyWatch(self.running, namespace)
        release: OperatorRelease | None = None
        operator: OperatorProcess | None = None
        with contextlib.ExitStack() as stack:
            # Last out: the release (its RBAC) outlives the operator's clean-up of the connections.
            stack.callback(self._remove_release, lambda: release)
            release = OperatorRelease.install(
                self.running,
                name=namespace,
                namespace=f"{namespace}-system",
                watched=namespace,
                values=chart_values(s),
                workdir=self.workdir,
            )
            stack.callback(self._clean_up, namespace, lambda: operator, watch)
            # Before the first window: the bench's own TokenRequest and whoami are not counted.
            kubeconfig = release.kubeconfig(self.workdir / "operator.kubeconfig", seconds=token_seconds(s))
            self.report["operator_user"] = user_of(self.running, kubeconfig)
            env = release.operator_environment(emulators, kubeconfig, PROCON_METRICS_PORT=str(free_port()))
            operator = start_operator(env, self.workdir / "operator.log", ["--log-level=info"])
            operator.metrics_token = token
            self.report["operator_idle_rss_mib"] = round(rss_now(operator.process.pid), 1)
            self.out(
                f"operator started ({self.report['operator_idle_rss_mib']} MiB); applying "
                f"{s.connections} connections over {len(fleet.accounts)} accounts in {namespace}"
            )
            complete = self._first_pass(emulators, fleet, operator, watch)
            try:
                if complete:
                    self._drift_interval(emulators, fleet, operator)
                    if s.restart:
                        operator = self._restart(emulators, fleet, operator, watch)
            except KeyboardInterrupt:
                self.report["interrupted"] = True
                self.out("interrupted: reporting the phases that finished")
            self.report["load_average_end"] = load_average()
        return self.report

    def _first_pass(
        self,
        emulators: Emulators,
        fleet: Fleet,
        operator: OperatorProcess,
        watch: ReadyWatch,
    ) -> bool:
        s, pid = self.settings, operator.process.pid
        start = snapshot(self.running, emulators, fleet)
        cpu0 = cpu_seconds(pid)
        servers = server_pids(self.running.state_dir)
        servers_cpu0 = {name: cpu_seconds(server) for name, server in servers.items()}
        apply_seconds = apply_fleet(self.running, fleet, self.workdir, s.apply_workers)
        applied, applied_wall = time.monotonic(), time.time()
        # Who used the cores once the apply was done: the API server, etcd and the operator.
        measured = {**servers, "operator": pid}
        used_at_applied = {name: cpu_seconds(process) for name, process in measured.items()}
        # Watched from the apply's end: during the apply's burst of writes a watcher is the most
        # likely to fall behind and be closed, and nothing is Ready before the apply ends.
        watch.start()
        self.out(f"applied in {apply_seconds:.1f}s; waiting for Ready")
        timeline: list[tuple[float, int, float]] = []
        next_note = applied
        ready = peak = 0
        interrupted = False
        try:
            while True:
                ready, _ = watch.counts()
                peak = max(peak, ready)
                now = time.monotonic()
                if now >= next_note or ready >= s.connections:
                    rss = rss_now(pid)
                    timeline.append((round(now - applied, 1), ready, round(rss, 1)))
                    self.out(f"  +{now - applied:6.1f}s  Ready {ready}/{s.connections}  RSS {rss:.0f} MiB")
                    next_note = now + s.progress_every
                if ready >= s.connections or now - applied > s.ready_timeout:
                    break
                watch.resync_if_quiet(RESYNC_QUIET_SECONDS)
                if operator.process.poll() is not None:
                    code = operator.process.returncode
                    self.out(f"the operator exited with {code}; see {operator.log_path}")
                    break
                time.sleep(0.2)
        except KeyboardInterrupt:  # enough seen: report how far it got
            interrupted = True
            self.out("interrupted: reporting how far it got")
        all_ready = time.monotonic()
        used_after_apply = {
            name: round((cpu_seconds(process) - used_at_applied[name]) / max(all_ready - applied, 1e-3), 2)
            for name, process in measured.items()
        }
        complete = ready >= s.connections
        ready_after = None
        if complete:
            listed = list_readiness(self.running, fleet.namespace)
            ready_after = ready_after_apply(listed, applied_wall)
            self.out(
                f"all Ready: seen by the watch {all_ready - applied:.1f}s after the apply's end; "
                f"by their Ready conditions {ready_after}s"
            )
            wait_quiet(emulators)
        end = snapshot(self.running, emulators, fleet)
        # The apply's own writes: one server-side apply per object.
        applied_writes = Counter(
            {
                "APPLY processorconnections.procon.dev": len(fleet.connections),
                "APPLY secrets": len(fleet.accounts),
            }
        )
        first = window(start, end, applied_writes)
        first.update(
            apply_seconds=round(apply_seconds, 1),
            complete=complete,
            interrupted=interrupted,
            ready=ready,
            ready_peak=peak,
            watch_resyncs=watch.resyncs,
            watch_restarts=watch.restarts,
            waited_seconds=round(all_ready - applied, 1),
            # From the connections' Ready conditions: never early, at most about 1 s late.
            ready_after_apply_seconds=ready_after,
            ready_after_apply_start_seconds=(
                round(ready_after + apply_seconds, 1) if ready_after is not None else None
            ),
            # When the Ready watch saw the last one: late by however far the watch lagged.
            ready_seen_by_watch_seconds=round(all_ready - applied, 1) if complete else None,
            # Drift checks begin 0.8 x the interval after a connection's first reconcile: a pass
            # longer than that counts some of them too.
            includes_drift_checks=all_ready - start.at > 0.8 * s.drift_interval,
            ready_timeline=timeline,
            operator_peak_rss_mib=round(process_memory_mib(pid, "VmHWM"), 1),
            operator_cpu_seconds=round(cpu_seconds(pid) - cpu0, 1),
            # The control plane's CPU over the whole pass (the apply's share included).
            server_cpu_seconds={
                name: round(cpu_seconds(server) - servers_cpu0[name], 1) for name, server in servers.items()
            },
            # From the apply's end to all Ready: cores used on average by each.
            cores_after_apply=used_after_apply,
            load_average=load_average(),
        )
        self.report["first_pass"] = first
        return complete

    def _drift_interval(self, emulators: Emulators, fleet: Fleet, operator: OperatorProcess) -> None:
        interval, pid = self.settings.drift_interval, operator.process.pid
        self.out(f"all Ready; counting one unchanged drift interval ({interval:.0f}s)")
        start = snapshot(self.running, emulators, fleet)
        passes0, cpu0 = reconciles(operator), cpu_seconds(pid)
        deadline = start.at + interval
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, self.settings.progress_every))
            if left > self.settings.progress_every:
                self.out(f"  {deadline - time.monotonic():4.0f}s left")
        end = snapshot(self.running, emulators, fleet)
        drift = window(start, end)
        drift.update(
            reconciles=reconciles(operator) - passes0,
            operator_cpu_seconds=round(cpu_seconds(pid) - cpu0, 1),
            operator_peak_rss_mib=round(process_memory_mib(pid, "VmHWM"), 1),
            operator_rss_mib=round(process_memory_mib(pid), 1),
            load_average=load_average(),
        )
        self.report["drift_interval_window"] = drift

    def _restart(
        self,
        emulators: Emulators,
        fleet: Fleet,
        operator: OperatorProcess,
        watch: ReadyWatch,
    ) -> OperatorProcess:
        s = self.settings
        self.out("restarting the operator with everything Ready")
        start = snapshot(self.running, emulators, fleet)
        stopping = time.monotonic()
        operator.stop()
        stop_seconds = time.monotonic() - stopping
        launched = time.monotonic()
        operator.process = start_operator(operator.env, operator.log_path, operator.args).process
        started_seconds = time.monotonic() - launched
        pid = operator.process.pid
        checked, checked_at = 0, None
        poll = max(2.0, s.connections / 2000)  # each scrape costs the operator a little
        while time.monotonic() - launched < s.restart_timeout:
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                checked = reconciles(operator)
            if checked >= s.connections:
                checked_at = time.monotonic() - launched
                break
            self.out(f"  +{time.monotonic() - launched:6.1f}s  checked {checked}/{s.connections}")
            time.sleep(poll)
        if checked_at is not None:
            wait_quiet(emulators)
        end = snapshot(self.running, emulators, fleet)
        restart = window(start, end)
        ready, _ = watch.counts()
        restart.update(
            stop_seconds=round(stop_seconds, 1),
            started_seconds=round(started_seconds, 1),
            checked=checked,
            checked_all_seconds=round(checked_at, 1) if checked_at is not None else None,
            ready_after=ready,
            operator_peak_rss_mib=round(process_memory_mib(pid, "VmHWM"), 1),
            operator_cpu_seconds=round(cpu_seconds(pid), 1),
            load_average=load_average(),
        )
        self.report["restart"] = restart
        return operator

    def _clean_up(
        self,
        namespace: str,
        current: Callable[[], OperatorProcess | None],
        watch: ReadyWatch,
    ) -> None:
        """Delete the connections while the operator runs (its finalizers remove the webhooks),
        then the namespace, then stop everything the run started."""
        watch.stop()
        operator = current()
        kube = Kubectl(self.running)
        try:
            if not self.delete_namespace:
                return
            if operator is not None and operator.process.poll() is None:
                self.out(f"deleting the connections in {namespace} (the operator removes their webhooks)")
                # The connections before their namespace: the namespace's deletion deletes all it
                # holds in one sweep, the operator's RoleBinding there (the chart's, namespaced)
                # too, while the operator may still be working through thousands of finalizers.
                kube.run(
                    "delete", "pconn", "--all", "-n", namespace, "--wait=true", "--timeout=600s", check=False
                )
                kube.run("delete", "namespace", namespace, "--wait=true", "--timeout=600s", check=False)
            else:
                kube.run("delete", "namespace", namespace, "--wait=false", check=False)
        finally:
            if operator is not None:
                operator.stop()

    def _remove_release(self, current: Callable[[], OperatorRelease | None]) -> None:
        """Uninstall the chart once the operator has stopped (on a control plane that outlives
        the run; a fresh one goes with everything on it)."""
        release = current()
        if release is not None and self.delete_namespace:
            release.uninstall()


# --- printing -------------------------------------------------------------------------------------


def _writes(writes: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in writes["by_kind"].items()) or "none"
    return (
        f"{writes['total']} ({kinds}); besides: {writes['reviews']} reviews, {writes['leases']} lease writes"
    )


def _calls(part: dict[str, Any]) -> list[str]:
    lines = [f"    {count:7d}  {route}" for route, count in part["calls"].items()]
    per = part["calls_per_account"]
    lines.append(
        f"    per account: max {per['max']}, mean {per['mean']}"
        + (" (all of them list calls)" if part["only_list_calls"] and part["calls_total"] else "")
    )
    return lines


def format_report(report: dict[str, Any]) -> str:
    """The figures as text, one section per phase."""
    lines = [
        f"fleet: {report['connections']} Stripe connections over {report['accounts']} accounts "
        f"({report['per_account']} per account), drift interval {report['drift_interval']:.0f}s, "
        f"{report['cores']} cores, load average at start {report['load_average_start']}",
        f"operator: runs as {report['operator_user']} (the chart's RBAC and admission policies); "
        f"RSS before the apply: {report['operator_idle_rss_mib']} MiB",
    ]
    first = report.get("first_pass")
    if first:
        if first["complete"]:
            lines.append(
                f"apply: {first['apply_seconds']}s; all Ready {first['ready_after_apply_seconds']}s after "
                f"the apply's end ({first['ready_after_apply_start_seconds']}s after its start; "
                "from their Ready conditions, at most 1 s late)"
            )
            lines.append(
                f"  the Ready watch saw them all {first['ready_seen_by_watch_seconds']}s after the "
                f"apply's end ({first['watch_restarts']} watch restarts, {first['watch_resyncs']} relists; "
                f"{first['connection_watchers_closed']} connection watchers closed by the API server)"
            )
        else:
            lines.append(
                f"apply: {first['apply_seconds']}s; NOT all Ready: {first['ready']}/{report['connections']} "
                f"{first['waited_seconds']}s after the apply's end (at most {first['ready_peak']} at once)"
                + (", interrupted" if first["interrupted"] else "")
            )
        lines.append("  Ready over time, seen by the watch (s after the apply, Ready, operator RSS MiB):")
        lines.extend(f"    {t:7.1f}  {n:6d}  {rss:7.1f}" for t, n, rss in first["ready_timeline"])
        lines.append(
            f"first pass: {first['calls_total']} processor calls"
            + (
                " (some drift checks included: it lasted over 0.8 x the interval)"
                if first["includes_drift_checks"]
                else ""
            )
        )
        lines.extend(_calls(first))
        lines.append(f"  Kubernetes writes: {_writes(first['kube_writes'])}")
        lines.append(
            f"  operator: peak RSS {first['operator_peak_rss_mib']} MiB, "
            f"CPU {first['operator_cpu_seconds']}s; "
            f"emulator and bench CPU {first['emulator_and_bench_cpu_seconds']}s; load {first['load_average']}"
        )
        servers = ", ".join(f"{name} {cpu}s" for name, cpu in sorted(first["server_cpu_seconds"].items()))
        cores = ", ".join(f"{name} {used}" for name, used in first["cores_after_apply"].items())
        lines.append(f"  control plane CPU: {servers}; cores used from the apply's end to all Ready: {cores}")
    drift = report.get("drift_interval_window")
    if drift:
        accounts = max(1, report["accounts"])
        lines.append(
            f"one unchanged drift interval ({drift['seconds']}s): {drift['calls_total']} processor calls, "
            f"{drift['list_calls']} list calls ({drift['list_calls'] / accounts:.2f} per account), "
            f"{drift['reconciles']} reconciles"
        )
        lines.extend(_calls(drift))
        lines.append(f"  Kubernetes writes: {_writes(drift['kube_writes'])}")
        lines.append(
            f"  operator: RSS {drift['operator_rss_mib']} MiB (peak {drift['operator_peak_rss_mib']}), "
            f"CPU {drift['operator_cpu_seconds']}s; load {drift['load_average']}"
        )
    restart = report.get("restart")
    if restart:
        checked = (
            f"checked all {report['connections']} {restart['checked_all_seconds']}s after the launch"
            if restart["checked_all_seconds"] is not None
            else f"checked only {restart['checked']}/{report['connections']}"
        )
        lines.append(
            f"restart: stopped in {restart['stop_seconds']}s, started in {restart['started_seconds']}s, "
            f"{checked}; Ready after: {restart['ready_after']}"
        )
        lines.append(f"  processor calls (stop to settled): {restart['calls_total']}")
        lines.extend(_calls(restart))
        lines.append(f"  Kubernetes writes: {_writes(restart['kube_writes'])}")
        lines.append(
            f"  operator: peak RSS {restart['operator_peak_rss_mib']} MiB, "
            f"CPU {restart['operator_cpu_seconds']}s; "
            f"load {restart['load_average']}"
        )
    if "load_average_end" in report:
        lines.append(f"load average at the end: {report['load_average_end']}")
    return "\n".join(lines)


def run(
    settings: FleetSettings, state_dir: Path | None, workdir: Path, out: Callable[[str], None] = log
) -> dict[str, Any]:
    with bench_cluster(state_dir, prefix="procon-fleet-") as running, running_emulators() as emulators:
        bench = FleetBench(running, settings, workdir, out, delete_namespace=state_dir is not None)
        return bench.run(emulators)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=FleetSettings.connections)
    parser.add_argument(
        "--per-account",
        type=int,
        default=FleetSettings.per_account,
        help=f"connections per account, at most {MAX_PER_ACCOUNT} (default %(default)s)",
    )
    parser.add_argument(
        "--drift-interval",
        type=float,
        default=FleetSettings.drift_interval,
        help="the operator's PROCON_DRIFT_INTERVAL for the run, and the window counted (default %(default)s)",
    )
    parser.add_argument("--apply-workers", type=int, default=FleetSettings.apply_workers)
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=FleetSettings.ready_timeout,
        help="seconds after the apply to wait for every connection to be Ready (default %(default)s)",
    )
    parser.add_argument("--restart-timeout", type=float, default=FleetSettings.restart_timeout)
    parser.add_argument("--skip-restart", action="store_true")
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="reuse a control plane (default: a fresh one)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if not 1 <= args.per_account <= MAX_PER_ACCOUNT:
        parser.error(f"--per-account must be 1 to {MAX_PER_ACCOUNT}")
    if args.connections < 1:
        parser.error("--connections must be at least 1")
    settings = FleetSettings(
        connections=args.connections,
        per_account=args.per_account,
        drift_interval=args.drift_interval,
        apply_workers=max(1, args.apply_workers),
        ready_timeout=args.ready_timeout,
        restart_timeout=args.restart_timeout,
        restart=not args.skip_restart,
    )
    # SIGTERM as Ctrl-C: the run reports how far it got and cleans up after itself.
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="procon-fleet-run-"))
    report = run(settings, args.state_dir, workdir)
    log(f"operator log: {workdir / 'operator.log'}")
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    complete = bool(report.get("first_pass", {}).get("complete"))
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
