"""The Helm chart on the real control plane.

- ``helm lint --strict`` passes, and every rendered manifest passes server-side
  dry-run, in both RBAC modes and with every optional object on;
- the values schema rejects typos before anything reaches the cluster;
- the pod passes Pod Security ``restricted``;
- ``helm install`` succeeds and ``helm uninstall`` leaves the CRD and the
  connections in place when ``crds.keep`` is set;
- the operator, run with the chart's ServiceAccount token instead of admin
  credentials, in both RBAC modes, reconciles a Stripe connection to a Ready
  that kstatus and the Argo CD check agree on, and cleans up after it, while
  RBAC and the ValidatingAdmissionPolicy keep it away from Secrets it has no
  business with.

These tests run before the session's cluster-wide ``operator`` starts (see
the ``no_session_operator`` marker in conftest.py): it would reconcile this
module's connections too.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from procon.api.crd import crd
from procon.api.v1alpha1 import FINALIZER
from procon.dev import cluster as control_plane
from procon.dev.processes import free_port
from procon.dev.toolchain import PromQL, ensure_kstatus, ensure_monitoring_crds, ensure_promql
from procon.emulators.stripe import StripeEmulator
from tests.argocd_health import health
from tests.conftest import ROOT
from tests.integration.conftest import Helm, Kubectl
from tests.integration.operator_harness import (
    ANALYTICS_PERMISSIONS,
    StripeAccount,
    connection,
    key_secret,
    metrics_reader_token,
    operator_env,
    scrape_metrics,
    start_operator,
    wait_condition,
)
from tests.integration.test_health_checks import kstatus_of
from tests.waiting import wait_for

pytestmark = [pytest.mark.no_session_operator, pytest.mark.usefixtures("crd_installed")]

CHART = str(ROOT / "charts" / "procon")
MANAGED_BY = "app.kubernetes.io/managed-by"
# Every optional object on, so that all of them are linted and dry-run.
EVERYTHING = (
    "--set=metrics.serviceMonitor.enabled=true",
    "--set=prometheusRule.enabled=true",
    "--set=networkPolicy.enabled=true",
    "--set=networkPolicy.apiServer.cidrs={10.96.0.1/32}",
    "--set=metrics.tls.secretName=procon-metrics-tls",
    "--set=metrics.readers[0].kind=ServiceAccount",
    "--set=metrics.readers[0].name=prometheus",
    "--set=metrics.readers[0].namespace=monitoring",
    "--set=grafanaDashboard.enabled=true",
    "--set=shards[0].name=shard1",
)


def _suffix() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def namespaces(kubectl: Kubectl) -> Iterator[Callable[..., str]]:
    """Make namespaces (unique names, optional labels) that are deleted after the test."""
    made: list[str] = []

    def make(prefix: str, **labels: str) -> str:
        name = f"{prefix}-{_suffix()}"
        kubectl.run("create", "namespace", name)
        if labels:
            kubectl.run("label", "namespace", name, *(f"{k}={v}" for k, v in labels.items()))
        made.append(name)
        return name

    yield make
    for name in made:
        kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def kube_version(kubectl: Kubectl) -> str:
    """The server's version: `helm template` checks the chart's kubeVersion against it."""
    return str(json.loads(kubectl.run("version", "-o", "json").stdout)["serverVersion"]["gitVersion"])


@pytest.fixture(scope="module")
def monitoring_crds(kubectl: Kubectl) -> None:
    """The Prometheus Operator's ServiceMonitor and PrometheusRule CRDs, so their objects can be dry-run."""
    for path in ensure_monitoring_crds():
        kubectl.run("apply", "--server-side", "--force-conflicts", "--field-manager=tests", "-f", str(path))
        name = yaml.safe_load(path.read_text())["metadata"]["name"]
        kubectl.run("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")


def render(
    helm: Helm, kube_version: str, namespace: str, *args: str, release: str = "procon"
) -> list[dict[str, Any]]:
    out = helm.run(
        "template", release, CHART, "-n", namespace, f"--kube-version={kube_version}", *args
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


# ---------------------------------------------------------------- lint, render, dry-run


@pytest.mark.parametrize("watch", [None, "team-a,team-b"], ids=["cluster-wide", "namespaced"])
def test_helm_lint_strict(helm: Helm, watch: str | None) -> None:
    mode = [f"--set=watchNamespaces={{{watch}}}"] if watch else []
    result = helm.run("lint", "--strict", CHART, *mode, *EVERYTHING)
    assert "0 chart(s) failed" in result.stdout, result.stdout


@pytest.mark.usefixtures("monitoring_crds")
@pytest.mark.parametrize("namespaced", [False, True], ids=["cluster-wide", "namespaced"])
def test_every_rendered_manifest_passes_server_side_dry_run(
    helm: Helm, kubectl: Kubectl, kube_version: str, namespaces: Callable[..., str], namespaced: bool
) -> None:
    system = namespaces("procon-system")
    mode: list[str] = []
    if namespaced:
        mode = [f"--set=watchNamespaces={{{namespaces('team-a')},{namespaces('team-b')}}}"]
    # What discovery tells `helm install` on this server (1.36+): the finalizer policy is rendered.
    served = "--api-versions=admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"
    docs = render(helm, kube_version, system, *mode, *EVERYTHING, served, release=f"dry-{_suffix()}")
    kinds = {d["kind"] for d in docs}
    expected = {
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "NetworkPolicy",
        "ServiceMonitor",
        "PrometheusRule",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        "ConfigMap",  # the Grafana dashboard
        "PodDisruptionBudget",
        "Role",  # leader election, in the release namespace (and the operator's, namespaced)
        "RoleBinding",
    }
    assert kinds == expected

    result = kubectl.run(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--force-conflicts",  # the CRD exists already, applied by another field manager
        "--field-manager=chart-dry-run",
        "-f",
        "-",
        input=yaml.safe_dump_all(docs),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    accepted = [line for line in result.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(docs), result.stdout
    assert "Warning" not in result.stderr, result.stderr


def test_rbac_modes(helm: Helm, kube_version: str) -> None:
    """Cluster-wide: one ClusterRole with the operator's rules. Namespaced: a Role per watched
    namespace with the same rules, and nothing cluster-wide beyond reading CRDs and Namespaces."""
    cluster_wide = render(helm, kube_version, "procon-system")
    namespaced = render(helm, kube_version, "procon-system", "--set=watchNamespaces={team-a,team-b}")

    operator_rules = next(
        r for r in by_kind(cluster_wide, "ClusterRole") if r["metadata"]["name"] == "procon"
    )["rules"]

    def operator_roles(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in by_kind(docs, "Role") if not r["metadata"]["name"].endswith("-leader-election")]

    assert operator_roles(cluster_wide) == []
    roles = operator_roles(namespaced)
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert all(r["rules"] == operator_rules for r in roles)
    bindings = by_kind(namespaced, "RoleBinding")
    assert all(
        b["subjects"] == [{"kind": "ServiceAccount", "name": "procon", "namespace": "procon-system"}]
        for b in bindings
    )

    cluster_rules = [
        rule
        for role in by_kind(namespaced, "ClusterRole")
        if not role["metadata"]["labels"].get("rbac.authorization.k8s.io/aggregate-to-view")
        and not role["metadata"]["labels"].get("rbac.authorization.k8s.io/aggregate-to-edit")
        for rule in role["rules"]
    ]
    cluster_identity = {
        "apiGroups": [""],
        "resources": ["namespaces"],
        "resourceNames": ["kube-system"],
        "verbs": ["get"],
    }
    assert cluster_rules == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        },
        cluster_identity,
        # /metrics: the scraper's token goes to the API server to be reviewed ...
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
        # ... which allows it with this ClusterRole (bound to the scrapers, not the operator).
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
    ]
    env = {
        e["name"]: e.get("value")
        for e in by_kind(namespaced, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["PROCON_NAMESPACES"] == "team-a,team-b"
    assert "PROCON_CLUSTER_NAME" not in env  # the identity is the kube-system namespace's UID

    # Both modes may read the kube-system namespace (that one), which identifies the cluster; with
    # a cluster name configured the operator reads nothing of the kind, and is not allowed to.
    for docs in (cluster_wide, namespaced):
        identity_roles = [
            r for r in by_kind(docs, "ClusterRole") if r["metadata"]["name"] == "procon-cluster-identity"
        ]
        assert [r["rules"] for r in identity_roles] == [[cluster_identity]]
        binding = next(
            b
            for b in by_kind(docs, "ClusterRoleBinding")
            if b["roleRef"]["name"] == "procon-cluster-identity"
        )
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "procon", "namespace": "procon-system"}
        ]
    named = render(helm, kube_version, "procon-system", "--set=config.clusterName=prod-eu-1")
    assert not [
        r for r in by_kind(named, "ClusterRole") if r["metadata"]["name"] == "procon-cluster-identity"
    ]
    named_env = {
        e["name"]: e.get("value")
        for e in by_kind(named, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert named_env["PROCON_CLUSTER_NAME"] == "prod-eu-1"

    # Secrets: never update or delete; write access exists only together with the admission policy.
    secret_rules = [r for r in operator_rules if "secrets" in r["resources"]]
    assert secret_rules == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "create", "patch"]}
    ]


def _env(deployment: dict[str, Any]) -> dict[str, Any]:
    """The operator container's env: values, or the field a valueFrom reads."""
    return {
        e["name"]: e.get("value", e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath"))
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }


def test_leader_election_is_on_with_two_replicas(helm: Helm, kube_version: str) -> None:
    docs = render(helm, kube_version, "procon-system")
    (deployment,) = by_kind(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    env = _env(deployment)
    assert env["PROCON_LEADER_ELECTION"] == "true"
    assert env["PROCON_LEADER_ELECTION_NAMESPACE"] == "metadata.namespace"
    assert env["PROCON_LEADER_ELECTION_LEASE_NAME"] == "procon"
    assert env["PROCON_POD_NAME"] == "metadata.name"
    assert (
        env["PROCON_LEADER_ELECTION_LEASE_DURATION"],
        env["PROCON_LEADER_ELECTION_RENEW_DEADLINE"],
        env["PROCON_LEADER_ELECTION_RETRY_PERIOD"],
    ) == ("15", "10", "2")
    assert "PROCON_SHARD_SELECTOR" not in env
    (role,) = [r for r in by_kind(docs, "Role") if r["metadata"]["name"] == "procon-leader-election"]
    assert role["metadata"]["namespace"] == "procon-system"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["procon"],
            "verbs": ["get", "update"],
        },
    ]

    (budget,) = by_kind(docs, "PodDisruptionBudget")
    assert budget["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]},
    }

    # Two replicas without leader election would both act: refused.
    refused = helm.run(
        "template",
        "procon",
        CHART,
        f"--kube-version={kube_version}",
        "--set=leaderElection.enabled=false",
        check=False,
    )
    assert refused.returncode != 0
    assert "more than one replica needs leaderElection.enabled" in refused.stderr, refused.stderr
    # One replica without it: the old pod stops before the new one starts, and no Lease rights.
    alone = render(
        helm, kube_version, "procon-system", "--set=leaderElection.enabled=false", "--set=replicaCount=1"
    )
    (deployment,) = by_kind(alone, "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert not [name for name in _env(deployment) if name.startswith("PROCON_LEADER_ELECTION")]
    assert not [r for r in by_kind(alone, "Role") if r["metadata"]["name"].endswith("-leader-election")]
    assert not by_kind(alone, "PodDisruptionBudget")  # one pod: a budget would only block drains


def test_shards_render_one_deployment_and_lease_each(helm: Helm, kube_version: str) -> None:
    docs = render(
        helm,
        kube_version,
        "procon-system",
        "--set=shards[0].name=blue",
        "--set=shards[1].name=green",
        "--set=shards[1].replicaCount=3",
    )
    deployments = {d["metadata"]["name"]: d for d in by_kind(docs, "Deployment")}
    assert sorted(deployments) == ["procon", "procon-blue", "procon-green"]
    selectors = {name: _env(d).get("PROCON_SHARD_SELECTOR") for name, d in deployments.items()}
    # As Flux shards: the main one takes what no shard label claims.
    assert selectors == {
        "procon": "!procon.dev/shard",
        "procon-blue": "procon.dev/shard=blue",
        "procon-green": "procon.dev/shard=green",
    }
    leases = {name: _env(d)["PROCON_LEADER_ELECTION_LEASE_NAME"] for name, d in deployments.items()}
    assert leases == {"procon": "procon", "procon-blue": "procon-blue", "procon-green": "procon-green"}
    assert [d["spec"]["replicas"] for d in deployments.values()] == [2, 2, 3]
    for name, shard in (("procon-blue", "blue"), ("procon-green", "green")):
        spec = deployments[name]["spec"]
        assert spec["selector"]["matchLabels"]["procon.dev/shard"] == shard
        assert spec["template"]["metadata"]["labels"]["procon.dev/shard"] == shard
    (role,) = [r for r in by_kind(docs, "Role") if r["metadata"]["name"] == "procon-leader-election"]
    assert role["rules"][1]["resourceNames"] == ["procon", "procon-blue", "procon-green"]
    budgets = {b["metadata"]["name"]: b["spec"]["selector"] for b in by_kind(docs, "PodDisruptionBudget")}
    assert budgets["procon"]["matchExpressions"] == [{"key": "procon.dev/shard", "operator": "DoesNotExist"}]
    assert budgets["procon-green"]["matchLabels"]["procon.dev/shard"] == "green"
    assert sorted(budgets) == ["procon", "procon-blue", "procon-green"]
    # One metrics Service for every shard's pods.
    (service,) = [s for s in by_kind(docs, "Service") if s["metadata"]["name"] == "procon-metrics"]
    assert "procon.dev/shard" not in service["spec"]["selector"]


def test_the_grafana_dashboard_configmap_carries_the_dashboard(helm: Helm, kube_version: str) -> None:
    assert not by_kind(render(helm, kube_version, "procon-system"), "ConfigMap")
    docs = render(
        helm,
        kube_version,
        "procon-system",
        "--set=grafanaDashboard.enabled=true",
        "--set=grafanaDashboard.namespace=monitoring",
    )
    (config_map,) = by_kind(docs, "ConfigMap")
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((ROOT / "charts" / "procon" / "dashboards" / "procon.json").read_text())
    assert json.loads(config_map["data"]["procon.json"]) == shipped


def test_chart_crd_is_the_generated_crd(helm: Helm, kube_version: str) -> None:
    """templates/crd.yaml renders to exactly what `procon crd` defines, plus the release's labels."""
    generated = crd()
    kept = by_kind(render(helm, kube_version, "procon-system"), "CustomResourceDefinition")
    assert len(kept) == 1
    assert kept[0]["spec"] == generated["spec"]
    assert kept[0]["metadata"]["labels"].items() >= generated["metadata"]["labels"].items()
    assert kept[0]["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}

    not_kept = by_kind(
        render(helm, kube_version, "procon-system", "--set=crds.keep=false"), "CustomResourceDefinition"
    )
    assert "annotations" not in not_kept[0]["metadata"]
    assert (
        by_kind(
            render(helm, kube_version, "procon-system", "--set=crds.enabled=false"),
            "CustomResourceDefinition",
        )
        == []
    )


# ---------------------------------------------------------------- the alerts


@pytest.fixture(scope="module")
def promql() -> PromQL:
    return ensure_promql()


@pytest.fixture(scope="module")
def alerts(helm: Helm, kube_version: str) -> dict[str, dict[str, Any]]:
    (rule,) = by_kind(
        render(helm, kube_version, "procon-system", "--set=prometheusRule.enabled=true"), "PrometheusRule"
    )
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def test_prometheus_rules_parse(helm: Helm, kube_version: str, promql: PromQL, tmp_path: Path) -> None:
    """Every expr and for parses with Prometheus' own parser, with the defaults and other values."""
    for values in ([], ["--set=prometheusRule.errorRateWindow=1h", "--set=prometheusRule.notReadyFor=1h"]):
        path = tmp_path / "rules.yaml"
        path.write_text(
            yaml.safe_dump_all(render(helm, kube_version, "ns", "--set=prometheusRule.enabled=true", *values))
        )
        result = subprocess.run(
            [str(promql.check), "check", str(path)], text=True, capture_output=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "3 rules parse"


def _condition(name: str, condition: str, status: str) -> str:
    return (
        f'procon_connection_condition{{namespace="shop",name="{name}",processor="stripe",'
        f'condition="{condition}",status="{status}"}}'
    )


def _calls(processor: str, code: str) -> str:
    labels = f'processor="{processor}",operation="list_webhooks",status_code="{code}"'
    return f"procon_processor_api_calls_total{{{labels}}}"


def evaluate_alert(
    promql: PromQL, expr: str, series: list[str], expected: list[str], path: Path
) -> subprocess.CompletedProcess[str]:
    """Run a promqltest script: ``series`` loaded one sample a minute, ``expr`` evaluated at 20m,
    expecting exactly ``expected`` (promqltest fails on a missing or an extra series)."""
    script = "load 1m\n" + "".join(f"  {s}\n" for s in series)
    script += f"\neval instant at 20m {' '.join(expr.split())}\n" + "".join(f"  {e}\n" for e in expected)
    path.write_text(script)
    return subprocess.run(
        [str(promql.script), "-test.run=TestScript"],
        env={**os.environ, "PROCON_PROMQL_SCRIPT": str(path)},
        text=True,
        capture_output=True,
        check=False,
    )


# alert -> (series loaded one sample a minute for 30 minutes, what the expression returns at 20m)
ALERT_CASES: dict[str, tuple[list[str], list[str]]] = {
    # x is not Ready; y is not Ready because it is Stalled (its own alert); z is Ready.
    "ProconConnectionNotReady": (
        [
            f"{_condition('x', 'Ready', 'False')} 1x30",
            f"{_condition('x', 'Stalled', 'False')} 1x30",
            f"{_condition('y', 'Ready', 'False')} 1x30",
            f"{_condition('y', 'Stalled', 'True')} 1x30",
            f"{_condition('z', 'Ready', 'True')} 1x30",
            f"{_condition('z', 'Stalled', 'False')} 1x30",
        ],
        [f"{_condition('x', 'Ready', 'False')} 1"],
    ),
    "ProconConnectionStalled": (
        [
            f"{_condition('y', 'Stalled', 'True')} 1x30",
            f"{_condition('z', 'Stalled', 'False')} 1x30",
        ],
        [f"{_condition('y', 'Stalled', 'True')} 1"],
    ),
    # Stripe: 2 of 10 calls a minute fail (503, no connection); Checkout.com: a third are 404s,
    # which are answers, not errors.
    "ProconProcessorErrorRate": (
        [
            f"{_calls('stripe', '200')} 0+8x30",
            f"{_calls('stripe', '503')} 0+1x30",
            f"{_calls('stripe', 'error')} 0+1x30",
            f"{_calls('checkout', '200')} 0+10x30",
            f"{_calls('checkout', '404')} 0+5x30",
        ],
        ['{processor="stripe"} 0.2'],
    ),
}


@pytest.mark.parametrize("alert", list(ALERT_CASES))
def test_alert_selects_what_it_names(
    alerts: dict[str, dict[str, Any]], promql: PromQL, tmp_path: Path, alert: str
) -> None:
    """Each alert's expression, evaluated by Prometheus' engine on sample series, returns exactly
    the series it is about (promqltest fails on a missing or an extra one)."""
    series, expected = ALERT_CASES[alert]
    result = evaluate_alert(promql, alerts[alert]["expr"], series, expected, tmp_path / f"{alert}.test")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_scripts_can_fail(alerts: dict[str, dict[str, Any]], promql: PromQL, tmp_path: Path) -> None:
    """The control: expecting the Stalled connection in ProconConnectionNotReady fails."""
    series, _ = ALERT_CASES["ProconConnectionNotReady"]
    wrong = [f"{_condition('x', 'Ready', 'False')} 1", f"{_condition('y', 'Ready', 'False')} 1"]
    result = evaluate_alert(
        promql, alerts["ProconConnectionNotReady"]["expr"], series, wrong, tmp_path / "wrong.test"
    )
    assert result.returncode != 0
    missing = [line for line in result.stdout.splitlines() if "not found" in line]
    assert missing, result.stdout
    assert 'name="y"' in missing[0], result.stdout


# ---------------------------------------------------------------- values schema


TYPOS = [
    ("unknown-top-level-key", "--set=confg.logLevel=debug", "confg"),
    ("unknown-nested-key", "--set=config.logLevl=debug", "logLevl"),
    ("unknown-key-in-a-feature", "--set=metrics.serviceMonitor.enabeld=true", "enabeld"),
    ("bad-enum", "--set=config.logLevel=verbose", "logLevel"),
    ("negative-replicas", "--set=replicaCount=-1", "replicaCount"),
    ("unknown-leader-election-key", "--set=leaderElection.leaseDurationSecond=15", "leaseDurationSecond"),
    ("bad-shard-name", "--set=shards[0].name=Shard_1", "shards"),
    ("bad-namespace-name", "--set=watchNamespaces={Team_A}", "watchNamespaces"),
    ("not-a-url", "--set=config.processors.stripe.apiBase=stripe-emulator:12111", "apiBase"),
    ("string-for-number", "--set-string=config.driftInterval=often", "driftInterval"),
]


@pytest.mark.parametrize(("flag", "key"), [(f, k) for _, f, k in TYPOS], ids=[n for n, _, _ in TYPOS])
def test_values_typo_is_rejected_at_install(
    helm: Helm, namespaces: Callable[..., str], flag: str, key: str
) -> None:
    system = namespaces("procon-system")
    release = f"typo-{_suffix()}"
    result = helm.run("install", release, CHART, "-n", system, "--set=crds.enabled=false", flag, check=False)
    assert result.returncode != 0, f"helm accepted {flag}"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert key in result.stderr, result.stderr
    assert helm.run("list", "-n", system, "-q").stdout.strip() == ""


def test_default_values_install_cleanly(helm: Helm, namespaces: Callable[..., str]) -> None:
    """The control: the same install without a typo goes through (as a server-side dry run)."""
    system = namespaces("procon-system")
    helm.run(
        "install", f"ok-{_suffix()}", CHART, "-n", system, "--set=crds.enabled=false", "--dry-run=server"
    )


# ---------------------------------------------------------------- Pod Security


def _pod_from_deployment(docs: list[dict[str, Any]], namespace: str) -> dict[str, Any]:
    template = by_kind(docs, "Deployment")[0]["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"pss-{_suffix()}",
            "namespace": namespace,
            "labels": template["metadata"]["labels"],
        },
        "spec": template["spec"],
    }


def test_pod_passes_pod_security_restricted(
    helm: Helm, kubectl: Kubectl, kube_version: str, namespaces: Callable[..., str]
) -> None:
    """The operator pod is admitted where Pod Security `restricted` is enforced; the same pod without
    the chart's security contexts is not (so the check can fail)."""
    system = namespaces("procon-system", **{"pod-security.kubernetes.io/enforce": "restricted"})
    docs = render(helm, kube_version, system)
    service_account = by_kind(docs, "ServiceAccount")[0]
    kubectl.apply(service_account, namespace=system)  # the ServiceAccount admission plugin wants it to exist
    pod = _pod_from_deployment(docs, system)

    result = kubectl.run("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(pod), check=False)
    assert result.returncode == 0, result.stderr
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] == 65532

    del pod["spec"]["securityContext"]
    del container["securityContext"]
    result = kubectl.run("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(pod), check=False)
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in result.stderr, result.stderr


# ---------------------------------------------------------------- install, uninstall


def test_install_then_uninstall_keeps_the_crd_and_the_connections(
    helm: Helm, kubectl: Kubectl, namespaces: Callable[..., str]
) -> None:
    system = namespaces("procon-system", **{"pod-security.kubernetes.io/enforce": "restricted"})
    apps = namespaces("apps")
    release = f"keep-{_suffix()}"
    crd_name = "processorconnections.procon.dev"
    # The session installed the CRD with kubectl (crd_installed); let the release adopt it,
    # as a cluster moving from `kubectl apply -f crds/` to the chart would.
    kubectl.run("label", "--overwrite", "crd", crd_name, f"{MANAGED_BY}=Helm")
    kubectl.run(
        "annotate",
        "--overwrite",
        "crd",
        crd_name,
        f"meta.helm.sh/release-name={release}",
        f"meta.helm.sh/release-namespace={system}",
    )

    installed = helm.run("install", release, CHART, "-n", system, "--set=crds.keep=true")
    assert "STATUS: deployed" in installed.stdout
    fullname = f"{release}-procon"
    deployment = kubectl.get_json("deployment", fullname, "-n", system)
    # Two replicas, one acting at a time: a rolling update starts the new pods as standbys.
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["replicas"] == 2
    definition = kubectl.get_json("crd", crd_name)
    assert definition["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    kubectl.get_json("validatingadmissionpolicy", f"{fullname}-{system}-secret-writes")

    kubectl.apply(connection("kept"), namespace=apps)
    uninstalled = helm.run("uninstall", release, "-n", system)
    assert "kept due to the resource policy" in uninstalled.stdout + uninstalled.stderr

    assert kubectl.get_json("crd", crd_name)["metadata"]["name"] == crd_name
    assert kubectl.get_json("pconn", "kept", "-n", apps)["metadata"]["name"] == "kept"
    # The release's finalizer policy may have held it as it was created (the policy is in force a
    # moment after the install); with no operator left, the finalizer comes off by hand, as the
    # chart's README says, so that its namespace can go.
    kubectl.run(
        "patch", "pconn", "kept", "-n", apps, "--type=merge", "-p", '{"metadata": {"finalizers": null}}'
    )
    for kind, name, ns in [
        ("deployment", fullname, system),
        ("serviceaccount", fullname, system),
        ("clusterrole", fullname, None),
        ("validatingadmissionpolicy", f"{fullname}-{system}-secret-writes", None),
        ("mutatingadmissionpolicy", f"{fullname}-{system}-finalizer", None),
    ]:
        args = ["get", kind, name, *(["-n", ns] if ns else []), "--ignore-not-found", "-o", "name"]
        assert kubectl.run(*args).stdout.strip() == "", f"{kind}/{name} outlived helm uninstall"


# ---------------------------------------------------------------- the ServiceAccount's permissions


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    service_account: str
    watched: str
    unwatched: str

    @property
    def fullname(self) -> str:
        """The name of the release's Deployment (the chart's `procon.fullname`)."""
        return f"{self.name}-procon"


@dataclass(frozen=True)
class AsServiceAccount:
    """kubectl with a token of the chart's ServiceAccount (TokenRequest API), not the admin certificate."""

    cluster: control_plane.Cluster
    kubeconfig: Path

    def run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.cluster.env(), "KUBECONFIG": str(self.kubeconfig)}
        result = subprocess.run(
            ["kubectl", *args], input=input, text=True, capture_output=True, env=env, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} as the ServiceAccount failed:\n{result.stderr}")
        return result

    def can_i(self, verb: str, resource: str, namespace: str | None, subresource: str | None = None) -> bool:
        where = ["-n", namespace] if namespace else ["--all-namespaces"]
        extra = [f"--subresource={subresource}"] if subresource else []
        answer = self.run("auth", "can-i", verb, resource, *where, *extra, check=False).stdout.strip()
        assert answer in ("yes", "no"), answer
        return answer == "yes"


def _install(helm: Helm, namespaces: Callable[..., str], watch: bool) -> Release:
    system = namespaces("procon-system")
    watched, unwatched = namespaces("team-a"), namespaces("team-b")
    name = f"sa-{_suffix()}"
    mode = [f"--set=watchNamespaces={{{watched}}}"] if watch else []
    # The CRD is the session's (crd_installed); this release only brings the operator's side.
    helm.run("install", name, CHART, "-n", system, "--set=crds.enabled=false", *mode)
    return Release(name, system, f"{name}-procon", watched, unwatched)


@pytest.fixture
def namespaced_release(helm: Helm, namespaces: Callable[..., str]) -> Iterator[Release]:
    release = _install(helm, namespaces, watch=True)
    yield release
    helm.run("uninstall", release.name, "-n", release.namespace, check=False)


@pytest.fixture
def cluster_wide_release(helm: Helm, namespaces: Callable[..., str]) -> Iterator[Release]:
    release = _install(helm, namespaces, watch=False)
    yield release
    helm.run("uninstall", release.name, "-n", release.namespace, check=False)


def _as(kubectl: Kubectl, release: Release, tmp_path: Path) -> AsServiceAccount:
    path = control_plane.service_account_kubeconfig(
        kubectl.cluster, release.namespace, release.service_account, tmp_path / "sa.kubeconfig"
    )
    return AsServiceAccount(kubectl.cluster, path)


def _secret(name: str, *, managed: bool) -> str:
    labels = {MANAGED_BY: "procon"} if managed else {}
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "labels": labels},
            "stringData": {"k": "v"},
        }
    )


def _await_denial(write: Callable[[], subprocess.CompletedProcess[str]]) -> subprocess.CompletedProcess[str]:
    """The first refused write: a new ValidatingAdmissionPolicy is in force a moment after its creation."""

    def refused() -> subprocess.CompletedProcess[str] | None:
        result = write()
        return result if result.returncode != 0 else None

    return wait_for(refused, timeout=10, what="the admission policy to refuse the write")


def test_namespaced_rbac_is_least_privilege(
    kubectl: Kubectl, namespaced_release: Release, tmp_path: Path
) -> None:
    release = namespaced_release
    sa = _as(kubectl, release, tmp_path)
    assert sa.run("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout == (
        f"system:serviceaccount:{release.namespace}:{release.service_account}"
    )
    a, b = release.watched, release.unwatched
    pconn = "processorconnections.procon.dev"

    # What it needs, where it needs it.
    for verb in ("get", "list", "watch", "patch"):
        assert sa.can_i(verb, pconn, a), verb
    assert sa.can_i("patch", pconn, a, subresource="status")
    assert sa.can_i("update", pconn, a, subresource="finalizers")
    for verb in ("get", "list", "watch", "create", "patch"):
        assert sa.can_i(verb, "secrets", a), verb
    assert sa.can_i("create", "events", a)

    # Nothing in a namespace it does not watch, its own included.
    for namespace in (b, release.namespace):
        for verb in ("get", "list", "watch"):
            assert not sa.can_i(verb, "secrets", namespace), (verb, namespace)
        assert not sa.can_i("get", pconn, namespace)
    assert not sa.can_i("list", "secrets", None)

    # Nothing it does not do, even where it watches.
    assert not sa.can_i("update", "secrets", a)
    assert not sa.can_i("delete", "secrets", a)
    for verb in ("create", "update", "delete"):
        assert not sa.can_i(verb, pconn, a), verb
    assert not sa.can_i("get", "configmaps", a)
    assert not sa.can_i("create", "pods", a)
    # One Namespace it may read, the one whose UID identifies the cluster; no other.
    assert sa.can_i("get", "namespaces/kube-system", None)
    assert not sa.can_i("get", f"namespaces/{a}", None)
    assert not sa.can_i("get", "namespaces", None)

    # An unwatched namespace is RBAC's refusal, before any admission policy.
    denied = sa.run(
        "create", "--dry-run=server", "-n", b, "-f", "-", input=_secret("x", managed=True), check=False
    )
    assert denied.returncode != 0
    assert 'cannot create resource "secrets"' in denied.stderr, denied.stderr


def test_admission_policy_limits_secret_writes_to_managed_ones(
    kubectl: Kubectl, namespaced_release: Release, tmp_path: Path
) -> None:
    """RBAC lets the operator create and patch Secrets in a watched namespace; the
    ValidatingAdmissionPolicy narrows that to Secrets labelled managed-by=procon. Real writes as
    the ServiceAccount (server-side dry runs: admission runs, nothing is stored)."""
    release = namespaced_release
    sa = _as(kubectl, release, tmp_path)
    a = release.watched
    policy = f"{release.service_account}-{release.namespace}-secret-writes"
    assert sa.can_i("create", "secrets", a)  # RBAC alone would allow any create

    def write(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return sa.run(*args, "--dry-run=server", "-n", a, input=input, check=False)

    # A new policy takes effect within a second or so of its creation (the API server loads it
    # asynchronously), so the first denial is awaited, not expected at once.
    created = _await_denial(lambda: write("create", "-f", "-", input=_secret("unlabelled", managed=False)))
    assert f"ValidatingAdmissionPolicy '{policy}'" in created.stderr, created.stderr
    assert "may only write Secrets labelled app.kubernetes.io/managed-by=procon" in created.stderr

    assert write("create", "-f", "-", input=_secret("labelled", managed=True)).returncode == 0

    # Someone else's Secret: it cannot adopt it by adding the label...
    kubectl.run("create", "-n", a, "-f", "-", input=_secret("credentials", managed=False))
    adopted = write(
        "patch", "secret", "credentials", "-p", json.dumps({"metadata": {"labels": {MANAGED_BY: "procon"}}})
    )
    assert adopted.returncode != 0
    assert "may only change or delete Secrets that were already labelled" in adopted.stderr, adopted.stderr
    assert write("patch", "secret", "credentials", "-p", '{"data": {"k": "eA=="}}').returncode != 0

    # ... its own it may change, but not drop the label from.
    kubectl.run("create", "-n", a, "-f", "-", input=_secret("signing", managed=True))
    assert write("patch", "secret", "signing", "-p", '{"data": {"k": "eA=="}}').returncode == 0
    # Leaving it behind for an orphaned webhook: no owner reference, marked as orphaned.
    released = write(
        "patch",
        "secret",
        "signing",
        "--type=merge",
        "-p",
        json.dumps({"metadata": {"ownerReferences": [], "annotations": {"procon.dev/orphaned-from": "a/b"}}}),
    )
    assert released.returncode == 0, released.stderr
    unlabelled = write(
        "patch", "secret", "signing", "-p", json.dumps({"metadata": {"labels": {MANAGED_BY: None}}})
    )
    assert unlabelled.returncode != 0
    assert "may only write Secrets labelled" in unlabelled.stderr, unlabelled.stderr

    # Only the operator is bound: an admin writes what it likes.
    admin = kubectl.run(
        "patch",
        "secret",
        "credentials",
        "-n",
        a,
        "--dry-run=server",
        "-p",
        '{"data": {"k": "eA=="}}',
        check=False,
    )
    assert admin.returncode == 0, admin.stderr


def _finalizers(kubectl: Kubectl, namespace: str, doc: dict[str, Any], *args: str) -> list[str] | None:
    """The finalizers of ``doc`` as the API server stores it (None: the write was refused)."""
    result = kubectl.run(
        "apply",
        "--server-side",
        "--field-manager=tests",
        "-n",
        namespace,
        "-o",
        "json",
        *args,
        "-f",
        "-",
        input=json.dumps(doc),
        check=False,
    )
    if result.returncode != 0:
        return None
    return list(json.loads(result.stdout)["metadata"].get("finalizers", []))


def test_the_finalizer_policy_holds_a_connection_from_its_creation(
    helm: Helm, kubectl: Kubectl, namespaces: Callable[..., str]
) -> None:
    """The chart's MutatingAdmissionPolicy puts procon's finalizer on a connection this release
    reconciles as it is created (the operator then needs no write of its own for it), keeps it
    through a server-side apply that leaves it out, and never puts it back once the deletion has
    begun; connections no Deployment of the release selects are left alone."""
    system = namespaces("procon-system")
    watched, unwatched = namespaces("team-a"), namespaces("team-b")
    name = f"fin-{_suffix()}"
    helm.run(
        "install",
        name,
        CHART,
        "-n",
        system,
        "--set=crds.enabled=false",
        f"--set=watchNamespaces={{{watched}}}",
        "--set=shards[0].name=shard1",
    )
    try:
        kubectl.get_json("mutatingadmissionpolicy", f"{name}-procon-{system}-finalizer")
        # A new policy is in force a moment after its creation (loaded asynchronously).
        wait_for(
            lambda: _finalizers(kubectl, watched, connection("probe"), "--dry-run=server") == [FINALIZER],
            timeout=30,
            what="the finalizer policy to take effect",
        )

        shop = connection("shop")
        assert _finalizers(kubectl, watched, shop) == [FINALIZER]
        # What admission adds to a server-side apply belongs to no field manager, so the next
        # apply, which leaves the finalizer out as every GitOps apply does, cannot remove it...
        stored = kubectl.get_json("pconn", "shop", "-n", watched, "--show-managed-fields")
        owners = [entry["manager"] for entry in stored["metadata"]["managedFields"]]
        assert owners == ["tests"], owners
        assert "f:finalizers" not in json.dumps(stored["metadata"]["managedFields"])
        shop["spec"]["webhook"]["events"] = ["charge.succeeded"]
        assert _finalizers(kubectl, watched, shop) == [FINALIZER]
        # ... and an update of the whole object without it (a PUT: `kubectl replace`) puts it back.
        replaced = kubectl.run("replace", "-n", watched, "-o", "json", "-f", "-", input=json.dumps(shop))
        assert json.loads(replaced.stdout)["metadata"]["finalizers"] == [FINALIZER]

        def set_finalizers(finalizers: list[str]) -> list[str]:
            """Merge-patch the finalizers of `shop`; what the API server stored."""
            patch = json.dumps({"metadata": {"finalizers": finalizers}})
            patched = kubectl.run(
                "patch", "pconn", "shop", "-n", watched, "--type=merge", "-o", "json", "-p", patch
            )
            return list(json.loads(patched.stdout)["metadata"].get("finalizers", []))

        # Another controller's finalizer beside it is kept, and procon's is not doubled.
        assert set_finalizers(["example.com/other", FINALIZER]) == ["example.com/other", FINALIZER]

        # Selected by a shard of this release, by none, outside the watched namespaces.
        def labelled(value: str) -> dict[str, Any]:
            doc = connection(f"shard-{value}")
            doc["metadata"]["labels"] = {"procon.dev/shard": value}
            return doc

        assert _finalizers(kubectl, watched, labelled("shard1"), "--dry-run=server") == [FINALIZER]
        assert _finalizers(kubectl, watched, labelled("elsewhere"), "--dry-run=server") == []
        assert _finalizers(kubectl, unwatched, connection("theirs"), "--dry-run=server") == []

        # The deletion: whatever takes procon's finalizer off from then on, it stays off, even
        # through a whole-object update (which arrives without the deletionTimestamp: the API
        # server copies it over after admission).
        kubectl.run("delete", "pconn", "shop", "-n", watched, "--wait=false")
        deleting = kubectl.get_json("pconn", "shop", "-n", watched)
        assert deleting["metadata"]["deletionTimestamp"]
        body = {key: deleting[key] for key in ("apiVersion", "kind", "spec")}
        body["metadata"] = {"name": "shop", "finalizers": ["example.com/other"]}
        replaced = kubectl.run("replace", "-n", watched, "-o", "json", "-f", "-", input=json.dumps(body))
        assert json.loads(replaced.stdout)["metadata"]["finalizers"] == ["example.com/other"]
        set_finalizers([])
        gone = kubectl.run("get", "pconn", "shop", "-n", watched, "--ignore-not-found", "-o", "name")
        assert gone.stdout.strip() == ""
    finally:
        helm.run("uninstall", name, "-n", system, check=False)


def test_the_finalizer_policy_holds_only_what_a_running_deployment_reconciles(
    helm: Helm, kube_version: str
) -> None:
    """A Deployment with no replica reconciles nothing, so the policy holds none of its
    connections; with none running, or the operator's selection set through extraEnv (which the
    chart cannot read), there is no policy at all: the operator adds its finalizer itself."""
    served = "--api-versions=admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"

    def condition(*args: str) -> str | None:
        docs = by_kind(render(helm, kube_version, "procon-system", served, *args), "MutatingAdmissionPolicy")
        if not docs:
            return None
        conditions = {c["name"]: c["expression"] for c in docs[0]["spec"]["matchConditions"]}
        return " ".join(conditions.get("reconciled-by-this-release", "(every connection)").split())

    assert condition() == "(every connection)"
    label = '"procon.dev/shard"'
    shards = "--set=shards[0].name=a", "--set=shards[1].name=b", "--set=shards[1].replicaCount=0"
    assert condition(*shards) == (
        f"(has(object.metadata.labels) && {label} in object.metadata.labels) ? "
        f'object.metadata.labels[{label}] in ["a"] : true'
    )
    only_shard_a = ("--set=replicaCount=0", "--set=shards[0].replicaCount=1")
    assert condition(*shards, *only_shard_a).endswith(' in ["a"] : false')
    assert condition("--set=replicaCount=0") is None
    for variable in ("PROCON_SHARD_SELECTOR", "PROCON_NAMESPACES"):
        assert condition(f"--set=extraEnv[0].name={variable}", "--set=extraEnv[0].value=x") is None
    assert condition("--set=finalizerPolicy.enabled=false") is None


def _token_secret(name: str, service_account: str, **extra: Any) -> str:
    """A ServiceAccount token Secret, labelled as procon's own: the token controller would fill it in."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {
            "name": name,
            "labels": {MANAGED_BY: "procon"},
            "annotations": {"kubernetes.io/service-account.name": service_account},
        },
    }
    body.update(extra)
    return yaml.safe_dump(body)


def _typed_secret(name: str, type_: str, data: dict[str, str], annotations: dict[str, str]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": type_,
            "metadata": {"name": name, "labels": {MANAGED_BY: "procon"}, "annotations": annotations},
            "stringData": data,
        }
    )


def test_admission_policy_refuses_token_secrets_in_a_watched_namespace(
    kubectl: Kubectl, namespaced_release: Release, tmp_path: Path
) -> None:
    """Labelled managed-by=procon is not enough: a ServiceAccount token Secret (which the token
    controller would fill in with a privileged account's token for the operator to read), any other
    type but Opaque, and a kubernetes.io/ annotation are refused; a plain Opaque Secret is not."""
    release = namespaced_release
    sa = _as(kubectl, release, tmp_path)
    a = release.watched

    def create(manifest: str, namespace: str = a) -> subprocess.CompletedProcess[str]:
        return sa.run("create", "--dry-run=server", "-n", namespace, "-f", "-", input=manifest, check=False)

    token = _await_denial(lambda: create(_token_secret("stolen", "default")))
    assert "may only write Secrets of type Opaque" in token.stderr, token.stderr
    assert "is forbidden" in token.stderr, token.stderr

    annotated = create(
        _typed_secret("x", "Opaque", {"k": "v"}, {"kubernetes.io/service-account.name": "default"})
    )
    assert annotated.returncode != 0
    assert "may not write Secrets with kubernetes.io/ annotations" in annotated.stderr, annotated.stderr
    for type_, data in [
        ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": '{"auths": {}}'}),
        ("kubernetes.io/basic-auth", {"username": "u", "password": "p"}),
    ]:
        refused = create(_typed_secret("x", type_, data, {}))
        assert refused.returncode != 0, type_
        assert "may only write Secrets of type Opaque" in refused.stderr, refused.stderr

    # What procon writes still goes through.
    assert create(_secret("signing", managed=True)).returncode == 0
    assert create(_typed_secret("signing", "Opaque", {"k": "v"}, {"example.com/note": "x"})).returncode == 0

    # The namespace fence stands even if someone grants the ServiceAccount more than the chart does.
    b = release.unwatched
    kubectl.run("create", "role", "extra", "-n", b, "--verb=create", "--resource=secrets")
    kubectl.run(
        "create",
        "rolebinding",
        "extra",
        "-n",
        b,
        "--role=extra",
        f"--serviceaccount={release.namespace}:{release.service_account}",
    )
    wait_for(lambda: sa.can_i("create", "secrets", b), timeout=10, what="the extra RoleBinding")
    outside = create(_secret("signing", managed=True), namespace=b)
    assert outside.returncode != 0
    assert f"may only write Secrets in the namespaces it watches ({a})" in outside.stderr, outside.stderr


def test_admission_policy_refuses_token_secrets_in_kube_system(
    kubectl: Kubectl, cluster_wide_release: Release, tmp_path: Path
) -> None:
    """Cluster-wide, RBAC lets the operator create Secrets in kube-system: the policy refuses a token
    Secret for a privileged controller's ServiceAccount there."""
    sa = _as(kubectl, cluster_wide_release, tmp_path)
    assert sa.can_i("create", "secrets", "kube-system")  # RBAC alone would allow it
    refused = _await_denial(
        lambda: sa.run(
            "create",
            "--dry-run=server",
            "-n",
            "kube-system",
            "-f",
            "-",
            input=_token_secret("stolen", "clusterrole-aggregation-controller"),
            check=False,
        )
    )
    assert "may only write Secrets of type Opaque" in refused.stderr, refused.stderr
    assert "is forbidden" in refused.stderr, refused.stderr


def test_cluster_wide_rbac(kubectl: Kubectl, cluster_wide_release: Release, tmp_path: Path) -> None:
    release = cluster_wide_release
    sa = _as(kubectl, release, tmp_path)
    for namespace in (release.watched, release.unwatched):
        assert sa.can_i("watch", "secrets", namespace)
        assert sa.can_i("patch", "processorconnections.procon.dev", namespace, subresource="status")
    assert sa.can_i("list", "secrets", None)
    assert not sa.can_i("delete", "secrets", release.watched)
    assert not sa.can_i("list", "namespaces", None)  # kopf lists namespaces only in namespaced mode
    # The admission policy applies in every namespace.
    created = _await_denial(
        lambda: sa.run(
            "create",
            "--dry-run=server",
            "-n",
            release.unwatched,
            "-f",
            "-",
            input=_secret("x", managed=False),
            check=False,
        )
    )
    assert "ValidatingAdmissionPolicy" in created.stderr, created.stderr


def test_leader_election_rbac_is_its_own_leases_in_the_release_namespace(
    kubectl: Kubectl, namespaced_release: Release, tmp_path: Path
) -> None:
    """As the ServiceAccount: it creates, reads and renews its Lease in the release namespace, and
    cannot touch another Lease there, nor any Lease elsewhere, nor list or delete them."""
    release = namespaced_release
    sa = _as(kubectl, release, tmp_path)
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": release.fullname},
        "spec": {"holderIdentity": "pod-a_1", "leaseDurationSeconds": 15},
    }
    sa.run("create", "-n", release.namespace, "-f", "-", input=json.dumps(lease))
    got = json.loads(sa.run("get", "lease", release.fullname, "-n", release.namespace, "-o", "json").stdout)
    got["spec"]["holderIdentity"] = "pod-b_2"
    sa.run("replace", "-n", release.namespace, "-f", "-", input=json.dumps(got))
    assert kubectl.get_json("lease", release.fullname, "-n", release.namespace)["spec"]["holderIdentity"] == (
        "pod-b_2"
    )

    # Someone else's Lease in the same namespace: not even readable.
    other = {**lease, "metadata": {"name": "kube-controller-manager-like"}}
    kubectl.apply(other, namespace=release.namespace)
    assert not sa.can_i("get", "leases/kube-controller-manager-like", release.namespace)
    refused = sa.run("get", "lease", "kube-controller-manager-like", "-n", release.namespace, check=False)
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr, refused.stderr
    assert not sa.can_i("update", "leases/kube-controller-manager-like", release.namespace)
    # Nor list, watch, patch or delete its own.
    for verb in ("list", "watch", "delete", "patch"):
        assert not sa.can_i(verb, f"leases/{release.fullname}", release.namespace), verb
    # Nothing outside the release namespace.
    for namespace in (release.watched, "kube-system", "kube-node-lease"):
        assert not sa.can_i("create", "leases", namespace), namespace
        assert not sa.can_i("get", f"leases/{release.fullname}", namespace), namespace
    denied = sa.run("create", "-n", release.watched, "-f", "-", input=json.dumps(lease), check=False)
    assert denied.returncode != 0
    assert 'cannot create resource "leases"' in denied.stderr, denied.stderr


def test_metrics_are_served_only_to_authorized_scrapers(
    kubectl: Kubectl, namespaced_release: Release, stripe_emulator: StripeEmulator, tmp_path: Path
) -> None:
    """The operator, with the chart's ServiceAccount token, asks the API server about each scraper:
    no token or a bad one is 401, a valid token without `get` on /metrics is 403, a token bound
    to the chart's metrics-reader ClusterRole gets the metrics. The kubelet's liveness probe needs
    no token."""
    release = namespaced_release
    sa = _as(kubectl, release, tmp_path)
    metrics_port, health_port = free_port(), free_port()
    env = operator_env(
        kubectl.cluster.env(),
        KUBECONFIG=str(sa.kubeconfig),
        PROCON_STRIPE_API_BASE=stripe_emulator.base_url,
        PROCON_CLUSTER_NAME=f"metrics-{_suffix()}",
        PROCON_METRICS_PORT=str(metrics_port),
    )
    env["PROCON_NAMESPACES"] = release.watched  # (operator_env drops it)
    operator = start_operator(
        env, tmp_path / "operator.log", [f"--liveness=http://127.0.0.1:{health_port}/healthz"]
    )
    try:
        url = f"http://127.0.0.1:{metrics_port}/metrics"

        def status(token: str | None) -> int:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return httpx.get(url, headers=headers, timeout=10).status_code

        assert status(None) == 401
        assert status("not-a-token") == 401
        nobody = kubectl.run("create", "token", "default", "-n", release.namespace).stdout.strip()
        assert status(nobody) == 403
        reader = metrics_reader_token(kubectl, role=f"{release.fullname}-metrics-reader")
        assert status(reader) == 200
        assert "procon_secret_watch_events_total" in scrape_metrics(metrics_port, reader)
        assert status(nobody) == 403  # the cached answer: still refused
        assert httpx.get(f"http://127.0.0.1:{health_port}/healthz", timeout=10).status_code == 200
    finally:
        operator.stop()
    log = operator.log()
    assert "is forbidden: User" not in log, "the chart's RBAC lacks something the metrics need"
    assert "could not review" not in log


# ------------------------------------------------------------ the operator with the ServiceAccount's token


def _other_operators(cluster: control_plane.Cluster) -> list[int]:
    """Operator processes against this cluster (the session's `operator` fixture, a forgotten one)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"procon.cli" in argv
            and b"run" in argv
            and f"KUBECONFIG={cluster.kubeconfig}".encode() in environ
        ):
            found.append(int(proc.name))
    return found


def _deployment_env(kubectl: Kubectl, release: Release) -> dict[str, str]:
    """The operator container's environment as the release installed it."""
    deployment = kubectl.get_json("deployment", release.fullname, "-n", release.namespace)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def _metric_samples(port: int, token: str) -> list[tuple[str, dict[str, str], float]]:
    text = scrape_metrics(port, token)
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


@pytest.mark.parametrize(
    "mode", ["namespaced_release", "cluster_wide_release"], ids=["namespaced", "cluster-wide"]
)
def test_operator_with_the_service_account_token_reconciles_to_ready(
    request: pytest.FixtureRequest,
    kubectl: Kubectl,
    stripe_emulator: StripeEmulator,
    tmp_path: Path,
    mode: str,
) -> None:
    """Both RBAC modes are proven sufficient by a real run, not only by `kubectl auth can-i`.

    In cluster-wide mode the operator serves every namespace, so it may also meet connections
    other tests left behind: the Stripe account is this test's alone, and every assertion names
    this test's namespace and connection. With no cluster name set, the operator identifies the
    cluster by the kube-system namespace's UID, read with the ServiceAccount's rights.
    """
    release: Release = request.getfixturevalue(mode)
    cluster = kubectl.cluster
    others = _other_operators(cluster)
    assert not others, (
        f"operator processes {others} already run against this cluster; they would reconcile this "
        "test's connection too (the session `operator` must start after this module)"
    )
    sa = _as(kubectl, release, tmp_path)
    # No cluster name: the operator reads its identity, the kube-system namespace's UID, with the
    # ServiceAccount's rights.
    cluster_name = kubectl.get_json("namespace", "kube-system")["metadata"]["uid"]
    env = operator_env(
        cluster.env(),
        KUBECONFIG=str(sa.kubeconfig),
        PROCON_STRIPE_API_BASE=stripe_emulator.base_url,
        PROCON_DRIFT_INTERVAL="30",
    )
    env.pop("PROCON_CLUSTER_NAME", None)
    assert "PROCON_CLUSTER_NAME" not in _deployment_env(kubectl, release)
    # The scope the installed Deployment gives it: the watched namespace, or "" (every namespace).
    watching = _deployment_env(kubectl, release)["PROCON_NAMESPACES"]
    assert watching == (release.watched if mode == "namespaced_release" else ""), watching
    if watching:
        env["PROCON_NAMESPACES"] = watching
    # Leader election as the Deployment sets it up (the namespace from the downward API).
    installed = _deployment_env(kubectl, release)
    assert installed["PROCON_LEADER_ELECTION"] == "true"
    env["PROCON_LEADER_ELECTION"] = "true"
    env["PROCON_LEADER_ELECTION_NAMESPACE"] = release.namespace
    env["PROCON_LEADER_ELECTION_LEASE_NAME"] = installed["PROCON_LEADER_ELECTION_LEASE_NAME"]
    metrics_port = free_port()
    env["PROCON_METRICS_PORT"] = str(metrics_port)
    operator = start_operator(env, tmp_path / "operator.log")
    try:
        account = StripeAccount(stripe_emulator)
        key = account.key(ANALYTICS_PERMISSIONS)
        kubectl.apply([key_secret("shop", key), connection("shop")], namespace=release.watched)
        obj = wait_condition(kubectl, release.watched, "shop", "Ready", "True", timeout=60)

        # What Flux (kstatus) and Argo CD (the Lua check) make of the live Ready object.
        assert kstatus_of(ensure_kstatus(), obj)["status"] == "Current"
        argocd = health(obj)
        assert argocd["status"] == "Healthy", argocd

        endpoints = account.endpoints()
        assert len(endpoints) == 1, endpoints
        assert endpoints[0]["metadata"]["procon-cluster"] == cluster_name  # this operator's, no other
        assert endpoints[0]["metadata"]["procon-namespace"] == release.watched
        assert obj["status"]["webhook"]["id"] == endpoints[0]["id"]
        published = kubectl.get_json("secret", "shop-webhook", "-n", release.watched)
        assert published["metadata"]["labels"][MANAGED_BY] == "procon"

        # The series the chart's alerts select exist, with the labels the alerts use.
        samples = _metric_samples(
            metrics_port, metrics_reader_token(kubectl, role=f"{release.fullname}-metrics-reader")
        )
        ready = {
            "namespace": release.watched,
            "name": "shop",
            "processor": "stripe",
            "condition": "Ready",
            "status": "True",
        }
        assert ("procon_connection_condition", ready, 1.0) in samples
        calls = [labels for name, labels, _ in samples if name == "procon_processor_api_calls_total"]
        assert calls, "no procon_processor_api_calls_total samples"
        assert all(set(labels) == {"processor", "operation", "status_code"} for labels in calls), calls
        leader = {"lease": installed["PROCON_LEADER_ELECTION_LEASE_NAME"]}
        assert ("procon_leader", leader, 1.0) in samples

        # Deleting the connection: the clean-up runs and the finalizer comes off, with these rights too.
        kubectl.run("delete", "pconn", "shop", "-n", release.watched, "--timeout=60s")
        wait_for(lambda: not account.endpoints(), timeout=30, what="the webhook to be deleted")
    finally:
        operator.stop()

    log = operator.log()
    assert "is forbidden: User" not in log, "the operator was denied something it needs"
    assert "Not enough permissions" not in log
    # It really ran in the release's mode (kopf names the scope of each watch it starts).
    scope = f"in '{release.watched}'" if watching else "cluster-wide"
    assert f"Starting the watch-stream for processorconnections.v1alpha1.procon.dev {scope}" in log
