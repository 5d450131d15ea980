"""Checks on key material read from a Secret, before any of it reaches a processor call.

No processor key contains whitespace or anything outside printable ASCII.
Leading or trailing whitespace is the usual copy-paste mistake (``echo``
adds a line break), so it is removed and reported. Anything else inside the
value is refused: a line break in a value that becomes an ``Authorization``
header would be header injection, and httpx refusing it later reads as "the
processor did not answer". The messages say what is wrong and where, never
the value.
"""

from __future__ import annotations

from dataclasses import dataclass

from procon.processors.base import CredentialsRejected

_PRINTABLE = frozenset(chr(c) for c in range(0x21, 0x7F))
_LINE_BREAKS = frozenset("\r\n\u2028\u2029\x85\x0b\x0c")


@dataclass(frozen=True)
class KeyValue:
    """A value that passed the checks; ``stripped`` when surrounding whitespace was removed."""

    value: str
    stripped: bool


def _what(char: str) -> str:
    if char in _LINE_BREAKS:
        return "a line break"
    if char.isspace():
        return "whitespace"
    if char == "\ufffd":
        return "bytes that are not UTF-8"
    if ord(char) < 0x20 or ord(char) == 0x7F:
        return "a control character"
    return "a character outside printable ASCII"


def check(field: str, raw: str) -> KeyValue:
    """``raw`` without surrounding whitespace; :class:`CredentialsRejected` (InvalidCredentials) when
    what is left holds anything but printable ASCII. Positions count from 1 in the stripped value."""
    value = raw.strip()
    for position, char in enumerate(value, start=1):
        if char not in _PRINTABLE:
            raise CredentialsRejected(
                "InvalidCredentials",
                f"the value of {field} contains {_what(char)} at position {position}; "
                "a key is one line of printable ASCII without spaces",
            )
    return KeyValue(value, stripped=value != raw)
