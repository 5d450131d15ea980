"""Keep key material, account identifiers and URL credentials out of everything people read.

Processors echo parts of keys and account ids in their error messages
(``The provided key 'rk_test_***...qs8Kgd' ... on account 'acct_1PJB...'``),
and exception text flows into conditions, events and logs.
So every processor message passes through :func:`redact` before it leaves a
driver, the reconciler redacts every message again for the connection it
concerns, and a logging filter redacts every log record as a last line of
defence.

Three mechanisms, because none suffices alone:

- patterns for every credential shape we know (each processor's keys, whatever
  follows their prefix, and signing secrets, from its package's ``PLUGIN``;
  bearer tokens and JWTs here) and for account ids;
- URLs lose what can carry a credential: userinfo (``https://user:pass@``),
  query values and fragments. A webhook URL is still sent to the processor
  whole (it is the user's URL); it is only never *shown* whole. Links procon
  builds itself (a processor's dashboard's) keep their query: it names
  permissions, nothing secret;
- the exact values of the secrets a connection uses (its credential fields,
  its signing secret), remembered per connection with :func:`remember`, which
  catches any shape the patterns miss.

Remembered values are scoped, because a tenant chooses what its Secret holds:
a value another tenant registered must not blank words out of this tenant's
events. :func:`redact` with ``scope`` applies that connection's values (and
the ``shared`` ones procon obtained itself, such as OAuth tokens) only. The
log filter does the same for a record that names its connection's scope
(:data:`SCOPE_ATTRIBUTE`), and applies every value to any other record (a
traceback, a library's line), which may concern any connection.

The register is bounded (:data:`MAX_VALUES` values of at most
:data:`MAX_VALUE_LENGTH` characters): past the bound, the connections
registered least recently are dropped first. Their values are then covered
only by the patterns, until their next reconcile registers them again. A
value too long to register (no processor credential is) is likewise left to
the patterns.
"""

from __future__ import annotations

import base64
import functools
import logging
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit

REDACTED = "[REDACTED]"

# Shorter values are not registered: redacting them would mangle ordinary
# words, and they are not credentials worth the name.
MIN_VALUE_LENGTH = 8
# Shared values apply to every connection's text, so they must be unmistakable:
# a processor answering with a short "token" cannot blank out common words.
SHARED_MIN_LENGTH = 16
MAX_VALUE_LENGTH = 4096
# Counted with their base64 forms: 10,000 secrets, about 13 MiB (bench/redaction_cost.py).
MAX_VALUES = 20_000

# Characters a key may be made of, masks ('*', '…') included. '-' and '_'
# too, so that a prefix takes the whole key with it whatever its shape (a
# UUID after ``sk_test_``), never leaving the rest in the clear.
KEYISH = r"[A-Za-z0-9*.…#$=_-]"
# Each shape with a literal that every match contains: a pattern runs only on
# texts holding its literal, which most texts do not (a substring test costs a
# fraction of a regex scan). Each consumes as much as it can.
# The processors' own shapes come from their packages (:func:`_patterns`); these are everyone's.
_COMMON_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # HTTP credentials, in any case (their literal is looked for in the lower-cased text).
    ("bearer", re.compile(r"(?i)(?<![A-Za-z0-9])bearer\s+[A-Za-z0-9._~+/=-]{8,}")),
    ("basic", re.compile(r"(?i)(?<![A-Za-z0-9])basic\s+[A-Za-z0-9._~+/=-]{8,}")),
    # JWTs.
    ("eyJ", re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
)
# A URL as it appears in running text, up to whitespace or a quote. Lower-case
# schemes only: the API server admits no other in a webhook URL.
_URL = re.compile(r"""https?://[^\s"'<>`]+""")


@functools.cache
def _patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Every processor's credential shapes, then the common ones (read once, on first use)."""
    from procon import processors

    shapes = [shape for p in processors.plugins() for shape in p.redaction.credentials]
    return (*shapes, *_COMMON_PATTERNS)


@functools.cache
def _account_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    from procon import processors

    return tuple(shape for p in processors.plugins() for shape in p.redaction.account_ids)


@functools.cache
def _own_links() -> tuple[str, ...]:
    """Links procon builds itself; their query names permissions, nothing secret."""
    from procon import processors

    return tuple(link for p in processors.plugins() for link in p.redaction.own_links)


def redact_url(url: str) -> str:
    """``url`` as it may be shown: no userinfo, no query values, no fragment.

    ``https://u:p@hooks.example.com/x?token=abc#f`` ->
    ``https://[REDACTED]@hooks.example.com/x?token=[REDACTED]#[REDACTED]``:
    where the credentials were stays visible, so a person can tell URLs apart.
    """
    if url.startswith(_own_links()):
        return url
    scheme, _, rest = url.partition("://")
    authority_end = min(
        (i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest)
    )
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        authority = REDACTED + "@" + authority.rpartition("@")[2]
    tail, hash_, fragment = tail.partition("#")
    path, question, query = tail.partition("?")
    if query:
        query = "&".join(_redact_parameter(p) for p in query.split("&"))
    return f"{scheme}://{authority}{path}{question}{query}{hash_}{REDACTED if fragment else ''}"


def _redact_parameter(parameter: str) -> str:
    name, equals, value = parameter.partition("=")
    if not equals:
        return REDACTED if name else name  # ``?abc123secret``: a bare value
    return f"{name}={REDACTED}" if value else parameter


class _Index:
    """Values findable in a text in time that does not grow with their number.

    Every value has at least :data:`MIN_VALUE_LENGTH` (8) characters, so each
    occurrence covers a whole 4-character gram that starts at a multiple of 4,
    at one of any four consecutive offsets of the value that leave a gram's room
    after them. The index maps the grams at the last four such offsets (the
    value's tail) to the value; a search reads one gram every 4 characters of the
    text and checks only the values indexed under it. The tail, not the head:
    values of one kind share their head (every signing secret starts
    ``whsec_``, every test key ``rk_test_``), so grams of the head would each
    name every value of that kind, and adding, removing and finding a value
    would cost time in proportion to their number. A gram maps to one value (a
    str) or, rarely, to several (a tuple): about 100 bytes a value.
    """

    GRAM = 4

    def __init__(self) -> None:
        self._grams: dict[str, str | tuple[str, ...]] = {}
        self._refs: Counter[str] = Counter()

    def add(self, value: str) -> None:
        self._refs[value] += 1
        if self._refs[value] > 1:
            return
        for gram in self._grams_of(value):
            held = self._grams.get(gram)
            if held is None:
                self._grams[gram] = value
            else:
                self._grams[gram] = (held, value) if isinstance(held, str) else (*held, value)

    def remove(self, value: str) -> None:
        self._refs[value] -= 1
        if self._refs[value] > 0:
            return
        del self._refs[value]
        for gram in self._grams_of(value):
            held = self._grams.get(gram)
            rest = () if held is None or held == value else tuple(v for v in held if v != value)
            if not rest:
                self._grams.pop(gram, None)
            else:
                self._grams[gram] = rest[0] if len(rest) == 1 else rest

    @classmethod
    def _first_offset(cls, value: str) -> int:
        """The first of the four offsets indexed: the last four with a gram's room after them."""
        return len(value) - 2 * cls.GRAM + 1

    @classmethod
    def _grams_of(cls, value: str) -> set[str]:
        first = cls._first_offset(value)
        return {value[offset : offset + cls.GRAM] for offset in range(first, first + cls.GRAM)}

    def __len__(self) -> int:
        return len(self._refs)

    def spans(self, text: str) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        grams = self._grams
        if not grams:
            return found
        for at in range(0, len(text) - self.GRAM + 1, self.GRAM):
            held = grams.get(text[at : at + self.GRAM])
            if held is None:
                continue
            for value in (held,) if isinstance(held, str) else held:
                # The gram read at ``at`` is the value's own at one of its four indexed offsets.
                last_start = at - self._first_offset(value)
                for start in range(max(last_start - self.GRAM + 1, 0), last_start + 1):
                    if text.startswith(value, start):
                        found.append((start, start + len(value)))
        return found


def _variants(value: str) -> set[str]:
    """The value and the forms it travels in: base64 (Secret data in Kubernetes API bodies) and
    percent-encoded (a URL inside a form-encoded request body, as an SDK logs it)."""
    encoded = base64.b64encode(value.encode()).decode().rstrip("=")
    return {value, encoded, quote(value, safe=""), quote_plus(value, safe="")}


def url_secrets(url: str) -> list[str]:
    """What :func:`redact_url` hides in ``url``, as values to register: userinfo, query values,
    fragment. Registered, they are also caught where the URL appears encoded (a request body)."""
    parts = urlsplit(url)
    values = [parts.username or "", parts.password or "", parts.fragment]
    for parameter in parts.query.split("&"):
        name, equals, value = parameter.partition("=")
        raw = value if equals else name
        values += [raw, unquote_plus(raw)]  # as written, and as a server would read it
    return [v for v in dict.fromkeys(values) if v]


class SecretRegister:
    """Secret values per scope (a connection, or something procon obtained itself), bounded."""

    def __init__(self, max_values: int = MAX_VALUES) -> None:
        self._max_values = max_values
        self._lock = threading.Lock()
        # scope -> part -> values (variants included); least recently registered scope first.
        self._scopes: OrderedDict[str, dict[str, frozenset[str]]] = OrderedDict()
        self._shared_scopes: set[str] = set()
        self._all = _Index()
        self._shared = _Index()

    def remember(self, scope: str, values: Iterable[str], *, part: str = "", shared: bool = False) -> None:
        """Make ``values`` what ``scope``'s ``part`` holds, replacing what it held before."""
        minimum = SHARED_MIN_LENGTH if shared else MIN_VALUE_LENGTH
        kept = frozenset(
            variant
            for value in values
            if minimum <= len(value) <= MAX_VALUE_LENGTH
            for variant in _variants(value)
            if len(variant) >= MIN_VALUE_LENGTH
        )
        with self._lock:
            parts = self._scopes.get(scope)
            if parts is not None and (scope in self._shared_scopes) != shared:
                for old_part in list(parts):  # sharing is the whole scope's: start it afresh
                    self._drop(scope, old_part)
            elif parts is not None and parts.get(part) == kept:
                self._scopes.move_to_end(scope)
                return
            self._drop(scope, part)
            if kept:
                self._scopes.setdefault(scope, {})[part] = kept
                self._scopes.move_to_end(scope)
                if shared:
                    self._shared_scopes.add(scope)
                for value in kept:
                    self._all.add(value)
                    if shared:
                        self._shared.add(value)
            while len(self._all) > self._max_values and len(self._scopes) > 1:
                oldest = next(iter(self._scopes))
                for old_part in list(self._scopes[oldest]):
                    self._drop(oldest, old_part)

    def forget(self, scope: str) -> None:
        """Drop every value of ``scope``."""
        with self._lock:
            for part in list(self._scopes.get(scope, {})):
                self._drop(scope, part)

    def _drop(self, scope: str, part: str) -> None:
        parts = self._scopes.get(scope)
        if parts is None or part not in parts:
            return
        shared = scope in self._shared_scopes
        for value in parts.pop(part):
            self._all.remove(value)
            if shared:
                self._shared.remove(value)
        if not parts:
            del self._scopes[scope]
            self._shared_scopes.discard(scope)

    def count(self) -> int:
        """How many distinct values (base64 forms included) are registered."""
        with self._lock:
            return len(self._all)

    def spans(self, text: str, scope: str | None, *, everything: bool) -> list[tuple[int, int]]:
        with self._lock:
            if everything:
                return self._all.spans(text)
            found = self._shared.spans(text)
            own = self._scopes.get(scope) if scope is not None else None
        for values in (own or {}).values():
            for value in values:
                start = text.find(value)
                while start >= 0:
                    found.append((start, start + len(value)))
                    start = text.find(value, start + 1)
        return found


_register = SecretRegister()


def connection_scope(namespace: str, name: str) -> str:
    """The scope of a connection's secrets."""
    return f"{namespace}/{name}"


def remember(scope: str, values: Iterable[str], *, part: str = "", shared: bool = False) -> None:
    """Redact ``values`` from now on wherever ``scope`` speaks (and in every log line).

    ``part`` lets one scope hold independent sets (a connection's credentials
    and its signing secret), each replaced on its own. ``shared`` values are
    redacted in every scope: use it only for values procon obtained itself
    (a processor's OAuth token), never for values a tenant chose.
    """
    _register.remember(scope, values, part=part, shared=shared)


def forget(scope: str) -> None:
    """Stop redacting ``scope``'s values: the connection is gone, paused or orphaned."""
    _register.forget(scope)


def registered_count() -> int:
    return _register.count()


def mask_account(account_id: str) -> str:
    """``acct_1PJBLEBBLEfV`` -> ``acct_…LEfV``: enough to tell accounts apart, not to name one."""
    for _, pattern in _account_patterns():
        match = pattern.fullmatch(account_id)
        if match:
            return _masked(match)
    return account_id


def _masked(match: re.Match[str]) -> str:
    return f"{match.string[match.start() : match.start(1)]}…{match.group(1)[-4:]}"


def _replace(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with every span replaced, overlapping ones merged (so the longest match wins)."""
    if not spans:
        return text
    spans.sort()
    out: list[str] = []
    position = 0
    start, end = spans[0]
    for next_start, next_end in spans[1:]:
        if next_start < end:
            end = max(end, next_end)
            continue
        out += [text[position:start], REDACTED]
        position, start, end = end, next_start, next_end
    out += [text[position:start], REDACTED, text[end:]]
    return "".join(out)


def _redact(text: str, scope: str | None, *, everything: bool) -> str:
    text = _replace(text, _register.spans(text, scope, everything=everything))
    lowered = text.lower()
    for literal, pattern in _patterns():
        if literal in (lowered if pattern.flags & re.IGNORECASE else text):
            text = pattern.sub(REDACTED, text)
    if "://" in text:
        text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    for literal, pattern in _account_patterns():
        if literal in text:
            text = pattern.sub(_masked, text)
    return text


def redact(text: str, scope: str | None = None) -> str:
    """``text`` with credentials removed, URL credentials and query values removed, account ids masked.

    Registered values apply for ``scope`` (a connection's, see :func:`connection_scope`)
    and the shared ones; without a scope only the shared ones and the patterns.
    """
    return _redact(text, scope, everything=False)


def redact_all(text: str) -> str:
    """:func:`redact` with every registered value of every scope: for logs, which concern them all."""
    return _redact(text, None, everything=True)


# A log record about one connection carries its scope under this attribute
# (``logger.info(..., extra={SCOPE_ATTRIBUTE: scope})``): it is then redacted with
# that connection's values only, so another tenant's values do not blank it out.
SCOPE_ATTRIBUTE = "redaction_scope"


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the rendered message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose args do not format is passed through untouched
            return True
        scope = getattr(record, SCOPE_ATTRIBUTE, None)
        cleaned = redact(message, scope) if isinstance(scope, str) else redact_all(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks carry exception text verbatim; render and redact them here.
            record.exc_text = redact_all(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def install_log_redaction() -> None:
    """Redact every record that reaches a root handler, whoever logged it."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
