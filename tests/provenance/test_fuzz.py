"""Malformed signatures must give a clear answer (invalid with a reason, or InputError), never a crash."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radproof.errors import InputError
from radproof.imaging.phantom import simulate
from radproof.provenance import TrustStore, load_identity, sign_dataset, verify_dataset, verify_file
from radproof.provenance.timestamp import check_timestamp

from .conftest import ID_PW, Pki

_BASE = simulate(rows=16, cols=16, seed=1)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def signed_bytes(pki: Pki) -> bytes:
    ds = simulate(rows=16, cols=16, seed=5)
    sign_dataset(ds, load_identity(pki.tech, ID_PW))
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _check(result_status: str, reasons: list[str | None]) -> None:
    assert result_status in {"valid", "invalid", "unsigned"}
    if result_status == "invalid":
        assert all(r for r in reasons) or reasons == []


@FUZZ
@given(
    cert=st.one_of(st.none(), st.binary(max_size=300)),
    signature=st.one_of(st.none(), st.binary(max_size=600)),
    algorithm=st.sampled_from(["SHA256", "SHA1", "MD5", "RIPEMD160", "bogus", ""]),
    tags=st.lists(st.integers(min_value=0, max_value=0xFFFFFFFF), max_size=6),
    mac_id=st.one_of(st.none(), st.integers(min_value=0, max_value=3)),
    syntax=st.sampled_from(["1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "9.9"]),
    timestamp=st.one_of(st.none(), st.binary(max_size=200)),
)
def test_malformed_signature_items(
    pki: Pki,
    cert: bytes | None,
    signature: bytes | None,
    algorithm: str,
    tags: list[int],
    mac_id: int | None,
    syntax: str,
    timestamp: bytes | None,
) -> None:
    ds = copy.deepcopy(_BASE)
    item = Dataset()
    if mac_id is not None:
        item.MACIDNumber = mac_id
    item.DigitalSignatureUID = "1.2.3"
    item.DigitalSignatureDateTime = "20260101"
    item.CertificateType = "X509_1993_SIG"
    if cert is not None:
        item.CertificateOfSigner = cert
    if signature is not None:
        item.Signature = signature
    if timestamp is not None:
        item.CertifiedTimestampType = "CMS_TSP"
        item.CertifiedTimestamp = timestamp
    params = Dataset()
    params.MACIDNumber = 0
    params.MACAlgorithm = algorithm
    params.MACCalculationTransferSyntaxUID = syntax
    params.DataElementsSigned = [pydicom.tag.Tag(t) for t in tags]
    ds.DigitalSignaturesSequence = Sequence([item])
    ds.MACParametersSequence = Sequence([params])
    result = verify_dataset(ds, TrustStore.from_files(pki.ca_pem))
    (sig,) = result.signatures
    assert result.status == "invalid" and not sig.valid and sig.reason


@FUZZ
@given(data=st.data())
def test_mutated_signed_files(
    pki: Pki, signed_bytes: bytes, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    blob = bytearray(signed_bytes)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        pos = data.draw(st.integers(min_value=132, max_value=len(blob) - 1))
        blob[pos] = data.draw(st.integers(min_value=0, max_value=255))
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(min_value=0, max_value=len(blob)))]
    path = Path(tmp_path_factory.mktemp("fuzz")) / "f.dcm"
    path.write_bytes(bytes(blob))
    try:
        result = verify_file(path, TrustStore.from_files(pki.ca_pem))
    except InputError as exc:
        assert str(exc)
        return
    for sig in result.signatures:
        assert sig.valid or sig.reason


@FUZZ
@given(token=st.binary(max_size=400))
def test_bogus_timestamp_tokens(token: bytes) -> None:
    check = check_timestamp(token, b"sig")
    assert check.problem
