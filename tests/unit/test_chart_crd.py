"""The chart's CRD template is generated from the API types, like crds/, and the committed copy is
exactly that output (`make crd` regenerates both)."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import yaml

from procon.api.crd import HELM_TEMPLATE_PATH, crd, helm_crd_template
from procon.cli import main


def test_committed_chart_crd_is_procon_crd_helm_output(repo_root: Path) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["crd", "--helm"]) == 0
    committed = (repo_root / HELM_TEMPLATE_PATH).read_text()
    assert out.getvalue() == committed, (
        f"{HELM_TEMPLATE_PATH} is stale: run `make crd` (procon crd --helm > {HELM_TEMPLATE_PATH})"
    )


def test_template_is_the_crd_once_the_helm_lines_are_gone() -> None:
    """Without its template actions the template is the very object crds/ holds."""
    lines = [line for line in helm_crd_template().splitlines() if "{{" not in line]
    doc = yaml.safe_load("\n".join(lines))
    expected = crd()
    assert doc["spec"] == expected["spec"]
    assert doc["metadata"]["name"] == expected["metadata"]["name"]
    assert doc["metadata"]["labels"] == expected["metadata"]["labels"]
    assert doc["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}


def test_template_is_guarded_by_crds_enabled() -> None:
    actions = [line.strip() for line in helm_crd_template().splitlines() if "{{" in line]
    assert actions[0] == "{{- if .Values.crds.enabled }}"
    assert actions[-1] == "{{- end }}"
    assert "{{- if .Values.crds.keep }}" in actions
