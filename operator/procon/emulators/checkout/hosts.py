"""Which account a request is for, from its ``Host`` header.

Checkout.com serves each account on its own hosts: the first eight characters
of the account's ``cli_`` client id, as a subdomain of the API and OAuth hosts
(``https://vkuhvk4v.api.checkout.com``, ``https://vkuhvk4v.access.checkout.com``).
The emulator has one address, so it reads the prefix from the ``Host`` header:

- an IP literal, ``localhost``, a single label, or a name whose first label is
  one of Checkout.com's service labels (``api``, ``access``, ``balances``, ...)
  is the classic, unprefixed host;
- any other name's first label is the account prefix: ``vkuhvk4v.api.checkout.test``,
  ``vkuhvk4v.anything.at.all``.

Two more things are read from the name. Its environment: Checkout.com runs
sandbox and production on separate hosts (``api.sandbox.checkout.com`` and
``api.checkout.com``), so a ``sandbox`` label means a sandbox host and a
``checkout.com`` name without one a production host; any other name (an IP
address, ``api.checkout.test``) says neither and serves both. And whether it is
the balances host, which is never prefixed: first label ``balances``.
"""

from __future__ import annotations

import ipaddress
import re

# The labels Checkout.com's fixed hosts start with (api., access., balances., files., transfers.,
# forward.), plus names a local setup may use; none of them can be an account prefix.
SERVICE_LABELS = frozenset(
    {"api", "access", "balances", "files", "transfers", "forward", "sandbox", "localhost", "www"}
)
PREFIX_LENGTH = 8
SANDBOX_LABEL = "sandbox"
PRODUCTION_DOMAIN = "checkout.com"
BALANCES_LABEL = "balances"
# The official SDKs accept a subdomain matching this (4.8.1 raises on anything else).
_SUBDOMAIN = re.compile(r"^(?:pl-)?[a-z0-9]+$")


def client_prefix(client_id: str) -> str:
    """``cli_vkuhvk4vjn2edkps7dfsq6emqm`` -> ``vkuhvk4v``: the documented base-URL prefix."""
    if not client_id.startswith("cli_"):
        raise ValueError(f"not a client id: {client_id!r}")
    return client_id[4 : 4 + PREFIX_LENGTH]


def hostname(host_header: str | None) -> str:
    """The host name of a ``Host`` header, lower case, without port, brackets or trailing dot."""
    host = (host_header or "").strip().lower()
    if host.startswith("["):  # [::1]:8080
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def environment(host_header: str | None) -> str | None:
    """``"sandbox"`` or ``"production"`` for a host that names its environment, None for one that does not.

    Checkout.com's sandbox hosts are its production host names with a ``sandbox`` label
    (docs/processors/checkout.md, "Hosts": ``api.sandbox.checkout.com``,
    ``{prefix}.access.sandbox.checkout.com``,
    ``balances.sandbox.checkout.com``). Names outside ``checkout.com`` without that label say
    nothing, so the emulator's own names (``api.checkout.test``, an IP address) serve both
    environments, telling them apart by the credential alone.
    """
    host = hostname(host_header)
    if not host or _is_ip(host):
        return None
    labels = host.split(".")
    if SANDBOX_LABEL in labels:
        return "sandbox"
    if host == PRODUCTION_DOMAIN or host.endswith("." + PRODUCTION_DOMAIN):
        return "production"
    return None


def is_balances_host(host_header: str | None) -> bool:
    """Whether the host is the balances host (``balances.checkout.com``, ``balances.sandbox...``).

    Balances are served on their own host, which is never account-prefixed (docs/processors/checkout.md,
    "Hosts": the SDKs apply the subdomain only to the API and OAuth hosts), so its first label is
    ``balances``.
    """
    return hostname(host_header).split(".")[0] == BALANCES_LABEL


def account_prefix(host_header: str | None) -> str | None:
    """The account prefix a ``Host`` header names, or None for an unprefixed host.

    A ``pl-`` label (the SDKs allow it; probably private link) names
    the same account as the prefix after it.
    """
    host = hostname(host_header)
    if not host or _is_ip(host) or ":" in host:
        return None
    labels = host.split(".")
    if len(labels) < 2 or labels[0] in SERVICE_LABELS:
        return None
    first = labels[0]
    if not _SUBDOMAIN.match(first):
        # Not something an SDK would send as a subdomain: still a prefix, just one no account has.
        return first
    # ASSUMPTION: "pl-{prefix}" addresses the account "{prefix}" (what pl- means is unconfirmed).
    return first.removeprefix("pl-")
