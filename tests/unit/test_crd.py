"""The CRD is generated from the API types, and the committed copy is exactly that output."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml

from procon.api import ProcessorConnection
from procon.api.crd import crd, structural_schema
from procon.api.v1alpha1 import ProcessorConnectionSpec
from procon.cli import main


def test_committed_crd_is_procon_crd_output(repo_root: Path) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["crd"]) == 0
    committed = (repo_root / "crds" / "processorconnections.procon.dev.yaml").read_text()
    assert out.getvalue() == committed, (
        "crds/ is stale: run `procon crd > crds/processorconnections.procon.dev.yaml`"
    )


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found.extend(_walk(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_walk(value, f"{path}[{i}]"))
    return found


def test_schema_is_structural() -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        for forbidden in ("$ref", "anyOf", "allOf", "oneOf", "title", "$defs"):
            assert forbidden not in node, f"{forbidden} at {path}"
        if "properties" in node:
            assert node.get("type") == "object", path
            assert "additionalProperties" not in node, path
            for name, sub in node["properties"].items():
                assert "type" in sub or "x-kubernetes-preserve-unknown-fields" in sub, f"{path}.{name}"


def test_every_spec_field_has_a_description() -> None:
    schema = structural_schema(ProcessorConnectionSpec)
    missing = [
        f"{path}.{name}"
        for path, node in _walk(schema)
        for name, sub in node.get("properties", {}).items()
        if not sub.get("description")
    ]
    assert missing == []


def test_names() -> None:
    names = crd()["spec"]["names"]
    assert names["shortNames"] == ["pconn"]  # not `pc`: PriorityClass has it
    assert names["categories"] == ["procon"]
    assert crd()["spec"]["scope"] == "Namespaced"


def test_cel_rules_carry_messages() -> None:
    rules = [r for _, node in _walk(crd()) for r in node.get("x-kubernetes-validations", [])]
    assert len(rules) >= 6
    for rule in rules:
        assert rule["message"], rule
        assert rule["rule"], rule


def test_examples_parse_as_api_types(example_files: list[Path]) -> None:
    parsed = 0
    for path in example_files:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == "ProcessorConnection":
                connection = ProcessorConnection.model_validate(doc)
                assert connection.spec.webhook.events
                parsed += 1
    assert parsed >= 5


def test_model_rejects_unknown_spec_fields() -> None:
    doc = {
        "processor": "stripe",
        "mode": "test",
        "credentialsSecretRef": {"name": "k"},
        "webhook": {"url": "https://x.example", "events": ["*"], "signingSecretRef": {"name": "s"}},
        "surprise": True,
    }
    with pytest.raises(ValueError, match="surprise"):
        ProcessorConnectionSpec.model_validate(doc)
