"""DICOM TLS: DCMTK's storescu +tls -> the gateway (mutual TLS) -> an archive that only speaks TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt

from radproof.config import load_settings
from radproof.errors import ConfigError
from radproof.gateway.server import Gateway

from .conftest import GATEWAY_AE, STORESCU, Captures, free_port
from .test_proxy import wait_for

KEY_PW = "tls key passphrase"


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path  # encrypted with KEY_PW
    key_pw: Path
    client_cert: Path
    client_key: Path  # plain, as storescu reads it with -pw


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(
    subject: str, issuer: tuple[x509.Name, rsa.RSAPrivateKey] | None, *, ca: bool, usage: ExtendedKeyUsageOID | None
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer if issuer is not None else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256()), key


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    root = tmp_path_factory.mktemp("tls")
    ca_cert, ca_key = _issue("Test DICOM TLS CA", None, ca=True, usage=None)
    issuer = (ca_cert.subject, ca_key)
    server_cert, server_key = _issue("radproof-gateway", issuer, ca=False, usage=ExtendedKeyUsageOID.SERVER_AUTH)
    client_cert, client_key = _issue("modality-1", issuer, ca=False, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    pem = serialization.Encoding.PEM
    (root / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (root / "server.pem").write_bytes(server_cert.public_bytes(pem))
    (root / "server.key").write_bytes(
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(KEY_PW.encode())
        )
    )
    (root / "key.pw").write_text(KEY_PW)
    (root / "client.pem").write_bytes(client_cert.public_bytes(pem))
    (root / "client.key").write_bytes(
        client_key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    )
    return TlsFiles(
        root / "ca.pem",
        root / "server.pem",
        root / "server.key",
        root / "key.pw",
        root / "client.pem",
        root / "client.key",
    )


class TlsArchive:
    """A storage SCP that accepts TLS connections only."""

    def __init__(self, files: TlsFiles) -> None:
        self.received: list[str] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(files.server_cert), str(files.server_key), password=KEY_PW)
        ae = AE(ae_title="ARCHIVE")
        for context_item in AllStoragePresentationContexts:
            if context_item.abstract_syntax is not None:
                ae.add_supported_context(context_item.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        self.port = free_port()
        self._lock = threading.Lock()
        self._server = ae.start_server(
            ("127.0.0.1", self.port), block=False, ssl_context=context, evt_handlers=[(evt.EVT_C_STORE, self._store)]
        )
        self._ae = ae

    def _store(self, event: object) -> int:
        with self._lock:
            self.received.append(str(event.dataset.SOPInstanceUID))  # type: ignore[attr-defined]
        return 0x0000

    def close(self) -> None:
        self._server.shutdown()
        self._ae.shutdown()


@pytest.fixture
def tls_archive(tls_files: TlsFiles) -> Iterator[TlsArchive]:
    archive = TlsArchive(tls_files)
    yield archive
    archive.close()


def _storescu_tls(
    port: int, files: TlsFiles, image: Path, *, with_cert: bool = True
) -> subprocess.CompletedProcess[str]:
    tls = ["+tls", str(files.client_key), str(files.client_cert)] if with_cert else ["+tla"]
    command = [STORESCU, *tls, "-pw", "+cf", str(files.ca), "-aet", "MODALITY1", "-aec", GATEWAY_AE,
               "127.0.0.1", str(port), str(image)]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_mutual_tls_in_and_tls_towards_the_archive(
    tmp_path: Path, tls_files: TlsFiles, tls_archive: TlsArchive, captures: Captures
) -> None:
    port = free_port()
    tls = {
        "certificate": str(tls_files.server_cert),
        "key": str(tls_files.server_key),
        "key_passphrase_file": str(tls_files.key_pw),
        "ca": str(tls_files.ca),
        "require_peer_certificate": True,
    }
    settings = load_settings().with_overrides(
        trust={"ca": [str(captures.ca)]},
        check={"use_watermark": False, "use_detector": False},
        gateway={
            "port": port,
            "allowed_callers": ["MODALITY1"],
            "spool": str(tmp_path / "spool"),
            "quarantine": str(tmp_path / "quarantine"),
            "tls": tls,
            "upstream": {
                "ae_title": "ARCHIVE",
                "host": "127.0.0.1",
                "port": tls_archive.port,
                "tls": {"enabled": True, "ca": str(tls_files.ca)},
            },
            "retry_seconds": 0.2,
        },
    )
    gateway = Gateway(settings)
    gateway.start()
    try:
        sent = _storescu_tls(port, tls_files, captures.signed)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert wait_for(lambda: tls_archive.received == [captures.signed_uid])
        # Without a client certificate, or without TLS at all, the caller gets nowhere.
        assert _storescu_tls(port, tls_files, captures.unsigned, with_cert=False).returncode != 0
        plain = subprocess.run(
            [STORESCU, "-aet", "MODALITY1", "-aec", GATEWAY_AE, "127.0.0.1", str(port), str(captures.unsigned)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert plain.returncode != 0
        assert gateway.journal.counts() == {"forwarded": 1}
    finally:
        gateway.stop()


def test_tls_settings_that_cannot_work_are_refused_up_front(tmp_path: Path, tls_files: TlsFiles) -> None:
    from radproof.config import TlsSettings
    from radproof.gateway.tls import client_context, server_context

    with pytest.raises(ConfigError, match="needs a certificate"):
        server_context(TlsSettings(require_peer_certificate=True))
    with pytest.raises(ConfigError, match="cannot be used"):
        server_context(TlsSettings(certificate=tls_files.server_cert, key=tls_files.server_key))  # no passphrase
    context = client_context(TlsSettings(enabled=True, ca=tls_files.ca))
    assert context is not None and context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert client_context(TlsSettings()) is None
