"""The local cluster's certificates: one CA that signs the API server's serving certificate, the clients that
authenticate with certificates (the kubelet as ``system:node:<name>``, kube-proxy, the API server towards the
kubelet) and the kubelet's serving certificate, as kubeadm lays them out.

Keys are ECDSA P-256 (fast to make on a small machine). A certificate is made again when its key, its signer or its
names changed, so a cluster whose addresses moved gets matching certificates on the next ``up``.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 3650


@dataclass(frozen=True)
class CertSpec:
    """What a certificate says: its subject, its names and what it may be used for."""

    name: str  # file stem under the PKI directory
    common_name: str
    organizations: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    server: bool = False
    client: bool = False

    def fingerprint(self) -> str:
        return json.dumps(
            [
                self.common_name,
                self.organizations,
                sorted(self.dns_names),
                sorted(self.ip_addresses),
                self.server,
                self.client,
            ]
        )


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


@dataclass
class Pki:
    """The certificates under one directory; ``ensure`` makes what is missing or stale."""

    dir: Path
    _ca_key: ec.EllipticCurvePrivateKey | None = field(default=None, repr=False)

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"

    def ensure_ca(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.ca_cert.exists() and self.key("ca").exists():
            return
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        subject = _name("portalis-devcluster-ca")
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_key(self.key("ca"), key)
        self.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._ca_key = key

    def _load_ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        cert = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        if self._ca_key is None:
            key = serialization.load_pem_private_key(self.key("ca").read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            self._ca_key = key
        return cert, self._ca_key

    def ensure(self, spec: CertSpec) -> None:
        """Make ``<name>.crt``/``<name>.key`` signed by the CA unless the ones there already say ``spec``."""
        self.ensure_ca()
        stamp = self.dir / f"{spec.name}.spec"
        ca_serial = str(x509.load_pem_x509_certificate(self.ca_cert.read_bytes()).serial_number)
        wanted = spec.fingerprint() + ca_serial
        if self.cert(spec.name).exists() and stamp.exists() and stamp.read_text() == wanted:
            return
        ca, ca_key = self._load_ca()
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usages = []
        if spec.server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if spec.client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(spec.common_name, spec.organizations))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_encipherment=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    content_commitment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in spec.dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in spec.ip_addresses]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        _write_key(self.key(spec.name), key)
        self.cert(spec.name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        stamp.write_text(wanted)

    def ensure_service_account_key(self) -> None:
        """The key pair service account tokens are signed with (RSA, as the API server's defaults expect)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if (self.dir / "sa.key").exists():
            return
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_key(self.dir / "sa.key", key)
        (self.dir / "sa.pub").write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )


def apiserver_cert(host: str, service_ip: str) -> CertSpec:
    """The API server's serving certificate: every name a client on the host or in a pod uses for it."""
    ips = tuple(dict.fromkeys(["127.0.0.1", host, service_ip]))
    dns = (
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    )
    return CertSpec("apiserver", "kube-apiserver", dns_names=dns, ip_addresses=ips, server=True)


def kubelet_client_cert(node: str) -> CertSpec:
    """What the kubelet presents to the API server: the Node authorizer knows it as this node."""
    return CertSpec("kubelet-client", f"system:node:{node}", organizations=("system:nodes",), client=True)


def kubelet_serving_cert(node: str, node_ip: str) -> CertSpec:
    return CertSpec("kubelet-serving", node, dns_names=(node,), ip_addresses=(node_ip,), server=True)


# KWOK serves the fake nodes' kubelet API (logs, exec) at their InternalIP, loopback; the API server checks it like a
# kubelet's
KWOK_SERVING = CertSpec("kwok-serving", "kwok", dns_names=("localhost",), ip_addresses=("127.0.0.1",), server=True)

APISERVER_KUBELET_CLIENT = CertSpec(
    "apiserver-kubelet-client", "kube-apiserver-kubelet-client", organizations=("system:masters",), client=True
)
KUBE_PROXY_CLIENT = CertSpec("kube-proxy", "system:kube-proxy", client=True)
