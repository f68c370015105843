"""Command lines of the local control plane's processes (pure): etcd, the API server, the controller manager,
the scheduler, KWOK, the KubeRay operator and the dask-kubernetes operator.

The API server listens on ``api_host``: loopback when the cluster has no real node, the host end of the real node's
veth when it has one, so pods reach it through the ``kubernetes`` Service and nothing listens on the machine's other
interfaces. It authenticates clients by token (the admin) and by certificates signed by the cluster's CA (the
kubelet, kube-proxy), checks the kubelet's serving certificate against that CA, and admits with
``ExtendedResourceToleration`` (as GPU clouds run it) and ``NodeRestriction`` (a kubelet may change only its own
Node and pods).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from portalis_devcluster import build
from portalis_devcluster.network import SERVICE_CIDR
from portalis_devcluster.ports import Ports


@dataclass(frozen=True)
class Layout:
    """Where a cluster keeps its files, and what its processes need to know of each other."""

    tc: build.Toolchain
    dir: Path
    kubeconfig: Path
    ports: Ports
    api_host: str

    @property
    def pki(self) -> Path:
        return self.dir / "pki"


def _etcd(lay: Layout) -> list[str]:
    p = lay.ports
    return [
        str(lay.tc.etcd),
        f"--data-dir={lay.dir / 'etcd-data'}",
        "--name=portalis-dev",
        f"--listen-client-urls=http://127.0.0.1:{p.etcd_client}",
        f"--advertise-client-urls=http://127.0.0.1:{p.etcd_client}",
        f"--listen-peer-urls=http://127.0.0.1:{p.etcd_peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{p.etcd_peer}",
        f"--initial-cluster=portalis-dev=http://127.0.0.1:{p.etcd_peer}",
        "--unsafe-no-fsync",
        f"--quota-backend-bytes={4 * 1024**3}",
        "--log-level=warn",
    ]


def _apiserver(lay: Layout) -> list[str]:
    pki = lay.pki
    return [
        str(lay.tc.k8s("kube-apiserver")),
        f"--etcd-servers=http://127.0.0.1:{lay.ports.etcd_client}",
        f"--bind-address={lay.api_host}",
        f"--advertise-address={lay.api_host}",
        f"--secure-port={lay.ports.apiserver}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--token-auth-file={pki / 'tokens.csv'}",
        f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
        f"--kubelet-certificate-authority={pki / 'ca.crt'}",
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        "--authorization-mode=Node,RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--api-audiences=https://kubernetes.default.svc.cluster.local",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--enable-admission-plugins=ExtendedResourceToleration,NodeRestriction",
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
        "--max-requests-inflight=800",
        "--max-mutating-requests-inflight=400",
    ]


def _controller_manager(lay: Layout) -> list[str]:
    kc = str(lay.kubeconfig)
    return [
        str(lay.tc.k8s("kube-controller-manager")),
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={lay.ports.controller_manager}",
        f"--service-account-private-key-file={lay.pki / 'sa.key'}",
        # what pods get in kube-root-ca.crt to check the API server with
        f"--root-ca-file={lay.pki / 'ca.crt'}",
        "--use-service-account-credentials=false",
        "--cluster-cidr=10.244.0.0/16",
        "--controllers=*,-nodeipam,-ttl,-bootstrapsigner,-tokencleaner",
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        "--concurrent-gc-syncs=20",
        "--v=1",
    ]


def _scheduler(lay: Layout) -> list[str]:
    kc = str(lay.kubeconfig)
    return [
        str(lay.tc.k8s("kube-scheduler")),
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={lay.ports.scheduler}",
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        "--v=1",
    ]


def _kwok(lay: Layout) -> list[str]:
    stages = sorted(str(f) for f in lay.tc.kwok_stages.glob("*.yaml"))
    return [
        str(lay.tc.kwok),
        f"--kubeconfig={lay.kubeconfig}",
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        # the fake nodes' kubelet API (logs, exec) is KWOK's own server on loopback: the API server never reaches for
        # an address off this machine
        "--node-ip=127.0.0.1",
        f"--node-port={lay.ports.kwok}",
        "--cidr=10.0.0.1/16",
        "--node-lease-duration-seconds=40",
        f"--server-address=127.0.0.1:{lay.ports.kwok}",
        f"--tls-cert-file={lay.pki / 'kwok-serving.crt'}",
        f"--tls-private-key-file={lay.pki / 'kwok-serving.key'}",
        *[f"--config={s}" for s in stages],
    ]


def _kuberay(lay: Layout) -> list[str]:
    return [
        str(lay.tc.ray_operator),
        f"--kubeconfig={lay.kubeconfig}",
        "--enable-leader-election=false",
        f"--metrics-addr=127.0.0.1:{lay.ports.kuberay_metrics}",
        f"--health-probe-bind-address=127.0.0.1:{lay.ports.kuberay_probe}",
        "--log-stdout-encoder=console",
        "--reconcile-concurrency=8",
    ]


def _dask_operator(lay: Layout) -> list[str]:
    # dask-kubernetes' own operator (kopf), from the installed wheel
    return [
        sys.executable,
        "-m",
        "kopf",
        "run",
        "-m",
        "dask_kubernetes.operator.controller",
        "--all-namespaces",
        "--standalone",
        f"--liveness=http://127.0.0.1:{lay.ports.dask_operator}/healthz",
    ]


ARGV = {
    "etcd": _etcd,
    "kube-apiserver": _apiserver,
    "kube-controller-manager": _controller_manager,
    "kube-scheduler": _scheduler,
    "kwok": _kwok,
    "kuberay-operator": _kuberay,
    "dask-operator": _dask_operator,
}
# The order components start in; `down` stops them in reverse.
COMPONENTS = tuple(ARGV)


def argv(name: str, lay: Layout) -> list[str]:
    return ARGV[name](lay)
