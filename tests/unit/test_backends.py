"""The RayCluster and DaskCluster builders, field by field, plus golden files of the examples' manifests.

Regenerate the golden files after a deliberate change with PORTALIS_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from portalis.api.v1alpha1.cluster import TranslationCluster, TranslationClusterSpec
from portalis.desired.apply import desired_hash, drifted_paths, is_subset
from portalis.desired.daskcluster import build_daskcluster
from portalis.desired.pods import GPU_PRODUCTS, SPOT_LABELS, Owner, merge_template
from portalis.desired.raycluster import build_raycluster, clamp_replicas

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "manifests" / "examples"
GOLDEN = Path(__file__).parent / "golden"
OWNER = Owner("tc", "team-a", "0b3c9f7e-uid")

BASE: dict[str, Any] = {
    "queue": {"url": "redis://redis:6379/0"},
    "storage": {"bucket": "portalis-artifacts"},
}


def spec(**overrides: Any) -> TranslationClusterSpec:
    return TranslationClusterSpec.model_validate({**BASE, **overrides})


def worker_group(rc: dict[str, Any]) -> dict[str, Any]:
    group: dict[str, Any] = rc["spec"]["workerGroupSpecs"][0]
    return group


def worker_container(rc: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = worker_group(rc)["template"]["spec"]["containers"][0]
    return container


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def affinity_terms(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    terms: list[dict[str, Any]] = pod_spec["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    return terms


# ---- RayCluster ----------------------------------------------------------------------------------------


def test_raycluster_identity_owner_and_labels() -> None:
    rc = build_raycluster(spec(), OWNER)
    assert rc["apiVersion"] == "ray.io/v1" and rc["kind"] == "RayCluster"
    assert rc["metadata"]["name"] == "tc" and rc["metadata"]["namespace"] == "team-a"
    assert rc["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "portalis.dev/v1alpha1",
            "kind": "TranslationCluster",
            "name": "tc",
            "uid": "0b3c9f7e-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert rc["metadata"]["labels"]["portalis.dev/cluster"] == "tc"
    assert worker_group(rc)["template"]["metadata"]["labels"]["portalis.dev/role"] == "worker"
    assert rc["spec"]["headGroupSpec"]["template"]["metadata"]["labels"]["portalis.dev/role"] == "head"


def test_kuberay_autoscaler_is_off_and_pods_are_recreated_on_template_changes() -> None:
    rc = build_raycluster(spec(), OWNER)
    assert rc["spec"]["enableInTreeAutoscaling"] is False
    assert rc["spec"]["upgradeStrategy"] == {"type": "Recreate"}


def test_head_has_no_gpu_and_runs_no_actors() -> None:
    rc = build_raycluster(spec(), OWNER)
    head = rc["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0" and head["rayStartParams"]["num-cpus"] == "0"
    resources = head["template"]["spec"]["containers"][0]["resources"]
    assert "nvidia.com/gpu" not in resources["requests"] and "nvidia.com/gpu" not in resources["limits"]
    assert "affinity" not in head["template"]["spec"]


def test_the_head_runs_the_ray_driver_beside_ray() -> None:
    rc = build_raycluster(spec(image="registry.local/worker:3"), OWNER)
    head, driver = rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"]
    assert head["name"] == "ray-head"
    assert driver["name"] == "portalis-driver" and driver["image"] == "registry.local/worker:3"
    assert driver["command"][:3] == ["portalis", "worker", "ray-driver"]
    assert env_of(driver)["PORTALIS_CLUSTER"] == "tc"


def test_the_driver_serves_the_worker_metrics_on_a_named_port() -> None:
    rc = build_raycluster(spec(), OWNER)
    head, driver = rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"]
    assert driver["ports"] == [{"name": "worker-metrics", "containerPort": 9090, "protocol": "TCP"}]
    flag = driver["command"].index("--metrics-port")
    assert driver["command"][flag + 1] == "9090"
    # KubeRay adds a port named "metrics" (Ray's own exporter) to the Ray container: ours must not take that name
    assert "ports" not in head and all(p["name"] != "metrics" for p in driver["ports"])


def test_head_placement_and_resources() -> None:
    rc = build_raycluster(
        spec(
            head={
                "resources": {"requests": {"cpu": "2", "memory": "8Gi"}},
                "nodeSelector": {"pool": "system"},
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "portalis", "effect": "NoSchedule"}],
            }
        ),
        OWNER,
    )
    pod = rc["spec"]["headGroupSpec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "system"}
    assert pod["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "portalis", "effect": "NoSchedule"}
    ]
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "2", "memory": "8Gi"},
        "limits": {"memory": "8Gi"},
    }


@pytest.mark.parametrize("gpus", [1, 2, 8, 16])
def test_gpu_limits_equal_requests_and_num_gpus(gpus: int) -> None:
    rc = build_raycluster(spec(workers={"gpusPerWorker": gpus}), OWNER)
    res = worker_container(rc)["resources"]
    assert res["limits"]["nvidia.com/gpu"] == str(gpus) == res["requests"]["nvidia.com/gpu"]
    assert worker_group(rc)["rayStartParams"] == {"num-gpus": str(gpus)}


def test_worker_resources_defaults_and_overrides() -> None:
    rc = build_raycluster(spec(), OWNER)
    assert worker_container(rc)["resources"] == {
        "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
        "limits": {"memory": "16Gi", "nvidia.com/gpu": "1"},
    }
    rc = build_raycluster(
        spec(workers={"resources": {"requests": {"cpu": "8", "memory": "32Gi"}, "limits": {"memory": "48Gi"}}}), OWNER
    )
    assert worker_container(rc)["resources"] == {
        "requests": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
        "limits": {"memory": "48Gi", "nvidia.com/gpu": "1"},
    }


@pytest.mark.parametrize("gpu_type", ["A100", "H100", "H200", "L4", "L40S", "A10G", "T4"])
def test_gpu_type_selects_the_gpu_feature_discovery_products(gpu_type: str) -> None:
    rc = build_raycluster(spec(workers={"gpuType": gpu_type}), OWNER)
    (term,) = affinity_terms(worker_group(rc)["template"]["spec"])
    product = term["matchExpressions"][0]
    assert product["key"] == "nvidia.com/gpu.product" and product["operator"] == "In"
    assert product["values"] == list(GPU_PRODUCTS[gpu_type])  # type: ignore[index]


def test_any_gpu_and_exact_product_override() -> None:
    rc = build_raycluster(spec(workers={"gpuType": "Any"}), OWNER)
    (term,) = affinity_terms(worker_group(rc)["template"]["spec"])
    assert term["matchExpressions"][0] == {"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]}
    rc = build_raycluster(spec(workers={"gpuType": "H100", "gpuProduct": "NVIDIA-H100-NVL"}), OWNER)
    (term,) = affinity_terms(worker_group(rc)["template"]["spec"])
    assert term["matchExpressions"][0]["values"] == ["NVIDIA-H100-NVL"]


def test_on_demand_workers_avoid_every_spot_label() -> None:
    rc = build_raycluster(spec(workers={"gpuType": "A100", "spot": False}), OWNER)
    (term,) = affinity_terms(worker_group(rc)["template"]["spec"])
    avoid = {(e["key"], tuple(e["values"])) for e in term["matchExpressions"] if e["operator"] == "NotIn"}
    assert avoid == {(k, (v,)) for k, v in SPOT_LABELS}


def test_spot_workers_accept_any_spot_label_and_tolerate_spot_taints() -> None:
    rc = build_raycluster(spec(workers={"gpuType": "A100", "spot": True}), OWNER)
    pod = worker_group(rc)["template"]["spec"]
    terms = affinity_terms(pod)
    assert len(terms) == len(SPOT_LABELS)
    for term, (key, value) in zip(terms, SPOT_LABELS, strict=True):
        assert term["matchExpressions"][0]["key"] == "nvidia.com/gpu.product"
        assert term["matchExpressions"][1] == {"key": key, "operator": "In", "values": [value]}
    keys = {t["key"] for t in pod["tolerations"]}
    assert {"nvidia.com/gpu", "karpenter.sh/capacity-type", "cloud.google.com/gke-spot"} <= keys


def test_workers_tolerate_the_gpu_taint_and_user_tolerations_and_selectors() -> None:
    rc = build_raycluster(
        spec(
            workers={
                "nodeSelector": {"pool": "gpu"},
                "tolerations": [{"key": "team", "operator": "Exists", "effect": "NoExecute"}],
            }
        ),
        OWNER,
    )
    pod = worker_group(rc)["template"]["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert {"key": "team", "operator": "Exists", "effect": "NoExecute"} in pod["tolerations"]
    assert pod["nodeSelector"] == {"pool": "gpu"}


def test_replicas_are_clamped_to_min_and_max() -> None:
    s = spec(workers={"minWorkers": 2, "maxWorkers": 5})
    assert clamp_replicas(s, None) == 2
    assert clamp_replicas(s, 0) == 2
    assert clamp_replicas(s, 4) == 4
    assert clamp_replicas(s, 50) == 5
    rc = build_raycluster(s, OWNER, replicas=9, workers_to_delete=["w-b", "w-a"])
    group = worker_group(rc)
    assert (group["replicas"], group["minReplicas"], group["maxReplicas"]) == (5, 2, 5)
    assert group["scaleStrategy"] == {"workersToDelete": ["w-a", "w-b"]}


def test_suspend_and_image() -> None:
    rc = build_raycluster(spec(suspend=True, image="registry.local/worker:2"), OWNER)
    assert rc["spec"]["suspend"] is True
    assert worker_container(rc)["image"] == "registry.local/worker:2"
    assert rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/worker:2"


def test_engine_queue_and_storage_reach_the_workers_and_secrets_stay_references() -> None:
    rc = build_raycluster(
        spec(
            engine={
                "name": "openai",
                "model": "qwen2.5-coder-32b",
                "endpoint": "http://vllm.models:8000/v1",
                "apiKeySecretRef": {"name": "llm", "key": "token"},
                "options": {"temperature": "0"},
                "timeoutSeconds": 120,
                "maxBatchSize": 32,
            },
            queue={"urlSecretRef": {"name": "portalis-redis", "key": "url"}},
            storage={
                "endpoint": "http://minio:9000",
                "bucket": "out",
                "region": "eu-west-1",
                "forcePathStyle": True,
                "credentialsSecretRef": {"name": "portalis-s3"},
            },
        ),
        OWNER,
    )
    env = env_of(worker_container(rc))
    assert env["PORTALIS_ENGINE"] == "openai"
    assert env["PORTALIS_ENGINE_MODEL"] == "qwen2.5-coder-32b"
    assert env["PORTALIS_ENGINE_ENDPOINT"] == "http://vllm.models:8000/v1"
    assert json.loads(env["PORTALIS_ENGINE_OPTIONS"]) == {"temperature": "0"}
    assert env["PORTALIS_ENGINE_TIMEOUT_SECONDS"] == "120"
    assert env["PORTALIS_ENGINE_MAX_BATCH_SIZE"] == "32"
    assert env["PORTALIS_ENGINE_API_KEY"] == {"secretKeyRef": {"name": "llm", "key": "token"}}
    assert env["PORTALIS_REDIS_URL"] == {"secretKeyRef": {"name": "portalis-redis", "key": "url"}}
    assert env["AWS_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "portalis-s3", "key": "AWS_ACCESS_KEY_ID"}}
    assert env["AWS_SECRET_ACCESS_KEY"] == {"secretKeyRef": {"name": "portalis-s3", "key": "AWS_SECRET_ACCESS_KEY"}}
    assert env["PORTALIS_S3_ENDPOINT"] == "http://minio:9000"
    assert env["PORTALIS_S3_BUCKET"] == "out"
    assert env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["PORTALIS_S3_FORCE_PATH_STYLE"] == "true"
    assert env["PORTALIS_CLUSTER"] == "tc" and env["PORTALIS_NAMESPACE"] == "team-a"
    assert worker_group(rc)["template"]["spec"]["terminationGracePeriodSeconds"] == 150
    # the queue URL given inline is passed as a value
    env = env_of(worker_container(build_raycluster(spec(), OWNER)))
    assert env["PORTALIS_REDIS_URL"] == "redis://redis:6379/0"


def test_pod_template_overrides_merge_by_name() -> None:
    rc = build_raycluster(
        spec(
            workers={
                "podTemplate": {
                    "metadata": {"annotations": {"team": "a"}},
                    "spec": {
                        "serviceAccountName": "translator",
                        "containers": [{"name": "ray-worker", "volumeMounts": [{"name": "cache", "mountPath": "/c"}]}],
                        "volumes": [{"name": "cache", "emptyDir": {}}],
                    },
                }
            }
        ),
        OWNER,
    )
    template = worker_group(rc)["template"]
    assert template["metadata"]["annotations"] == {"team": "a"}
    assert template["metadata"]["labels"]["portalis.dev/cluster"] == "tc"
    assert template["spec"]["serviceAccountName"] == "translator"
    (container,) = template["spec"]["containers"]
    # merged by name beside the memory-backed /dev/shm every Ray container gets
    assert container["volumeMounts"] == [
        {"name": "dshm", "mountPath": "/dev/shm"},
        {"name": "cache", "mountPath": "/c"},
    ]
    assert [v["name"] for v in template["spec"]["volumes"]] == ["dshm", "cache"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_merge_template_does_not_mutate_its_input() -> None:
    base = {"spec": {"containers": [{"name": "a", "image": "x"}]}}
    out = merge_template(base, {"spec": {"containers": [{"name": "a", "image": "y"}, {"name": "b"}]}})
    assert base == {"spec": {"containers": [{"name": "a", "image": "x"}]}}
    assert out["spec"]["containers"] == [{"name": "a", "image": "y"}, {"name": "b"}]


# ---- DaskCluster ---------------------------------------------------------------------------------------


def test_daskcluster_workers_carry_gpu_limits_and_placement() -> None:
    dc = build_daskcluster(
        spec(backend="Dask", workers={"gpuType": "A100", "gpusPerWorker": 2, "minWorkers": 1}), OWNER
    )
    assert dc["apiVersion"] == "kubernetes.dask.org/v1" and dc["kind"] == "DaskCluster"
    assert dc["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid
    worker = dc["spec"]["worker"]
    assert worker["replicas"] == 1
    assert worker["metadata"]["labels"]["portalis.dev/role"] == "worker"
    container = worker["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert "GPU=2" in container["command"]
    # each Dask worker runs the worker loops (the preload) and serves their metrics where the PodMonitor looks
    command = container["command"]
    assert command[:2] == ["dask", "worker"] and "--no-nanny" in command
    assert command[command.index("--preload") + 1] == "portalis.worker.dask_plugin"
    assert {"name": "worker-metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    assert {"name": "PORTALIS_METRICS_PORT", "value": "9090"} in container["env"]
    (term,) = affinity_terms(worker["spec"])
    assert term["matchExpressions"][0]["values"] == list(GPU_PRODUCTS["A100"])  # type: ignore[index]
    scheduler = dc["spec"]["scheduler"]
    assert "nvidia.com/gpu" not in json.dumps(scheduler["spec"])
    assert scheduler["metadata"]["labels"]["portalis.dev/role"] == "head"
    assert scheduler["service"]["selector"] == {"dask.org/cluster-name": "tc", "dask.org/component": "scheduler"}


def test_suspended_daskcluster_has_no_workers() -> None:
    dc = build_daskcluster(spec(backend="Dask", suspend=True, workers={"minWorkers": 2}), OWNER)
    assert dc["spec"]["worker"]["replicas"] == 0


# ---- drift detection -----------------------------------------------------------------------------------


def test_is_subset_ignores_fields_others_add_and_sees_changes() -> None:
    desired = build_raycluster(spec(), OWNER)
    observed = json.loads(json.dumps(desired))
    observed["status"] = {"state": "ready"}
    observed["metadata"]["uid"] = "x"
    worker_group(observed)["numOfHosts"] = 1
    assert is_subset(desired, observed)
    worker_container(observed)["image"] = "evil:1"
    assert not is_subset(desired, observed)
    assert drifted_paths(desired, observed) == ["spec.workerGroupSpecs[0].template.spec.containers[0].image"]


def test_is_subset_types() -> None:
    assert not is_subset({"a": True}, {"a": 1})
    assert not is_subset([1, 2], [1, 2, 3])
    assert is_subset({"a": [{"b": 1}]}, {"a": [{"b": 1, "c": 2}]})
    assert not is_subset({"a": 1}, {})


def test_desired_hash_ignores_annotations_only() -> None:
    a = build_raycluster(spec(), OWNER)
    b = json.loads(json.dumps(a))
    b["metadata"]["annotations"] = {"x": "y"}
    assert desired_hash(a) == desired_hash(b)
    worker_group(b)["replicas"] = 7
    assert desired_hash(a) != desired_hash(b)


# ---- golden files of the examples ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "example", sorted(p.name for p in EXAMPLES.glob("translationcluster-*.yaml")), ids=lambda n: n[:-5]
)
def test_golden_manifests(example: str) -> None:
    tc = TranslationCluster.model_validate(yaml.safe_load((EXAMPLES / example).read_text()))
    owner = Owner(str(tc.metadata.name), "team-a", "00000000-0000-0000-0000-000000000000")
    built = build_raycluster(tc.spec, owner) if tc.spec.backend == "Ray" else build_daskcluster(tc.spec, owner)
    text = yaml.safe_dump(built, sort_keys=False)
    path = GOLDEN / example
    if os.environ.get("PORTALIS_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(f"# Built from manifests/examples/{example}; regenerate with PORTALIS_UPDATE_GOLDEN=1.\n{text}")
    expected = yaml.safe_load(path.read_text())
    assert built == expected, f"{example}: the built manifest changed; review and regenerate the golden file"


def test_the_driver_sidecar_shares_rays_session_directory_and_shared_memory() -> None:
    head = build_raycluster(spec(), OWNER)["spec"]["headGroupSpec"]["template"]["spec"]
    mounts = {c["name"]: {m["name"]: m["mountPath"] for m in c["volumeMounts"]} for c in head["containers"]}
    assert mounts["ray-head"] == mounts["portalis-driver"] == {"ray-session": "/tmp/ray", "dshm": "/dev/shm"}
    volumes = {v["name"]: v["emptyDir"] for v in head["volumes"]}
    assert volumes == {"ray-session": {}, "dshm": {"medium": "Memory"}}
    assert head["shareProcessNamespace"] is True  # the driver finds the raylet among the pod's processes
    worker = worker_group(build_raycluster(spec(), OWNER))["template"]["spec"]
    assert worker["containers"][0]["volumeMounts"] == [{"name": "dshm", "mountPath": "/dev/shm"}]
