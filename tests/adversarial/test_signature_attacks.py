"""Attacks on what ``authentic`` means: each one built with DCMTK, pydicom or radproof, judged by ``radproof check``.

`authentic` = one valid signature, from a signer trusted at the trust time, covers the pixel data and
every protected attribute (docs/threat-model.md). Every test below is one way to fall short of that,
tried as an attacker (or an archive) would, with the verdict it must get.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pydicom
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from pydicom.sequence import Sequence
from pydicom.uid import RLELossless

from radproof.cli import main
from radproof.provenance import Purpose, Role, issue_identity, load_identity, sign_dataset, sign_file
from radproof.provenance.identity import load_ca

from .conftest import (
    CA_PW,
    FAST,
    ID_PW,
    Checker,
    Lab,
    Responder,
    dcmsign,
    dcmsign_sign,
    make_timestamp_token,
    ocsp_identity,
)

pytestmark = pytest.mark.usefixtures("dcmtk")


def signed_by_tech(lab: Lab, original: Path, tmp_path: Path, name: str = "signed.dcm") -> Path:
    return sign_file(original, tmp_path / name, load_identity(lab.tech, ID_PW), Purpose.SOURCE)


def edit(path: Path, out: Path, change: object) -> Path:
    ds = pydicom.dcmread(path)
    change(ds)  # type: ignore[operator]
    ds.save_as(out)
    return out


# --- the baseline ----------------------------------------------------------------------------------------


def test_a_genuine_signed_image_is_authentic(lab: Lab, original: Path, tmp_path: Path, check_file: Checker) -> None:
    signed = signed_by_tech(lab, original, tmp_path)
    out = check_file(signed)
    assert out.verdict == "authentic" and out.code == 0, out.text
    assert "signature 1: Alice Tech" in out.text and "valid, trusted" in out.text
    # Under the PACS profile too, once the CA has published a CRL (revocation checked).
    pacs = check_file(signed, "--profile", "pacs")
    assert pacs.verdict == "authentic", pacs.text


# --- changing what a reader sees or whom the image belongs to ------------------------------------------------


def test_editing_a_signed_attribute_is_tampered(lab: Lab, original: Path, tmp_path: Path, check_file: Checker) -> None:
    signed = signed_by_tech(lab, original, tmp_path)
    forged = edit(signed, tmp_path / "renamed.dcm", lambda ds: setattr(ds, "PatientName", "Other^Patient"))
    out = check_file(forged)
    assert out.verdict == "tampered" and out.code == 1 and out.codes[0] == "signature-invalid"
    assert "changed after signing" in out.text


def test_removing_a_signed_attribute_is_tampered(lab: Lab, original: Path, tmp_path: Path, check_file: Checker) -> None:
    signed = signed_by_tech(lab, original, tmp_path)
    out = check_file(edit(signed, tmp_path / "cut.dcm", lambda ds: delattr(ds, "InstitutionName")))
    assert out.verdict == "tampered" and "InstitutionName (0008,0080) was removed" in out.text


@pytest.mark.parametrize(
    ("keyword", "value", "shown"),
    [
        ("VOILUTFunction", "SIGMOID", "VOILUTFunction (0028,1056)"),
        ("ImageLaterality", "L", "ImageLaterality (0020,0062)"),
        ("ShutterShape", "RECTANGULAR", "ShutterShape (0018,1600)"),
        ("EstimatedRadiographicMagnificationFactor", 1.5, "EstimatedRadiographicMagnificationFactor (0018,1114)"),
    ],
)
def test_adding_a_protected_attribute_after_signing_is_not_authentic(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker, keyword: str, value: object, shown: str
) -> None:
    signed = signed_by_tech(lab, original, tmp_path)
    ds = pydicom.dcmread(signed)
    assert keyword not in ds
    out = check_file(edit(signed, tmp_path / "added.dcm", lambda d: setattr(d, keyword, value)))
    assert out.verdict == "suspect" and "signature-partial" in out.codes, out.text
    assert shown in out.text  # listed in the words a person reads, not only in JSON


def test_an_overlay_added_after_signing_is_listed_and_not_authentic(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    signed = signed_by_tech(lab, original, tmp_path)

    def overlay(ds: pydicom.Dataset) -> None:
        ds.add_new(0x60000010, "US", ds.Rows)
        ds.add_new(0x60000011, "US", ds.Columns)
        ds.add_new(0x60000100, "US", 1)
        ds.add_new(0x60000102, "US", 0)
        ds.add_new(0x60000040, "CS", "G")
        ds.add_new(0x60000050, "SS", [1, 1])
        ds.add_new(0x60003000, "OW", b"\xff" * ((ds.Rows * ds.Columns + 15) // 16 * 2))

    out = check_file(edit(signed, tmp_path / "overlay.dcm", overlay))
    assert out.verdict == "suspect" and "OverlayData (6000,3000)" in out.text


def test_a_strangers_signature_over_an_added_overlay_adds_no_coverage(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    signed = signed_by_tech(lab, original, tmp_path)
    annotated = edit(signed, tmp_path / "annotated.dcm", lambda ds: setattr(ds, "VOILUTFunction", "SIGMOID"))
    countersigned = sign_file(annotated, tmp_path / "countersigned.dcm", load_identity(lab.rogue, ID_PW))
    out = check_file(countersigned)
    assert out.verdict == "suspect", out.text
    sig = out.record["signature"]
    assert isinstance(sig, dict)
    assert "VOILUTFunction (0028,1056)" in sig["unsigned_elements"]
    statuses = [(s["valid"], s["trusted"]) for s in sig["signatures"]]
    assert statuses == [(True, True), (True, False)]
    assert "signature 2: Alice Tech" in out.text and "NOT trusted" in out.text


def test_a_signature_over_the_pixels_alone_is_not_authentic(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    signed = dcmsign_sign(original, tmp_path / "pixels-only.dcm", lab.tech, "+m2", "-t", "7fe0,0010")
    out = check_file(signed)
    assert out.verdict == "suspect" and "signature-partial" in out.codes, out.text
    assert "PatientName (0010,0010)" in out.text and "PatientID (0010,0020)" in out.text


def test_a_private_element_added_later_is_listed_but_harmless(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    signed = signed_by_tech(lab, original, tmp_path)

    def private(ds: pydicom.Dataset) -> None:
        block = ds.private_block(0x0009, "ACME 1.0", create=True)
        block.add_new(0x01, "LO", "routing note")

    out = check_file(edit(signed, tmp_path / "private.dcm", private))
    assert out.verdict == "authentic", out.text
    assert "not covered by any trusted signature (2)" in out.text and "(0009,1001)" in out.text


# --- encodings: VR, UN, transfer syntax ---------------------------------------------------------------------


def test_changing_an_elements_vr_is_tampered(lab: Lab, original: Path, tmp_path: Path, check_file: Checker) -> None:
    signed = signed_by_tech(lab, original, tmp_path)
    data = signed.read_bytes()
    marker = b"\x10\x00\x10\x00PN"  # (0010,0010) PatientName, explicit VR PN
    assert data.count(marker) == 1
    forged = tmp_path / "vr.dcm"
    forged.write_bytes(data.replace(marker, b"\x10\x00\x10\x00LO"))
    out = check_file(forged)
    assert out.verdict == "tampered", out.text


def test_an_element_with_vr_un_cannot_hide_from_the_unsigned_list(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker, capsys: pytest.CaptureFixture[str]
) -> None:
    signed = signed_by_tech(lab, original, tmp_path)
    ds = pydicom.dcmread(signed)
    ds.add_new(0x00281056, "UN", b"SIGMOID ")  # VOI LUT Function, smuggled in as UN
    ds.save_as(tmp_path / "un.dcm")
    data = (tmp_path / "un.dcm").read_bytes()
    written = b"\x28\x00\x56\x10CS\x08\x00SIGMOID "  # pydicom writes the dictionary VR; an attacker need not
    assert data.count(written) == 1
    (tmp_path / "un.dcm").write_bytes(data.replace(written, b"\x28\x00\x56\x10UN\x00\x00\x08\x00\x00\x00SIGMOID "))
    out = check_file(tmp_path / "un.dcm")
    assert out.verdict == "suspect", out.text
    sig = out.record["signature"]
    assert isinstance(sig, dict)
    assert "VOILUTFunction (0028,1056)" in sig["unsigned_elements"]
    assert "VOILUTFunction (0028,1056)" in out.text
    # verify reads the file as written, and says the element could not have been signed at all.
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "un.dcm"), "--trust", str(lab.ca_pem), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["unsignable_elements"] == ["VOILUTFunction (0028,1056)"]
    assert "VOILUTFunction (0028,1056)" in record["unsigned_elements"]


def test_a_lossless_transcode_is_reported_as_re_encoding(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    signed = signed_by_tech(lab, original, tmp_path)
    ds = pydicom.dcmread(signed)
    ds.compress(RLELossless)  # the pixel values are bit for bit the same; the signed bytes are not
    ds.save_as(tmp_path / "rle.dcm")
    out = check_file(tmp_path / "rle.dcm")
    assert out.verdict == "tampered", out.text
    assert "re-encoded after signing" in out.text and "RLE Lossless" in out.text
    assert out.record["signature"]["signatures"][0]["integrity"] == "encoding-changed"  # type: ignore[index]


def test_a_transfer_syntax_that_lies_about_the_bytes_is_an_error(
    lab: Lab, original: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info

    signed = pydicom.dcmread(signed_by_tech(lab, original, tmp_path))
    fp = DicomBytesIO()
    fp.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(fp, signed.file_meta)  # says Explicit VR Little Endian
    fp.is_implicit_VR, fp.is_little_endian = True, True
    write_dataset(fp, signed)  # ... but the data set is written implicit VR
    lying = tmp_path / "lying.dcm"
    lying.write_bytes(fp.getvalue())
    for command in (["check", "--json"], ["verify"]):
        capsys.readouterr()
        assert main([command[0], str(lying), "--trust", str(lab.ca_pem), *command[1:]]) == 2
        said = capsys.readouterr()
        assert "does not match the encoded bytes" in said.out + said.err


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_second_copy_of_a_signed_element_is_an_error(
    lab: Lab, original: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """Two PatientName elements: one reader shows the signed one, another the forged one."""
    data = signed_by_tech(lab, original, tmp_path).read_bytes()
    at = data.index(b"\x10\x00\x10\x00PN")
    end = at + 8 + int.from_bytes(data[at + 6 : at + 8], "little")
    forged_name = b"\x10\x00\x10\x00PN" + (8).to_bytes(2, "little") + b"Evil^Dr "
    doubled = data[:at] + forged_name + data[at:] if where == "before" else data[:end] + forged_name + data[end:]
    path = tmp_path / "doubled.dcm"
    path.write_bytes(doubled)
    for command in (["check", "--json"], ["verify"], ["detect"]):
        capsys.readouterr()
        extra = [] if command[0] == "detect" else ["--trust", str(lab.ca_pem)]
        assert main([command[0], str(path), *extra, *command[1:]]) == 2, command
        said = capsys.readouterr()
        assert "(0010,0010) is repeated" in said.out + said.err


def test_an_unknown_vr_code_is_a_clear_error_or_listed(
    lab: Lab, original: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed = signed_by_tech(lab, original, tmp_path)
    ds = pydicom.dcmread(signed)
    ds.add_new(0x00091010, "LO", "x" * 4)  # a private element, rewritten below with the VR "ZZ"
    ds.add_new(0x00090010, "LO", "ACME")
    ds.save_as(tmp_path / "zz-src.dcm")
    data = (tmp_path / "zz-src.dcm").read_bytes()
    written = b"\x09\x00\x10\x10LO\x04\x00xxxx"
    assert data.count(written) == 1
    (tmp_path / "zz.dcm").write_bytes(data.replace(written, b"\x09\x00\x10\x10ZZ\x04\x00xxxx"))
    capsys.readouterr()
    code = main(["check", str(tmp_path / "zz.dcm"), "--trust", str(lab.ca_pem), "--json"])
    said = capsys.readouterr()
    assert "Traceback" not in said.out + said.err
    record = json.loads(said.out.splitlines()[-1])
    if code == 2:
        assert record["error"]
    else:
        assert record["verdict"] != "tampered" and "(0009,1010)" in " ".join(record["signature"]["unsigned_elements"])


def test_deeply_nested_sequences_and_many_signatures_cannot_exhaust_radproof(
    lab: Lab, original: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed = signed_by_tech(lab, original, tmp_path)
    ds = pydicom.dcmread(signed)
    item = ds.DigitalSignaturesSequence[0]
    ds.DigitalSignaturesSequence = Sequence([item] * 200)  # 200 copies of one signature over the pixels
    ds.save_as(tmp_path / "many.dcm")
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "many.dcm"), "--trust", str(lab.ca_pem)]) == 2
    assert "more than 64 signatures" in capsys.readouterr().err
    # 5000 sequences nested in one another, written by hand (pydicom's writer itself gives up).
    sq = b"\x40\x00\x30\xa7SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    end = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    data = signed.read_bytes()
    at = data.index(b"\x50\x20\x20\x00")  # (2050,0020): (0040,A730) goes just before it
    (tmp_path / "deep.dcm").write_bytes(data[:at] + sq * 5000 + end * 5000 + data[at:])
    for command in ("check", "verify"):
        capsys.readouterr()
        assert main([command, str(tmp_path / "deep.dcm"), "--trust", str(lab.ca_pem)]) == 2
        said = capsys.readouterr()
        assert "error:" in said.err and "Traceback" not in said.out + said.err


def test_a_signature_that_lists_the_pixel_data_twice_is_not_hashed_twice(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    signed = signed_by_tech(lab, original, tmp_path)
    ds = pydicom.dcmread(signed)
    params = ds.MACParametersSequence[0]
    params.DataElementsSigned = [*params.DataElementsSigned, 0x7FE00010, 0x7FE00010]
    ds.save_as(tmp_path / "twice.dcm")
    out = check_file(tmp_path / "twice.dcm")
    assert out.verdict == "suspect" and "signature-unverifiable" in out.codes and "ascending" in out.text


# --- signatures anyone can add --------------------------------------------------------------------------------


def _bogus_signature(path: Path, out: Path, cert_pem: Path) -> Path:
    """Append a signature item carrying ``cert_pem`` whose value was not made by its key."""
    ds = pydicom.dcmread(path)
    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    item = pydicom.Dataset()
    item.MACIDNumber = 9
    item.DigitalSignatureUID = pydicom.uid.generate_uid()
    item.DigitalSignatureDateTime = "20260101120000"
    item.CertificateType = "X509_1993_SIG"
    item.CertificateOfSigner = cert.public_bytes(serialization.Encoding.DER)
    item.Signature = os.urandom(256)
    params = pydicom.Dataset()
    params.MACIDNumber = 9
    params.MACCalculationTransferSyntaxUID = "1.2.840.10008.1.2.1"
    params.MACAlgorithm = "SHA256"
    params.DataElementsSigned = [0x00100010, 0x7FE00010]
    ds.DigitalSignaturesSequence = Sequence([*ds.get("DigitalSignaturesSequence", []), item])
    ds.MACParametersSequence = Sequence([*ds.get("MACParametersSequence", []), params])
    ds.save_as(out)
    return out


def test_a_bogus_signature_from_a_stranger_cannot_make_a_genuine_image_tampered(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    signed = signed_by_tech(lab, original, tmp_path)
    bogus = _bogus_signature(signed, tmp_path / "bogus.dcm", lab.rogue / "cert.pem")
    out = check_file(bogus)
    assert out.verdict == "suspect" and "untrusted-invalid-signature" in out.codes, out.text
    assert "signature 1: Alice Tech" in out.text and "signature 2: Alice Tech" in out.text
    # ... and on an unsigned image it is no proof of tampering either.
    alone = check_file(_bogus_signature(original, tmp_path / "bogus-alone.dcm", lab.rogue / "cert.pem"))
    assert alone.verdict == "suspect" and "untrusted-invalid-signature" in alone.codes


def test_a_bogus_signature_carrying_the_trusted_certificate_is_a_forgery_not_tampering(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    signed = signed_by_tech(lab, original, tmp_path)
    out = check_file(_bogus_signature(signed, tmp_path / "forged.dcm", lab.tech / "cert.pem"))
    assert out.verdict == "suspect" and "signature-forged" in out.codes, out.text


def test_a_strangers_valid_signature_is_never_authentic(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    signed = sign_file(original, tmp_path / "rogue.dcm", load_identity(lab.rogue, ID_PW))
    out = check_file(signed)
    assert out.verdict == "suspect" and "signature-untrusted" in out.codes


def test_item_level_signatures_are_reported_and_never_authenticate_the_image(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    signed = tmp_path / "item.dcm"
    out = dcmsign(
        "--sign-item",
        lab.tech / "key.pem",
        lab.tech / "cert.pem",
        "AnatomicRegionSequence[0]",
        "+pw",
        ID_PW.decode(),
        "+m2",
        original,
        signed,
    )
    assert out.returncode == 0, out.stderr
    result = check_file(signed)
    assert result.verdict == "suspect", result.text
    (sig,) = result.record["signature"]["signatures"]  # type: ignore[index]
    assert sig["location"] == "AnatomicRegionSequence[0]" and sig["valid"] and sig["trusted"]
    assert "signature 1 in AnatomicRegionSequence[0]" in result.text
    # The item edited afterwards: a trusted item-level signature that no longer holds is tampering.
    ds = pydicom.dcmread(signed)
    ds.AnatomicRegionSequence[0].CodeMeaning = "Abdomen"
    ds.save_as(tmp_path / "item-edited.dcm")
    assert check_file(tmp_path / "item-edited.dcm").verdict == "tampered"


# --- time -----------------------------------------------------------------------------------------------------


def _sign_with_token(
    src: Path, out: Path, ident: Path, signed_at: dt.datetime, stamped_at: dt.datetime, tsa: Path
) -> Path:
    """Sign ``src`` as of ``signed_at`` and attach a token, signed by ``tsa``'s key, saying ``stamped_at``."""
    ds = pydicom.dcmread(src)
    sign_dataset(ds, load_identity(ident, ID_PW), now=signed_at)
    item = ds.DigitalSignaturesSequence[-1]
    item.CertifiedTimestampType = "CMS_TSP"
    item.CertifiedTimestamp = make_timestamp_token(bytes(item.Signature), stamped_at, tsa)
    ds.save_as(out)
    return out


def _brief_identity(lab: Lab, tmp_path: Path) -> tuple[Path, dt.datetime]:
    """An identity whose certificate was valid for a few minutes that are now over, and a time inside them."""
    now = dt.datetime.now(dt.UTC)
    folder = tmp_path / "brief"
    issue_identity(
        folder,
        lab.ca,
        "Gina Brief",
        Role.TECHNOLOGIST,
        ID_PW,
        CA_PW,
        key_bits=2048,
        encryption=FAST,
        not_before=now - dt.timedelta(minutes=8),
        not_after=now - dt.timedelta(minutes=2),
    )
    return folder, now - dt.timedelta(minutes=5)


def test_a_timestamp_is_only_believed_from_a_tsa_trusted_in_its_own_right(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    brief, back_then = _brief_identity(lab, tmp_path)
    out = _sign_with_token(original, tmp_path / "old.dcm", brief, back_then, back_then, lab.tsa)
    # Without a TSA anchor the token is ignored: the certificate is judged today, and it has expired.
    today = check_file(out)
    assert today.verdict == "suspect" and "expired" in today.text, today.text
    # With the TSA's own CA as TSA anchor, the signing time is proven and the signature holds.
    proven = check_file(out, "--tsa-trust", str(lab.tsa_ca_pem))
    assert proven.verdict == "authentic", proven.text
    assert "checked at the trusted timestamp" in proven.text
    # The signers' CA is no TSA anchor for this TSA: naming it does not make the TSA trusted.
    assert check_file(out, "--tsa-trust", str(lab.ca_pem)).verdict == "suspect"


def test_a_signer_cannot_vouch_for_its_own_signing_time(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    brief, back_then = _brief_identity(lab, tmp_path)
    out = _sign_with_token(original, tmp_path / "self.dcm", brief, back_then, back_then, brief)
    # Even with the signers' CA named as a TSA anchor, the signer's own token proves nothing.
    result = check_file(out, "--tsa-trust", str(lab.ca_pem))
    assert result.verdict == "suspect" and "expired" in result.text, result.text
    assert "made by the signer itself" in result.text or "not marked for time stamping" in result.text


def test_future_signing_times_and_timestamps_are_refused(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    ds = pydicom.dcmread(original)
    sign_dataset(ds, load_identity(lab.tech, ID_PW), now=later)
    ds.save_as(tmp_path / "future.dcm")
    result = check_file(tmp_path / "future.dcm")
    assert result.verdict == "suspect" and "in the future" in result.text, result.text
    # Signed now, with a token from a trusted TSA that says the day after tomorrow.
    now = dt.datetime.now(dt.UTC)
    stamped = _sign_with_token(original, tmp_path / "future-ts.dcm", lab.tech, now, later, lab.tsa)
    result = check_file(stamped, "--tsa-trust", str(lab.tsa_ca_pem))
    assert result.verdict == "suspect" and "future" in result.text


def test_a_backdated_signature_by_a_revoked_signer_is_refused(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    ds = pydicom.dcmread(original)
    # Claimed a few minutes back: after the certificate's start, before its revocation.
    sign_dataset(ds, load_identity(lab.revoked, ID_PW), now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    ds.save_as(tmp_path / "backdated.dcm")
    result = check_file(tmp_path / "backdated.dcm")  # the CRL beside ca.pem is read without --crl
    assert result.verdict == "suspect" and "revoked" in result.text, result.text


# --- revocation -----------------------------------------------------------------------------------------------


def _stale_crl(lab: Lab, out: Path) -> Path:
    ca_cert, ca_key = load_ca(lab.ca, CA_PW)
    now = dt.datetime.now(dt.UTC)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - dt.timedelta(days=60))
        .next_update(now - dt.timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    out.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return out


def test_the_pacs_profile_fails_without_a_current_crl(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    signed = signed_by_tech(lab, original, tmp_path)
    lone_ca = tmp_path / "anchor" / "ca.pem"  # the CA certificate alone, no crl.pem beside it
    lone_ca.parent.mkdir()
    lone_ca.write_bytes(lab.ca_pem.read_bytes())
    missing = check_file(signed, "--profile", "pacs", trust=lone_ca)
    assert missing.verdict == "suspect" and missing.code == 1 and "revocation-unchecked" in missing.codes
    assert "no CRL" in missing.text
    stale = check_file(signed, "--profile", "pacs", "--crl", str(_stale_crl(lab, tmp_path / "old.crl")))
    assert stale.verdict == "suspect" and stale.code == 1 and "out of date" in stale.text
    # The default profile reports the missing CRL without failing on it.
    relaxed = check_file(signed, trust=lone_ca)
    assert relaxed.verdict == "authentic" and "no CRL" in relaxed.text


def test_ocsp_settles_revocation_where_the_certificate_names_a_responder(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker, responder: Responder
) -> None:
    ident, cert = ocsp_identity(lab, tmp_path / "online", responder.url)
    signed = dcmsign_sign(original, tmp_path / "online.dcm", ident, "+m2")
    lone_ca = tmp_path / "anchor" / "ca.pem"  # no CRL: only the responder can settle revocation
    lone_ca.parent.mkdir()
    lone_ca.write_bytes(lab.ca_pem.read_bytes())
    good = check_file(signed, "--profile", "pacs", trust=lone_ca)
    assert good.verdict == "authentic" and responder.calls, good.text
    responder.revoked[cert.serial_number] = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    revoked = check_file(signed, trust=lone_ca)
    assert revoked.verdict == "suspect" and "revoked" in revoked.text and "(OCSP)" in revoked.text
    # A forged answer (signed by a key the issuer never authorised) is no answer at all.
    responder.revoked.clear()
    responder.sign_with = lab.root / "rogue-ca"
    forged = check_file(signed, "--profile", "pacs", trust=lone_ca)
    assert forged.verdict == "suspect" and "revocation-unchecked" in forged.codes, forged.text
    assert "not signed by the issuer" in forged.text


def test_an_unreachable_responder_leaves_revocation_unknown(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    ident, _ = ocsp_identity(lab, tmp_path / "offline", "http://127.0.0.1:9/ocsp")  # the discard port
    signed = dcmsign_sign(original, tmp_path / "offline.dcm", ident, "+m2")
    lone_ca = tmp_path / "anchor" / "ca.pem"
    lone_ca.parent.mkdir()
    lone_ca.write_bytes(lab.ca_pem.read_bytes())
    result = check_file(signed, "--profile", "pacs", trust=lone_ca)
    assert result.verdict == "suspect" and "did not answer" in result.text, result.text


# --- certificates and algorithms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "why"),
    [("server_auth", "restricted to other uses"), ("no_key_usage", "does not allow signing")],
)
def test_certificates_not_meant_for_signing_are_refused(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker, who: str, why: str
) -> None:
    signed = dcmsign_sign(original, tmp_path / f"{who}.dcm", getattr(lab, who), "+m2")
    result = check_file(signed)
    assert result.verdict == "suspect" and why in result.text, result.text


def test_a_signer_certificate_is_no_trust_anchor(
    lab: Lab, original: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed = signed_by_tech(lab, original, tmp_path)
    assert main(["check", str(signed), "--trust", str(lab.tech / "cert.pem")]) == 2
    assert "is not a CA certificate" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "name"), [("+ms", "SHA1"), ("+mm", "MD5"), ("+mr", "RIPEMD160")])
def test_legacy_macs_are_never_authentic_by_default(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker, flag: str, name: str
) -> None:
    signed = dcmsign_sign(original, tmp_path / f"{name}.dcm", lab.tech, flag)
    result = check_file(signed)
    assert result.verdict == "suspect" and "signature-weak-algorithm" in result.codes, result.text
    legacy = check_file(signed, "--profile", "legacy")
    assert legacy.verdict == "authentic", legacy.text
    assert all("legacy" in r for r in legacy.record["reasons"] if "signature" in r)  # type: ignore[union-attr]


def test_a_dsa_signer_is_never_authentic_by_default(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    from .conftest import odd_certificate

    ident = odd_certificate(tmp_path / "dsa", lab.ca, "Dora DSA", use_dsa=True)
    signed = dcmsign_sign(original, tmp_path / "dsa.dcm", ident, "+m2")
    result = check_file(signed)
    assert result.verdict == "suspect" and "signature-weak-algorithm" in result.codes, result.text
    assert "DSA" in result.text


def test_a_signer_certificate_may_be_pinned_as_anchor_only_when_asked(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed = signed_by_tech(lab, original, tmp_path)
    monkeypatch.setenv("RADPROOF_TRUST__ALLOW_LEAF_ANCHORS", "true")
    pinned = check_file(signed, trust=lab.tech / "cert.pem")
    assert pinned.verdict == "authentic", pinned.text


def test_a_short_rsa_key_is_never_authentic_by_default(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker
) -> None:
    signed = dcmsign_sign(original, tmp_path / "short.dcm", lab.short_key, "+m2")
    result = check_file(signed)
    assert result.verdict == "suspect" and "1024" in result.text, result.text


def test_markup_and_control_characters_in_certificate_fields_are_shown_not_obeyed(
    lab: Lab, original: Path, tmp_path: Path, check_file: Checker, capsys: pytest.CaptureFixture[str]
) -> None:
    from .conftest import odd_certificate

    hostile = "[/][bold red]Dr. Trusted[/] \x1b[2J"
    ident = odd_certificate(tmp_path / "hostile", lab.root / "rogue-ca", hostile)
    signed = dcmsign_sign(original, tmp_path / "hostile.dcm", ident, "+m2")
    out = check_file(signed)
    assert out.verdict == "suspect" and "[/][bold red]Dr. Trusted[/]" in out.text and "\x1b" not in out.text
    capsys.readouterr()
    assert main(["verify", str(signed), "--trust", str(lab.ca_pem)]) == 1
    said = capsys.readouterr()
    assert "\x1b" not in said.out and "Traceback" not in said.out + said.err


def test_elements_no_signature_can_cover_are_still_listed(
    lab: Lab, original: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A group length or a low group element is not signable (PS3.15), so it is listed as unsigned."""
    signed = signed_by_tech(lab, original, tmp_path)
    data = signed.read_bytes()
    at = data.index(b"\x08\x00\x05\x00CS")  # the first data set element, (0008,0005)
    odd = b"\x06\x00\x10\x00LO\x04\x00ABCD" + b"\x08\x00\x00\x00UL\x04\x00\x00\x00\x00\x00"
    (tmp_path / "low.dcm").write_bytes(data[:at] + odd + data[at:])
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "low.dcm"), "--trust", str(lab.ca_pem), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert {"(0006,0010)", "(0008,0000)"} <= {e.split()[-1] for e in record["unsignable_elements"]}
    assert {"(0006,0010)", "(0008,0000)"} <= {e.split()[-1] for e in record["unsigned_elements"]}
