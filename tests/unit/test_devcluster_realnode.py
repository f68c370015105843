"""The real node's pure parts: addresses, certificates, configuration files, scratch images and CoreDNS objects."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import tarfile
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from portalis_devcluster import build, controlplane, dns, oci
from portalis_devcluster.network import DNS_SERVICE_IP, NodeNetwork
from portalis_devcluster.node import NODE_NAME, TAINT, RealNode, RealNodeSpec, node_labels
from portalis_devcluster.pki import (
    APISERVER_KUBELET_CLIENT,
    KUBE_PROXY_CLIENT,
    Pki,
    apiserver_cert,
    kubelet_client_cert,
    kubelet_serving_cert,
)
from portalis_devcluster.ports import Ports


def test_slots_never_share_addresses(tmp_path: Path) -> None:
    nets = [NodeNetwork(s, tmp_path) for s in range(64)]
    transits = [n.transit for n in nets]
    pods = [n.pod_cidr for n in nets]
    all_nets = transits + pods
    for i, a in enumerate(all_nets):
        for b in all_nets[i + 1 :]:
            assert not a.overlaps(b)
    for n in nets:
        assert len(n.host_if) <= 15  # the kernel's limit on interface names
        assert ipaddress.ip_address(n.host_ip) in n.transit and ipaddress.ip_address(n.node_ip) in n.transit
        assert ipaddress.ip_address(n.pod_gateway) in n.pod_cidr
        # none of it meets the Service network, the KWOK pod range or loopback
        for other in ("10.96.0.0/16", "10.0.0.0/16", "127.0.0.0/8"):
            assert not n.pod_cidr.overlaps(ipaddress.ip_network(other))
            assert not n.transit.overlaps(ipaddress.ip_network(other))


def _load(pki: Pki, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pki.cert(name).read_bytes())


def test_certificates_say_who_and_where(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    net = NodeNetwork(3, tmp_path)
    for spec in (
        apiserver_cert(net.host_ip, "10.96.0.1"),
        APISERVER_KUBELET_CLIENT,
        KUBE_PROXY_CLIENT,
        kubelet_client_cert(NODE_NAME),
        kubelet_serving_cert(NODE_NAME, net.node_ip),
    ):
        pki.ensure(spec)
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    api = _load(pki, "apiserver")
    ips = {
        str(ip)
        for ip in api.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.IPAddress
        )
    }
    assert ips == {"127.0.0.1", net.host_ip, "10.96.0.1"}
    assert api.issuer == ca.subject
    kubelet = _load(pki, "kubelet-client")
    assert kubelet.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"system:node:{NODE_NAME}"
    assert kubelet.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:nodes"
    usage = kubelet.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    serving = _load(pki, "kubelet-serving")
    san = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == [net.node_ip]
    assert list(serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]


def test_a_certificate_is_made_again_only_when_its_names_change(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    pki.ensure(apiserver_cert("127.0.0.1", "10.96.0.1"))
    first = pki.cert("apiserver").read_bytes()
    pki.ensure(apiserver_cert("127.0.0.1", "10.96.0.1"))
    assert pki.cert("apiserver").read_bytes() == first
    pki.ensure(apiserver_cert("10.243.0.1", "10.96.0.1"))
    assert pki.cert("apiserver").read_bytes() != first


def test_the_kubelet_authenticates_and_authorizes_like_a_real_node(tmp_path: Path) -> None:
    tc, net = build.Toolchain(tmp_path / "cache"), NodeNetwork(0, tmp_path / "ns")
    node = RealNode(tmp_path, tc, net, RealNodeSpec(), run_root=tmp_path / "run")
    node.write_config("https://10.243.0.1:6443")
    assert node.socket.parent.parent == tmp_path / "run" and len(str(node.socket)) <= 107
    cfg = yaml.safe_load((node.dir / "kubelet.yaml").read_text())
    assert cfg["authentication"]["anonymous"]["enabled"] is False
    assert cfg["authentication"]["webhook"]["enabled"] is True
    assert cfg["authorization"]["mode"] == "Webhook"
    assert cfg["readOnlyPort"] == 0
    assert Path(cfg["tlsCertFile"]).exists() and Path(cfg["authentication"]["x509"]["clientCAFile"]).exists()
    assert cfg["registerWithTaints"] == [TAINT]
    assert cfg["clusterDNS"] == [DNS_SERVICE_IP]
    assert cfg["cgroupRoot"] == "/portalis-node-0"
    kubeconfig = json.loads(node.kubeconfig("kubelet").read_text())
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://10.243.0.1:6443"
    assert "insecure-skip-tls-verify" not in kubeconfig["clusters"][0]["cluster"]
    conflist = json.loads((node.dir / "cni" / "net.d" / "10-portalis.conflist").read_text())
    bridge = conflist["plugins"][0]
    assert bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.100.0/24", "gateway": "10.244.100.1"}]]
    toml = (node.dir / "containerd.toml").read_text()
    assert "version = 3" in toml and "restrict_oom_score_adj = true" in toml and "localhost/portalis/pause:" in toml
    argv = node.argv("kubelet")
    assert argv[0].endswith("nsenter") and f"--node-ip={node.net.node_ip}" in argv


def test_node_labels_are_those_of_a_gpu_node() -> None:
    labels = node_labels(RealNodeSpec(gpus=2))
    assert labels["nvidia.com/gpu.present"] == "true"
    assert labels["nvidia.com/gpu.count"] == "2"
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert labels["devcluster.portalis.dev/node"] == "real"


@pytest.mark.parametrize("real", [False, True])
def test_the_api_server_listens_only_where_it_must(tmp_path: Path, real: bool) -> None:
    host = NodeNetwork(0, tmp_path).host_ip if real else "127.0.0.1"
    lay = controlplane.Layout(build.Toolchain(tmp_path), tmp_path, tmp_path / "kc", Ports(apiserver=6443), host)
    argv = controlplane.argv("kube-apiserver", lay)
    assert f"--bind-address={host}" in argv and f"--advertise-address={host}" in argv
    assert "--enable-admission-plugins=ExtendedResourceToleration,NodeRestriction" in argv
    assert any(a.startswith("--kubelet-certificate-authority=") for a in argv)
    assert not any("insecure" in a for a in argv)


def test_scratch_image_archive_is_reproducible(tmp_path: Path) -> None:
    image = oci.ScratchImage(
        "localhost/portalis/tool:1.0", (oci.ImageFile("bin/tool", b"\x7fELF..."),), ("/bin/tool",), user="65532:65532"
    )
    one = oci.write_archive(image, tmp_path / "a.tar")
    two = oci.write_archive(image, tmp_path / "b.tar")
    assert one == two
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as tar:
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        entry = index["manifests"][0]
        assert entry["annotations"]["io.containerd.image.name"] == "localhost/portalis/tool:1.0"
        manifest_bytes = tar.extractfile("blobs/sha256/" + entry["digest"].split(":")[1]).read()  # type: ignore[union-attr]
        assert "sha256:" + hashlib.sha256(manifest_bytes).hexdigest() == entry["digest"]
        manifest = json.loads(manifest_bytes)
        config = json.loads(tar.extractfile("blobs/sha256/" + manifest["config"]["digest"].split(":")[1]).read())  # type: ignore[union-attr]
        assert config["config"]["Entrypoint"] == ["/bin/tool"] and config["config"]["User"] == "65532:65532"
        layer = tar.extractfile("blobs/sha256/" + manifest["layers"][0]["digest"].split(":")[1]).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(layer)) as files:
        member = files.getmember("bin/tool")
        assert member.mode == 0o755 and files.extractfile(member).read() == b"\x7fELF..."  # type: ignore[union-attr]


def test_coredns_answers_for_the_cluster_only() -> None:
    objects = dns.build_coredns("img", {"k": "v"}, [{"key": "k", "operator": "Exists"}])
    kinds = [o["kind"] for o in objects]
    assert kinds == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Service"]
    corefile = objects[3]["data"]["Corefile"]
    assert "kubernetes cluster.local" in corefile and "forward" not in corefile
    service = objects[-1]
    assert service["spec"]["clusterIP"] == DNS_SERVICE_IP
    pod = objects[4]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"k": "v"} and pod["securityContext"]["runAsNonRoot"] is True


def test_a_machine_that_cannot_run_a_node_is_told_what_it_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    from portalis_devcluster import host

    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.setattr("shutil.which", lambda tool: None if tool in ("runc", "iptables") else f"/usr/bin/{tool}")
    monkeypatch.setattr(host, "CNI_DIR", Path("/nonexistent/cni"))
    missing = host.missing_for_real_node()
    text = "\n".join(missing)
    assert "root:" in text and "runc: not installed (Debian package runc)" in text
    assert "iptables: not installed (Debian package iptables)" in text
    assert "CNI plugins: bridge, host-local, portmap, loopback not in /nonexistent/cni" in text


def test_the_ray_base_carries_the_ray_the_clusters_ask_for() -> None:
    from portalis.desired.raycluster import RAY_VERSION
    from portalis_devcluster import images

    assert images.RAY_VERSION == RAY_VERSION
