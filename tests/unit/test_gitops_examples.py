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


def _retry_window(backoff: dict[str, Any], limit: int) -> float:
    """Seconds Argo CD keeps retrying a failed sync: `duration` multiplied by `factor` after each
    retry, capped at `maxDuration`, `limit` times."""

    def seconds(text: str) -> float:
        units = {"s": 1, "m": 60, "h": 3600}
        return float(text[:-1]) * units[text[-1]]

    delay, cap = seconds(backoff["duration"]), seconds(backoff["maxDuration"])
    total = 0.0
    for _ in range(limit):
        total += min(delay, cap)
        delay *= backoff["factor"]
    return total


def test_argocd_connections_wait_for_the_crd_by_retrying(gitops: Path) -> None:
    """The two Applications are applied side by side with `kubectl apply -k`: nothing syncs the
    operator's first (sync waves order resources inside one Application's sync, and these are no
    parent's resources). What works: the connections' Application skips the dry run for the kind the
    cluster does not know yet and retries the failed apply until the chart has created the CRD."""
    docs = _kustomization_resources(gitops / "argocd")
    apps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Application"}
    # No sync-wave annotation claiming an order that top-level Applications do not get.
    for app in apps.values():
        assert "argocd.argoproj.io/sync-wave" not in (app["metadata"].get("annotations") or {})

    policy = apps["procon-connections"]["spec"]["syncPolicy"]
    assert "SkipDryRunOnMissingResource=true" in policy["syncOptions"]
    # An automated sync never retries a failed sync of the same commit by itself: `retry` must,
    # for long enough that the chart is rendered, applied and its CRD established (minutes).
    assert policy["automated"]
    retry = policy["retry"]
    assert retry["limit"] < 0 or _retry_window(retry["backoff"], retry["limit"]) >= 10 * 60
    # The chart's CRD is what the connections wait for: it is in the operator's Application.
    assert apps["procon"]["spec"]["source"]["path"] == "charts/procon"
    values = apps["procon"]["spec"]["source"].get("helm", {}).get("valuesObject", {})
    assert values.get("crds", {}).get("enabled", True) is True


def test_retry_window_arithmetic() -> None:
    """The control for the window above: 10s doubling, capped at 3m, 10 times is 1210s; 5 times, 310s."""
    backoff = {"duration": "10s", "factor": 2, "maxDuration": "3m"}
    assert _retry_window(backoff, 10) == 1210
    assert _retry_window(backoff, 5) == 310
