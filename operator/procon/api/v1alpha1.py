"""The ``ProcessorConnection`` API, version ``v1alpha1``, as pydantic models.

These models are the single source of truth for the API: the CRD in
``crds/`` is generated from them (``procon crd``), and the operator parses
objects with them. A field's ``description`` is what ``kubectl explain``
shows, so it is written for the person applying the YAML.

Rules the OpenAPI schema cannot express (cross-field coupling, immutability,
URL schemes) are CEL rules attached with :func:`cel`; the API server enforces
them, so an invalid connection never reaches the operator.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "procon.dev"
VERSION = "v1alpha1"
KIND = "ProcessorConnection"
PLURAL = "processorconnections"
SINGULAR = "processorconnection"
SHORT_NAMES = ("pconn",)
CATEGORIES = ("procon",)

# Kubernetes object names (DNS subdomain) and Secret data keys.
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_DATA_KEY = r"^[-._a-zA-Z0-9]+$"


def cel(
    rule: str, message: str, *, reason: str | None = None, field_path: str | None = None
) -> dict[str, Any]:
    """One ``x-kubernetes-validations`` entry, with a message a person understands."""
    entry: dict[str, Any] = {"rule": rule, "message": message}
    if reason:
        entry["reason"] = reason
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def validations(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Processor(StrEnum):
    STRIPE = "stripe"
    CHECKOUT = "checkout"


class Mode(StrEnum):
    LIVE = "live"
    TEST = "test"


class DeletionPolicy(StrEnum):
    DELETE = "Delete"
    ORPHAN = "Orphan"


class ConflictPolicy(StrEnum):
    REPORT = "Report"
    REPLACE = "Replace"


class SecretKeySelector(_Model):
    """A Secret in the connection's own namespace, and optionally one key in it."""

    name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=253,
            pattern=_DNS_SUBDOMAIN,
            description="Name of a Secret in the same namespace as the ProcessorConnection.",
        ),
    ]
    key: Annotated[
        str | None,
        Field(
            default=None,
            min_length=1,
            max_length=253,
            pattern=_DATA_KEY,
            description="Key within the Secret. When omitted, the operator uses the processor's "
            "conventional key (for Stripe `apiKey`; for Checkout.com `secretKey`, or the pair "
            "`accessKeyId`/`accessKeySecret`).",
        ),
    ] = None


class SigningSecretRef(_Model):
    """Where the operator publishes the webhook signing secret."""

    name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=253,
            pattern=_DNS_SUBDOMAIN,
            description="Name of the Secret the operator writes, in the same namespace. It is created if "
            "absent, owned by this ProcessorConnection and labelled as managed by procon. The operator "
            "never overwrites a Secret it did not create.",
        ),
    ]
    key: Annotated[
        str,
        Field(
            default="signingSecret",
            min_length=1,
            max_length=253,
            pattern=_DATA_KEY,
            description="Key under which the signing secret is written. The webhook endpoint id is written "
            "next to it under `endpointId`.",
        ),
    ] = "signingSecret"


EventName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^(\*|[A-Za-z][A-Za-z0-9_.:-]*)$")]


class Webhook(_Model):
    """The endpoint the processor delivers events to."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!('*' in self.events) || size(self.events) == 1",
                "events: '*' subscribes to every event and must stand alone; "
                "remove the other entries or the '*'",
                field_path=".events",
            ),
        )
    )

    url: Annotated[
        str,
        Field(
            min_length=1,
            max_length=2048,
            description="HTTPS URL the processor delivers events to. Stripe and Checkout.com deliver only "
            "to public HTTPS URLs. It may not carry credentials before its host (user:password@). Query "
            "values are sent to the processor as written but never shown: status, events and logs show "
            "them as [REDACTED].",
            json_schema_extra=validations(
                cel(
                    "self.startsWith('https://') && isURL(self) && url(self).getHostname() != ''",
                    "url must be an absolute https:// URL with a host, such as https://hooks.example.com/stripe",
                ),
                # Userinfo would be copied wherever the URL is shown; '@' before the first
                # '/', '?' or '#' is the only place it can be.
                cel(
                    "!self.matches('^https://[^/?#]*@')",
                    "url must not carry credentials before the host (https://user:password@host): "
                    "they would be shown wherever the URL is; remove them",
                ),
            ),
        ),
    ]
    events: Annotated[
        list[EventName],
        Field(
            max_length=256,
            description="Event types to deliver. For Stripe, event type names such as "
            "`payment_intent.succeeded`, or `*` alone for all events. For Checkout.com, event type ids "
            "such as `payment_approved`, or whole categories by display name (`Gateway`, `Disputes`, "
            "`Fraud`, `Reports`).",
            json_schema_extra={
                "x-kubernetes-list-type": "set",
                **validations(cel("size(self) > 0", "events must list at least one event type")),
            },
        ),
    ]
    description: Annotated[
        str | None,
        Field(
            default=None,
            max_length=500,
            description="Free text shown next to the endpoint in the processor's dashboard (Stripe only: "
            "Checkout.com workflows carry procon's ownership tag as their name).",
        ),
    ] = None
    signing_secret_ref: Annotated[
        SigningSecretRef,
        Field(description="The Secret the operator writes the webhook signing secret to."),
    ]
    conflict_policy: Annotated[
        ConflictPolicy,
        Field(
            default=ConflictPolicy.REPORT,
            description="What to do when an endpoint that procon does not own already targets the same "
            "URL. `Report` (default) leaves it alone and reports `WebhookReady=False` with reason "
            "`EndpointConflict`; `Replace` deletes it and creates an owned one. A webhook of another "
            "procon connection is never replaced: the connection that came second is reported instead.",
        ),
    ] = ConflictPolicy.REPORT


class StripeOptions(_Model):
    """Stripe-specific settings; allowed only with `processor: stripe`."""

    api_version: Annotated[
        str | None,
        Field(
            default=None,
            max_length=64,
            pattern=r"^\d{4}-\d{2}-\d{2}(\.[a-z_]+)?$",
            description="Stripe API version the webhook endpoint renders events with, such as "
            "`2026-06-24.dahlia`. Stripe cannot change it on an existing endpoint, so changing it "
            "replaces the endpoint and publishes a new signing secret. Defaults to the account's version.",
        ),
    ] = None
    connect: Annotated[
        bool,
        Field(
            default=False,
            description="Create a Connect endpoint on the platform account, receiving events from connected "
            "accounts. Like `apiVersion`, it cannot be changed on an existing endpoint.",
        ),
    ] = False
    account: Annotated[
        str | None,
        Field(
            default=None,
            max_length=64,
            pattern=r"^acct_[A-Za-z0-9]+$",
            description="Act on this connected account (sent as the `Stripe-Account` header). A restricted "
            "key then needs Connect permissions.",
        ),
    ] = None


CheckoutEntityId = Annotated[str, Field(max_length=64, pattern=r"^ent_[a-z0-9]+$")]
CheckoutChannelId = Annotated[str, Field(max_length=64, pattern=r"^pc_[a-z0-9]+$")]


class CheckoutOptions(_Model):
    """Checkout.com-specific settings; allowed only with `processor: checkout`."""

    client_id: Annotated[
        str | None,
        Field(
            default=None,
            max_length=64,
            pattern=r"^cli_[a-z0-9]{8,}$",
            description="The account's client id (`cli_...`). Its first eight characters after `cli_` select "
            "the account-specific API hosts.",
        ),
    ] = None
    entities: Annotated[
        list[CheckoutEntityId],
        Field(
            default_factory=list,
            max_length=64,
            description="Deliver only events of these entities (`ent_...`). Empty means all entities the "
            "credentials can see.",
            json_schema_extra={"x-kubernetes-list-type": "set"},
        ),
    ]
    processing_channels: Annotated[
        list[CheckoutChannelId],
        Field(
            default_factory=list,
            max_length=64,
            description="Deliver only events of these processing channels (`pc_...`). Empty means all.",
            json_schema_extra={"x-kubernetes-list-type": "set"},
        ),
    ]


PermissionName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_:.-]*$")]


class ProcessorConnectionSpec(_Model):
    """What the connection must be: credentials, permissions, and one webhook."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!has(self.stripe) || self.processor == 'stripe'",
                "spec.stripe is only allowed when processor is stripe",
                field_path=".stripe",
            ),
            cel(
                "!has(self.checkout) || self.processor == 'checkout'",
                "spec.checkout is only allowed when processor is checkout",
                field_path=".checkout",
            ),
            cel(
                "self.webhook.signingSecretRef.name != self.credentialsSecretRef.name",
                "webhook.signingSecretRef must name a different Secret than credentialsSecretRef: "
                "the operator writes to it",
                field_path=".webhook.signingSecretRef.name",
            ),
        )
    )

    processor: Annotated[
        Processor,
        Field(
            description="The payment processor: `stripe` or `checkout` (Checkout.com). It cannot be changed "
            "after creation.",
            json_schema_extra=validations(
                cel(
                    "self == oldSelf",
                    "processor cannot be changed after creation; create a new ProcessorConnection instead",
                ),
            ),
        ),
    ]
    mode: Annotated[
        Mode,
        Field(
            description="`live` or `test`. The credentials must be of this mode; a live key on a test "
            "connection (or the reverse) is refused.",
        ),
    ]
    credentials_secret_ref: Annotated[
        SecretKeySelector,
        Field(
            description=(
                "The Secret holding the processor credentials, in the same namespace. It must opt in "
                'with the label procon.dev/credentials: "true", and may list the connections allowed '
                "to use it in the annotation procon.dev/allowed-connections (comma-separated names)."
            )
        ),
    ]
    required_permissions: Annotated[
        list[PermissionName],
        Field(
            default_factory=list,
            max_length=128,
            description="Permissions the credentials must hold: Stripe restricted-key permissions such as "
            "`rak_charge_read`, or Checkout.com scopes such as `disputes:view`. Missing ones are named in "
            "`status.missingPermissions`.",
            json_schema_extra={"x-kubernetes-list-type": "set"},
        ),
    ]
    webhook: Annotated[Webhook, Field(description="The webhook the processor delivers events to.")]
    deletion_policy: Annotated[
        DeletionPolicy,
        Field(
            default=DeletionPolicy.DELETE,
            description="What happens to the processor's webhook when this object is deleted: `Delete` "
            "(default) removes the endpoints procon owns, `Orphan` leaves them.",
        ),
    ] = DeletionPolicy.DELETE
    stripe: Annotated[
        StripeOptions | None,
        Field(default=None, description="Stripe-specific settings; allowed only with `processor: stripe`."),
    ] = None
    checkout: Annotated[
        CheckoutOptions | None,
        Field(
            default=None,
            description="Checkout.com-specific settings; allowed only with `processor: checkout`.",
        ),
    ] = None


# --- status ----------------------------------------------------------------

ConditionStatus = Literal["True", "False", "Unknown"]


class ConditionType(StrEnum):
    """Condition types. Ready/Reconciling/Stalled follow kstatus; the rest are domain conditions."""

    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    CREDENTIALS_VALID = "CredentialsValid"
    PERMISSIONS_VALID = "PermissionsValid"
    WEBHOOK_READY = "WebhookReady"


class Condition(_Model):
    """A Kubernetes condition, with the same schema as metav1.Condition."""

    type: Annotated[
        str,
        Field(
            max_length=316,
            pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
            r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
            description="Type of condition, such as `Ready`.",
        ),
    ]
    status: Annotated[ConditionStatus, Field(description="`True`, `False` or `Unknown`.")]
    reason: Annotated[
        str,
        Field(
            min_length=1,
            max_length=1024,
            pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
            description="A CamelCase word for why the condition has its status.",
        ),
    ]
    message: Annotated[
        str, Field(default="", max_length=32768, description="What a person should know, and do.")
    ] = ""
    last_transition_time: Annotated[
        str,
        Field(
            json_schema_extra={"format": "date-time"},
            description="When the status last changed.",
        ),
    ]
    observed_generation: Annotated[
        int | None,
        Field(default=None, ge=0, description="The metadata.generation the condition was computed for."),
    ] = None


class AccountStatus(_Model):
    id: Annotated[
        str | None, Field(default=None, description="The processor account the credentials belong to.")
    ] = None
    mode: Annotated[
        Mode | None, Field(default=None, description="The mode the credentials were verified in.")
    ] = None


class WebhookStatus(_Model):
    id: Annotated[str | None, Field(default=None, description="The processor's id of the owned webhook.")] = (
        None
    )
    url: Annotated[str | None, Field(default=None, description="The URL the webhook delivers to.")] = None
    status: Annotated[
        str | None,
        Field(default=None, description="The webhook's status at the processor, such as `enabled`."),
    ] = None
    events: Annotated[
        list[str],
        Field(
            default_factory=list,
            description="The events the webhook delivers, as the processor reports them.",
        ),
    ]


class ProcessorConnectionStatus(_Model):
    """What the operator observed. Rebuilt from observation on every reconcile."""

    observed_generation: Annotated[
        int | None,
        Field(default=None, ge=0, description="The metadata.generation the status describes."),
    ] = None
    conditions: Annotated[
        list[Condition],
        Field(
            default_factory=list,
            max_length=16,
            description="Ready summarises the connection; Reconciling and Stalled follow kstatus; "
            "CredentialsValid, PermissionsValid and WebhookReady say which part is not right.",
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        ),
    ]
    account: Annotated[
        AccountStatus | None, Field(default=None, description="The verified processor account.")
    ] = None
    webhook: Annotated[
        WebhookStatus | None, Field(default=None, description="The owned webhook at the processor.")
    ] = None
    missing_permissions: Annotated[
        list[str],
        Field(
            default_factory=list,
            description="Required permissions or scopes the credentials do not hold.",
            json_schema_extra={"x-kubernetes-list-type": "set"},
        ),
    ]
    signing_secret_rotation: Annotated[
        str | None,
        Field(
            default=None,
            description="The value of the `procon.dev/rotate-signing-secret` annotation last carried out. "
            "Setting the annotation to a new value (a timestamp, say) rotates the webhook signing secret.",
        ),
    ] = None


class ProcessorConnection(_Model):
    """A payment-processor connection declared in Git: verified credentials, required permissions,
    and exactly one webhook owned by this object."""

    model_config = ConfigDict(extra="ignore")

    api_version: str = f"{GROUP}/{VERSION}"
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ProcessorConnectionSpec
    status: ProcessorConnectionStatus | None = None
