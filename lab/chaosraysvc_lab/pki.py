"""Certificates and keys of a local control plane: one CA, serving and client certificates.

Every component authenticates with a client certificate signed by the cluster CA (as
kubeadm sets it up): the admin (`system:masters`), the controller-manager, the scheduler,
the kubelet (`system:node:<name>`, for the Node authorizer) and the operator. Service-account
tokens are signed with a key of their own. Keys are ECDSA P-256: fast to generate.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=30)


@dataclass(frozen=True)
class CertPair:
    """Paths of a PEM certificate and its PEM private key."""

    cert: Path
    key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(common_name: str, organization: str = "") -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(parts)


class CertificateAuthority:
    """A self-signed CA that issues the control plane's certificates into `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._key = _key()
        now = datetime.datetime.now(datetime.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(_name("chaosraysvc-local-ca"))
            .issuer_name(_name("chaosraysvc-local-ca"))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.pair = CertPair(directory / "ca.crt", directory / "ca.key")
        self.pair.cert.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        _write_key(self._key, self.pair.key)

    def issue(
        self,
        name: str,
        common_name: str,
        organization: str = "",
        *,
        server_names: tuple[str, ...] = (),
        client: bool = True,
    ) -> CertPair:
        """Issue `<name>.crt/.key`: a client certificate, and a serving one for `server_names`."""
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, organization))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if server_names:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            alt: list[x509.GeneralName] = []
            for entry in server_names:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(entry)))
                except ValueError:
                    alt.append(x509.DNSName(entry))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        pair = CertPair(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, pair.key)
        return pair


def service_account_keys(directory: Path) -> CertPair:
    """Write the service-account token signing key and its public key (`sa.pub`, `sa.key`)."""
    key = _key()
    pair = CertPair(directory / "sa.pub", directory / "sa.key")
    pair.cert.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    _write_key(key, pair.key)
    return pair


def request_serving_certificate(
    api_client: Any,
    node_name: str,
    addresses: tuple[str, ...],
    directory: Path,
    timeout: float = 60.0,
) -> CertPair:
    """Get the kubelet's serving certificate from the cluster CA, as `serverTLSBootstrap` does.

    Writes a key and a CertificateSigningRequest for `system:node:<node_name>` (group
    `system:nodes`) with `addresses` as IP/DNS SANs to signer `kubernetes.io/kubelet-serving`,
    approves it (what an admin's `kubectl certificate approve` does: nothing approves serving
    CSRs by itself) and waits for the controller-manager to sign it. Returns
    `<directory>/kubelet-server.crt/.key`; raises TimeoutError if it is not signed in time.
    """
    import base64
    import secrets
    import time

    from kubernetes import client

    key = _key()
    alt: list[x509.GeneralName] = []
    for entry in addresses:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(entry)))
        except ValueError:
            alt.append(x509.DNSName(entry))
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(f"system:node:{node_name}", "system:nodes"))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(key, hashes.SHA256())
    )
    certificates = client.CertificatesV1Api(api_client)
    name = f"csr-{node_name}-{secrets.token_hex(4)}"
    body: Any = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode(),
            "signerName": "kubernetes.io/kubelet-serving",
            "usages": ["digital signature", "server auth"],
        },
    }
    certificates.create_certificate_signing_request(body)
    approval: Any = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": body["spec"],
        "status": {
            "conditions": [
                {
                    "type": "Approved",
                    "status": "True",
                    "reason": "ChaosRaySvcLabApprove",
                    "message": "the lab approves its own node's serving certificate",
                }
            ]
        },
    }
    certificates.replace_certificate_signing_request_approval(name, approval)
    deadline = time.monotonic() + timeout
    while True:
        status = certificates.read_certificate_signing_request(name).status
        if status and status.certificate:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"CertificateSigningRequest {name} was not signed within {timeout:g}s: is the "
                "controller-manager's csrsigning controller running (--cluster-signing-*)?"
            )
        time.sleep(0.2)
    directory.mkdir(parents=True, exist_ok=True)
    pair = CertPair(directory / "kubelet-server.crt", directory / "kubelet-server.key")
    pair.cert.write_bytes(base64.b64decode(status.certificate))
    _write_key(key, pair.key)
    return pair
