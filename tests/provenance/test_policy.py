"""Policy on new signatures, identity files, and the in-memory API."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pydicom
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from radproof.errors import KeyFileError, PassphraseError, PolicyError
from radproof.imaging.phantom import simulate
from radproof.provenance import (
    Identity,
    MacAlgorithm,
    Purpose,
    Role,
    TrustStore,
    init_ca,
    issue_identity,
    load_identity,
    sign_dataset,
    verify_dataset,
)
from radproof.provenance.identity import FileKey

from .conftest import ID_PW, Pki


def test_in_memory_sign_and_verify(pki: Pki) -> None:
    ds = simulate(rows=32, cols=32, seed=9)
    ident = load_identity(pki.tech, ID_PW)
    sign_dataset(ds, ident, Purpose.SOURCE)
    sign_dataset(ds, load_identity(pki.rad, ID_PW), Purpose.APPROVAL)
    result = verify_dataset(ds, trust=TrustStore.from_files(pki.ca_pem))
    assert result.status == "valid" and len(result.signatures) == 2
    assert {int(i.MACIDNumber) for i in ds.DigitalSignaturesSequence} == {0, 1}
    ds.PatientName = "Changed^Later"
    assert verify_dataset(ds, trust=TrustStore.from_files(pki.ca_pem)).status == "invalid"
    assert verify_dataset(simulate(rows=16, cols=16)).status == "unsigned"


def test_without_trust_anchor_signature_is_valid_but_untrusted(pki: Pki) -> None:
    ds = simulate(rows=16, cols=16, seed=2)
    sign_dataset(ds, load_identity(pki.tech, ID_PW))
    (sig,) = verify_dataset(ds).signatures
    assert sig.valid and not sig.trusted and "trust anchor" in (sig.reason or "")


def test_weak_choices_are_refused(pki: Pki) -> None:
    ds = simulate(rows=16, cols=16, seed=4)
    ident = load_identity(pki.tech, ID_PW)
    for weak in (MacAlgorithm.SHA1, MacAlgorithm.MD5, MacAlgorithm.RIPEMD160):
        with pytest.raises(PolicyError, match="too weak"):
            sign_dataset(ds, ident, algorithm=weak)
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tiny")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(small.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(small, hashes.SHA256())
    )
    with pytest.raises(PolicyError, match="too short"):
        sign_dataset(ds, Identity(certificate=cert, key=FileKey(small)))
    expired = load_identity(pki.expired, ID_PW)  # loads fine...
    with pytest.raises(PolicyError, match="expired"):
        sign_dataset(ds, expired)  # ...but an expired certificate cannot sign
    assert "DigitalSignaturesSequence" not in ds


def test_identity_files_are_checked(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(PassphraseError):
        load_identity(pki.tech, b"wrong")
    with pytest.raises(KeyFileError):
        load_identity(tmp_path / "nope", ID_PW)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "cert.pem").write_bytes((pki.rad / "cert.pem").read_bytes())
    (mixed / "key.pem").write_bytes((pki.tech / "key.pem").read_bytes())
    with pytest.raises(KeyFileError, match="does not belong"):
        load_identity(mixed, ID_PW)
    with pytest.raises(PolicyError):
        init_ca(tmp_path / "weak", "Weak", b"x", key_bits=1024)
    with pytest.raises(KeyFileError, match="already exists"):
        init_ca(pki.ca, "Again", b"x")
    with pytest.raises(PassphraseError):
        issue_identity(tmp_path / "i", pki.ca, "I", Role.DEVICE, ID_PW, b"not the CA passphrase")


def test_signed_file_keeps_every_original_element(pki: Pki, dicom_files: dict[str, Path], tmp_path: Path) -> None:
    from radproof.provenance import sign_file

    out = sign_file(dicom_files["implicit"], tmp_path / "o.dcm", load_identity(pki.tech, ID_PW))
    a, b = pydicom.dcmread(dicom_files["implicit"]), pydicom.dcmread(out)
    assert b.file_meta.TransferSyntaxUID == pydicom.uid.ImplicitVRLittleEndian
    for elem in a:
        assert b[elem.tag].value == elem.value


def test_every_wrong_passphrase_is_reported_as_one(pki: Pki) -> None:
    # About one wrong passphrase in 200 decrypts to garbage with valid padding; it must still be
    # reported as a passphrase problem, not as a broken key file (3000 tries: ~15 such cases).
    for k in range(3000):
        with pytest.raises(PassphraseError):
            load_identity(pki.tech, b"wrong-%d" % k)
