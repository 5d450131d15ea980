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

The rest of the name is ignored: sandbox and production are told apart by the
credential, not by the host.
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


def account_prefix(host_header: str | None) -> str | None:
    """The account prefix a ``Host`` header names, or None for an unprefixed host.

    A ``pl-`` label (the SDKs allow it; the reference guesses private link) names
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
    # ASSUMPTION: "pl-{prefix}" addresses the account "{prefix}" (the reference marks pl- as [U]).
    return first.removeprefix("pl-")
