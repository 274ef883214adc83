"""Fixtures for the provenance tests: a test PKI, small DICOM files, DCMTK, a local TSA, SoftHSM2."""

from __future__ import annotations

import datetime as dt
import functools
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from loopback import DerService, serve
from radproof.imaging.phantom import simulate
from radproof.provenance import Role, init_ca, issue_identity, revoke_identity
from radproof.provenance.identity import KeyEncryption, load_ca

CA_PW = b"ca-secret"
ID_PW = b"id-secret"
BITS = 2048  # the CLI default (3072) is exercised in test_cli; 2048 keeps key generation fast here
# The shared PKI's keys use a cheap KDF (tests try thousands of wrong passphrases on them): they stand
# for keys made by older radproof versions. The default encryption is tested in test_keys_encryption.py.
FAST_KEYS = KeyEncryption.pbkdf2(iterations=2048)


def dcmsign(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run DCMTK dcmsign quietly; the caller checks the return code."""
    return subprocess.run(["dcmsign", *map(str, args)], capture_output=True, text=True, timeout=120)


def dcmsign_verify(path: Path, ca: Path, *extra: str | Path) -> int:
    return dcmsign("--verify", "+cf", ca, *extra, path).returncode


def dcmsign_sign(src: Path, dst: Path, ident: Path, *extra: str | Path) -> None:
    out = dcmsign("--sign", ident / "key.pem", ident / "cert.pem", "+pw", ID_PW.decode(), *extra, src, dst)
    assert out.returncode == 0, out.stderr


@dataclass(frozen=True)
class Pki:
    root: Path
    ca: Path  # CA folder (ca.pem, ca.key)
    tech: Path
    rad: Path
    revoked: Path
    expired: Path
    rogue_ca: Path
    rogue: Path  # issued by another CA

    @property
    def ca_pem(self) -> Path:
        return self.ca / "ca.pem"

    @property
    def crl(self) -> Path:
        return self.ca / "crl.pem"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    init_ca(root / "ca", "Test Hospital CA", CA_PW, key_bits=BITS, encryption=FAST_KEYS)
    init_ca(root / "rogue-ca", "Rogue CA", CA_PW, key_bits=BITS, encryption=FAST_KEYS)
    issue = functools.partial(issue_identity, encryption=FAST_KEYS)
    issue(root / "tech", root / "ca", "Alice Tech", Role.TECHNOLOGIST, ID_PW, CA_PW, key_bits=BITS)
    issue(root / "rad", root / "ca", "Bob Radiologist", Role.RADIOLOGIST, ID_PW, CA_PW, key_bits=BITS)
    issue(root / "revoked", root / "ca", "Carol Revoked", Role.TECHNOLOGIST, ID_PW, CA_PW, key_bits=BITS)
    now = dt.datetime.now(dt.UTC)
    issue(
        root / "expired",
        root / "ca",
        "Dan Expired",
        Role.DEVICE,
        ID_PW,
        CA_PW,
        key_bits=BITS,
        not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=1),
    )
    issue(root / "rogue", root / "rogue-ca", "Alice Tech", Role.TECHNOLOGIST, ID_PW, CA_PW, key_bits=BITS)
    revoke_identity(root / "revoked", root / "ca", CA_PW)
    return Pki(
        root,
        root / "ca",
        root / "tech",
        root / "rad",
        root / "revoked",
        root / "expired",
        root / "rogue-ca",
        root / "rogue",
    )


def save_explicit_and_implicit(ds: pydicom.Dataset, root: Path) -> tuple[Path, Path]:
    """Write ``ds`` as ``explicit.dcm`` and again, in Implicit VR Little Endian, as ``implicit.dcm``."""
    explicit = root / "explicit.dcm"
    ds.save_as(explicit, enforce_file_format=True)
    implicit = root / "implicit.dcm"
    copy = pydicom.dcmread(explicit)
    copy.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    copy.save_as(implicit, enforce_file_format=True)
    return explicit, implicit


@pytest.fixture(scope="session")
def dicom_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small unsigned inputs: explicit VR phantom, implicit VR copy, a 2-frame secondary-capture-like object."""
    root = tmp_path_factory.mktemp("dicom")
    ds = simulate(rows=64, cols=48, seed=3)
    explicit, implicit = save_explicit_and_implicit(ds, root)
    multi = root / "multiframe.dcm"
    ds3 = pydicom.dcmread(explicit)
    ds3.NumberOfFrames = 2
    ds3.PixelData = ds3.PixelData * 2
    ds3.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7.2"  # Multi-frame Grayscale Word Secondary Capture
    ds3.file_meta.MediaStorageSOPClassUID = ds3.SOPClassUID
    ds3.save_as(multi, enforce_file_format=True)
    return {"explicit": explicit, "implicit": implicit, "multiframe": multi}


# --- a local RFC 3161 TSA: `openssl ts -reply` behind http.server -----------------------------------------

_TSA_CONF = """
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _issue_tsa_cert(folder: Path, ca_dir: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    ca_cert, ca_key = load_ca(ca_dir, CA_PW)
    key = rsa.generate_private_key(public_exponent=65537, key_size=BITS)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TSA")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "tsa.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "tsa.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@pytest.fixture(scope="session")
def tsa_url(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tsa")
    _issue_tsa_cert(folder, pki.ca)
    (folder / "serial").write_text("01\n")
    conf = folder / "tsa.cnf"
    conf.write_text(_TSA_CONF.format(dir=folder))

    class Tsa(DerService):
        content_type = "application/timestamp-reply"

        def answer(self, body: bytes) -> bytes | None:
            with tempfile.TemporaryDirectory(dir=folder) as work:
                query, reply = Path(work) / "q.tsq", Path(work) / "r.tsr"
                query.write_bytes(body)
                done = subprocess.run(
                    ["openssl", "ts", "-reply", "-config", str(conf), "-queryfile", str(query), "-out", str(reply)],
                    capture_output=True,
                    timeout=30,
                )
                return reply.read_bytes() if done.returncode == 0 else None

    with serve(Tsa, "/tsa") as url:
        yield url
