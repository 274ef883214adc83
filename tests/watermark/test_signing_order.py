"""Watermark first, then sign: the signature made by DCMTK's dcmsign must still verify in dcmsign."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from radproof.imaging import load
from radproof.imaging.phantom import simulate
from radproof.watermark import WatermarkKey, embed_file, read_file

DCMSIGN = shutil.which("dcmsign")
pytestmark = pytest.mark.skipif(DCMSIGN is None, reason="DCMTK dcmsign is not installed (apt-get install dcmtk)")
KEY = WatermarkKey(b"\x33" * 32)


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "radproof test technologist")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))  # DCMTK rejects a certificate valid from this second
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem, cert_pem = tmp / "key.pem", tmp / "cert.pem"
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_pem, cert_pem


def test_watermarked_dicom_signed_by_dcmsign_verifies(tmp_path: Path) -> None:
    src = tmp_path / "phantom.dcm"
    simulate(512, 448, seed=4, bits=12).save_as(src, enforce_file_format=True)
    marked = tmp_path / "marked.dcm"
    embed_file(src, marked, KEY, payload="SITE-001")
    key_pem, cert_pem = _self_signed(tmp_path)
    signed = tmp_path / "signed.dcm"
    run = subprocess.run(
        [DCMSIGN, "--sign", str(key_pem), str(cert_pem), "-pw", "--profile-creator", "+m2", "+sp", "14",
         str(marked), str(signed)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    verify = subprocess.run(
        [DCMSIGN, "--verify", "+cf", str(cert_pem), "--require-sig", str(signed)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    reading = read_file(signed, KEY)
    assert reading.payload == "SITE-001" and reading.restorable and reading.binding_ok
    assert np.array_equal(load(signed).pixels, load(marked).pixels)


def test_watermarked_dicom_signed_by_radproof_verifies_in_dcmsign(tmp_path: Path) -> None:
    from radproof.provenance import Role, init_ca, issue_identity, load_identity
    from radproof.provenance.signer import sign_file

    src = tmp_path / "phantom.dcm"
    simulate(320, 288, seed=6, bits=14).save_as(src, enforce_file_format=True)
    marked = tmp_path / "marked.dcm"
    embed_file(src, marked, KEY, payload="SITE-002", layers="fragile")
    init_ca(tmp_path / "ca", "Watermark Test CA", b"ca-pass")
    issue_identity(tmp_path / "id", tmp_path / "ca", "Tech", Role.TECHNOLOGIST, b"id-pass", b"ca-pass")
    signed = tmp_path / "signed.dcm"
    sign_file(marked, signed, load_identity(tmp_path / "id", b"id-pass"))
    verify = subprocess.run(
        [DCMSIGN, "--verify", "+cf", str(tmp_path / "ca" / "ca.pem"), "--require-sig", str(signed)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    reading = read_file(signed, KEY)
    assert reading.restorable and reading.binding_ok
