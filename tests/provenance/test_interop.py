"""radproof and DCMTK dcmsign verify each other's signatures, and reject the same tampering."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pydicom
import pytest

from radproof.provenance import Purpose, TrustStore, load_identity, sign_file, verify_file
from radproof.provenance import dicom_signature as stream
from radproof.provenance.signer import read_for_signature

from .conftest import ID_PW, Pki, dcmsign, dcmsign_sign, dcmsign_verify

pytestmark = pytest.mark.usefixtures("dcmtk")

SHARED_SMALL = ["3fb0e688aa2d.dcm", "300a63ad255c.dcm", "473d84dc10c5.dcm"]  # no preamble, RLE SC, JPEG 2000


def _trust(pki: Pki, crl: bool = False) -> TrustStore:
    # Without crl the CA folder's own crl.pem is not read either: revocation is then unknown.
    return TrustStore.from_files(pki.ca_pem, crl=pki.crl if crl else None, default_crl=False)


def _sign(pki: Pki, src: Path, dst: Path, who: str = "tech", purpose: Purpose = Purpose.SOURCE) -> Path:
    return sign_file(src, dst, load_identity(getattr(pki, who), ID_PW), purpose)


@pytest.mark.parametrize("kind", ["explicit", "implicit", "multiframe"])
def test_hashed_stream_equals_dcmsign_dump(kind: str, pki: Pki, dicom_files: dict[str, Path], tmp_path: Path) -> None:
    out, dump = tmp_path / "out.dcm", tmp_path / "mac.bin"
    dcmsign_sign(dicom_files[kind], out, pki.tech, "--profile-creator", "+m2", "+sp", "14", "--dump", dump)
    ds = read_for_signature(out.read_bytes(), str(out))
    item = ds[stream.DIGITAL_SIGNATURES_SEQUENCE].value[0]
    params = ds[stream.MAC_PARAMETERS_SEQUENCE].value[0]
    tags = [int(t) for t in params.DataElementsSigned]
    assert tags == stream.eligible_tags(ds)
    ours = b"".join(bytes(c) for c in stream.mac_stream(ds, tags, item))
    assert ours == dump.read_bytes()


def test_hashed_stream_equals_dcmsign_dump_compressed(pki: Pki, shared_dicoms: list[Path], tmp_path: Path) -> None:
    src = next(p for p in shared_dicoms if p.name == "300a63ad255c.dcm")
    out, dump = tmp_path / "out.dcm", tmp_path / "mac.bin"
    dcmsign_sign(src, out, pki.tech, "+m2", "--dump", dump)
    ds = read_for_signature(out.read_bytes(), str(out))
    params = ds[stream.MAC_PARAMETERS_SEQUENCE].value[0]
    assert params.MACCalculationTransferSyntaxUID == ds.file_meta.TransferSyntaxUID  # RLE, kept
    tags = [int(t) for t in params.DataElementsSigned]
    ours = b"".join(bytes(c) for c in stream.mac_stream(ds, tags, ds[stream.DIGITAL_SIGNATURES_SEQUENCE].value[0]))
    assert hashlib.sha256(ours).digest() == hashlib.sha256(dump.read_bytes()).digest()


@pytest.mark.parametrize("kind", ["explicit", "implicit", "multiframe"])
def test_radproof_signature_verifies_in_dcmsign(
    kind: str, pki: Pki, dicom_files: dict[str, Path], tmp_path: Path
) -> None:
    src = dicom_files[kind]
    before = src.read_bytes()
    out = _sign(pki, src, tmp_path / "signed.dcm")
    assert src.read_bytes() == before  # input untouched
    assert dcmsign_verify(out, pki.ca_pem, "--require-sig", "--require-creator") == 0
    result = verify_file(out, _trust(pki))
    assert result.status == "valid"
    assert pydicom.dcmread(out).file_meta.TransferSyntaxUID == pydicom.dcmread(src).file_meta.TransferSyntaxUID


@pytest.mark.shared_data
@pytest.mark.parametrize("name", SHARED_SMALL)
def test_compressed_files_keep_pixels_and_verify_in_dcmsign(
    name: str, pki: Pki, shared_dicoms: list[Path], tmp_path: Path
) -> None:
    src = next(p for p in shared_dicoms if p.name == name)
    out = _sign(pki, src, tmp_path / "signed.dcm")
    a, b = read_for_signature(src.read_bytes(), str(src)), pydicom.dcmread(out)
    assert a.file_meta.TransferSyntaxUID == b.file_meta.TransferSyntaxUID
    assert a.PixelData == b.PixelData  # compressed fragments kept byte for byte
    assert dcmsign_verify(out, pki.ca_pem, "--require-creator") == 0
    assert verify_file(out, _trust(pki)).status == "valid"


@pytest.mark.parametrize("kind", ["explicit", "implicit"])
def test_dcmsign_signature_verifies_in_radproof(
    kind: str, pki: Pki, dicom_files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "signed.dcm"
    dcmsign_sign(dicom_files[kind], out, pki.tech, "--profile-creator", "+m2", "+sp", "14")
    result = verify_file(out, _trust(pki))
    assert result.status == "valid", result.to_dict()
    (sig,) = result.signatures
    assert (sig.signer, sig.role, sig.purpose, sig.trusted) == ("Alice Tech", "technologist", "source", True)
    assert sig.datetime is not None and sig.reason is None


@pytest.mark.shared_data
def test_dcmsign_signature_on_compressed_file_verifies_in_radproof(
    pki: Pki, shared_dicoms: list[Path], tmp_path: Path
) -> None:
    src = next(p for p in shared_dicoms if p.name == "473d84dc10c5.dcm")
    out = tmp_path / "signed.dcm"
    dcmsign_sign(src, out, pki.tech, "+m3")
    assert verify_file(out, _trust(pki)).status == "valid"


def test_technologist_then_radiologist_both_tools(pki: Pki, dicom_files: dict[str, Path], tmp_path: Path) -> None:
    first = _sign(pki, dicom_files["explicit"], tmp_path / "1.dcm", "tech", Purpose.SOURCE)
    second = _sign(pki, first, tmp_path / "2.dcm", "rad", Purpose.APPROVAL)
    third = tmp_path / "3.dcm"  # DCMTK adds a third signature on top of radproof's two
    dcmsign_sign(second, third, pki.tech, "+m2", "+sp", "1")
    assert dcmsign_verify(second, pki.ca_pem) == 0
    assert dcmsign_verify(third, pki.ca_pem) == 0
    result = verify_file(third, _trust(pki))
    assert result.status == "valid"
    assert [(s.role, s.purpose) for s in result.signatures] == [
        ("technologist", "source"),
        ("radiologist", "approval"),
        ("technologist", "author"),
    ]


# --- tampering: both tools reject, radproof says why ----------------------------------------------------


def _rewrite(path: Path, out: Path, change: str) -> Path:
    ds = pydicom.dcmread(path)
    if change == "pixel":
        data = bytearray(ds.PixelData)
        data[len(data) // 2] ^= 0x01
        ds.PixelData = bytes(data)
    elif change == "name":
        ds.PatientName = "Mallory^Eve"
    elif change == "remove":
        del ds.StudyDescription
    elif change == "add":
        ds.InstitutionalDepartmentName = "Radiology annex"
    ds.save_as(out)
    return out


@pytest.mark.parametrize(
    ("change", "reason"),
    [("pixel", "changed after signing"), ("name", "changed after signing"), ("remove", "removed after signing")],
)
@pytest.mark.parametrize("signer", ["radproof", "dcmsign"])
def test_tampering_rejected_by_both(
    change: str, reason: str, signer: str, pki: Pki, dicom_files: dict[str, Path], tmp_path: Path
) -> None:
    signed = tmp_path / "signed.dcm"
    if signer == "radproof":
        _sign(pki, dicom_files["explicit"], signed)
    else:
        dcmsign_sign(dicom_files["explicit"], signed, pki.tech, "+m2")
    bad = _rewrite(signed, tmp_path / "bad.dcm", change)
    assert dcmsign_verify(bad, pki.ca_pem) == 101
    result = verify_file(bad, _trust(pki))
    assert result.status == "invalid"
    assert not result.signatures[0].valid
    assert reason in (result.signatures[0].reason or "")


def test_added_element_is_unsigned_not_tampering(pki: Pki, dicom_files: dict[str, Path], tmp_path: Path) -> None:
    signed = _sign(pki, dicom_files["explicit"], tmp_path / "signed.dcm")
    later = _rewrite(signed, tmp_path / "later.dcm", "add")
    result = verify_file(later, _trust(pki))
    assert result.status == "valid"
    assert result.unsigned_elements == (0x00081040,)
    assert result.to_dict()["unsigned_elements"] == ["InstitutionalDepartmentName (0008,1040)"]
    assert dcmsign_verify(later, pki.ca_pem) == 0


def test_swapped_certificate_rejected_by_both(pki: Pki, dicom_files: dict[str, Path], tmp_path: Path) -> None:
    signed = _sign(pki, dicom_files["explicit"], tmp_path / "signed.dcm")
    ds = pydicom.dcmread(signed)
    other = (pki.rad / "cert.pem").read_bytes()
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = x509.load_pem_x509_certificate(other).public_bytes(serialization.Encoding.DER)
    ds.DigitalSignaturesSequence[0].CertificateOfSigner = der
    ds.save_as(tmp_path / "swapped.dcm")
    assert dcmsign_verify(tmp_path / "swapped.dcm", pki.ca_pem) == 101
    result = verify_file(tmp_path / "swapped.dcm", _trust(pki))
    assert result.status == "invalid"
    assert "not made with the key of the certificate" in (result.signatures[0].reason or "")


def test_revoked_signer_rejected_by_both(pki: Pki, dicom_files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "signed.dcm"
    dcmsign_sign(dicom_files["explicit"], out, pki.revoked, "+m2")
    assert dcmsign_verify(out, pki.ca_pem, "+cr", pki.crl) == 101
    result = verify_file(out, _trust(pki, crl=True))
    (sig,) = result.signatures
    assert result.status == "invalid" and sig.valid and not sig.trusted
    assert "revoked" in (sig.reason or "")
    (unknown,) = verify_file(out, _trust(pki)).signatures  # without the CRL the revocation is unknown
    assert unknown.ok and unknown.revocation == "unknown"


def test_expired_signer_rejected_by_both(pki: Pki, dicom_files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "signed.dcm"
    dcmsign_sign(dicom_files["explicit"], out, pki.expired, "+m2")
    assert dcmsign_verify(out, pki.ca_pem) == 101
    (sig,) = verify_file(out, _trust(pki)).signatures
    assert sig.valid and not sig.trusted and "expired" in (sig.reason or "")


def test_signer_from_another_ca_is_untrusted(pki: Pki, dicom_files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "signed.dcm"
    dcmsign_sign(dicom_files["explicit"], out, pki.rogue, "+m2")
    assert dcmsign_verify(out, pki.ca_pem) == 101
    (sig,) = verify_file(out, _trust(pki)).signatures
    assert sig.valid and not sig.trusted and "not in the trust store" in (sig.reason or "")


def test_old_weak_signature_verifies_with_warning(pki: Pki, dicom_files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "sha1.dcm"
    dcmsign_sign(dicom_files["explicit"], out, pki.tech, "+ms")
    result = verify_file(out, _trust(pki))
    (sig,) = result.signatures
    assert result.status == "valid" and sig.valid and sig.trusted
    assert "legacy hash SHA1" in (sig.reason or "") and sig.weaknesses
    ripemd = tmp_path / "ripemd.dcm"
    dcmsign_sign(dicom_files["explicit"], ripemd, pki.tech)  # dcmsign's default MAC is RIPEMD-160
    (ripemd_sig,) = verify_file(ripemd, _trust(pki)).signatures
    assert ripemd_sig.ok and "legacy hash RIPEMD160" in ripemd_sig.weaknesses[0]


def test_dcmsign_ecdsa_signature_verifies_with_warning(tmp_path: Path, pki: Pki, dicom_files: dict[str, Path]) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from radproof.provenance.identity import load_ca

    from .conftest import CA_PW

    ca_cert, ca_key = load_ca(pki.ca, CA_PW)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EC Device")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ident = tmp_path / "ec"
    ident.mkdir()
    (ident / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (ident / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(ID_PW),
        )
    )
    out = tmp_path / "ec.dcm"
    dcmsign_sign(dicom_files["explicit"], out, ident, "+m2")
    (sig,) = verify_file(out, _trust(pki)).signatures
    assert sig.valid and sig.trusted and "ECDSA" in (sig.reason or "")
    assert dcmsign("--verify", "+cf", pki.ca_pem, "--require-creator", out).returncode == 102
