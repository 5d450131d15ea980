"""The operator under test: a real ``procon run`` process against the real control plane and
the in-process Stripe emulator, plus helpers to make accounts, keys and connections."""

from __future__ import annotations

import base64
import secrets
import signal
import string
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from procon.emulators.stripe import StripeEmulator
from tests.integration.conftest import Kubectl
from tests.waiting import wait_for

ALNUM = string.ascii_letters + string.digits
ANALYTICS_PERMISSIONS = [
    "rak_balance_read",
    "rak_charge_read",
    "rak_dispute_read",
    "rak_event_read",
    "rak_payout_read",
    "rak_webhook_write",
]


def _token(length: int) -> str:
    return "".join(secrets.choice(ALNUM) for _ in range(length))


@dataclass
class OperatorProcess:
    """``procon run`` in a subprocess, its output in a log file the tests can scan."""

    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]
    args: tuple[str, ...] = ()
    # A bearer token the API server authorizes to get /metrics (see metrics_reader_token).
    metrics_token: str | None = None

    def scrape(self) -> str:
        """``/metrics`` as an authorized scraper sees it."""
        return scrape_metrics(int(self.env["PROCON_METRICS_PORT"]), self.metrics_token)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def crash(self) -> None:
        """SIGKILL: no clean-up, no chance to finish what it was doing."""
        self.process.kill()
        self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.process = start_operator(self.env, self.log_path, self.args).process


def scrape_metrics(port: int, token: str | None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=5)
    response.raise_for_status()
    return response.text


def metrics_reader_token(kubectl: Kubectl, *, role: str = "procon-tests-metrics-reader") -> str:
    """A token of a ServiceAccount bound to a ClusterRole that may get ``/metrics`` (as a
    Prometheus' would be), for scraping an operator, which asks the API server about every scraper."""
    namespace, name = "procon-scrapers", "scraper"
    kubectl.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, namespace="default"
    )
    kubectl.apply(
        [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "procon-tests-metrics-reader"},
                "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": f"{role}-{namespace}-{name}"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            },
        ],
        namespace=namespace,
    )
    return kubectl.run("create", "token", name, "-n", namespace, "--duration=2h").stdout.strip()


def start_operator(env: dict[str, str], log_path: Path, args: Sequence[str] = ()) -> OperatorProcess:
    offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "procon.cli", "run", "--log-level=debug", *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    operator = OperatorProcess(process, log_path, env, tuple(args))

    def started() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the operator exited with {process.returncode}:\n{operator.log()[-3000:]}")
        return "procon started" in operator.log()[offset:]

    wait_for(started, timeout=30, what="the operator to start")
    return operator


@dataclass
class StripeAccount:
    """A fresh emulated Stripe account for one test, so tests never share endpoint caps."""

    emulator: StripeEmulator
    id: str = field(default_factory=lambda: f"acct_1T{_token(12)}")
    keys: list[str] = field(default_factory=list)
    connected: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.emulator.add_accounts({"accounts": [{"id": self.id, "connected_accounts": self.connected}]})

    def key(
        self,
        permissions: Sequence[str] = (),
        *,
        kind: str = "rk",
        mode: str = "test",
        expired: bool = False,
        connect_permissions: Sequence[str] = (),
    ) -> str:
        value = f"{kind}_{mode}_51{_token(40)}"
        entry: dict[str, Any] = {"key": value, "expired": expired}
        if kind == "rk":
            entry["permissions"] = list(permissions)
            entry["connect_permissions"] = list(connect_permissions)
        self.emulator.add_accounts({"accounts": [{"id": self.id, "keys": [entry]}]})
        self.keys.append(value)
        return value

    def endpoints(self, livemode: bool = False) -> list[dict[str, Any]]:
        return self.emulator.endpoints(self.id, livemode=livemode)


def connection(
    name: str,
    *,
    url: str = "https://hooks.example.com/stripe",
    events: Sequence[str] = ("charge.succeeded", "payout.paid"),
    permissions: Sequence[str] = ANALYTICS_PERMISSIONS,
    mode: str = "test",
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "procon.dev/v1alpha1",
        "kind": "ProcessorConnection",
        "metadata": {"name": name},
        "spec": {
            "processor": "stripe",
            "mode": mode,
            "credentialsSecretRef": {"name": f"{name}-key"},
            "requiredPermissions": list(permissions),
            "webhook": {"url": url, "events": list(events), "signingSecretRef": {"name": f"{name}-webhook"}},
        },
    }
    for key, value in spec.items():
        if key == "webhook":
            body["spec"]["webhook"].update(value)
        else:
            body["spec"][key] = value
    return body


# The label a credentials Secret opts in with: procon reads no other Secret.
CREDENTIALS_LABELS = {"procon.dev/credentials": "true"}


def key_secret(name: str, key: str, *, opted_in: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{name}-key", "labels": dict(CREDENTIALS_LABELS) if opted_in else {}},
        "stringData": {"apiKey": key},
    }


def condition(kubectl: Kubectl, namespace: str, name: str, type_: str) -> dict[str, Any] | None:
    obj = kubectl.get_json("pconn", name, "-n", namespace)
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return None


def wait_condition(
    kubectl: Kubectl,
    namespace: str,
    name: str,
    type_: str,
    status: str,
    reason: str | None = None,
    *,
    timeout: float = 30,
) -> dict[str, Any]:
    """Wait for the condition's ``status`` (and ``reason``) at the current generation; return the object."""

    def probe() -> dict[str, Any] | None:
        obj = kubectl.get_json("pconn", name, "-n", namespace)
        st = obj.get("status") or {}
        if st.get("observedGeneration") != obj["metadata"]["generation"]:
            return None
        for c in st.get("conditions") or []:
            if c["type"] == type_ and c["status"] == status and (reason is None or c["reason"] == reason):
                return dict(obj)
        return None

    def describe() -> str:
        obj = kubectl.get_json("pconn", name, "-n", namespace)
        return str((obj.get("status") or {}).get("conditions"))

    try:
        return wait_for(probe, timeout=timeout, what=f"{name} {type_}={status} {reason or ''}")
    except AssertionError as error:
        raise AssertionError(f"{error}\nconditions: {describe()}") from None


# The garbage collector starts following a CRD's objects only at its next discovery sync
# (kube-controller-manager runs one every 30 s), so on a control plane that installed the CRD
# moments ago an owner's dependents can take that long, plus the collection itself, to go.
GARBAGE_COLLECTION_TIMEOUT = 90.0


def signing_secret(kubectl: Kubectl, namespace: str, name: str) -> dict[str, str]:
    secret = kubectl.get_json("secret", f"{name}-webhook", "-n", namespace)
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def events(kubectl: Kubectl, namespace: str, name: str) -> list[dict[str, Any]]:
    listed = kubectl.get_json("events", "-n", namespace, f"--field-selector=involvedObject.name={name}")
    return list(listed["items"])


def operator_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    env = dict(base)
    env.update(extra)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.pop("PROCON_NAMESPACES", None)
    return env


BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
CHECKOUT_SCOPES = [
    "flow:workflows",
    "disputes:view",
    "reports:view",
    "payments:search",
    "files:retrieve",
]


def _base32(length: int) -> str:
    return "".join(secrets.choice(BASE32) for _ in range(length))


@dataclass
class CheckoutClient:
    """A fresh emulated Checkout.com account (client) for one test, with its own host prefix."""

    emulator: Any
    id: str = field(default_factory=lambda: f"cli_{_base32(26)}")
    entities: list[str] = field(default_factory=lambda: [f"ent_{_base32(26)}", f"ent_{_base32(26)}"])
    channels: list[str] = field(default_factory=lambda: [f"pc_{_base32(26)}"])
    mode: str = "sandbox"

    def __post_init__(self) -> None:
        self._add({})

    def _add(self, keys: dict[str, Any]) -> None:
        client = {
            "id": self.id,
            "mode": self.mode,
            "entities": self.entities,
            "processing_channels": self.channels,
            **keys,
        }
        self.emulator.add_clients({"clients": [client]})

    def secret_key(self, scopes: Sequence[str] | None = None, *, expired: bool = False) -> str:
        prefix = "sk_sbox_" if self.mode == "sandbox" else "sk_"
        key = prefix + _base32(27)
        entry: dict[str, Any] = {"key": key, "expired": expired}
        if scopes is not None:
            entry["scopes"] = list(scopes)
        self._add({"secret_keys": [entry]})
        return key

    def access_key(self, scopes: Sequence[str] | None = None) -> tuple[str, str]:
        key_id, secret = f"ack_{_base32(26)}", _token(40)
        entry: dict[str, Any] = {"id": key_id, "secret": secret}
        if scopes is not None:
            entry["scopes"] = list(scopes)
        self._add({"access_keys": [entry]})
        return key_id, secret

    def workflows(self) -> list[dict[str, Any]]:
        return list(self.emulator.workflows(self.id))


def checkout_connection(
    name: str,
    client: CheckoutClient,
    *,
    url: str = "https://hooks.example.com/checkout",
    events: Sequence[str] = ("Gateway", "Disputes"),
    permissions: Sequence[str] = CHECKOUT_SCOPES,
    mode: str = "test",
    entities: Sequence[str] = (),
    processing_channels: Sequence[str] = (),
    **spec: Any,
) -> dict[str, Any]:
    body = connection(name, url=url, events=events, permissions=permissions, mode=mode, **spec)
    body["spec"]["processor"] = "checkout"
    body["spec"]["checkout"] = {"clientId": client.id, "entities": list(entities)}
    if processing_channels:
        body["spec"]["checkout"]["processingChannels"] = list(processing_channels)
    return body


def checkout_secret(
    name: str, *, secret_key: str | None = None, access_key: tuple[str, str] | None = None
) -> dict[str, Any]:
    data: dict[str, str] = {}
    if secret_key:
        data["secretKey"] = secret_key
    if access_key:
        data["accessKeyId"], data["accessKeySecret"] = access_key
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{name}-key", "labels": dict(CREDENTIALS_LABELS)},
        "stringData": data,
    }


def wait_until_nothing_is_being_deleted(kubectl: Kubectl, timeout: float = 60) -> None:
    """Wait until no namespace is terminating and no connection is being deleted: earlier tests'
    clean-ups talk to the emulators, which a test that holds the emulator's writes cannot have."""

    def quiet() -> bool:
        namespaces = kubectl.get_json("namespaces")["items"]
        connections = kubectl.get_json("pconn", "--all-namespaces")["items"]
        return all(n["status"]["phase"] == "Active" for n in namespaces) and not any(
            c["metadata"].get("deletionTimestamp") for c in connections
        )

    wait_for(quiet, timeout=timeout, what="earlier tests' connections to be cleaned up")


def wait_for_events(
    kubectl: Kubectl, namespace: str, name: str, reason: str, count: int = 1, timeout: float = 10
) -> list[dict[str, Any]]:
    """The connection's events with ``reason``, once there are at least ``count``: an event is
    posted after the change it reports, so a test that saw the change waits for it."""

    def found() -> list[dict[str, Any]] | None:
        matching = [e for e in events(kubectl, namespace, name) if e["reason"] == reason]
        return matching if len(matching) >= count else None

    return wait_for(found, timeout=timeout, what=f"{count} {reason} event(s) for {name}")
