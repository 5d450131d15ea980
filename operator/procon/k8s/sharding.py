"""Shards: several operators, each reconciling the connections its label selector selects.

As Flux shards its controllers (``--watch-label-selector``), an operator started with
``PROCON_SHARD_SELECTOR`` watches, and so reconciles, only the ProcessorConnections the
selector selects: kopf sends the selector with its list and watch requests, so the API
server filters and the operator never sees another shard's connections. The usual scheme
labels each connection ``procon.dev/shard=<shard>``, runs one operator per shard with
``procon.dev/shard=<shard>``, and the unsharded one with ``!procon.dev/shard`` (every
connection without the label); the chart does that from its ``shards`` list.

Each shard elects its own leader: its lease name is derived from what it reconciles
(:func:`default_lease_name`), so two shards never wait for each other's lease.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence

from procon.settings import SettingsError

SHARD_LABEL = "procon.dev/shard"
SHARD_SELECTOR_ENV = "PROCON_SHARD_SELECTOR"

# Label keys and values, as Kubernetes validates them: a name of at most 63 characters,
# optionally after a DNS subdomain prefix and a "/".
_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
_KEY = rf"(?:{_PREFIX}/)?{_NAME}"
_VALUE = rf"(?:{_NAME})?"
_REQUIREMENT = re.compile(
    rf"""\s*(?:
        !\s*(?P<absent>{_KEY})
      | (?P<key>{_KEY})\s*(?:
            (?P<op>==|=|!=)\s*(?P<value>{_VALUE})
          | \s(?P<setop>in|notin)\s*\(\s*(?P<values>{_VALUE}(?:\s*,\s*{_VALUE})*)\s*\)
        )?
    )\s*""",
    re.VERBOSE,
)


def _requirements(selector: str) -> list[str]:
    """Split at the commas outside parentheses (``a in (x,y),b`` is two requirements)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def validate_selector(selector: str, *, name: str = SHARD_SELECTOR_ENV) -> str:
    """The selector, stripped, if it is a Kubernetes label selector; a SettingsError naming it if not.

    Checked here, at start-up, rather than by the API server at the first list, so a typo
    stops the operator with a message instead of leaving it retrying a 400 it cannot fix.
    """
    selector = selector.strip()
    if not selector:
        return ""
    for requirement in _requirements(selector):
        match = _REQUIREMENT.fullmatch(requirement)
        if match is None:
            raise SettingsError(
                f"{name} must be a label selector (e.g. {SHARD_LABEL}=shard1, or !{SHARD_LABEL}), "
                f"got {selector!r}"
            )
        key = match.group("absent") or match.group("key")
        prefix, _, _ = key.rpartition("/")
        if len(prefix) > 253:
            raise SettingsError(f"{name}: the label key prefix of {key!r} is longer than 253 characters")
    return selector


def shard_selector(env: Mapping[str, str] | None = None) -> str:
    """``PROCON_SHARD_SELECTOR``: the label selector of the connections this operator reconciles
    (default: every connection)."""
    env = os.environ if env is None else env
    return validate_selector(env.get(SHARD_SELECTOR_ENV, ""))


def default_lease_name(selector: str, namespaces: Sequence[str] = ()) -> str:
    """``procon`` for the operator of every connection; a name derived from the selector and the
    watched namespaces otherwise, so each shard, and each operator watching other namespaces,
    holds a lease of its own."""
    if not selector and not namespaces:
        return "procon"
    scope = f"{selector}\n{','.join(sorted(namespaces))}"
    return f"procon-{hashlib.sha256(scope.encode()).hexdigest()[:10]}"
