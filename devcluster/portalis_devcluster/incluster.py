"""Servers the data plane needs, run inside the local cluster on the real node, as users run theirs: Redis and an
S3 server (versitygw over its POSIX backend), each a Deployment behind a Service. Pods reach them by the Service's
name; the host's tests and the demo reach the same Services through their NodePorts on the real node's address.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from portalis_devcluster import build, oci
from portalis_devcluster.node import NODE_SELECTOR, TOLERATIONS

if TYPE_CHECKING:
    from portalis_devcluster.cluster import DevCluster

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


# append-only persistence on the pod's emptyDir, so a restarted container keeps what was acknowledged
REDIS_CONFIG = {
    "bind": "0.0.0.0",
    "port": "6379",
    "protected-mode": "no",
    "dir": "/data",
    "appendonly": "yes",
    "appendfsync": "everysec",
    "save": "",
}


@dataclass(frozen=True)
class ServiceAddress:
    """Where a server in the cluster is reached: by pods (its Service's DNS name) and by the host (NodePort)."""

    in_cluster: str
    from_host: str


def build_on_real_node(
    name: str,
    namespace: str,
    labels: dict[str, str],
    container: dict[str, Any],
    volumes: list[dict[str, Any]],
    port: int,
    node_port: bool = True,
) -> list[dict[str, Any]]:
    """One replica of ``container`` on the real node (recreated, never two at once on the same emptyDirs' data) and
    a Service for its named port: a NodePort, so that this machine reaches it too, unless ``node_port`` is False."""
    port_name = container["ports"][0]["name"]
    service: dict[str, Any] = {
        "selector": labels,
        "ports": [{"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}],
    }
    if node_port:
        service["type"] = "NodePort"
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "nodeSelector": dict(NODE_SELECTOR),
                        "tolerations": list(TOLERATIONS),
                        "containers": [container],
                        "volumes": volumes,
                        "enableServiceLinks": False,
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": service,
        },
    ]


def build_redis(name: str, namespace: str, image: str) -> list[dict[str, Any]]:
    """A single Redis with append-only persistence on an emptyDir (kept across container restarts)."""
    labels = {"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": name}
    container = {
        "name": "redis",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": [arg for key, value in REDIS_CONFIG.items() for arg in (f"--{key}", value)],
        "ports": [{"name": "redis", "containerPort": 6379, "protocol": "TCP"}],
        "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": RESTRICTED_CONTAINER,
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    return build_on_real_node(name, namespace, labels, container, [{"name": "data", "emptyDir": {}}], 6379)


def deploy_redis(kube: DevCluster, namespace: str, image: str, name: str = "redis") -> ServiceAddress:
    """Run Redis in ``namespace`` on the real node and wait until it answers."""
    manifest = {"apiVersion": "v1", "kind": "List", "items": build_redis(name, namespace, image)}
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    kube.kubectl("rollout", "status", "-n", namespace, f"deployment/{name}", "--timeout=120s", timeout=150)
    svc = json.loads(kube.kubectl("get", "service", name, "-n", namespace, "-o", "json").stdout)
    node_port = svc["spec"]["ports"][0]["nodePort"]
    node = kube.node()
    assert node is not None, "in-cluster servers run on the real node"
    return ServiceAddress(
        in_cluster=f"redis://{name}.{namespace}.svc.cluster.local:6379/0",
        from_host=f"redis://{node.net.node_ip}:{node_port}/0",
    )


S3_PORT = 7070
S3_REGION = "us-east-1"
S3_IMAGE = f"localhost/portalis/versitygw:{build.VERSITYGW_VERSION.lstrip('v')}"


@dataclass(frozen=True)
class S3Address(ServiceAddress):
    access_key: str
    secret_key: str
    region: str = S3_REGION


def s3_image(tc: build.Toolchain) -> oci.ScratchImage:
    """The static versitygw binary alone in an image, running as a non-root user."""
    binary = oci.ImageFile("versitygw", tc.versitygw.read_bytes())
    return oci.ScratchImage(S3_IMAGE, (binary,), ("/versitygw",), user="65532:65532")


def build_s3(name: str, namespace: str, image: str, credentials_secret: str) -> list[dict[str, Any]]:
    """versitygw's S3 gateway over its POSIX backend on emptyDirs: buckets are directories, objects files."""
    labels = {"app.kubernetes.io/name": "s3", "app.kubernetes.io/instance": name}
    creds = [
        {"name": env, "valueFrom": {"secretKeyRef": {"name": credentials_secret, "key": key}}}
        for env, key in (
            ("ROOT_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
            ("ROOT_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
        )
    ]
    container = {
        "name": "s3",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": [f"--port=:{S3_PORT}", f"--region={S3_REGION}", "--iam-dir=/iam", "--quiet", "posix", "/data"],
        "env": creds,
        "ports": [{"name": "s3", "containerPort": S3_PORT, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": "s3"}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": RESTRICTED_CONTAINER,
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "iam", "mountPath": "/iam"}],
    }
    volumes = [{"name": "data", "emptyDir": {}}, {"name": "iam", "emptyDir": {}}]
    return build_on_real_node(name, namespace, labels, container, volumes, S3_PORT)


def credentials_secret(name: str, access_key: str, secret_key: str) -> dict[str, Any]:
    """The Secret a TranslationCluster's spec.storage.credentialsSecretRef names."""
    data = {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def deploy_s3(kube: DevCluster, namespace: str, name: str = "s3", secret: str = "portalis-s3") -> S3Address:
    """Run the S3 server in ``namespace`` on the real node with fresh credentials, kept in ``secret``."""
    node = kube.node()
    assert node is not None, "in-cluster servers run on the real node"
    image = s3_image(kube.tc)
    archive = kube.tc.root / "images" / f"versitygw-{build.VERSITYGW_VERSION}.oci.tar"
    if not archive.exists():
        oci.write_archive(image, archive)
    if image.ref not in node.image_refs():
        node.import_image(archive, image.ref)
    existing = kube.kubectl("get", "secret", secret, "-n", namespace, "-o", "json", check=False)
    data = json.loads(existing.stdout).get("data", {}) if existing.returncode == 0 else {}
    if {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= data.keys():  # the server already runs with these
        access, key = (base64.b64decode(data[k]).decode() for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
    else:
        access, key = "portalis-" + secrets.token_hex(6), secrets.token_urlsafe(24)
        kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(credentials_secret(secret, access, key)))
    manifest = {"apiVersion": "v1", "kind": "List", "items": build_s3(name, namespace, image.ref, secret)}
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    kube.kubectl("rollout", "status", "-n", namespace, f"deployment/{name}", "--timeout=120s", timeout=150)
    svc = json.loads(kube.kubectl("get", "service", name, "-n", namespace, "-o", "json").stdout)
    node_port = svc["spec"]["ports"][0]["nodePort"]
    return S3Address(
        in_cluster=f"http://{name}.{namespace}.svc.cluster.local:{S3_PORT}",
        from_host=f"http://{node.net.node_ip}:{node_port}",
        access_key=access,
        secret_key=key,
    )
