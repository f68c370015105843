"""The Helm chart (charts/portalis) rendered with `helm template`: a locked-down operator pod, least-privilege
RBAC, the optional monitoring objects, a strict values schema, and CRDs and kustomize manifests that match.

Needs the helm binary: `portalis devcluster` builds it under ~/.cache/portalis/bin/, or put one on PATH (or set
PORTALIS_HELM). Without it the rendering tests are skipped; the file comparisons still run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from portalis.api.v1alpha1.cluster import TranslationClusterSpec
from portalis.desired.pods import Owner
from portalis.desired.raycluster import WORKER_METRICS_PORT_NAME, build_raycluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "portalis"
BASE = ROOT / "manifests" / "base"
NAMESPACE = "portalis-system"
KUBE_VERSION = "1.34.0"

# The operator's cluster-wide API access, exactly (apiGroup, resource) -> verbs.
EXPECTED_CLUSTER_RULES: dict[tuple[str, str], set[str]] = {
    ("portalis.dev", "translationclusters"): {"get", "list", "watch", "patch"},
    ("portalis.dev", "translationjobs"): {"get", "list", "watch", "patch"},
    ("portalis.dev", "translationclusters/status"): {"get", "patch", "update"},
    ("portalis.dev", "translationjobs/status"): {"get", "patch", "update"},
    ("ray.io", "rayclusters"): {"get", "list", "watch", "create", "patch", "update", "delete"},
    ("kubernetes.dask.org", "daskclusters"): {"get", "list", "watch", "create", "patch", "update", "delete"},
    ("", "pods"): {"get", "list", "watch"},
    ("", "pods/eviction"): {"create"},
    ("", "nodes"): {"get", "list", "watch", "patch"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
    ("policy", "poddisruptionbudgets"): {"get", "list", "watch"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"},
    ("", "namespaces"): {"get", "list", "watch"},
}


def helm_binary() -> str | None:
    explicit = os.environ.get("PORTALIS_HELM")
    if explicit:
        return explicit
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    from portalis_devcluster.build import toolchain

    built = toolchain().helm
    return str(built) if built.is_file() else None


@pytest.fixture(scope="module")
def helm() -> str:
    path = helm_binary()
    if path is None:
        pytest.skip("helm is not installed: run `make control-plane` (builds it under ~/.cache/portalis/bin/)")
    return path


def render(
    helm: str, *sets: str, values: dict[str, Any] | None = None, release: str = "portalis"
) -> list[dict[str, Any]]:
    cmd = [helm, "template", release, str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
    for s in sets:
        cmd += ["--set", s]
    for k, v in (values or {}).items():
        cmd += ["--set-json", f"{k}={json.dumps(v)}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def render_error(helm: str, *sets: str) -> str:
    cmd = [helm, "template", "portalis", str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode != 0, "helm template accepted values the schema should reject"
    return proc.stderr


def of_kind(docs: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: Iterable[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    result: dict[str, Any] = containers[0]
    return result


def flat_rules(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        assert not rule.get("nonResourceURLs"), rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


@pytest.fixture(scope="module")
def defaults(helm: str) -> list[dict[str, Any]]:
    return render(helm)


# --- the operator pod --------------------------------------------------------------------------------------


def test_security_context(defaults: list[dict[str, Any]]) -> None:
    pod = one(defaults, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(defaults)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in sc or sc["privileged"] is False


def test_writable_tmp_and_webhook_token(defaults: list[dict[str, Any]]) -> None:
    pod = one(defaults, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(defaults)["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    token = volumes[mounts["/var/run/portalis/webhook"]]["secret"]
    assert token["secretName"] == "portalis-webhook"
    assert token["items"] == [{"key": "token", "path": "token"}]
    env = {e["name"]: e for e in container(defaults)["env"]}
    assert env["PORTALIS_WEBHOOK_TOKEN_FILE"]["value"] == "/var/run/portalis/webhook/token"


def test_probes_on_healthz(defaults: list[dict[str, Any]]) -> None:
    c = container(defaults)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"health": 8080, "metrics": 9090, "webhook": 8443}
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["path"] == "/healthz"
        assert c[probe]["httpGet"]["port"] in ("health", 8080)


def test_resources_set(defaults: list[dict[str, Any]]) -> None:
    resources = container(defaults)["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def test_command_and_leader_election(helm: str, defaults: list[dict[str, Any]]) -> None:
    c = container(defaults)
    assert c["image"] == f"ghcr.io/portalis/operator:{yaml.safe_load((CHART / 'Chart.yaml').read_text())['appVersion']}"
    argv = c["command"] + c["args"]
    assert argv[:3] == ["portalis", "operator", "run"]
    assert "--leader-elect" in argv
    for flag, value in (("--health-port", "8080"), ("--metrics-port", "9090"), ("--webhook-port", "8443")):
        assert argv[argv.index(flag) + 1] == value
    off = container(render(helm, "leaderElection.enabled=false"))
    assert "--leader-elect" not in off["args"]


def test_environment(helm: str, defaults: list[dict[str, Any]]) -> None:
    env = {e["name"]: e for e in container(defaults)["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["PORTALIS_WATCH_NAMESPACES"]["value"] == ""
    assert env["PORTALIS_LOG_FORMAT"]["value"] == "json"
    watched = render(helm, values={"watchNamespaces": ["team-a", "team-b"]})
    env = {e["name"]: e for e in container(watched)["env"]}
    assert env["PORTALIS_WATCH_NAMESPACES"]["value"] == "team-a,team-b"


def test_image_digest_wins_over_tag(helm: str) -> None:
    digest = "sha256:" + "a" * 64
    c = container(render(helm, "image.repository=registry.local/portalis", "image.tag=9.9.9", f"image.digest={digest}"))
    assert c["image"] == f"registry.local/portalis@{digest}"


def test_service_ports(defaults: list[dict[str, Any]]) -> None:
    service = one(defaults, "Service")
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert ports == {"metrics": (9090, "metrics"), "webhook": (8443, "webhook"), "health": (8080, "health")}
    labels = one(defaults, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_pod_disruption_budget_never_blocks_a_single_replica(defaults: list[dict[str, Any]]) -> None:
    pdb = one(defaults, "PodDisruptionBudget")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": pdb["spec"]["selector"]}


# --- the webhook token ----------------------------------------------------------------------------------------


def test_webhook_secret_generated(defaults: list[dict[str, Any]]) -> None:
    import base64

    secret = one(defaults, "Secret")
    assert secret["metadata"]["name"] == "portalis-webhook"
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert len(token) == 32 and token.isalnum()


def test_webhook_existing_secret(helm: str) -> None:
    docs = render(helm, "webhook.existingSecret=alertmanager-token", "webhook.existingSecretKey=bearer")
    assert not of_kind(docs, "Secret")
    volumes = {v["name"]: v for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["webhook-token"]["secret"]["secretName"] == "alertmanager-token"
    assert volumes["webhook-token"]["secret"]["items"] == [{"key": "bearer", "path": "token"}]


# --- RBAC -----------------------------------------------------------------------------------------------------


def test_cluster_role_is_exactly_least_privilege(defaults: list[dict[str, Any]]) -> None:
    rules = one(defaults, "ClusterRole")["rules"]
    flat = flat_rules(rules)
    for rule in rules:
        assert "*" not in rule["verbs"], rule
        assert "*" not in rule["resources"], rule
        assert "*" not in rule["apiGroups"], rule
    assert not any(resource == "secrets" or resource.startswith("secrets/") for _, resource in flat)
    assert "delete" not in flat[("", "nodes")]
    assert flat == EXPECTED_CLUSTER_RULES


def test_cluster_role_binding(defaults: list[dict[str, Any]]) -> None:
    binding = one(defaults, "ClusterRoleBinding")
    role_name = one(defaults, "ClusterRole")["metadata"]["name"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "portalis", "namespace": NAMESPACE}]


def test_leader_election_role(defaults: list[dict[str, Any]]) -> None:
    roles = {r["metadata"]["name"]: r for r in of_kind(defaults, "Role")}
    lease = roles["portalis-leader-election"]
    assert lease["metadata"]["namespace"] == NAMESPACE
    assert flat_rules(lease["rules"]) == {("coordination.k8s.io", "leases"): {"get", "create", "update", "patch"}}


def secret_roles(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Namespace -> Role for every Role that grants anything on Secrets."""
    found: dict[str, dict[str, Any]] = {}
    for role in of_kind(docs, "Role"):
        if any(res == "secrets" for _, res in flat_rules(role["rules"])):
            assert role["metadata"]["namespace"] not in found
            found[role["metadata"]["namespace"]] = role
    return found


def test_secrets_role_defaults_to_release_namespace(defaults: list[dict[str, Any]]) -> None:
    roles = secret_roles(defaults)
    assert set(roles) == {NAMESPACE}
    assert flat_rules(roles[NAMESPACE]["rules"]) == {("", "secrets"): {"get"}}


def test_secrets_role_only_in_listed_namespaces(helm: str) -> None:
    docs = render(helm, values={"clusterNamespaces": ["team-a", "team-b", "team-a"]})
    roles = secret_roles(docs)
    assert set(roles) == {"team-a", "team-b"}
    for role in roles.values():
        assert flat_rules(role["rules"]) == {("", "secrets"): {"get"}}
    bindings = [b for b in of_kind(docs, "RoleBinding") if b["roleRef"]["name"] == "portalis-secrets"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "portalis", "namespace": NAMESPACE}]


def test_rbac_can_be_left_out(helm: str) -> None:
    docs = render(helm, "rbac.create=false")
    for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
        assert not of_kind(docs, kind)


# --- monitoring toggles ---------------------------------------------------------------------------------------


def test_monitoring_off_by_default(defaults: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in defaults}
    assert not kinds & {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
    assert not of_kind(defaults, "ConfigMap")


def test_service_monitor(helm: str) -> None:
    docs = render(helm, "serviceMonitor.enabled=true", "serviceMonitor.labels.release=kube-prometheus-stack")
    sm = one(docs, "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    assert sm["spec"]["endpoints"][0]["path"] == "/metrics"
    assert sm["spec"]["selector"]["matchLabels"].items() <= one(docs, "Service")["metadata"]["labels"].items()
    # the job label is the chart name, which PortalisOperatorDown matches
    assert sm["spec"]["jobLabel"] == "app.kubernetes.io/name"
    assert one(docs, "Service")["metadata"]["labels"]["app.kubernetes.io/name"] == "portalis"
    # the series' namespace label is the TranslationCluster's, not the operator's (which Prometheus would set)
    assert sm["spec"]["endpoints"][0]["honorLabels"] is True


def test_pod_monitor_scrapes_the_driver_port_of_operator_made_pods(helm: str) -> None:
    docs = render(helm, "podMonitor.enabled=true", "podMonitor.labels.release=kube-prometheus-stack")
    pm = one(docs, "PodMonitor")
    assert pm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert pm["metadata"]["namespace"] == NAMESPACE
    assert pm["spec"]["namespaceSelector"] == {"any": True}
    [endpoint] = pm["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == WORKER_METRICS_PORT_NAME and endpoint["path"] == "/metrics"
    assert endpoint["honorLabels"] is True
    # no jobLabel: the pods' app.kubernetes.io/name is "portalis", which PortalisOperatorDown reserves for the
    # operator's own targets
    assert "jobLabel" not in pm["spec"]

    # it selects the head pods the operator builds, and they declare the port it scrapes
    tc = TranslationClusterSpec.model_validate({"queue": {"url": "redis://r:6379"}, "storage": {"bucket": "artifacts"}})
    rc = build_raycluster(tc, Owner("tc", "team-a", "uid"))
    head = rc["spec"]["headGroupSpec"]["template"]
    selector = pm["spec"]["selector"]
    assert selector["matchLabels"].items() <= head["metadata"]["labels"].items()
    for expr in selector["matchExpressions"]:
        assert expr["operator"] == "Exists" and expr["key"] in head["metadata"]["labels"]
    ports = [p["name"] for c in head["spec"]["containers"] for p in c.get("ports", [])]
    assert ports == [WORKER_METRICS_PORT_NAME]
    # ... but not the chart's operator pods
    operator_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert not selector["matchLabels"].items() <= operator_labels.items()

    narrowed = one(render(helm, values={"podMonitor": {"enabled": True}, "watchNamespaces": ["team-a"]}), "PodMonitor")
    assert narrowed["spec"]["namespaceSelector"] == {"matchNames": ["team-a"]}


def test_prometheus_rule(helm: str) -> None:
    docs = render(helm, "prometheusRule.enabled=true")
    rule = one(docs, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "PortalisGpuEccDoubleBitErrors" in alerts
    moved = one(
        render(helm, "prometheusRule.enabled=true", "prometheusRule.runbookBaseUrl=https://wiki.example/portalis/"),
        "PrometheusRule",
    )
    urls = {r["annotations"]["runbook_url"] for g in moved["spec"]["groups"] for r in g["rules"]}
    assert "https://wiki.example/portalis/runbooks/budget-exceeded.md" in urls
    assert all(u.startswith("https://wiki.example/portalis/") for u in urls)


def test_dashboard(helm: str) -> None:
    docs = render(helm, "dashboard.enabled=true", "dashboard.namespace=monitoring")
    cm = one(docs, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "monitoring"
    dashboard = json.loads(cm["data"]["portalis.json"])
    assert dashboard == json.loads((CHART / "files" / "dashboard.json").read_text())
    assert dashboard["uid"] == "portalis"
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["Overview", "Queue", "Scaling", "Cost", "GPU health"]
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for metric in (
        "portalis_queue_depth",
        "portalis_queue_oldest_item_age_seconds",
        "portalis_workers_desired",
        "portalis_workers_ready",
        "portalis_gpus_allocated",
        "portalis_scale_events_total",
        "portalis_items_total",
        "portalis_translation_duration_seconds",
        "portalis_gpu_seconds_total",
        "portalis_spend_dollars_total",
        "portalis_budget_percent",
        "portalis_quarantined_nodes",
        "portalis_alerts_received_total",
        "portalis_circuit_breaker_tripped",
        "portalis_reconcile_total",
        "portalis_reconcile_duration_seconds",
    ):
        assert metric in exprs, f"the dashboard does not show {metric}"


# --- lint, schema, CRDs -----------------------------------------------------------------------------------------


def test_helm_lint_strict(helm: str) -> None:
    proc = subprocess.run([helm, "lint", "--strict", str(CHART)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_schema_rejects_bad_values(helm: str) -> None:
    assert "replicaCount" in render_error(helm, "replicaCount=two")
    assert "replicaCuont" in render_error(helm, "replicaCuont=2")
    assert "logFormat" in render_error(helm, "logFormat=xml")
    assert "clusterNamespaces" in render_error(helm, "clusterNamespaces[0]=Not_A_Namespace")
    assert "podMonitor" in render_error(helm, "podMonitor.interval=soon")


def test_notes_name_the_next_steps(helm: str, tmp_path: Path) -> None:
    """NOTES.txt renders (helm template leaves it out, so it is rendered through tpl in a copy of the chart)."""
    chart = tmp_path / "portalis"
    shutil.copytree(CHART, chart)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "files" / "notes.txt")
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n"
        '{{ tpl (.Files.Get "files/notes.txt") . | indent 4 }}\n'
    )
    cmd = [
        helm,
        "template",
        "portalis",
        str(chart),
        "-n",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
        "--show-only",
        "templates/zz-notes.yaml",
        "--set-json",
        'clusterNamespaces=["team-a","team-b"]',
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    notes = yaml.safe_load(proc.stdout)["data"]["notes"]
    for text in (
        "kubectl -n $NS create secret generic portalis-redis --from-literal=url=",
        "create secret generic portalis-s3",
        "kubectl -n $NS apply -f manifests/examples/translationcluster-h100.yaml",
        "export NS=team-a",
        "kubectl -n $NS get tc,tj",
        "It may read Secrets in: team-a, team-b",
        "http://portalis.portalis-system.svc:8443/alerts",
    ):
        assert text in notes, text


def test_chart_crds_equal_generated_crds() -> None:
    generated = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    assert generated
    assert sorted(p.name for p in (CHART / "crds").glob("*.yaml")) == generated
    for name in generated:
        assert (CHART / "crds" / name).read_bytes() == (ROOT / "crds" / name).read_bytes(), name


# --- kustomize manifests equal the chart's defaults -------------------------------------------------------------


def test_kustomize_crds_equal_generated_crds() -> None:
    generated = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    assert sorted(p.name for p in (BASE / "crds").glob("*.yaml")) == generated
    for name in generated:
        assert (BASE / "crds" / name).read_bytes() == (ROOT / "crds" / name).read_bytes(), (
            f"manifests/base/crds/{name} differs from crds/{name}: cp crds/*.yaml manifests/base/crds/"
        )
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert [r for r in kustomization["resources"] if r.startswith("crds/")] == [f"crds/{n}" for n in generated]


def test_kustomize_leaves_examples_out() -> None:
    for path in (ROOT / "manifests").rglob("kustomization.yaml"):
        assert "examples" not in path.read_text().split("resources:", 1)[-1], path


def test_kustomize_rbac_equals_chart_defaults(defaults: list[dict[str, Any]]) -> None:
    base = list(yaml.safe_load_all((BASE / "rbac.yaml").read_text()))
    assert flat_rules(one(base, "ClusterRole")["rules"]) == flat_rules(one(defaults, "ClusterRole")["rules"])
    chart_roles = {r["metadata"]["name"]: flat_rules(r["rules"]) for r in of_kind(defaults, "Role")}
    base_roles = {r["metadata"]["name"]: flat_rules(r["rules"]) for r in of_kind(base, "Role")}
    assert base_roles == chart_roles
    for binding in of_kind(base, "RoleBinding") + of_kind(base, "ClusterRoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "portalis", "namespace": NAMESPACE}]


def test_kustomize_deployment_equals_chart_defaults(defaults: list[dict[str, Any]]) -> None:
    base = yaml.safe_load((BASE / "deployment.yaml").read_text())
    base_c = base["spec"]["template"]["spec"]["containers"][0]
    chart_c = container(defaults)
    for key in (
        "image",
        "command",
        "args",
        "env",
        "ports",
        "livenessProbe",
        "readinessProbe",
        "resources",
        "securityContext",
        "volumeMounts",
    ):
        assert base_c[key] == chart_c[key], key
    assert base["spec"]["strategy"] == one(defaults, "Deployment")["spec"]["strategy"]
    chart_pod = one(defaults, "Deployment")["spec"]["template"]["spec"]
    assert base["spec"]["template"]["spec"]["securityContext"] == chart_pod["securityContext"]
    base_service = yaml.safe_load((BASE / "service.yaml").read_text())
    assert base_service["spec"]["ports"] == one(defaults, "Service")["spec"]["ports"]
