"""The local control plane's certificates, kubeconfigs and binary lookup (no processes)."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chaosraysvc.errors import ConfigurationError
from chaosraysvc_lab import binaries, kubeconfig, pki


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_a_client_certificate_carries_user_and_group_signed_by_the_ca(tmp_path: Path) -> None:
    ca = pki.CertificateAuthority(tmp_path)
    pair = ca.issue("admin", "chaosraysvc-admin", "system:masters")

    cert = _load(pair.cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "chaosraysvc-admin"
    )
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "system:masters"
    )
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    cert.verify_directly_issued_by(_load(ca.pair.cert))
    assert pair.key.stat().st_mode & 0o777 == 0o600


def test_a_serving_certificate_names_every_address_and_loads_into_tls(tmp_path: Path) -> None:
    ca = pki.CertificateAuthority(tmp_path)
    pair = ca.issue(
        "apiserver", "kube-apiserver", server_names=("127.0.0.1", "kubernetes"), client=False
    )

    alt = _load(pair.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alt.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert alt.get_values_for_type(x509.DNSName) == ["kubernetes"]
    usages = _load(pair.cert).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(pair.cert, pair.key)


def test_the_service_account_key_pair_is_written(tmp_path: Path) -> None:
    pair = pki.service_account_keys(tmp_path)

    assert pair.cert.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert pair.key.read_text().startswith("-----BEGIN PRIVATE KEY-----")


def test_a_kubeconfig_is_private_and_loads_into_the_client(tmp_path: Path) -> None:
    ca = pki.CertificateAuthority(tmp_path)
    path = kubeconfig.write(
        tmp_path / "sa.kubeconfig",
        server="https://127.0.0.1:6443",
        ca=ca.pair.cert,
        token="secret-token",
        namespace="ray",
    )

    body = yaml.safe_load(path.read_text())
    assert body["users"][0]["user"] == {"token": "secret-token"}
    assert body["contexts"][0]["context"]["namespace"] == "ray"
    assert path.stat().st_mode & 0o777 == 0o600
    api = kubeconfig.api_client(path)
    assert api.configuration.host == "https://127.0.0.1:6443"
    assert api.configuration.api_key == {"BearerToken": "Bearer secret-token"}


def test_an_explicit_binary_dir_missing_a_binary_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in binaries.BINARIES[:-1]:
        (tmp_path / name).write_text("")
    (tmp_path / "crds").mkdir()
    monkeypatch.setenv(binaries.ENV_VAR, str(tmp_path))

    with pytest.raises(ConfigurationError, match=r"lacks ray-operator: rebuild it with"):
        binaries.binary_dir()

    (tmp_path / "ray-operator").write_text("")
    assert binaries.binary_dir() == tmp_path
