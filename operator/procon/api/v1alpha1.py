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

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ConfigDict, Field, create_model

from procon import processors as registry
from procon.api.schema import ApiModel, Mode, cel, validations

GROUP = "procon.dev"
VERSION = "v1alpha1"
KIND = "ProcessorConnection"
PLURAL = "processorconnections"
SINGULAR = "processorconnection"
SHORT_NAMES = ("pconn",)
CATEGORIES = ("procon",)
# Held by every connection procon has acted for, so that its webhook is cleaned up before it goes.
FINALIZER = "procon.dev/finalizer"

# Kubernetes object names (DNS subdomain) and Secret data keys.
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_DATA_KEY = r"^[-._a-zA-Z0-9]+$"

_Model = ApiModel

__all__ = ["Mode", "cel", "validations"]


def _described(compose: Callable[[], str]) -> Callable[[dict[str, Any]], None]:
    """A field's description composed from the processor registry when the schema is generated:
    each processor says its part in its own package (:class:`procon.processors.plugin.SpecText`)."""

    def extra(schema: dict[str, Any]) -> None:
        schema["description"] = compose()

    return extra


def _named(name: str, title: str) -> str:
    """The name quoted, followed by the title where it says more than the name."""
    return f"`{name}`" if title.lower() == name else f"`{name}` ({title})"


def _either(words: Sequence[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return " or ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else list(words))


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
            "conventional key.",
            json_schema_extra=_described(
                lambda: (
                    "Key within the Secret. When omitted, the operator uses the processor's "
                    "conventional key ("
                    + "; ".join(f"for {p.title} {p.spec_text.credential_keys}" for p in registry.plugins())
                    + ")."
                )
            ),
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
            description="HTTPS URL the processor delivers events to. The processors deliver only "
            "to public HTTPS URLs. It may not carry credentials before its host (user:password@). Query "
            "values are sent to the processor as written but never shown: status, events and logs show "
            "them as [REDACTED].",
            json_schema_extra=validations(
                cel(
                    "self.startsWith('https://') && isURL(self) && url(self).getHostname() != ''",
                    "url must be an absolute https:// URL with a host, such as https://hooks.example.com/payments",
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
            description="Event types to deliver, as the processor names them.",
            json_schema_extra=lambda schema: schema.update(
                {
                    "description": "Event types to deliver. "
                    + " ".join(f"For {p.title}, {p.spec_text.events}." for p in registry.plugins()),
                    "x-kubernetes-list-type": "set",
                    **validations(cel("size(self) > 0", "events must list at least one event type")),
                }
            ),
        ),
    ]
    description: Annotated[
        str | None,
        Field(
            default=None,
            max_length=500,
            description="Free text shown next to the endpoint in the processor's dashboard.",
            json_schema_extra=_described(lambda: _description_text()),
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


# Printable, without leading or trailing spaces; each processor narrows it to its own
# vocabulary's shape with a CEL rule (its plugin's ``permission_pattern``): some processors name
# permissions as lower-case identifiers, others as words with spaces and dashes.
PermissionName = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"^[^\s\x00-\x1f\x7f](.*[^\s\x00-\x1f\x7f])?$")
]


class SpecBase(_Model):
    """What the connection must be: credentials, permissions, and one webhook.

    The fields every processor shares. The spec itself (:data:`ProcessorConnectionSpec`) adds,
    from the processor registry, the ``processor`` names and one optional ``spec.<name>`` block
    per processor, each allowed only with its own ``processor``.
    """

    model_config = ConfigDict(json_schema_extra=lambda schema: schema.update(_spec_rules()))

    processor: Annotated[
        str,
        Field(
            description="The payment processor. It cannot be changed after creation.",
            json_schema_extra=lambda schema: schema.update(
                {
                    "description": "The payment processor: "
                    + _either([_named(p.name, p.title) for p in registry.plugins()])
                    + ". It cannot be changed after creation.",
                    **validations(
                        cel(
                            "self == oldSelf",
                            "processor cannot be changed after creation; create a new ProcessorConnection "
                            "instead",
                        ),
                    ),
                }
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
            description="Permissions the credentials must hold, as the processor names them. Missing ones "
            "are named in `status.missingPermissions`.",
            json_schema_extra=lambda schema: schema.update(
                {
                    "description": "Permissions the credentials must hold: "
                    + ", or ".join(f"{p.title} {p.spec_text.permissions}" for p in registry.plugins())
                    + ". Missing ones are named in `status.missingPermissions`.",
                    "x-kubernetes-list-type": "set",
                }
            ),
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


def _spec_rules() -> dict[str, Any]:
    """The spec's CEL rules: each processor's block only with its own ``processor``, and the
    signing Secret apart from the credentials."""
    return validations(
        *(
            cel(
                f"!has(self.{p.name}) || self.processor == '{p.name}'",
                f"spec.{p.name} is only allowed when processor is {p.name}",
                field_path=f".{p.name}",
            )
            for p in registry.plugins()
            if p.options is not None
        ),
        *(
            cel(
                f"self.processor != '{p.name}' || has(self.{p.name})",
                f"spec.{p.name} is required when processor is {p.name}",
                field_path=f".{p.name}",
            )
            for p in registry.plugins()
            if p.options is not None and p.options_required
        ),
        *(
            cel(
                f"self.processor != '{p.name}' || !has(self.requiredPermissions) || "
                f"self.requiredPermissions.all(name, name.matches({_cel_string(p.permission_pattern)}))",
                f"requiredPermissions: each {p.title} name must match {p.permission_pattern}",
                field_path=".requiredPermissions",
            )
            for p in registry.plugins()
        ),
        cel(
            "self.webhook.signingSecretRef.name != self.credentialsSecretRef.name",
            "webhook.signingSecretRef must name a different Secret than credentialsSecretRef: "
            "the operator writes to it",
            field_path=".webhook.signingSecretRef.name",
        ),
    )


def _cel_string(text: str) -> str:
    """``text`` as a CEL string literal (raw, so a pattern's backslashes stay as written)."""
    if "'" in text:
        raise ValueError(f"a permission pattern cannot contain a single quote: {text!r}")
    return f"r'{text}'"


def _description_text() -> str:
    text = "Free text shown next to the endpoint in the processor's dashboard"
    silent = [p for p in registry.plugins() if p.spec_text.no_description]
    if not silent:
        return text + "."
    return (
        text
        + " (not sent to "
        + "; nor to ".join(f"{p.title}: {p.spec_text.no_description}" for p in silent)
        + ")."
    )


def _compose_spec() -> type[SpecBase]:
    """The spec with the registry's processors: ``processor`` one of their names, and each
    processor's optional block under its name."""
    plugins = registry.plugins()
    names = tuple(p.name for p in plugins)
    fields: dict[str, Any] = {
        # The same field, narrowed to the registry's names (the CRD's enum).
        "processor": (Literal[names], SpecBase.model_fields["processor"]),
    }
    for p in plugins:
        if p.options is None:
            continue
        fields[p.name] = (
            p.options | None,
            Field(
                default=None,
                description=f"{p.title}-specific settings; allowed only with `processor: {p.name}`.",
            ),
        )
    return create_model(
        "ProcessorConnectionSpec",
        __base__=SpecBase,
        __module__=__name__,
        __doc__="What the connection must be: credentials, permissions, and one webhook.",
        **fields,
    )


if TYPE_CHECKING:
    ProcessorConnectionSpec = SpecBase
else:
    ProcessorConnectionSpec = _compose_spec()


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


class VerifiedCredentialsStatus(_Model):
    secret_uid: Annotated[
        str | None, Field(default=None, description="The UID of the credentials Secret verified.")
    ] = None
    secret_resource_version: Annotated[
        str | None,
        Field(default=None, description="The resourceVersion of the credentials Secret verified."),
    ] = None
    generation: Annotated[
        int | None,
        Field(
            default=None,
            ge=0,
            description="The metadata.generation (the permissions asked for) the verification was made for.",
        ),
    ] = None
    verified_at: Annotated[
        str | None,
        Field(
            default=None,
            description="When the processor was last asked (RFC 3339). The verdict is reused until the "
            "Secret or the spec changes, a processor call is refused for the credentials or a "
            "permission, or PROCON_PERMISSION_RECHECK_INTERVAL has passed since.",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None


class ProcessorConnectionStatus(_Model):
    """What the operator observed. Rebuilt from observation on every reconcile."""

    # Atomic for server-side apply: the operator alone writes the status, so the API server keeps
    # one `f:status` entry for it in managedFields instead of one per field and condition. Those
    # entries were most of a Ready connection's stored size, parsed again by every write and
    # watch event: a status write cost the API server a third more CPU with them
    # (docs/design/work-queue.md, "Reads of Kubernetes per reconcile"). Merge patches, the
    # operator's writes, are not affected.
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-map-type": "atomic"})

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
    verified_credentials: Annotated[
        VerifiedCredentialsStatus | None,
        Field(
            default=None,
            description="The credentials Secret (UID and resourceVersion, never its data) whose "
            "credentials and permissions were verified, for which generation and when: the operator "
            "does not ask the processor again (after a restart neither) until the Secret or the spec "
            "changes, a call is refused for the credentials or a permission, or the recheck interval "
            "has passed.",
        ),
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
