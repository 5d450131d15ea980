"""Operator-level configuration, from the environment.

Everything that decides where credentials are sent lives here, never in a
ProcessorConnection: a user who may create connections in a namespace must
not be able to point the operator's processor calls (and the keys they
carry) at a server of their choosing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse


class SettingsError(ValueError):
    """A setting has a value the operator cannot use; the message names it."""


def url_setting(env: Mapping[str, str], name: str, default: str) -> str:
    """An http(s) URL from ``env[name]`` (``default`` when unset), without a trailing slash."""
    value = env.get(name, default).rstrip("/")
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SettingsError(f"{name} must be an http(s) URL, got {value!r}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {raw!r}")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"{name} must be a whole number of at least 1, got {raw!r}")
    return int(raw)


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > 65535:
        raise SettingsError(f"{name} must be a port number (0 to turn it off), got {raw!r}")
    return int(raw)


# Short, and no "/": it fits every place a driver writes the identity (a metadata value
# of limited length; a segment of a webhook's name, whose segments "/" separates; see
# docs/processors/*.md). A kube-system namespace UID has this shape too.
CLUSTER_NAME_PATTERN = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
# What every procon before per-cluster identities wrote when nothing was configured.
LEGACY_DEFAULT_CLUSTER_NAME = "default"


def _cluster_name(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    if not value:
        return None
    if not CLUSTER_NAME_PATTERN.fullmatch(value):
        raise SettingsError(
            f"{name} must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending "
            f"with a letter or digit, got {value!r}"
        )
    return value


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _tls_pair(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    cert = (env.get("PROCON_METRICS_CERT_FILE") or "").strip() or None
    key = (env.get("PROCON_METRICS_KEY_FILE") or "").strip() or None
    if (cert is None) != (key is None):
        raise SettingsError("PROCON_METRICS_CERT_FILE and PROCON_METRICS_KEY_FILE go together")
    return cert, key


def _processor_env(env: Mapping[str, str]) -> dict[str, str]:
    """The processors' own variables that are set, each processor's checked by the processor."""
    from procon import processors

    found: dict[str, str] = {}
    for plugin in processors.plugins():
        own = {s.name: env[s.name] for s in plugin.settings if env.get(s.name)}
        plugin.describe(own)  # raises SettingsError naming a value it cannot use
        found.update(own)
    return found


@dataclass(frozen=True)
class OperatorSettings:
    """What the operator is configured with; see :meth:`from_env` for the variables."""

    # Each processor's own settings (its PROCON_<NAME>_* variables, as set), read by its driver:
    # procon.processors.<name>.settings says which there are and what they mean.
    processor_env: Mapping[str, str] = field(default_factory=dict)
    drift_interval: float = 300.0
    # How long a verification (credentials, account, permissions) is reused while the Secret and
    # the spec are unchanged and no call is refused (procon.reconcile.reconciler).
    permission_recheck_interval: float = 86400.0
    # How long a driver shares what it learnt about a key with every connection using that key.
    permission_cache_ttl: float = 600.0
    # None: this cluster's identity is the UID of its kube-system namespace, read at start-up.
    cluster_name: str | None = None
    namespaces: tuple[str, ...] = field(default=())
    metrics_port: int = 9090
    # A TLS certificate and key for /metrics (both or neither); without them it is plain HTTP.
    metrics_cert_file: str | None = None
    metrics_key_file: str | None = None
    watch_quiet_seconds: float = 300.0
    reconcile_timeout: float = 120.0
    # Enough passes in flight to keep pace with a fleet being applied: a pass waits on the API
    # server and the processor far longer than it computes, so the rate is workers / latency
    # (docs/design/work-queue.md, "How many workers").
    reconcile_workers: int = 48
    # Processor requests in flight at once, over every account and processor.
    max_concurrent_calls: int = 32
    log_level: str = "info"
    log_format: str = "text"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorSettings:
        """Read ``PROCON_*`` variables:

        - each processor's own, such as where its API is (listed in its package,
          ``procon.processors.<name>.settings``, and checked here);
        - ``PROCON_DRIFT_INTERVAL``: seconds between drift checks of a connection (default 300, jittered);
        - ``PROCON_PERMISSION_RECHECK_INTERVAL``: the longest a connection's verification (credentials
          valid, their account, permissions granted) is reused without asking the processor again
          (default 86400). It is asked at once when the credentials Secret (its resourceVersion) or
          the spec (its generation) changes, and on the pass after a processor call is refused for the
          credentials or a permission; so a drift check of an unchanged connection costs only the
          account's shared listing. The time of the last verification is in status.verifiedCredentials;
        - ``PROCON_PERMISSION_CACHE_TTL``: seconds what a driver learnt about a key (its account, the
          permissions it was seen to hold) serves the other connections using the same key (default
          600, never more than the recheck interval);
        - ``PROCON_CLUSTER_NAME``: this cluster's identity, written on every webhook procon creates,
          so two clusters sharing a processor account never mistake each other's webhooks for their
          own (default: the UID of the ``kube-system`` namespace, unique per cluster; a name is
          needed only to keep the identity across a rebuild of the cluster, and must then be unique
          among the clusters sharing an account);
        - ``PROCON_NAMESPACES``: comma-separated namespaces to watch (default: all);
        - ``PROCON_METRICS_PORT``: where ``/metrics`` is served (default 9090; 0: not served), to
          scrapers the API server authenticates and authorizes (see procon.k8s.metrics_server);
        - ``PROCON_METRICS_CERT_FILE``, ``PROCON_METRICS_KEY_FILE``: serve it over TLS with these;
        - ``PROCON_WATCH_QUIET_SECONDS``: liveness fails when a connection changed this long ago
          and its watch event has still not arrived (default 300);
        - ``PROCON_RECONCILE_TIMEOUT``: seconds one reconcile (or clean-up) of a connection may take
          before it is abandoned and reported as ``ReconcileTimedOut`` (default 120), so a processor
          answering slowly or without end cannot hold a connection;
        - ``PROCON_RECONCILE_WORKERS``: how many connections are reconciled at once (default 48);
          the rest wait on the work queue, changes before retries before drift checks;
        - ``PROCON_MAX_CONCURRENT_CALLS``: processor requests in flight at once, over every
          account (default 32): a restart that wakes every connection opens no more sockets than
          this; each account keeps to its processor's rate besides (procon.processors.calls);
        - ``PROCON_LOG_LEVEL`` (debug|info|warning|error) and ``PROCON_LOG_FORMAT`` (text|json).
        """
        env = os.environ if env is None else env
        return cls(
            processor_env=_processor_env(env),
            drift_interval=_seconds(env, "PROCON_DRIFT_INTERVAL", cls.drift_interval),
            permission_recheck_interval=_seconds(
                env, "PROCON_PERMISSION_RECHECK_INTERVAL", cls.permission_recheck_interval
            ),
            permission_cache_ttl=_seconds(env, "PROCON_PERMISSION_CACHE_TTL", cls.permission_cache_ttl),
            cluster_name=_cluster_name(env, "PROCON_CLUSTER_NAME"),
            namespaces=tuple(n.strip() for n in env.get("PROCON_NAMESPACES", "").split(",") if n.strip()),
            metrics_port=int(_seconds(env, "PROCON_METRICS_PORT", cls.metrics_port))
            if env.get("PROCON_METRICS_PORT", "").strip() not in ("0",)
            else 0,
            metrics_cert_file=_tls_pair(env)[0],
            metrics_key_file=_tls_pair(env)[1],
            watch_quiet_seconds=_seconds(env, "PROCON_WATCH_QUIET_SECONDS", cls.watch_quiet_seconds),
            reconcile_timeout=_seconds(env, "PROCON_RECONCILE_TIMEOUT", cls.reconcile_timeout),
            reconcile_workers=_count(env, "PROCON_RECONCILE_WORKERS", cls.reconcile_workers),
            max_concurrent_calls=_count(env, "PROCON_MAX_CONCURRENT_CALLS", cls.max_concurrent_calls),
            log_level=_choice(env, "PROCON_LOG_LEVEL", cls.log_level, ("debug", "info", "warning", "error")),
            log_format=_choice(env, "PROCON_LOG_FORMAT", cls.log_format, ("text", "json")),
        )
