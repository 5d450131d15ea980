"""Which connections may use a credentials Secret: the Secret's writer decides.

Creating a ProcessorConnection must not be a way to use a key one cannot
read: whoever may create connections in a namespace could otherwise point
one at any Secret there and subscribe an outside URL to the account's
events. So a Secret is usable as credentials only when whoever wrote it said
so:

- it carries the label ``procon.dev/credentials: "true"`` (the operator's
  Secret watch and its reads select on this label on the server, so the
  data of any other Secret never reaches it);
- optionally, the annotation ``procon.dev/allowed-connections`` lists the
  connections (names in the Secret's namespace, comma-separated) that may
  use it; without it, any connection in the namespace may.
"""

from __future__ import annotations

from collections.abc import Mapping

from procon.reconcile.conditions import Verdict

CREDENTIALS_LABEL = "procon.dev/credentials"
CREDENTIALS_LABEL_VALUE = "true"
# The server-side selector of the Secret watch and of credentials reads.
CREDENTIALS_SELECTOR = f"{CREDENTIALS_LABEL}={CREDENTIALS_LABEL_VALUE}"
ALLOWED_CONNECTIONS = "procon.dev/allowed-connections"

NOT_OPTED_IN = "CredentialsSecretNotOptedIn"
NOT_ALLOWED = "CredentialsSecretNotAllowed"


def allowed_connections(annotations: Mapping[str, str]) -> frozenset[str] | None:
    """The connection names the annotation lists; None when the Secret does not narrow its use."""
    raw = annotations.get(ALLOWED_CONNECTIONS)
    if raw is None:
        return None
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def refusal(
    secret: str, *, opted_in: bool, annotations: Mapping[str, str], connection: str
) -> Verdict | None:
    """Why ``connection`` may not use the Secret ``secret``, or None when it may."""
    if not opted_in:
        return Verdict(
            "False",
            NOT_OPTED_IN,
            f'Secret {secret} is not labelled {CREDENTIALS_LABEL}: "{CREDENTIALS_LABEL_VALUE}"; '
            "procon reads only credentials Secrets that opt in with this label",
        )
    allowed = allowed_connections(annotations)
    if allowed is not None and connection not in allowed:
        listed = ", ".join(sorted(allowed)) or "none"
        return Verdict(
            "False",
            NOT_ALLOWED,
            f"Secret {secret} may be used only by the connections its {ALLOWED_CONNECTIONS} "
            f"annotation lists ({listed}), and {connection} is not one of them",
        )
    return None
