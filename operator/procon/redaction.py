"""Keep key material and account identifiers out of everything people read.

Processors echo parts of keys and account ids in their error messages
(Stripe: ``The provided key 'rk_test_***...qs8Kgd' ... on account
'acct_1PJB...'``), and exception text flows into conditions, events and logs.
So every processor message passes through :func:`redact` before it leaves a
driver, and a logging filter runs it again on every log record as a second
line of defence.

Two mechanisms, because neither suffices alone:

- patterns for every credential shape we know (Stripe and Checkout.com keys,
  signing secrets, bearer tokens and JWTs) and for account ids;
- the exact values of the secrets this process has seen (registered with
  :func:`register_secret`), which catches any shape the patterns miss.
"""

from __future__ import annotations

import base64
import logging
import re
import threading

# Stripe keys (sk_/rk_/pk_ test|live, masked or not), Checkout.com keys
# (sk_sbox_..., pk_..., UUID-shaped ABC keys, OAuth ack_ ids), webhook signing
# secrets, bearer credentials, JWTs.
_CREDENTIAL_PATTERNS = [
    re.compile(r"\b(?:sk|rk|pk)_(?:test|live|org)_[A-Za-z0-9*.…]+"),
    re.compile(r"\b(?:sk|pk)_(?:sbox_)?[a-z2-7*#$=]{20,}"),
    re.compile(
        r"\b(?:sk|pk)_(?:test_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    ),
    re.compile(r"\back_[a-z0-9]{8,}"),
    re.compile(r"\bwhsec_[A-Za-z0-9*]+"),
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
]
_ACCOUNT_PATTERN = re.compile(r"\bacct_([A-Za-z0-9]+)")

REDACTED = "[REDACTED]"

_known_lock = threading.Lock()
_known_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a secret value so any later text containing it is redacted.

    Values shorter than 8 characters are ignored: redacting them would mangle
    ordinary words and they are not credentials worth the name.
    """
    if len(value) >= 8:
        # Secret data travels base64-encoded in Kubernetes API bodies.
        encoded = base64.b64encode(value.encode()).decode()
        with _known_lock:
            _known_secrets.update((value, encoded, encoded.rstrip("=")))


def mask_account(account_id: str) -> str:
    """``acct_1PJBLEBBLEfV`` -> ``acct_…LEfV``: enough to tell accounts apart, not to name one."""
    match = _ACCOUNT_PATTERN.fullmatch(account_id)
    if not match:
        return account_id
    return f"acct_…{match.group(1)[-4:]}"


def redact(text: str) -> str:
    """``text`` with credentials removed and account ids masked."""
    with _known_lock:
        known = sorted(_known_secrets, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, REDACTED)
    for pattern in _CREDENTIAL_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return _ACCOUNT_PATTERN.sub(lambda m: mask_account(m.group(0)), text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the rendered message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose args do not format is passed through untouched
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks carry exception text verbatim; render and redact them here.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def install_log_redaction() -> None:
    """Redact every record that reaches a root handler, whoever logged it."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
