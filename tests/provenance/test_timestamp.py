"""Certified timestamps (RFC 3161) from a local TSA (`openssl ts` behind http.server)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pydicom
import pytest

from radproof.errors import InputError
from radproof.netio import post_timestamp_query
from radproof.provenance import Purpose, TimestampAuthority, TrustStore, load_identity, sign_file, verify_file
from radproof.provenance.timestamp import check_timestamp, request_timestamp

from .conftest import ID_PW, Pki, dcmsign_verify


def test_timestamped_signature_verifies_in_both_tools(
    pki: Pki, tsa_url: str, dicom_files: dict[str, Path], tmp_path: Path, dcmtk: str
) -> None:
    out = sign_file(
        dicom_files["explicit"],
        tmp_path / "ts.dcm",
        load_identity(pki.tech, ID_PW),
        Purpose.SOURCE,
        TimestampAuthority(tsa_url, post_timestamp_query),
    )
    item = pydicom.dcmread(out).DigitalSignaturesSequence[0]
    assert item.CertifiedTimestampType == "CMS_TSP"
    assert dcmsign_verify(out, pki.ca_pem, "--require-ts") == 0
    # The TSA is trusted in its own right (here its CA is named as a TSA anchor), not as a signer.
    (sig,) = verify_file(out, TrustStore.from_files(pki.ca_pem, tsa=pki.ca_pem)).signatures
    assert sig.valid and sig.trusted and sig.timestamp is not None and sig.trust_time_source == "timestamp"
    stamped = dt.datetime.fromisoformat(sig.timestamp)
    assert abs(stamped - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    # Without a TSA anchor the token is ignored: the signer is judged as of now, and the output says so.
    (plain,) = verify_file(out, TrustStore.from_files(pki.ca_pem)).signatures
    assert plain.ok and plain.timestamp is None and plain.trust_time_source == "now"
    assert any("no TSA trust anchor" in w for w in plain.warnings)


def test_trust_is_judged_at_timestamp_time(
    pki: Pki, tsa_url: str, dicom_files: dict[str, Path], tmp_path: Path
) -> None:
    """A signature timestamped before the check time: a later expiry does not matter, the timestamp time does."""
    out = sign_file(
        dicom_files["explicit"],
        tmp_path / "ts.dcm",
        load_identity(pki.tech, ID_PW),
        tsa=TimestampAuthority(tsa_url, post_timestamp_query),
    )
    trust = TrustStore.from_files(pki.ca_pem, tsa=pki.ca_pem)
    cert_end = trust.anchors[0].not_valid_after_utc
    # Checked years later (after the signer certificate expired): still trusted thanks to the timestamp...
    later = verify_file(out, trust, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=900))
    (sig,) = later.signatures
    assert sig.trusted, sig.reason
    # ...whereas the same check on an unstamped signature fails with an expiry reason.
    plain = sign_file(dicom_files["explicit"], tmp_path / "plain.dcm", load_identity(pki.tech, ID_PW))
    (plain_sig,) = verify_file(plain, trust, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=900)).signatures
    assert not plain_sig.trusted and "expired" in (plain_sig.reason or "")
    assert cert_end > dt.datetime.now(dt.UTC)


def test_timestamp_for_another_signature_is_rejected(pki: Pki, tsa_url: str) -> None:
    token = request_timestamp(tsa_url, b"\x01" * 256, post=post_timestamp_query)
    good = check_timestamp(token, b"\x01" * 256)
    assert good.problem is None and good.time is not None and good.tsa_certificate is not None
    bad = check_timestamp(token, b"\x02" * 256)
    assert bad.problem is not None and "different signature" in bad.problem
    assert check_timestamp(token[:-20], b"\x01" * 256).problem is not None
    assert check_timestamp(b"\x30\x03\x02\x01\x01", b"").problem is not None


def test_unreachable_tsa_is_a_clear_error(pki: Pki, dicom_files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot reach the TSA"):
        sign_file(
            dicom_files["explicit"],
            tmp_path / "x.dcm",
            load_identity(pki.tech, ID_PW),
            tsa=TimestampAuthority("http://127.0.0.1:9/none", post_timestamp_query),
        )
    assert not (tmp_path / "x.dcm").exists()
    with pytest.raises(InputError, match="http"):
        request_timestamp("ftp://example.invalid/", b"x", post=post_timestamp_query)


def test_the_exchange_is_passed_in_and_its_reply_is_checked_whatever_carried_it() -> None:
    """The signer opens no connection: the POST is a callable, and what it brings back is still verified."""
    seen: list[tuple[str, bytes]] = []

    def garbage(url: str, query: bytes) -> bytes:
        seen.append((url, query))
        return b"\x30\x03\x02\x01\x00"

    with pytest.raises(InputError, match="did not send an RFC 3161 reply"):
        request_timestamp("http://tsa.invalid/", b"\x01" * 256, post=garbage)
    ((url, query),) = seen
    assert url == "http://tsa.invalid/" and query[:1] == b"\x30"  # a DER TimeStampReq went out

    def down(url: str, query: bytes) -> bytes:
        raise ConnectionRefusedError("refused")

    with pytest.raises(InputError, match="cannot reach the TSA"):
        TimestampAuthority("http://tsa.invalid/", down)(b"\x01" * 256)
