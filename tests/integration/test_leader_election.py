"""Leader election and shards, with real ``procon run`` processes on the real control plane.

- Two operators with leader election: one acts, the other runs none of kopf (no reconcile,
  no processor call, no handler in its log) while serving its health endpoint and
  ``procon_leader 0``.
- The leader is SIGKILLed while its processor writes are held in flight at the emulator
  (URL changes and new connections under way): the standby takes the Lease within the
  lease duration (plus one retry period) of the kill, every connection converges, and the
  emulator holds exactly one owned webhook per connection, the one whose secret is
  published: none duplicated, none lost. A SIGTERMed leader releases the Lease, and the
  next standby takes it at once; a SIGTERMed standby just stops. A leader that sees another
  holder exits at once.
- Two shards with different selectors each reconcile only the connections they select,
  each leading its own Lease at the same time.

Each operator watches only its test's namespace, and runs before the session's operator
(``no_session_operator``), which would otherwise reconcile these connections too.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from procon.dev import cluster as control_plane
from procon.dev.processes import free_port
from procon.emulators.stripe import StripeEmulator
from procon.reconcile.ownership import NAMESPACE, UID
from tests.integration.conftest import Kubectl
from tests.integration.operator_harness import (
    ANALYTICS_PERMISSIONS,
    OperatorProcess,
    StripeAccount,
    connection,
    key_secret,
    metrics_reader_token,
    operator_env,
    signing_secret,
    wait_condition,
)
from tests.waiting import wait_for

pytestmark = [pytest.mark.no_session_operator, pytest.mark.usefixtures("crd_installed")]

# Shorter than the defaults (15/10/2) so the tests wait less; the same proportions.
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 8.0, 5.0, 1.0
LEASE = "procon-test"


@dataclass
class Candidate:
    """An operator process with leader election, its identity and its ports."""

    process: OperatorProcess
    identity: str
    health_port: int

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
        text = self.process.scrape()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )

    def leads(self, lease: str | None = LEASE) -> bool:
        """procon_leader is 1; False too in the moment the port passes from the standby's
        /metrics to the leader's (the standby closes its own before kopf starts)."""
        try:
            return self.metric("procon_leader", **({"lease": lease} if lease else {})) == 1
        except httpx.TransportError:
            return False

    def health(self) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.health_port}/healthz", timeout=5)


@pytest.fixture
def candidates(
    cluster: control_plane.Cluster, kubectl: Kubectl, stripe_emulator: StripeEmulator, tmp_path: Path
) -> Iterator[Any]:
    """Start operators with leader election over ``namespace`` (each its own log and ports)."""
    started: list[OperatorProcess] = []
    token = metrics_reader_token(kubectl)

    def start(namespace: str, name: str, *, lease: str | None = LEASE, **extra: str) -> Candidate:
        health_port = free_port()
        env = operator_env(
            cluster.env(),
            PROCON_STRIPE_API_BASE=stripe_emulator.base_url,
            PROCON_CLUSTER_NAME=f"election-{namespace}",
            PROCON_DRIFT_INTERVAL="30",
            PROCON_METRICS_PORT=str(free_port()),
            PROCON_LEADER_ELECTION="true",
            PROCON_LEADER_ELECTION_NAMESPACE=namespace,
            PROCON_LEADER_ELECTION_LEASE_DURATION=str(LEASE_DURATION),
            PROCON_LEADER_ELECTION_RENEW_DEADLINE=str(RENEW_DEADLINE),
            PROCON_LEADER_ELECTION_RETRY_PERIOD=str(RETRY_PERIOD),
            PROCON_POD_NAME=name,
            **extra,
        )
        env["PROCON_NAMESPACES"] = namespace  # (operator_env drops it)
        if lease:
            env["PROCON_LEADER_ELECTION_LEASE_NAME"] = lease
        log = tmp_path / f"{name}.log"
        process = _start_candidate(env, log, health_port)
        process.metrics_token = token
        started.append(process)
        match = wait_for(
            lambda: re.search(
                rf"(?:standing by for|leader of) lease \S+ as ({name}_[0-9a-f]+)", process.log()
            ),
            timeout=30,
            what=f"{name} to announce its identity",
        )
        return Candidate(process, match.group(1), health_port)

    yield start
    for process in started:
        if process.process.poll() is None:
            process.crash()


def _start_candidate(env: dict[str, str], log: Path, health_port: int) -> OperatorProcess:
    """Like start_operator, but a standby never prints "procon started": wait for the election."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "procon.cli",
                "run",
                "--log-level=debug",
                f"--liveness=http://127.0.0.1:{health_port}/healthz",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    operator = OperatorProcess(process, log, env)

    def electing() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the operator exited with {process.returncode}:\n{operator.log()[-3000:]}")
        return "standing by for lease" in operator.log()

    wait_for(electing, timeout=60, what="the operator to enter the election")
    return operator


def holder(kubectl: Kubectl, namespace: str, lease: str = LEASE) -> str:
    result = kubectl.run("get", "lease", lease, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return ""
    return str(json.loads(result.stdout)["spec"].get("holderIdentity") or "")


def owned_endpoints(account: StripeAccount, namespace: str, uid: str) -> list[dict[str, Any]]:
    return [
        e
        for e in account.endpoints()
        if (e.get("metadata") or {}).get(NAMESPACE) == namespace and (e.get("metadata") or {}).get(UID) == uid
    ]


def divergence(kubectl: Kubectl, account: StripeAccount, namespace: str, urls: dict[str, str]) -> str:
    """What keeps the connections from having converged ("" once they have): each Ready at its
    generation, with exactly one owned webhook at its URL whose secret is the one published,
    and nothing else at the account."""
    for name, url in urls.items():
        obj = kubectl.get_json("pconn", name, "-n", namespace)
        status = obj.get("status") or {}
        if status.get("observedGeneration") != obj["metadata"]["generation"]:
            return f"{name}: generation {obj['metadata']['generation']} not observed yet"
        ready = [c for c in status.get("conditions") or [] if c["type"] == "Ready"]
        if not ready or ready[0]["status"] != "True":
            return f"{name}: not Ready: {ready}"
        owned = owned_endpoints(account, namespace, obj["metadata"]["uid"])
        if len(owned) != 1 or owned[0]["url"] != url:
            return f"{name}: owned webhooks {[(e['id'], e['url']) for e in owned]}"
        published = signing_secret(kubectl, namespace, name)
        if published.get("endpointId") != owned[0]["id"]:
            return f"{name}: the published endpoint is {published.get('endpointId')}, not {owned[0]['id']}"
        try:
            secret = account.emulator.endpoint_secret(owned[0]["id"])
        except KeyError:  # deleted since listed
            return f"{name}: {owned[0]['id']} is gone"
        if published.get("signingSecret") != secret:
            return f"{name}: the published secret is not {owned[0]['id']}'s"
    if len(account.endpoints()) != len(urls):
        return f"{len(account.endpoints())} webhooks at the account for {len(urls)} connections"
    return ""


def wait_converged(
    kubectl: Kubectl, account: StripeAccount, namespace: str, urls: dict[str, str], timeout: float
) -> None:
    last = [""]

    def settled() -> bool:
        last[0] = divergence(kubectl, account, namespace, urls)
        return not last[0]

    try:
        wait_for(settled, timeout=timeout, interval=0.5, what="every connection to converge")
    except AssertionError as error:
        raise AssertionError(f"{error}: {last[0]}") from None


def test_only_the_leader_acts_and_a_standby_takes_over_from_a_killed_one(
    kubectl: Kubectl, namespace: str, stripe_emulator: StripeEmulator, candidates: Any
) -> None:
    first = candidates(namespace, "pod-a")
    wait_for(lambda: holder(kubectl, namespace) == first.identity, timeout=30, what="pod-a to lead")
    second = candidates(namespace, "pod-b")
    assert holder(kubectl, namespace) == first.identity

    account = StripeAccount(stripe_emulator)
    key = account.key(ANALYTICS_PERMISSIONS)
    # One URL gets one webhook: each connection has its own.
    urls = {f"shop-{i}": f"https://hooks.example.com/shop-{i}" for i in range(6)}
    kubectl.apply(
        [doc for name, url in urls.items() for doc in (key_secret(name, key), connection(name, url=url))],
        namespace=namespace,
    )
    wait_converged(kubectl, account, namespace, urls, timeout=90)

    # Only the leader acted; the standby runs none of kopf, and says so.
    assert first.metric("procon_leader", lease=LEASE) == 1
    assert second.metric("procon_leader", lease=LEASE) == 0
    assert first.metric("procon_reconcile_total") >= len(urls)
    assert first.metric("procon_processor_api_calls_total") > 0
    assert second.metric("procon_reconcile_total") == 0
    assert second.metric("procon_processor_api_calls_total") == 0
    assert "reconcile workers started" in first.process.log()  # the work queue's workers ...
    assert "reconcile workers started" not in second.process.log()  # ... never started on the standby
    assert "procon started" not in second.process.log()
    standby_health = second.health()
    assert standby_health.status_code == 200
    assert standby_health.json()["leader"] is False
    assert standby_health.json()["holder"] == first.identity

    # Mid-work: URL changes and new connections, their processor writes held in flight.
    moved = {name: f"{url}/v2" for name, url in urls.items()}
    more = {f"new-{i}": f"https://hooks.example.com/new-{i}" for i in range(3)}
    with stripe_emulator.hold_writes() as gate:
        kubectl.apply(
            [connection(name, url=url) for name, url in moved.items()]
            + [
                doc
                for name, url in more.items()
                for doc in (key_secret(name, key), connection(name, url=url))
            ],
            namespace=namespace,
        )
        assert gate.wait_for_waiting(3, timeout=30), "the leader sent no processor write"
        first.process.crash()
        killed = time.monotonic()
    # The dead leader's held writes go through now, as a processor finishes what it received.

    wait_for(
        lambda: holder(kubectl, namespace) == second.identity,
        timeout=LEASE_DURATION + 3 * RETRY_PERIOD + 10,
        interval=0.2,
        what="the standby to take the lease",
    )
    took = time.monotonic() - killed
    # From its last sight of a renewal (at most a retry period before the kill), the standby
    # waits out the lease duration and reads again within a jittered retry period.
    assert took <= LEASE_DURATION + 2 * RETRY_PERIOD + 2, f"took over {took:.1f}s after the kill"
    wait_for(lambda: second.leads(), timeout=10, what="procon_leader 1")

    everything = {**moved, **more}
    wait_converged(kubectl, account, namespace, everything, timeout=120)
    assert second.metric("procon_reconcile_total") >= len(everything)

    # A graceful stop releases the Lease: the next standby takes it without waiting it out.
    third = candidates(namespace, "pod-c")
    wait_for(lambda: "is held by" in third.process.log(), timeout=30, what="pod-c to see the holder")
    second.process.stop()
    assert second.process.process.returncode == 0
    assert "released lease" in second.process.log()
    released = time.monotonic()
    wait_for(
        lambda: holder(kubectl, namespace) == third.identity,
        timeout=LEASE_DURATION,
        interval=0.2,
        what="pod-c to take the released lease",
    )
    assert time.monotonic() - released < LEASE_DURATION - 2
    lease = kubectl.get_json("lease", LEASE, "-n", namespace)
    assert lease["spec"]["leaseTransitions"] >= 2
    # Still converged under the third leader, which found nothing to change.
    wait_converged(kubectl, account, namespace, everything, timeout=60)


def test_a_leader_that_cannot_renew_stops_before_anyone_else_may_start(
    kubectl: Kubectl, namespace: str, candidates: Any
) -> None:
    """Someone else writes the Lease (as a partitioned leader's successor would): the leader sees
    another holder at its next renewal and exits at once, with the status that says why."""
    leader = candidates(namespace, "pod-a")
    wait_for(lambda: holder(kubectl, namespace) == leader.identity, timeout=30, what="pod-a to lead")
    intruder = {"spec": {"holderIdentity": "intruder_1"}}
    kubectl.run("patch", "lease", LEASE, "-n", namespace, "--type=merge", "-p", json.dumps(intruder))
    stolen = time.monotonic()
    wait_for(
        lambda: leader.process.process.poll() is not None, timeout=RENEW_DEADLINE + 5, what="pod-a to exit"
    )
    assert time.monotonic() - stolen < RENEW_DEADLINE
    assert leader.process.process.returncode == 3
    assert "leadership lost" in leader.process.log()
    assert holder(kubectl, namespace) == "intruder_1"  # it did not release what it no longer held


def test_shards_each_reconcile_only_the_connections_they_select(
    kubectl: Kubectl, namespace: str, stripe_emulator: StripeEmulator, candidates: Any
) -> None:
    # Default lease names: derived from each shard's selector, so both lead at once.
    blue = candidates(namespace, "blue", lease=None, PROCON_SHARD_SELECTOR="procon.dev/shard=blue")
    green = candidates(namespace, "green", lease=None, PROCON_SHARD_SELECTOR="procon.dev/shard=green")
    wait_for(
        lambda: blue.leads(None) and green.leads(None),
        timeout=30,
        what="each shard to lead",
    )
    leases = {
        item["metadata"]["name"]: item["spec"]["holderIdentity"]
        for item in kubectl.get_json("leases", "-n", namespace)["items"]
    }
    assert sorted(leases.values()) == sorted([blue.identity, green.identity]), leases

    account = StripeAccount(stripe_emulator)
    key = account.key(ANALYTICS_PERMISSIONS)
    shard_of = {"b-1": "blue", "b-2": "blue", "g-1": "green", "none": None}
    docs: list[dict[str, Any]] = []
    for name, shard in shard_of.items():
        body = connection(name, url=f"https://hooks.example.com/{name}")
        if shard:
            body["metadata"]["labels"] = {"procon.dev/shard": shard}
        docs += [key_secret(name, key), body]
    kubectl.apply(docs, namespace=namespace)
    for name, shard in shard_of.items():
        if shard:
            wait_condition(kubectl, namespace, name, "Ready", "True", timeout=60)

    def reconciled_by(candidate: Candidate) -> set[str]:
        text = candidate.process.scrape()
        return {
            sample.labels["name"]
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "procon_connection_condition" and sample.labels["namespace"] == namespace
        }

    assert reconciled_by(blue) == {"b-1", "b-2"}
    assert reconciled_by(green) == {"g-1"}
    # The unlabelled one is nobody's here (the chart's unsharded Deployment selects it).
    assert "status" not in kubectl.get_json("pconn", "none", "-n", namespace)
    assert not kubectl.get_json("pconn", "none", "-n", namespace)["metadata"].get("finalizers")
    assert len(account.endpoints()) == 3

    # Moving a connection to the other shard moves who reconciles it.
    kubectl.run("label", "pconn", "g-1", "-n", namespace, "procon.dev/shard=blue", "--overwrite")
    moved_url = {"spec": {"webhook": {"url": "https://hooks.example.com/g-1/moved"}}}
    kubectl.run("patch", "pconn", "g-1", "-n", namespace, "--type=merge", "-p", json.dumps(moved_url))
    wait_condition(kubectl, namespace, "g-1", "Ready", "True", timeout=60)
    wait_for(lambda: "g-1" in reconciled_by(blue), timeout=30, what="blue to reconcile g-1")
    (moved,) = [e for e in account.endpoints() if e["url"].startswith("https://hooks.example.com/g-1")]
    assert moved["url"] == "https://hooks.example.com/g-1/moved"


def test_a_standby_stops_at_once_on_sigterm(kubectl: Kubectl, namespace: str, candidates: Any) -> None:
    """A standby has nothing to finish or release: SIGTERM ends it at once, leaving the Lease
    to its holder."""
    leader = candidates(namespace, "pod-a")
    wait_for(lambda: holder(kubectl, namespace) == leader.identity, timeout=30, what="pod-a to lead")
    standby = candidates(namespace, "pod-b")
    wait_for(lambda: "is held by" in standby.process.log(), timeout=30, what="pod-b to see the holder")
    asked = time.monotonic()
    standby.process.stop()
    assert standby.process.process.returncode == 0
    assert time.monotonic() - asked < 5
    assert "stopped while standing by" in standby.process.log()
    assert holder(kubectl, namespace) == leader.identity
