"""The extender over TLS, as kube-scheduler reaches it with the prod overlay's extender
``tlsConfig``: a certificate authority and a server certificate for 127.0.0.1 are made
here (``cryptography``), the extender runs as its own process with
``HYDATIS_SHIM_TLS_CERT_FILE`` / ``HYDATIS_SHIM_TLS_KEY_FILE`` set, and a client that
trusts only that CA (the ``caFile``, ``insecure: false``) makes real requests.

Also: plain HTTP to the same port gets no answer, a client that does not trust the CA
is refused at the handshake, and half a TLS configuration stops the extender at start
with the missing setting's name.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, stop_process

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(folder: Path) -> dict[str, Path]:
    """A CA and a server certificate it signs for 127.0.0.1 / localhost, as PEM files."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("hydatis-test-ca"))
        .issuer_name(_name("hydatis-test-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("hydatis-shim.hydatis-system.svc"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("hydatis-shim.hydatis-system.svc"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": folder / "ca.crt", "cert": folder / "tls.crt", "key": folder / "tls.key"}
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYDATIS_SHIM_")}
    env.update(extra)
    return env


def _wait_https(url: str, ca: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"extender exited with {proc.returncode}: {err[-2000:]}")
        try:
            if httpx.get(url, verify=ssl.create_default_context(cafile=str(ca))).status_code == 200:
                return
        except httpx.TransportError as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {START_TIMEOUT_S} s ({last})")


@pytest.fixture(scope="module")
def tls_shim(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shim-tls")
    pki = make_pki(folder)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "scheduler_shim", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=_env(
            HYDATIS_SHIM_TLS_CERT_FILE=str(pki["cert"]),
            HYDATIS_SHIM_TLS_KEY_FILE=str(pki["key"]),
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_https(f"https://127.0.0.1:{port}/healthz", pki["ca"], proc)
        yield {"port": port, **pki}
    finally:
        stop_process(proc)


def _client(ca: Path) -> httpx.Client:
    """What kube-scheduler's tlsConfig {caFile, insecure: false} amounts to."""
    return httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), timeout=5.0)


def test_extender_answers_filter_over_https_to_a_client_trusting_the_ca(tls_shim):
    args = {
        "Pod": {"metadata": {"name": "p", "namespace": "default", "uid": "u-1"}, "spec": {}},
        "NodeNames": ["node-a", "node-b"],
    }
    with _client(tls_shim["ca"]) as client:
        resp = client.post(f"https://127.0.0.1:{tls_shim['port']}/filter", json=args)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        # No node state was pushed: the extender passes every node on (a neutral answer).
        assert sorted(body["NodeNames"]) == ["node-a", "node-b"]
        assert not body.get("Error")
        assert resp.extensions["http_version"] in (b"HTTP/1.1", "HTTP/1.1")
        metrics = client.get(f"https://127.0.0.1:{tls_shim['port']}/metrics")
        assert metrics.status_code == 200 and "hydatis_" in metrics.text


def test_server_certificate_is_the_one_configured(tls_shim):
    pem = ssl.get_server_certificate(
        ("127.0.0.1", tls_shim["port"]), ca_certs=str(tls_shim["ca"]), timeout=5
    )
    served = x509.load_pem_x509_certificate(pem.encode())
    configured = x509.load_pem_x509_certificate(tls_shim["cert"].read_bytes())
    assert served.fingerprint(hashes.SHA256()) == configured.fingerprint(hashes.SHA256())


def test_plain_http_gets_no_answer(tls_shim):
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{tls_shim['port']}/healthz", timeout=3.0)


def test_client_not_trusting_the_ca_is_refused(tls_shim, tmp_path):
    other = make_pki(tmp_path)  # another CA: the extender's certificate is not signed by it
    with (
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        _client(other["ca"]) as client,
    ):
        client.get(f"https://127.0.0.1:{tls_shim['port']}/healthz")


@pytest.mark.parametrize(
    ("env_key", "missing"),
    [
        ("HYDATIS_SHIM_TLS_CERT_FILE", "tls_key_file"),
        ("HYDATIS_SHIM_TLS_KEY_FILE", "tls_cert_file"),
    ],
    ids=["cert-without-key", "key-without-cert"],
)
def test_half_a_tls_configuration_stops_the_extender(tmp_path, env_key, missing):
    pki = make_pki(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler_shim", "--port", str(free_port())],
        cwd=ROOT,
        env=_env(**{env_key: str(pki["cert"])}),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )
    assert proc.returncode == 2
    assert missing in proc.stderr and "HTTPS needs both" in proc.stderr


def test_a_missing_certificate_file_is_named(tmp_path):
    pki = make_pki(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler_shim", "--port", str(free_port())],
        cwd=ROOT,
        env=_env(
            HYDATIS_SHIM_TLS_CERT_FILE=str(tmp_path / "absent.crt"),
            HYDATIS_SHIM_TLS_KEY_FILE=str(pki["key"]),
        ),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )
    assert proc.returncode == 2
    assert "tls_cert_file" in proc.stderr and "absent.crt" in proc.stderr
