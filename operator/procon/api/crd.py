"""Generate the CustomResourceDefinition from the pydantic models.

Why generate: one source of truth. Hand-kept CRD YAML drifts from the code
that reads it; here the schema the API server enforces and the types the
operator parses are the same declaration.

A CRD needs a *structural* OpenAPI v3 schema: every node typed, no ``$ref``,
no ``anyOf`` for optionals, no JSON-Schema-only keywords such as ``title``.
:func:`structural_schema` turns pydantic's JSON Schema into that shape.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from pydantic import BaseModel

from procon.api import v1alpha1 as api

# JSON Schema keywords that are valid in a CRD schema and worth keeping.
_KEEP = {
    "type",
    "description",
    "enum",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "default",
    "required",
    "properties",
    "items",
    "additionalProperties",
}


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema with refs inlined, optionals flattened and only CRD keywords kept."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _convert(raw, defs)


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = copy.deepcopy(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        # Siblings of $ref (a field's description, its validations) win over
        # the referenced model's own.
        node = {**copy.deepcopy(target), **node}
    if "anyOf" in node:
        # pydantic writes `X | None` as anyOf[X, null]; in a CRD an absent
        # field is the null, so the field is just X.
        branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
        if len(branches) != 1:
            raise ValueError(f"cannot express a union in a structural schema: {branches}")
        node = {**_convert(branches[0], defs), **{k: v for k, v in node.items() if k != "default"}}
    if node.get("default", "unset") is None or node.get("default") == []:
        node.pop("default")

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-"):
            out[key] = value
        elif key == "properties":
            out[key] = {name: _convert(sub, defs) for name, sub in value.items()}
        elif key == "items" or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = _convert(value, defs)
        elif key in _KEEP:
            out[key] = value
    if out.get("additionalProperties") is False:
        # extra="forbid" in pydantic; a CRD prunes unknown fields instead
        # (and kubectl's strict field validation rejects them).
        del out["additionalProperties"]
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return _ordered(out)


_ORDER = ("type", "description", "required", "properties", "items")


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    """Keys in a reading order: what it is, what it means, then its constraints."""
    first = {k: node[k] for k in _ORDER if k in node}
    rest = sorted((k for k in node if k not in first), key=lambda k: (k.startswith("x-kubernetes-"), k))
    return {**first, **{k: node[k] for k in rest}}


def _condition_column(name: str, field: str, *, priority: int = 0, type_: str = "string") -> dict[str, Any]:
    column: dict[str, Any] = {
        "name": name,
        "type": type_,
        "jsonPath": f'.status.conditions[?(@.type=="Ready")].{field}',
    }
    if priority:
        column["priority"] = priority
    return column


def printer_columns() -> list[dict[str, Any]]:
    """``kubectl get`` columns: the summary first, details in ``-o wide`` (priority 1)."""
    return [
        {"name": "Processor", "type": "string", "jsonPath": ".spec.processor"},
        {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
        {"name": "Account", "type": "string", "jsonPath": ".status.account.id"},
        _condition_column("Ready", "status"),
        _condition_column("Reason", "reason"),
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Webhook", "type": "string", "jsonPath": ".status.webhook.id", "priority": 1},
        _condition_column("Message", "message", priority=1),
    ]


def crd() -> dict[str, Any]:
    """The ProcessorConnection CRD as a Python object."""
    spec_schema = structural_schema(api.ProcessorConnectionSpec)
    status_schema = structural_schema(api.ProcessorConnectionStatus)
    top_description = " ".join((api.ProcessorConnection.__doc__ or "").split())
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{api.PLURAL}.{api.GROUP}",
            "labels": {"app.kubernetes.io/name": "procon", "app.kubernetes.io/part-of": "procon"},
        },
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": api.KIND,
                "listKind": f"{api.KIND}List",
                "plural": api.PLURAL,
                "singular": api.SINGULAR,
                "shortNames": list(api.SHORT_NAMES),
                "categories": list(api.CATEGORIES),
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": printer_columns(),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": top_description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {
                                    "type": "string",
                                    "description": "APIVersion defines the versioned schema of this "
                                    "representation of an object.",
                                },
                                "kind": {
                                    "type": "string",
                                    "description": "Kind is a string value representing the REST resource "
                                    "this object represents.",
                                },
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


class _Dumper(yaml.SafeDumper):
    """Block style, and long description strings folded for readability in review."""


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def crd_yaml() -> str:
    """The CRD as YAML, exactly what ``crds/processorconnections.procon.dev.yaml`` holds."""
    header = "# Generated by `procon crd` from operator/procon/api/v1alpha1.py. Do not edit.\n"
    body = yaml.dump(crd(), Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    return header + "---\n" + body


HELM_TEMPLATE_PATH = "charts/procon/templates/crd.yaml"


def helm_crd_template() -> str:
    """The CRD as the chart's ``templates/crd.yaml``: the object :func:`crd` returns, templated only
    where the chart needs it.

    The CRD lives in ``templates/`` rather than the chart's ``crds/`` directory because Helm never
    upgrades what ``crds/`` holds; ``crds.enabled`` lets a GitOps tool or a platform team own the CRD
    instead, and ``crds.keep`` (``helm.sh/resource-policy: keep``) makes ``helm uninstall`` leave
    the CRD, and with it every connection and the processor webhooks they own, in place
    (cert-manager's convention, docs/design/operator-conventions.md, "CRDs in the chart").
    """
    definition = crd()
    metadata = definition.pop("metadata")
    spec = definition.pop("spec")

    def dump(node: Any) -> str:
        return yaml.dump(node, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)

    head, body = dump(definition), dump({"spec": spec})
    if "{{" in head + body or "}}" in head + body:
        # Helm would read these as template actions; no description may contain them.
        raise ValueError("the CRD contains '{{' or '}}', which Helm would try to render")
    labels = "".join(f"    {key}: {value}\n" for key, value in metadata["labels"].items())
    return (
        f"# Generated by `procon crd --helm` from operator/procon/api/v1alpha1.py. Do not edit.\n"
        "{{- if .Values.crds.enabled }}\n"
        "---\n"
        f"{head}"
        "metadata:\n"
        f"  name: {metadata['name']}\n"
        "  labels:\n"
        f"{labels}"
        '    {{- include "procon.crdLabels" . | nindent 4 }}\n'
        "  {{- if .Values.crds.keep }}\n"
        "  annotations:\n"
        "    # helm uninstall leaves the CRD, and so every ProcessorConnection, in place.\n"
        "    helm.sh/resource-policy: keep\n"
        "  {{- end }}\n"
        f"{body}"
        "{{- end }}\n"
    )
