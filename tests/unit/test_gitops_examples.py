"""examples/gitops: the Argo CD and Flux objects point at what the repository holds, and wire the
health check in (Argo CD: the Lua check in argocd-cm; Flux: kstatus through `wait: true`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from procon.api import ProcessorConnection

GITOPS = Path("examples") / "gitops"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _kustomization_resources(root: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((root / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in _docs(root / name)]


@pytest.fixture(scope="module")
def gitops(repo_root: Path) -> Path:
    return repo_root / GITOPS


def test_connections_are_valid(gitops: Path) -> None:
    connections = _kustomization_resources(gitops / "connections")
    assert connections
    for doc in connections:
        ProcessorConnection.model_validate(doc)


def test_argocd_applications(repo_root: Path, gitops: Path) -> None:
    docs = _kustomization_resources(gitops / "argocd")
    apps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Application"}
    assert set(apps) == {"procon", "procon-connections"}
    assert (repo_root / apps["procon"]["spec"]["source"]["path"] / "Chart.yaml").is_file()
    assert apps["procon-connections"]["spec"]["source"]["path"] == str(GITOPS / "connections")
    # The operator first: a lower sync wave.
    assert int(apps["procon"]["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < 0
    # The health check is part of what the kustomization applies.
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert "resource.customizations.health.procon.dev_ProcessorConnection" in config_map["data"]


def test_flux_kustomizations_wait_on_kstatus(repo_root: Path, gitops: Path) -> None:
    docs = _docs(gitops / "flux" / "procon.yaml")
    kustomizations = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "Kustomization"}
    assert set(kustomizations) == {"procon-operator", "procon-connections"}
    for spec in kustomizations.values():
        assert spec["wait"] is True  # the health check: kstatus on every applied object
        assert (repo_root / spec["path"]).is_dir()
        assert (repo_root / spec["path"] / "kustomization.yaml").is_file()
    assert kustomizations["procon-connections"]["path"] == f"./{GITOPS / 'connections'}"
    assert kustomizations["procon-connections"]["dependsOn"] == [{"name": "procon-operator"}]
    (release,) = _kustomization_resources(gitops / "flux" / "operator")
    assert release["kind"] == "HelmRelease"
    assert (repo_root / release["spec"]["chart"]["spec"]["chart"] / "Chart.yaml").is_file()
