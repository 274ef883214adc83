"""An attacker's workbench: a hospital PKI, a rogue PKI, odd certificates, a TSA of our own, DCMTK.

Everything an attack needs is built here with real tools: radproof's own key management for the
hospital, ``cryptography`` for certificates a careless or hostile party would make, DCMTK's
``dcmsign`` for signatures radproof did not make, and RFC 3161 tokens signed by a TSA key we hold
(so that a timestamp's time can be chosen, as a forger would).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from loopback import DerService, serve
from radproof.cli import main
from radproof.imaging.phantom import simulate
from radproof.provenance import Role, init_ca, issue_identity, revoke_identity
from radproof.provenance.identity import KeyEncryption, load_ca

CA_PW = b"adversarial CA passphrase 7"
ID_PW = b"adversarial ID passphrase 7"
FAST = KeyEncryption.pbkdf2(iterations=2048)  # test keys: the default KDF is tested elsewhere
BITS = 2048


@dataclass(frozen=True)
class Lab:
    """Folders of identities (key.pem, cert.pem) and the CA files an attacker or a hospital holds."""

    root: Path
    ca: Path  # the hospital CA folder (ca.pem, crl.pem after a revocation)
    tech: Path  # a trusted technologist
    revoked: Path
    expired: Path
    rogue: Path  # same name as tech, issued by a CA nobody trusts
    server_auth: Path  # issued by the hospital CA, but for TLS servers only
    no_key_usage: Path  # issued by the hospital CA without a key usage extension
    short_key: Path  # RSA-1024, issued by the hospital CA
    tsa_ca: Path  # a CA for timestamp authorities (tsa-ca.pem)
    tsa: Path  # a TSA identity (key.pem, cert.pem) issued by tsa_ca

    @property
    def ca_pem(self) -> Path:
        return self.ca / "ca.pem"

    @property
    def tsa_ca_pem(self) -> Path:
        return self.tsa_ca / "ca.pem"


def _write_identity(folder: Path, cert: x509.Certificate, key: rsa.RSAPrivateKey | dsa.DSAPrivateKey) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(ID_PW),
        )
    )
    return folder


def odd_certificate(
    folder: Path,
    ca_dir: Path,
    name: str,
    *,
    bits: int = BITS,
    key_usage: bool = True,
    ekus: list[x509.ObjectIdentifier] | None = None,
    ca: bool = False,
    valid_from: dt.timedelta = dt.timedelta(days=2),
    use_dsa: bool = False,
    ocsp_url: str | None = None,
) -> Path:
    """An identity issued by the CA in ``ca_dir`` with the extensions an attacker or a sloppy CA chooses."""
    ca_cert, ca_key = load_ca(ca_dir, CA_PW)
    key: rsa.RSAPrivateKey | dsa.DSAPrivateKey = (
        dsa.generate_private_key(key_size=2048) if use_dsa else rsa.generate_private_key(65537, bits)
    )
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - valid_from)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if key_usage:
        builder = builder.add_extension(
            x509.KeyUsage(True, True, False, False, False, ca, ca, False, False), critical=True
        )
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    if ocsp_url:
        where = x509.UniformResourceIdentifier(ocsp_url)
        builder = builder.add_extension(
            x509.AuthorityInformationAccess([x509.AccessDescription(AuthorityInformationAccessOID.OCSP, where)]),
            critical=False,
        )
    return _write_identity(folder, builder.sign(ca_key, hashes.SHA256()), key)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    root = tmp_path_factory.mktemp("lab")
    init_ca(root / "ca", "St Elsewhere Imaging CA", CA_PW, key_bits=BITS, encryption=FAST)
    init_ca(root / "rogue-ca", "Rogue CA", CA_PW, key_bits=BITS, encryption=FAST)
    init_ca(root / "tsa-ca", "Time Authority CA", CA_PW, key_bits=BITS, encryption=FAST)
    issue = lambda folder, ca, name, **kw: issue_identity(  # noqa: E731
        root / folder, root / ca, name, Role.TECHNOLOGIST, ID_PW, CA_PW, key_bits=BITS, encryption=FAST, **kw
    )
    issue("tech", "ca", "Alice Tech")
    issue("revoked", "ca", "Carol Revoked")
    now = dt.datetime.now(dt.UTC)
    issue("expired", "ca", "Dan Expired", not_before=now - dt.timedelta(days=400), not_after=now - dt.timedelta(days=1))
    issue("rogue", "rogue-ca", "Alice Tech")
    odd_certificate(root / "server-auth", root / "ca", "pacs.example.org", ekus=[ExtendedKeyUsageOID.SERVER_AUTH])
    odd_certificate(root / "no-key-usage", root / "ca", "Eve NoUsage", key_usage=False)
    odd_certificate(root / "short-key", root / "ca", "Frank Short", bits=1024)
    odd_certificate(
        root / "tsa",
        root / "tsa-ca",
        "Hospital TSA",
        ekus=[ExtendedKeyUsageOID.TIME_STAMPING],
        valid_from=dt.timedelta(days=300),  # it vouched for times long ago
    )
    revoke_identity(root / "revoked", root / "ca", CA_PW)
    return Lab(
        root,
        root / "ca",
        root / "tech",
        root / "revoked",
        root / "expired",
        root / "rogue",
        root / "server-auth",
        root / "no-key-usage",
        root / "short-key",
        root / "tsa-ca",
        root / "tsa",
    )


@pytest.fixture()
def original(tmp_path: Path) -> Path:
    """A small unsigned radiograph with a sequence (for item-level signatures) and an institution name."""
    ds = simulate(rows=48, cols=40, seed=11)
    ds.InstitutionName = "St Elsewhere"
    item = pydicom.Dataset()
    item.CodeValue = "T-D3000"
    item.CodingSchemeDesignator = "SRT"
    item.CodeMeaning = "Chest"
    ds.AnatomicRegionSequence = pydicom.Sequence([item])
    path = tmp_path / "original.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def dcmsign(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["dcmsign", *map(str, args)], capture_output=True, text=True, timeout=120)


def dcmsign_sign(src: Path, dst: Path, ident: Path, *extra: str | Path) -> Path:
    out = dcmsign("--sign", ident / "key.pem", ident / "cert.pem", "+pw", ID_PW.decode(), *extra, src, dst)
    assert out.returncode == 0, out.stderr
    return dst


@dataclass(frozen=True)
class Outcome:
    """What ``radproof check`` said about a file, in JSON and in words."""

    code: int
    record: dict[str, object]
    text: str

    @property
    def verdict(self) -> str:
        return str(self.record.get("verdict"))

    @property
    def codes(self) -> list[str]:
        return [str(c) for c in self.record.get("reason_codes") or []]  # type: ignore[attr-defined]


Checker = Callable[..., Outcome]


@pytest.fixture()
def check_file(
    lab: Lab, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Checker:
    """Run ``radproof check`` on a file as a user would (JSON and human output), signature layer first.

    The detector is switched off (``RADPROOF_CHECK__USE_DETECTOR``): these attacks are on provenance,
    and a phantom's pixel score is not what is being tested.
    """
    monkeypatch.setenv("RADPROOF_CHECK__USE_DETECTOR", "false")

    def run(path: Path, *args: str, trust: Path | None = None) -> Outcome:
        anchor = ["--trust", str(trust or lab.ca_pem)]
        capsys.readouterr()
        code = main(["check", str(path), *anchor, "--json", *args])
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
        assert len(lines) == 1, lines
        text_code = main(["check", str(path), *anchor, *args])
        text = capsys.readouterr().out
        assert text_code == code
        return Outcome(code, lines[0], text)

    return run


# --- RFC 3161 tokens with a time of our choosing ----------------------------------------------------------


def make_timestamp_token(signature: bytes, when: dt.datetime, tsa: Path) -> bytes:
    """A TimeStampToken over ``signature`` (the DICOM Signature value) saying ``when``, signed by ``tsa``."""
    cert = x509.load_pem_x509_certificate((tsa / "cert.pem").read_bytes())
    key = serialization.load_pem_private_key((tsa / "key.pem").read_bytes(), ID_PW)
    assert isinstance(key, rsa.RSAPrivateKey)
    info = tsp.TSTInfo(
        {
            "version": "v1",
            "policy": "1.3.6.1.4.1.55555.1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": hashlib.sha256(signature).digest(),
            },
            "serial_number": 7,
            "gen_time": when.astimezone(dt.UTC),
        }
    )
    content = info.dump()
    attrs = cms.CMSAttributes(
        [
            {"type": "content_type", "values": ["tst_info"]},
            {"type": "message_digest", "values": [hashlib.sha256(content).digest()]},
        ]
    )
    signed_value = key.sign(attrs.dump(), padding.PKCS1v15(), hashes.SHA256())
    asn1_cert = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    signer = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                "issuer_and_serial_number",
                {"issuer": asn1_cert.issuer, "serial_number": asn1_cert.serial_number},
            ),
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": attrs,
            "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
            "signature": signed_value,
        }
    )
    signed = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {"content_type": "tst_info", "content": cms.ParsableOctetString(content)},
            "certificates": [asn1_cert],
            "signer_infos": [signer],
        }
    )
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())


# --- an OCSP responder of our own (RFC 6960 over HTTP on the loopback) -----------------------------------------


@dataclass
class Responder:
    """A local OCSP responder for the hospital CA: ``revoked`` serials answer revoked, others good."""

    url: str
    revoked: dict[int, dt.datetime]
    sign_with: Path  # the CA folder whose key signs answers (a rogue one forges them)
    calls: list[int]


@pytest.fixture()
def responder(lab: Lab) -> Iterator[Responder]:
    from cryptography.x509 import ocsp

    state = Responder("", {}, lab.ca, [])

    class Handler(DerService):
        content_type = "application/ocsp-response"

        def answer(self, body: bytes) -> bytes | None:
            request = ocsp.load_der_ocsp_request(body)
            state.calls.append(request.serial_number)
            ca_cert, ca_key = load_ca(state.sign_with, CA_PW)
            issuer, _ = load_ca(lab.ca, CA_PW)
            subject = _ISSUED[request.serial_number]
            now = dt.datetime.now(dt.UTC)
            revoked_at = state.revoked.get(request.serial_number)
            builder = ocsp.OCSPResponseBuilder().add_response(
                cert=subject,
                issuer=issuer,
                algorithm=hashes.SHA1(),
                cert_status=ocsp.OCSPCertStatus.REVOKED if revoked_at else ocsp.OCSPCertStatus.GOOD,
                this_update=now - dt.timedelta(minutes=1),
                next_update=now + dt.timedelta(hours=1),
                revocation_time=revoked_at,
                revocation_reason=None,
            )
            answer = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, ca_cert).sign(ca_key, hashes.SHA256())
            return answer.public_bytes(serialization.Encoding.DER)

    with serve(Handler, "/ocsp") as url:
        state.url = url
        yield state


_ISSUED: dict[int, x509.Certificate] = {}  # what the responder can answer about


def ocsp_identity(lab: Lab, folder: Path, url: str, name: str = "Olga Online") -> tuple[Path, x509.Certificate]:
    """An identity whose certificate names ``url`` as its OCSP responder (which can then answer about it)."""
    odd_certificate(folder, lab.ca, name, ocsp_url=url)
    cert = x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes())
    _ISSUED[cert.serial_number] = cert
    return folder, cert
