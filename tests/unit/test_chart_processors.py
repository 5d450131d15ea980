"""The chart's per-processor values, schema and environment are what the processor registry gives.

``procon chart`` (run by ``make crd``) writes them; these tests fail while the
committed chart is out of date with the registry.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from procon import chart, processors
from procon.processors.plugin import EnvSetting, ProcessorPlugin, SpecText


def test_the_committed_chart_is_up_to_date_with_the_registry(repo_root: Path) -> None:
    assert chart.stale(repo_root) == [], (
        "the chart is out of date with the processor registry: run `make crd`"
    )


def test_every_processor_setting_is_a_value_a_schema_key_and_an_env_var(repo_root: Path) -> None:
    values = yaml.safe_load((repo_root / chart.VALUES).read_text())["config"]["processors"]
    schema = json.loads((repo_root / chart.SCHEMA).read_text())
    node = schema["properties"]["config"]["properties"]["processors"]
    deployment = (repo_root / chart.DEPLOYMENT).read_text()
    for plugin in processors.plugins():
        for setting in plugin.settings:
            assert values[plugin.name][setting.value] == ""  # unset unless configured
            assert node["properties"][plugin.name]["properties"][setting.value]["pattern"] == setting.pattern
            assert f".Values.config.processors.{plugin.name}.{setting.value} " in deployment
            assert f"- name: {setting.name}\n" in deployment


def test_a_new_processors_settings_reach_the_chart(repo_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zeta = ProcessorPlugin(
        name="zeta",
        title="Zeta Pay",
        order=1000,
        options=None,
        spec_text=SpecText(credential_keys="`zetaKey`", events="zeta events", permissions="zeta grants"),
        settings=(
            EnvSetting("PROCON_ZETA_API_BASE", "apiBase", "Zeta API base URL", "https://api.zeta.example"),
        ),
        driver=lambda env, context: pytest.fail("no driver is built"),
    )
    monkeypatch.setattr(processors, "plugins", lambda: (*processors._discovered(), zeta))
    assert chart.stale(repo_root) == [chart.VALUES, chart.SCHEMA, chart.DEPLOYMENT]
    rendered = {r.path: r.text for r in chart.render(repo_root)}
    values = yaml.safe_load(rendered[chart.VALUES])["config"]["processors"]
    assert values["zeta"] == {"apiBase": ""}
    schema = json.loads(rendered[chart.SCHEMA])["properties"]["config"]["properties"]["processors"]
    assert "zeta" in schema["required"]
    assert "- name: PROCON_ZETA_API_BASE\n" in rendered[chart.DEPLOYMENT]
