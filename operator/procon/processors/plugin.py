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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel

from procon.api.schema import Mode
from procon.processors.base import ProcessorDriver
from procon.processors.calls import RateLimit

# ASSUMPTION: for a processor that publishes no rate limit, 5 requests a second per account (a
# burst of 5) is far below any limit a payments API documents (Stripe's lowest is 25 a second in
# test mode: docs/processors/stripe.md, "Rate limits procon keeps to"), and ample for webhook bookkeeping.
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
    # "Checkout.com workflows carry procon's ownership tag as their name". None: it does.
    no_description: str | None = None


@dataclass(frozen=True)
class EnvSetting:
    """One environment variable of a processor's operator settings."""

    name: str  # PROCON_<NAME>_...
    # The chart's default value; "" means unset (the driver's own default, described).
    default: str
    description: str
    # The chart's values key under processors.<name> (camelCase), e.g. "apiBase".
    value: str


@dataclass(frozen=True)
class DriverContext:
    """What every driver is built with, whatever the processor."""

    permission_cache_ttl: float = 600.0


@dataclass(frozen=True)
class ProcessorPlugin:
    """One processor, as the registry lists it."""

    # The value of ``spec.processor`` and the key of the ``spec.<name>`` block.
    name: str
    # How a person calls it: "Stripe", "Checkout.com".
    title: str
    # The ``spec.<name>`` block, or None when the processor has no options.
    options: type[BaseModel] | None
    spec_text: SpecText
    # Its operator settings: the environment variables the chart sets (values, schema and the
    # deployment's env are generated from these).
    settings: tuple[EnvSetting, ...]
    # Builds the driver from the operator's environment (its own settings above) and what all
    # drivers share; raises procon.settings.SettingsError naming a variable it cannot use.
    driver: Callable[[Mapping[str, str], DriverContext], ProcessorDriver]
    # Reads and checks its settings (SettingsError naming a value it cannot use) and says where its
    # calls go, for the operator's start-up log line.
    describe: Callable[[Mapping[str, str]], str] = field(default=lambda env: "")
    # What procon allows itself per account and mode, under the processor's documented limit with
    # a margin (procon.processors.calls); the conservative default where none is published.
    rate_limit: Callable[[Mode], RateLimit] = field(default=lambda mode: CONSERVATIVE_RATE)
