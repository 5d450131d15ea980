"""The chart's Grafana dashboard (charts/procon/dashboards/procon.json).

- It is a Grafana dashboard by Grafana's own schema: ``hack/promql``'s ``dashboard`` command
  decodes it strictly with the types the Grafana Foundation SDK generates from Grafana's
  dashboard schema (Apache-2.0, pinned in hack/promql/go.mod), every panel and query plugin
  registered: a missing required field, a field of the wrong type or one the schema does not
  know fails it.
- Every query parses with Prometheus' own parser (``hack/promql``'s ``exprs`` command, the
  tool the chart's PrometheusRule tests use) and selects only metrics the operator exports,
  read from procon.metrics' registry.

The tool is built from Go modules on first use and cached in ~/.cache/procon/promql.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from procon.dev.toolchain import PromQL, ensure_promql
from procon.metrics import REGISTRY

DASHBOARD = Path(__file__).resolve().parents[2] / "charts" / "procon" / "dashboards" / "procon.json"

# What Grafana puts in a query before Prometheus sees it: range variables become durations,
# the others (in label matchers here) a value that parses.
_RANGE_VARIABLE = re.compile(r"\$__(?:rate_interval|interval|range)\b")
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def _series_names(family_name: str, family_type: str) -> set[str]:
    if family_type == "counter":
        return {f"{family_name}_total", f"{family_name}_created"}
    if family_type == "histogram":
        return {f"{family_name}_{suffix}" for suffix in ("bucket", "sum", "count", "created")}
    return {family_name}


def exported_metrics() -> set[str]:
    """The series names the operator's registry exposes, whether or not they hold samples yet."""
    return {name for family in REGISTRY.collect() for name in _series_names(family.name, family.type)}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL query of the dashboard: its panels' targets and its query variables'
    selectors, with Grafana's variables replaced as Grafana replaces them."""
    found = [
        target["expr"]
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets") or []
        if "expr" in target
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = _LABEL_VALUES.match(query.strip())
        assert match, f"variable {variable['name']}: not a label_values() query: {query!r}"
        found.append(match.group("selector"))
    return [_VARIABLE.sub(".*", _RANGE_VARIABLE.sub("5m", query)) for query in found]


@pytest.fixture(scope="module")
def promql() -> PromQL:
    return ensure_promql()


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def parse(promql: PromQL, expressions: list[str], tmp_path: Path) -> dict[str, dict[str, Any]]:
    path = tmp_path / "exprs.json"
    path.write_text(json.dumps(expressions))
    result = subprocess.run(
        [str(promql.check), "exprs", str(path)], text=True, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_the_dashboard_is_valid_by_grafanas_schema(promql: PromQL) -> None:
    result = subprocess.run(
        [str(promql.check), "dashboard", str(DASHBOARD)], text=True, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "a valid dashboard" in result.stdout


def test_the_schema_check_can_fail(promql: PromQL, dashboard: dict[str, Any], tmp_path: Path) -> None:
    broken = json.loads(json.dumps(dashboard))
    broken["panels"][1]["gridPos"]["w"] = "wide"
    broken["panels"][2]["options"]["colourMode"] = "value"
    del broken["schemaVersion"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    result = subprocess.run(
        [str(promql.check), "dashboard", str(path)], text=True, capture_output=True, check=False
    )
    assert result.returncode == 1
    for complaint in ("gridPos", "colourMode", "schemaVersion"):
        assert complaint in result.stderr, result.stderr


def test_every_query_parses_and_selects_only_exported_metrics(
    promql: PromQL, dashboard: dict[str, Any], tmp_path: Path
) -> None:
    expressions = queries(dashboard)
    assert len(expressions) >= 15
    parsed = parse(promql, expressions, tmp_path)
    assert {expr: answer["error"] for expr, answer in parsed.items() if answer.get("error")} == {}
    exported = exported_metrics()
    unknown = {
        expr: answer["metrics"] for expr, answer in parsed.items() if set(answer["metrics"]) - exported
    }
    assert unknown == {}
    assert all(answer["metrics"] for answer in parsed.values()), "a query that selects no metric"
    used = {metric for answer in parsed.values() for metric in answer["metrics"]}
    # What the dashboard is for: connections by condition (counted, and by reason; the not-Ready
    # ones by name), reconcile rate and duration, processor calls and errors, and who leads.
    assert {
        "procon_connections",
        "procon_connection_condition",
        "procon_reconcile_total",
        "procon_reconcile_duration_seconds_bucket",
        "procon_processor_api_calls_total",
        "procon_leader",
    } <= used
    assert any(
        "procon_connections" in answer["metrics"] and re.search(r"by \([^)]*\breason\b", expr)
        for expr, answer in parsed.items()
    ), "no panel shows connections by reason"


def test_the_metric_check_can_fail(promql: PromQL, tmp_path: Path) -> None:
    """A query naming a metric procon does not export, and one that does not parse, are caught."""
    parsed = parse(
        promql,
        ["rate(procon_reconciles_total[5m])", "sum(procon_leader", 'up{job="procon"}'],
        tmp_path,
    )
    exported = exported_metrics()
    assert set(parsed["rate(procon_reconciles_total[5m])"]["metrics"]) - exported
    assert parsed["sum(procon_leader"]["error"]
    assert set(parsed['up{job="procon"}']["metrics"]) - exported == {"up"}


def test_grafana_variables_are_replaced_before_parsing() -> None:
    board = {
        "panels": [
            {
                "type": "row",
                "panels": [{"targets": [{"expr": 'rate(x{p=~"$processor"}[$__rate_interval])'}]}],
            }
        ],
        "templating": {
            "list": [{"type": "query", "name": "p", "query": {"query": "label_values(x, processor)"}}]
        },
    }
    assert queries(board) == ['rate(x{p=~".*"}[5m])', "x"]
