"""Installing Portalis on the local cluster: the Helm chart (install, RBAC, upgrade, uninstall) and the kustomize
base (``kubectl apply -k manifests/``) on a second, clean cluster.

The chart's Deployment lands on a KWOK node, where its pod goes Running without running a container. So the real
operator runs here as a local process, with a kubeconfig holding a token of the chart's ServiceAccount: it has
exactly the chart's RBAC, and any permission the chart forgot shows up as a Forbidden error.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.helpers import Cluster, merge, wait_for
from portalis.clients.store import Store
from portalis_devcluster.cluster import DevCluster, free_port
from portalis_devcluster.node import RealNodeSpec
from portalis_devcluster.operator import ROOT, OperatorProcess
from portalis_devcluster.servers import RedisServer, S3Server

pytestmark = pytest.mark.cluster

CHART = ROOT / "charts" / "portalis"
EXAMPLES = ROOT / "manifests" / "examples"
SAMPLE = ROOT / "examples" / "sample-codebase"
CRDS = ("translationclusters.portalis.dev", "translationjobs.portalis.dev")
FORBIDDEN = re.compile(r"Forbidden|\b403\b")
# Everything the chart creates carries these labels; after `helm uninstall` nothing with them may remain.
CHART_KINDS = (
    "deployments",
    "replicasets",
    "pods",
    "serviceaccounts",
    "services",
    "secrets",
    "configmaps",
    "roles",
    "rolebindings",
    "poddisruptionbudgets",
)
CLUSTER_KINDS = ("clusterroles", "clusterrolebindings")


def run(kube: DevCluster, *argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, env=kube.env(), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def helm(kube: DevCluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(kube, str(kube.tc.helm), *args, check=check, timeout=300)


def can_i(kube: DevCluster, sa: str, *args: str) -> bool:
    proc = kube.kubectl("auth", "can-i", f"--as={sa}", *args, check=False)
    assert proc.stdout.strip() in ("yes", "no"), proc.stderr
    return proc.stdout.strip() == "yes"


def flat_rules(roles: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    """(role kind and name suffix, apiGroup, resource, verb) for every rule of the given Roles/ClusterRoles."""
    out = set()
    for role in roles:
        name = role["metadata"]["name"]
        suffix = name.split("-", 1)[1] if "-" in name else ""
        for rule in role.get("rules") or []:
            for group in rule.get("apiGroups") or [""]:
                for resource in rule.get("resources") or []:
                    for verb in rule.get("verbs") or []:
                        out.add((f"{role['kind']}:{suffix}", group, resource, verb))
    return out


def secret_manifest(name: str, data: dict[str, str]) -> str:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded})


def operator_flags() -> set[str]:
    """The options `portalis operator run` accepts."""
    proc = subprocess.run(
        [sys.executable, "-m", "portalis", "operator", "run", "--help"], capture_output=True, text=True, check=True
    )
    return set(re.findall(r"--[a-z][a-z-]+", proc.stdout))


@dataclass
class Release:
    kube: DevCluster
    namespace: str
    name: str
    manifest: list[dict[str, Any]]

    @property
    def service_account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.manifest if d.get("kind") == kind]

    def deployment(self) -> dict[str, Any]:
        deployment: dict[str, Any] = json.loads(
            self.kube.kubectl("-n", self.namespace, "get", "deploy", self.name, "-o", "json").stdout
        )
        return deployment

    def operator_pods(self) -> list[dict[str, Any]]:
        selector = f"app.kubernetes.io/instance={self.name},app.kubernetes.io/name=portalis"
        pods = json.loads(self.kube.kubectl("-n", self.namespace, "get", "pods", "-l", selector, "-o", "json").stdout)
        return [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]


@pytest.fixture(scope="module")
def release(kube: DevCluster) -> Iterator[Release]:
    """`helm install` into a fresh namespace that is also the one watched and whose Secrets the operator may read."""
    ns = f"helm-{uuid.uuid4().hex[:6]}"
    name = f"portalis-{ns}"  # ClusterRoles are cluster-wide: one name per test run
    kube.kubectl("create", "namespace", ns)
    helm(
        kube,
        "install",
        name,
        str(CHART),
        "-n",
        ns,
        "--wait",
        "--timeout",
        "2m",
        "--set",
        "image.repository=registry.local/portalis",
        "--set",
        f"clusterNamespaces={{{ns}}}",
        "--set",
        f"watchNamespaces={{{ns}}}",
    )
    rendered = helm(kube, "get", "manifest", name, "-n", ns).stdout
    try:
        yield Release(kube, ns, name, [d for d in yaml.safe_load_all(rendered) if d])
    finally:
        helm(kube, "uninstall", name, "-n", ns, "--wait", check=False)
        kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_install_runs_the_deployment_on_kwok_with_the_chart_objects(release: Release) -> None:
    kube, ns = release.kube, release.namespace
    dep = release.deployment()
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].startswith("registry.local/portalis:")
    pods = wait_for(lambda: [p for p in release.operator_pods() if p["status"].get("phase") == "Running"], 60)
    assert len(pods) == 1 and pods[0]["spec"]["serviceAccountName"] == release.name
    assert pods[0]["spec"]["nodeName"].startswith("cpu-")  # untainted node: no GPU node is taken
    for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service", "Secret"):
        assert release.of_kind(kind), f"the chart rendered no {kind}"
    roles = {r["metadata"]["name"]: r["metadata"]["namespace"] for r in release.of_kind("Role")}
    assert roles == {f"{release.name}-leader-election": ns, f"{release.name}-secrets": ns}
    for crd in CRDS:
        kube.kubectl("get", "crd", crd)


def test_the_operator_under_the_charts_rbac_reconciles_the_examples_without_a_forbidden(
    release: Release, redis_server: RedisServer, s3_server: S3Server, tmp_path: Path
) -> None:
    kube, ns = release.kube, release.namespace
    token = kube.kubectl("create", "token", release.name, "-n", ns, "--duration", "1h").stdout.strip()
    config = tmp_path / "operator.kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": {"server": kube.server, "insecure-skip-tls-verify": True}}],
                "users": [{"name": release.name, "user": {"token": token}}],
                "contexts": [{"name": "operator", "context": {"cluster": "local", "user": release.name}}],
                "current-context": "operator",
            }
        )
    )
    config.chmod(0o600)
    whoami = run(kube, str(kube.tc.kubectl), "--kubeconfig", str(config), "auth", "whoami", "-o", "json")
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == release.service_account

    # The container's arguments and environment as the chart renders them, with loopback ports and the token file.
    deployment = release.of_kind("Deployment")[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    token_file = tmp_path / "webhook-token"
    webhook = json.loads(kube.kubectl("-n", ns, "get", "secret", f"{release.name}-webhook", "-o", "json").stdout)
    token_file.write_bytes(base64.b64decode(webhook["data"]["token"]))
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    env.update(
        {"POD_NAME": f"{release.name}-local", "POD_NAMESPACE": ns, "PORTALIS_WEBHOOK_TOKEN_FILE": str(token_file)}
    )
    env["KUBECONFIG"] = str(config)
    known = operator_flags()
    args = list(container["args"][2:])  # after "operator run"
    ports = {"--health-port", "--metrics-port", "--webhook-port"}
    extra: list[str] = []
    i = 0
    while i < len(args):
        flag = args[i]
        takes_value = flag in ports
        if flag in known and flag not in ("--health-port", "--metrics-port"):
            extra.append(flag)
            if takes_value:
                extra.append(str(free_port()))
        i += 2 if takes_value else 1
    assert "--leader-elect" in extra  # the Lease in the release namespace is part of the chart's RBAC
    assert env["PORTALIS_WATCH_NAMESPACES"] == ns

    log = tmp_path / "operator.log"
    operator = OperatorProcess(kube, log, extra_args=extra)
    store = Store(s3_server.endpoint, access_key=s3_server.access_key, secret_key=s3_server.secret_key)
    for bucket in ("portalis-artifacts", "portalis-sources", "portalis-outputs"):
        store.ensure_bucket(bucket)
    for path in SAMPLE.rglob("*.py"):
        store.put_bytes("portalis-sources", f"repos/acme/{path.relative_to(SAMPLE).as_posix()}", path.read_bytes())
    c = Cluster(kube, ns)
    try:
        operator.start(extra_env=env, timeout=60)
        lease = wait_for(lambda: c.get_or_none("lease", "portalis-operator"), timeout=30)
        assert lease["spec"]["holderIdentity"] == f"{release.name}-local"

        # the Secrets the example names, pointing at the test servers (the namespace is in clusterNamespaces)
        c.kubectl("apply", "-f", "-", input=secret_manifest("portalis-redis", {"url": redis_server.url}))
        creds = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
        c.kubectl("apply", "-f", "-", input=secret_manifest("portalis-s3", creds))
        tc = yaml.safe_load((EXAMPLES / "translationcluster-h100.yaml").read_text())
        tc = merge(tc, {"spec": {"storage": {"endpoint": s3_server.endpoint, "forcePathStyle": True}}})
        c.kubectl("apply", "-f", "-", input=json.dumps(tc))
        c.kubectl("apply", "-f", str(EXAMPLES / "translationjob-batch.yaml"))

        try:
            wait_for(lambda: c.condition("tc", "h100", "Ready") == "True", timeout=90, interval=0.5)
            planned = wait_for(lambda: c.condition_obj("tj", "batch-monorepo", "Planned"), timeout=60, interval=0.5)
            # this process itself read the Secrets and reconciled the cluster, not only another operator that may
            # run against the same cluster
            wait_for(lambda: f"connected cluster {ns}/h100 to its queue and object store" in log.read_text(), 30)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{denied(log) or log.read_text()[-3000:]}") from exc
        assert planned["status"] == "True", planned
        status = c.get("tj", "batch-monorepo")["status"]
        assert status["items"]["total"] > 0 and status["planLocation"].startswith("s3://portalis-artifacts/")
        assert c.get("raycluster", "h100")["metadata"]["ownerReferences"][0]["name"] == "h100"

        # deleting goes through the operator's finalizers, which it may remove
        c.kubectl("delete", "tj", "batch-monorepo", "--timeout=60s")
        c.kubectl("delete", "tc", "h100", "--timeout=60s")
        assert operator.alive(), log.read_text()[-3000:]
    finally:
        operator.stop()
    problem = denied(log)
    assert not problem, problem


def denied(log: Path) -> str:
    """The operator's log lines about a request the API server refused: a permission the chart's RBAC lacks."""
    lines = [line for line in log.read_text().splitlines() if FORBIDDEN.search(line)]
    return "the chart's RBAC is missing a permission:\n" + "\n".join(lines[:20]) if lines else ""


def test_the_charts_operator_arguments_are_ones_the_operator_accepts(release: Release) -> None:
    container = release.of_kind("Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["portalis"] and container["args"][:2] == ["operator", "run"]
    passed = {a for a in container["args"][2:] if a.startswith("--")}
    unknown = passed - operator_flags()
    assert not unknown, f"the chart passes {sorted(unknown)}, which `portalis operator run` does not accept"


def test_the_service_account_has_least_privilege(release: Release) -> None:
    kube, ns, sa = release.kube, release.namespace, release.service_account
    # may
    assert can_i(kube, sa, "get", "secrets", "-n", ns)
    assert can_i(kube, sa, "patch", "nodes")
    assert can_i(kube, sa, "create", "pods", "--subresource=eviction", "-n", ns)
    assert can_i(kube, sa, "patch", "translationclusters.portalis.dev/status", "-n", ns)
    assert can_i(kube, sa, "create", "rayclusters.ray.io", "-n", ns)
    assert can_i(kube, sa, "update", "leases.coordination.k8s.io", "-n", ns)
    # may not
    assert not can_i(kube, sa, "get", "secrets", "-n", "default")
    assert not can_i(kube, sa, "get", "secrets", "-n", "kube-system")
    assert not can_i(kube, sa, "list", "secrets", "-n", ns)
    assert not can_i(kube, sa, "delete", "nodes")
    assert not can_i(kube, sa, "create", "pods", "-n", ns)
    assert not can_i(kube, sa, "delete", "translationclusters.portalis.dev", "-n", ns)
    assert not can_i(kube, sa, "update", "leases.coordination.k8s.io", "-n", "default")


def test_upgrade_rolls_the_operator_deployment(release: Release) -> None:
    kube, ns = release.kube, release.namespace
    before = release.deployment()
    old_hash = release.operator_pods()[0]["metadata"]["labels"]["pod-template-hash"]
    helm(
        kube,
        "upgrade",
        release.name,
        str(CHART),
        "-n",
        ns,
        "--reuse-values",
        "--set",
        "resources.limits.memory=2Gi",
        "--set",
        "logFormat=text",
        "--wait",
        "--timeout",
        "2m",
    )
    after = release.deployment()
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    container = after["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["memory"] == "2Gi"
    assert {"name": "PORTALIS_LOG_FORMAT", "value": "text"} in container["env"]

    def rolled() -> list[dict[str, Any]] | None:
        pods = release.operator_pods()
        hashes = {p["metadata"]["labels"].get("pod-template-hash") for p in pods}
        running = [p for p in pods if p["status"].get("phase") == "Running"]
        return running if hashes and old_hash not in hashes and running else None

    pods = wait_for(rolled, timeout=90, interval=0.5)
    assert len(pods) == 1
    sets = json.loads(
        kube.kubectl("-n", ns, "get", "rs", "-l", f"app.kubernetes.io/instance={release.name}", "-o", "json").stdout
    )["items"]
    replicas = {rs["metadata"]["labels"]["pod-template-hash"]: rs["spec"]["replicas"] for rs in sets}
    assert replicas[old_hash] == 0 and len(replicas) == 2
    rollout = kube.kubectl("-n", ns, "rollout", "status", f"deployment/{release.name}", "--timeout=60s")
    assert "successfully rolled out" in rollout.stdout


def test_uninstall_leaves_nothing_but_the_crds(release: Release) -> None:
    kube, ns = release.kube, release.namespace
    helm(kube, "uninstall", release.name, "-n", ns, "--wait", "--timeout", "2m")
    selector = f"app.kubernetes.io/instance={release.name}"

    def leftovers() -> list[str]:
        names = kube.kubectl("get", ",".join(CHART_KINDS), "-n", ns, "-l", selector, "-o", "name").stdout.split()
        names += kube.kubectl("get", ",".join(CLUSTER_KINDS), "-l", selector, "-o", "name").stdout.split()
        names += kube.kubectl(
            "get", "secrets", "-n", ns, "-l", f"owner=helm,name={release.name}", "-o", "name"
        ).stdout.split()
        for kind in ("clusterrole", "clusterrolebinding"):  # also by name, whatever their labels
            names += kube.kubectl("get", kind, release.name, "-o", "name", "--ignore-not-found").stdout.split()
        return names

    deadline = time.monotonic() + 60
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.5)  # the garbage collector removes the ReplicaSets and pods
    assert leftovers() == []
    for crd in CRDS:
        established = kube.kubectl(
            "get", "crd", crd, "-o", "jsonpath={.status.conditions[?(@.type=='Established')].status}"
        )
        assert established.stdout == "True"


# ---- kustomize, on a second clean cluster -------------------------------------------------------------------


def test_kubectl_apply_k_gives_the_same_running_system_on_a_clean_cluster(kube: DevCluster, tmp_path: Path) -> None:
    rendered = helm(
        kube, "template", "portalis", str(CHART), "-n", "portalis-system", "--kube-version", "1.34.0"
    ).stdout
    chart = [d for d in yaml.safe_load_all(rendered) if d]
    # the chart's pods land on the KWOK fleet; a real node would add nothing here
    second = DevCluster(tmp_path / "kustomize-cluster", real_node=RealNodeSpec(enabled=False))
    try:
        second.up()
        crds_before = second.kubectl("get", "crd", "-o", "name").stdout
        assert "portalis.dev" not in crds_before  # a clean cluster
        second.kubectl("apply", "-k", str(ROOT / "manifests"), "--server-side", timeout=180)
        second.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{c}" for c in CRDS))
        ns = "portalis-system"
        second.kubectl("-n", ns, "rollout", "status", "deployment/portalis", "--timeout=90s", timeout=120)

        def running() -> list[dict[str, Any]]:
            pods = json.loads(
                second.kubectl("-n", ns, "get", "pods", "-l", "app.kubernetes.io/name=portalis", "-o", "json").stdout
            )["items"]
            return [p for p in pods if p["status"].get("phase") == "Running"]

        pods = wait_for(running, timeout=60)
        assert len(pods) == 1 and pods[0]["spec"]["serviceAccountName"] == "portalis"
        assert pods[0]["spec"]["nodeName"]

        namespaced = ["serviceaccount/portalis", "service/portalis"]
        namespaced += [
            f"{kind}/portalis-{suffix}" for kind in ("role", "rolebinding") for suffix in ("leader-election", "secrets")
        ]
        second.kubectl("-n", ns, "get", *namespaced)
        binding = json.loads(second.kubectl("get", "clusterrolebinding", "portalis", "-o", "json").stdout)
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "portalis", "namespace": ns}]

        live = [json.loads(second.kubectl("get", "clusterrole", "portalis", "-o", "json").stdout)]
        live += [
            json.loads(second.kubectl("-n", ns, "get", "role", r, "-o", "json").stdout)
            for r in ("portalis-leader-election", "portalis-secrets")
        ]
        from_chart = [d for d in chart if d["kind"] in ("ClusterRole", "Role")]
        assert sorted(r["metadata"]["name"] for r in from_chart) == sorted(r["metadata"]["name"] for r in live)
        assert flat_rules(live) == flat_rules(from_chart)
        sa = f"system:serviceaccount:{ns}:portalis"
        assert can_i(second, sa, "patch", "nodes") and not can_i(second, sa, "delete", "nodes")
        assert can_i(second, sa, "get", "secrets", "-n", ns) and not can_i(
            second, sa, "get", "secrets", "-n", "default"
        )
    finally:
        second.down()
