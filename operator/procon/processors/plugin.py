"""What a processor package tells the rest of procon about itself: :class:`ProcessorPlugin`.

Each ``procon.processors.<name>`` package exposes one ``PLUGIN``; the registry
(:mod:`procon.processors`) finds them, and everything that used to list the
processors by hand iterates over it instead: the CRD's ``processor`` enum and
``spec.<name>`` blocks, the operator's settings and drivers, the chart, the
demo. Like cert-manager's issuer registry: the core knows the interface, the
package knows the processor.

Only data and factories live here, no I/O: what a connection does at the
processor is the driver's (:class:`procon.processors.base.ProcessorDriver`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel

from procon.api.schema import Mode
from procon.processors.base import ProcessorDriver
from procon.processors.calls import RateLimit

# ASSUMPTION: for a processor that publishes no rate limit, 5 requests a second per account (a
# burst of 5) is far below any limit the processors procon knows document (the lowest is 25 a
# second, in a test mode: see the docs under docs/processors/), and ample for webhook bookkeeping.
CONSERVATIVE_RATE = RateLimit(per_second=5.0, burst=5)


@dataclass(frozen=True)
class SpecText:
    """What the CRD's shared descriptions say about this processor, in its own words.

    Each is one clause; the API composes them across the processors, so that
    ``kubectl explain`` names every processor's conventions in one place.
    """

    # The credential key(s) used when ``credentialsSecretRef.key`` is omitted, e.g. "`apiKey`".
    credential_keys: str
    # How ``webhook.events`` are named, e.g. "event type names such as `charge.succeeded`".
    events: str
    # How ``requiredPermissions`` are named, e.g. "restricted-key permissions such as `rak_charge_read`".
    permissions: str
    # Whether ``webhook.description`` reaches the processor, and if not why (one clause), e.g.
    # "its workflows carry procon's ownership tag as their name". None: it does.
    no_description: str | None = None


# A shape to redact, with a literal every match contains (the pattern runs only on texts holding
# it: a substring test costs a fraction of a regex scan).
Shape = tuple[str, re.Pattern[str]]


@dataclass(frozen=True)
class Redaction:
    """What :mod:`procon.redaction` must know about a processor's secrets and ids."""

    # Its key material, masked or not, whatever follows a prefix.
    credentials: tuple[Shape, ...] = ()
    # Its account ids: shown masked, as the text before group 1, "…", and the last four
    # characters of group 1 (enough to tell accounts apart, not to name one).
    account_ids: tuple[Shape, ...] = ()
    # Links procon builds itself (its dashboard's), whose query names nothing secret.
    own_links: tuple[str, ...] = ()


@dataclass(frozen=True)
class Demo:
    """How ``procon dev up`` shows the processor.

    By convention its emulator (``procon emulate <name>``) serves
    ``examples/quickstart/<name>-emulator.yaml``, and ``examples/quickstart/<name>.yaml``
    declares the connection ``quickstart-<name>``, which the demo waits to be Ready.
    """

    # The operator's environment for reaching the emulator at this base URL.
    operator_env: Callable[[str], Mapping[str, str]]


# An http(s) URL, or empty; what the chart's schema admits for a URL setting.
URL_VALUE = r"^(https?://[^\s/]+(/\S*)?)?$"


@dataclass(frozen=True)
class EnvSetting:
    """One environment variable of a processor's operator settings, and its key in the chart.

    The chart's values (``config.processors.<name>.<value>``), their schema and the
    deployment's environment are generated from these (``procon chart``).
    """

    name: str  # PROCON_<NAME>_...
    # The chart's values key under config.processors.<name> (camelCase), e.g. "apiBase".
    value: str
    # What it is, one sentence without a final stop, e.g. "<Title> API base URL".
    description: str
    # What leaving it empty (unset) means, e.g. the processor's own API's address.
    unset: str
    # What the chart's schema admits (a regular expression; always matching "").
    pattern: str = URL_VALUE


@dataclass(frozen=True)
class DriverContext:
    """What every driver is built with, whatever the processor."""

    # How long what a driver learnt about a key (its account, its grants) serves every connection
    # using the key (PROCON_PERMISSION_CACHE_TTL, capped at the recheck interval).
    permission_cache_ttl: float = 600.0
    # How long a connection's verification is reused (PROCON_PERMISSION_RECHECK_INTERVAL): what a
    # driver reads about the processor itself (an event catalog) may be kept as long.
    recheck_interval: float = 86400.0


@dataclass(frozen=True)
class ProcessorPlugin:
    """One processor, as the registry lists it."""

    # The value of ``spec.processor`` and the key of the ``spec.<name>`` block.
    name: str
    # How a person calls it, properly spelt and capitalised.
    title: str
    # Its place in every listing (the CRD's enum and descriptions, the chart, the demo): the order
    # the processors were added in, so a new one goes last and nothing listed before it moves.
    order: int
    # The ``spec.<name>`` block, or None when the processor has no options.
    options: type[BaseModel] | None
    spec_text: SpecText
    # Its operator settings: the environment variables the chart sets (values, schema and the
    # deployment's env are generated from these).
    settings: tuple[EnvSetting, ...]
    # Builds the driver from the operator's environment (its own settings above) and what all
    # drivers share; raises procon.settings.SettingsError naming a variable it cannot use.
    driver: Callable[[Mapping[str, str], DriverContext], ProcessorDriver]
    redaction: Redaction = field(default_factory=Redaction)
    # None: not part of the local demo.
    demo: Demo | None = None
    # Loggers of its client library that are too chatty at the operator's info level.
    chatty_loggers: tuple[str, ...] = ()
    # What one ``requiredPermissions`` entry must look like for this processor (a regular
    # expression the API server checks with CEL): its own vocabulary's shape, so a name of
    # another shape is refused at admission with a message that says so.
    permission_pattern: str = r"^[a-z0-9][a-z0-9_:.-]*$"
    # Whether ``spec.<name>`` must be given with ``processor: <name>`` (the processor cannot act
    # without it: for example, the account its webhooks belong to).
    options_required: bool = False
    # Reads and checks its settings (SettingsError naming a value it cannot use) and says where its
    # calls go, for the operator's start-up log line.
    describe: Callable[[Mapping[str, str]], str] = field(default=lambda env: "")
    # What procon allows itself per account and mode, under the processor's documented limit with
    # a margin (procon.processors.calls); the conservative default where none is published.
    rate_limit: Callable[[Mode], RateLimit] = field(default=lambda mode: CONSERVATIVE_RATE)
