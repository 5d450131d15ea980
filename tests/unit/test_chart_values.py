"""values.yaml and values.schema.json describe the same keys, and the schema is closed at every
level, so a misspelt key fails `helm install` (tests/integration/test_helm_chart.py shows it
does) instead of being ignored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

# Kubernetes objects passed through verbatim and too large to restate (the API server checks
# them), and Helm's `global`, which a parent chart may fill with anything.
OPAQUE = {"/affinity/nodeAffinity", "/affinity/podAffinity", "/affinity/podAntiAffinity", "/global"}


@pytest.fixture(scope="module")
def schema(repo_root: Path) -> dict[str, Any]:
    return dict(json.loads((repo_root / "charts" / "procon" / "values.schema.json").read_text()))


@pytest.fixture(scope="module")
def values(repo_root: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((repo_root / "charts" / "procon" / "values.yaml").read_text()))


def _objects(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if node.get("type") == "object":
        yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _objects(sub, f"{path}/{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from _objects(node[key], f"{path}[{key}]")
    for branch in node.get("anyOf", []):
        yield from _objects(branch, path)


def test_every_object_is_closed(schema: dict[str, Any]) -> None:
    """Each object either lists its properties and forbids others, or is a map with typed values."""
    open_objects = [
        path
        for path, node in _objects(schema)
        if path not in OPAQUE
        and not (node.get("additionalProperties") is False and "properties" in node)
        and not isinstance(node.get("additionalProperties"), dict)
    ]
    assert open_objects == []


def _keys(values: Any, path: str = "") -> set[str]:
    """Paths of values.yaml's keys, down to maps the schema types as maps."""
    if not isinstance(values, dict):
        return set()
    found = set()
    for key, value in values.items():
        found.add(f"{path}/{key}")
        found |= _keys(value, f"{path}/{key}")
    return found


def _schema_keys(node: dict[str, Any], path: str = "") -> set[str]:
    found = set()
    for name, sub in node.get("properties", {}).items():
        found.add(f"{path}/{name}")
        found |= _schema_keys(sub, f"{path}/{name}")
    return found


def test_values_and_schema_name_the_same_keys(values: dict[str, Any], schema: dict[str, Any]) -> None:
    in_values = _keys(values)
    in_schema = _schema_keys(schema)
    # Maps (annotations, labels, selectors, resource lists) hold free keys in values.yaml.
    maps = {path for path, node in _objects(schema) if isinstance(node.get("additionalProperties"), dict)}
    in_values = {key for key in in_values if not any(key.startswith(m + "/") for m in maps)}
    assert in_values - in_schema == set(), "values.yaml keys the schema does not know"
    # Optional fields of Kubernetes types need not appear in values.yaml; the chart's own keys do.
    kubernetes_types = (
        "/podSecurityContext/",
        "/securityContext/",
        "/resources/",
        "/affinity/",
        "/networkPolicy/dns/",
    )
    missing = {
        key for key in in_schema - in_values if not key.startswith(kubernetes_types) and key != "/global"
    }
    assert missing == set(), "schema keys values.yaml does not document"


def test_every_chart_value_is_documented(repo_root: Path, values: dict[str, Any]) -> None:
    """Each top-level value has a comment in values.yaml and a row in the chart's README."""
    text = (repo_root / "charts" / "procon" / "values.yaml").read_text()
    readme = (repo_root / "charts" / "procon" / "README.md").read_text()
    lines = text.splitlines()
    for key in values:
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{key}:"))
        # A comment above the key, or (for a group of settings) above its first setting.
        assert lines[index - 1].startswith("#") or lines[index + 1].strip().startswith("#"), key
        assert f"`{key}" in readme, f"{key} is not in charts/procon/README.md"
