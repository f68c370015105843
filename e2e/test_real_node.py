"""Real containers on the local cluster's real node: the node itself, the images built here, the operator from its
chart in a pod under the restricted Pod Security profile, and a TranslationCluster whose Ray head and GPU worker run
the worker image.

The operator runs in a pod here, so the session's local operator process is paused for the module: two operators
would both write the same objects' status.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.helpers import Cluster, wait_for
from e2e.realnode import (
    chart_release,
    create_namespace,
    on_real_node,
    require_images,
    require_real_node,
    run_to_completion,
)
from portalis_devcluster import incluster
from portalis_devcluster.chart import Release, helm
from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.node import NODE_NAME, NODE_SELECTOR, TOLERATIONS
from portalis_devcluster.stack import SMALL

pytestmark = [pytest.mark.cluster, pytest.mark.realnode]

FORBIDDEN = re.compile(r"Forbidden|\b403\b")
# run in a pod: GET /metrics and an unauthenticated POST /alerts through the operator's Service
SCRAPE = """
import urllib.error, urllib.request
body = urllib.request.urlopen("http://{service}:9090/metrics", timeout=10).read().decode()
print("metrics", len(body), "portalis_" in body)
try:
    urllib.request.urlopen(urllib.request.Request("http://{service}:8443/alerts", data=b"{{}}"), timeout=10)
except urllib.error.HTTPError as e:
    print("alerts", e.code)
"""


def test_the_real_node_runs_beside_the_kwok_fleet(kube: DevCluster) -> None:
    require_real_node(kube)
    node = json.loads(kube.kubectl("get", "node", NODE_NAME, "-o", "json").stdout)
    info = node["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("containerd://2."), info
    assert info["kubeletVersion"].startswith("v1.34.")
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == str(kube.real_node.gpus)
    labels = node["metadata"]["labels"]
    assert labels["nvidia.com/gpu.present"] == "true" and labels["nvidia.com/gpu.product"].startswith("NVIDIA-")
    assert {"effect": "NoSchedule", "key": "devcluster.portalis.dev/node", "value": "real"} in node["spec"]["taints"]
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == kube.node().net.node_ip  # type: ignore[union-attr]
    kwok = kube.kubectl("get", "nodes", "-l", "type=kwok", "-o", "name").stdout.split()
    assert len(kwok) >= 8  # the fake fleet is still there
    dns = json.loads(kube.kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "json").stdout)
    assert [p["spec"]["nodeName"] for p in dns["items"]] == [NODE_NAME]


def test_the_images_run_as_non_root_users_on_the_real_node(kube: DevCluster, namespace: str) -> None:
    refs = require_images(kube)
    c = Cluster(kube, namespace)
    out = run_to_completion(c, "operator-version", refs["operator"], ["sh", "-c", "id -u; portalis --version"])
    uid, version = out.splitlines()[:2]
    assert uid == "10001" and version.startswith("portalis "), out
    script = (
        "id -u; portalis --version; rustfmt --version; python -c 'import ray, py2many; print(\"ray\", ray.__version__)'"
    )
    out = run_to_completion(c, "worker-tools", refs["worker"], ["bash", "-c", script], timeout=240)
    lines = out.splitlines()
    assert lines[0] == "1000", out
    assert lines[1].startswith("portalis ") and lines[2].startswith("rustfmt ") and lines[3].startswith("ray 2."), out
    # the CA this machine may add for its egress stays out of the images
    local_cas = [p.read_text().strip().splitlines()[1] for p in Path("/usr/local/share/ca-certificates").glob("*.crt")]
    for name, ref in refs.items():
        bundle = run_to_completion(c, f"ca-{name}", ref, ["cat", "/etc/ssl/certs/ca-certificates.crt"])
        assert "BEGIN CERTIFICATE" in bundle
        assert not [ca for ca in local_cas if ca in bundle], f"{ref} carries this machine's CA"


@pytest.fixture(scope="module")
def release(kube: DevCluster, request: pytest.FixtureRequest) -> Iterator[Release]:
    request.getfixturevalue("crds")
    request.getfixturevalue("local_operators_paused")
    refs = require_images(kube)
    watched = create_namespace(kube, "rn")
    with chart_release(kube, refs["operator"], [watched]) as rel:
        yield rel
    kube.kubectl("delete", "namespace", watched, "--wait=false", check=False)


def _secret(name: str, data: dict[str, str]) -> str:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded})


def real_node_cluster(name: str, image: str, workers: int = 1) -> dict[str, Any]:
    """A TranslationCluster whose head and GPU workers run on the real node, sized for its two CPUs."""
    place = {"nodeSelector": dict(NODE_SELECTOR), "tolerations": list(TOLERATIONS)}
    return {
        "apiVersion": "portalis.dev/v1alpha1",
        "kind": "TranslationCluster",
        "metadata": {"name": name},
        "spec": {
            "backend": "Ray",
            "image": image,
            "engine": {"name": "py2many"},
            "head": {"resources": SMALL, **place},
            "workers": {
                "gpuType": "H100",
                "gpusPerWorker": 1,
                "minWorkers": workers,
                "maxWorkers": 2,
                "resources": SMALL,
                **place,
            },
            "queue": {"urlSecretRef": {"name": "portalis-redis", "key": "url"}},
            "storage": {"bucket": "portalis-artifacts", "credentialsSecretRef": {"name": "portalis-s3"}},
        },
    }


def test_the_operator_from_its_chart_is_ready_under_the_restricted_profile(release: Release) -> None:
    kube = release.kube
    pods = wait_for(lambda: [p for p in release.pods() if _ready(p)], timeout=120)
    pod = pods[0]
    assert pod["spec"]["nodeName"] == NODE_NAME
    ns = json.loads(kube.kubectl("get", "namespace", release.namespace, "-o", "json").stdout)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    lease = wait_for(
        lambda: json.loads(
            kube.kubectl("-n", release.namespace, "get", "lease", "portalis-operator", "-o", "json", check=False).stdout
            or "{}"
        ),
        timeout=60,
    )
    assert lease["spec"]["holderIdentity"] == pod["metadata"]["name"]


def test_the_operator_runs_ray_on_the_real_node_and_serves_metrics_in_the_cluster(release: Release) -> None:
    kube = release.kube
    refs = require_images(kube)
    ns = release.watched[0]
    c = Cluster(kube, ns)
    redis = incluster.deploy_redis(kube, ns, refs["redis"])
    c.kubectl("apply", "-f", "-", input=_secret("portalis-redis", {"url": redis.in_cluster}))
    c.kubectl(
        "apply", "-f", "-", input=_secret("portalis-s3", {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"})
    )
    c.kubectl("apply", "-f", "-", input=json.dumps(real_node_cluster("real", refs["worker"])))
    try:
        ready = wait_for(lambda: c.condition_obj("tc", "real", "Ready"), timeout=60)
        wait_for(lambda: c.condition("tc", "real", "Ready") == "True", timeout=300, interval=1)
    except AssertionError as exc:
        pods = c.kubectl("get", "pods", "-o", "wide", check=False).stdout
        raise AssertionError(f"{exc}\n{ready}\n{pods}\n{release.logs()[-3000:]}") from exc
    assert c.get("raycluster", "real")["metadata"]["ownerReferences"][0]["name"] == "real"
    pods = c.get("pods", "-l", "ray.io/cluster=real")["items"]
    kinds = sorted(p["metadata"]["labels"]["ray.io/node-type"] for p in pods)
    assert kinds == ["head", "worker"]
    for p in pods:
        assert p["spec"]["nodeName"] == NODE_NAME and _ready(p), p["status"]
    head = next(p["metadata"]["name"] for p in pods if p["metadata"]["labels"]["ray.io/node-type"] == "head")

    def ray_status() -> str:
        return c.kubectl("exec", head, "-c", "ray-head", "--", "ray", "status", check=False).stdout

    # the worker's GPU is in Ray, and the driver's translator actor holds it
    def gpu_held() -> str:
        out = ray_status()
        return out if "1.0/1.0 GPU" in out else ""

    try:
        status = wait_for(gpu_held, timeout=120, interval=2)
    except AssertionError as exc:
        driver = c.kubectl("logs", head, "-c", "portalis-driver", check=False).stdout
        raise AssertionError(f"{exc}\n{ray_status()}\n{driver[-3000:]}") from exc
    assert "1 gpu-workers" in status and "1 headgroup" in status, status

    # /metrics and /alerts through the operator's Service, from a pod, by the Service's DNS name
    script = SCRAPE.format(service=release.service)
    out = _python_in_pod(c, "scrape", refs["worker"], script)
    assert re.search(r"^metrics \d+ True$", out, re.M), out
    assert "alerts 401" in out, out

    c.kubectl("delete", "tc", "real", "--timeout=120s")
    wait_for(lambda: not c.get("pods", "-l", "ray.io/cluster=real")["items"], timeout=120)
    logs = release.logs()
    assert f"connected cluster {ns}/real to its queue" in logs, logs[-3000:]
    denied = [line for line in logs.splitlines() if FORBIDDEN.search(line)]
    assert not denied, "the chart's RBAC is missing a permission:\n" + "\n".join(denied[:20])


@pytest.mark.usefixtures("crds", "local_operators_paused")
def test_helm_uninstall_leaves_only_the_crds(kube: DevCluster) -> None:
    refs = require_images(kube)
    watched = create_namespace(kube, "rn")
    with chart_release(kube, refs["operator"], [watched]) as rel:
        wait_for(lambda: [p for p in rel.pods() if _ready(p)], timeout=120)
        name, ns = rel.name, rel.namespace
    selector = f"app.kubernetes.io/instance={name}"
    kinds = ",".join(
        [
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
        ]
    )
    wait_for(lambda: not kube.kubectl("get", kinds, "-n", ns, "-l", selector, "-o", "name").stdout.strip(), 120)
    assert not kube.kubectl("get", "clusterroles,clusterrolebindings", "-l", selector, "-o", "name").stdout.strip()
    assert helm(kube, "list", "-n", ns, "-q").strip() == ""
    for crd in ("translationclusters.portalis.dev", "translationjobs.portalis.dev"):
        kube.kubectl("get", "crd", crd)
    kube.kubectl("delete", "namespace", watched, "--wait=false", check=False)


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions", []))


def _python_in_pod(c: Cluster, name: str, image: str, script: str) -> str:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": on_real_node(
            {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": image, "command": ["python", "-c", script]}],
            }
        ),
    }
    c.kubectl("apply", "-f", "-", input=json.dumps(pod))
    wait_for(lambda: (c.get("pod", name).get("status") or {}).get("phase") in ("Succeeded", "Failed"), timeout=120)
    return c.kubectl("logs", name).stdout
