"""Verify every DICOM digital signature of a dataset or file, and say in plain words what holds."""

from __future__ import annotations

import datetime as dt
import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset

from radproof.errors import InputError, RadproofError
from radproof.provenance import dicom_signature as stream
from radproof.provenance.codes import MIN_RSA_BITS, MacAlgorithm, der_without_padding, purpose_name
from radproof.provenance.identity import certificate_role, subject_name
from radproof.provenance.trust import TrustStore

# DigestInfo prefixes (PKCS#1 v1.5) by MAC algorithm.
_DIGEST_INFO = {
    MacAlgorithm.SHA256: bytes.fromhex("3031300d060960864801650304020105000420"),
    MacAlgorithm.SHA384: bytes.fromhex("3041300d060960864801650304020205000430"),
    MacAlgorithm.SHA512: bytes.fromhex("3051300d060960864801650304020305000440"),
    MacAlgorithm.SHA1: bytes.fromhex("3021300906052b0e03021a05000414"),
    MacAlgorithm.MD5: bytes.fromhex("3020300c06082a864886f70d020505000410"),
    MacAlgorithm.RIPEMD160: bytes.fromhex("3021300906052b2403020105000414"),
}
_EC_HASHES: dict[MacAlgorithm, type[hashes.HashAlgorithm]] = {
    MacAlgorithm.SHA256: hashes.SHA256,
    MacAlgorithm.SHA384: hashes.SHA384,
    MacAlgorithm.SHA512: hashes.SHA512,
    MacAlgorithm.SHA1: hashes.SHA1,
    MacAlgorithm.MD5: hashes.MD5,
}
# MAC transfer syntaxes whose stream is Explicit VR Little Endian (what this module produces).
_IMPLICIT_OR_BIG = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.2"}


@dataclass(frozen=True)
class SignatureReport:
    """One signature: who, why, when, and whether it holds. ``to_dict`` gives the JSON contract fields."""

    signer: str | None
    role: str | None
    purpose: str | None
    datetime: str | None
    timestamp: str | None
    valid: bool
    trusted: bool
    reason: str | None
    uid: str | None = None
    algorithm: str | None = None
    elements_signed: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Valid and trusted."""
        return self.valid and self.trusted

    def to_dict(self) -> dict[str, Any]:
        """``signer``, ``role``, ``purpose``, ``datetime``, ``timestamp``, ``valid``, ``reason``, ``trusted``."""
        return {
            "signer": self.signer,
            "role": self.role,
            "purpose": self.purpose,
            "datetime": self.datetime,
            "timestamp": self.timestamp,
            "valid": self.valid,
            "reason": self.reason,
            "trusted": self.trusted,
        }


@dataclass(frozen=True)
class VerificationResult:
    """All signatures of one file. ``status`` is ``valid``, ``invalid`` or ``unsigned``."""

    path: str | None
    status: str
    signatures: tuple[SignatureReport, ...] = ()
    unsigned_elements: tuple[str, ...] = ()
    error: str | None = None

    @property
    def passed(self) -> bool:
        """Every signature valid and trusted, and at least one signature."""
        return self.status == "valid"

    def to_dict(self) -> dict[str, Any]:
        """The verify JSON contract: ``path``, ``status``, ``signatures``, ``unsigned_elements``."""
        return {
            "path": self.path,
            "status": self.status,
            "signatures": [s.to_dict() for s in self.signatures],
            "unsigned_elements": list(self.unsigned_elements),
        }


def verify_file(path: str | Path, trust: TrustStore | None, *, now: dt.datetime | None = None) -> VerificationResult:
    """Verify the signatures of a DICOM file (see :func:`verify_dataset`).

    Raises
    ------
    InputError
        The file cannot be read or is not DICOM.
    """
    from radproof.provenance.signer import open_for_verification

    # The pixel data stays in the file and is hashed from it in chunks (never copied whole into memory).
    with open_for_verification(Path(path), str(path)) as (ds, values), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's value warnings; problems are reported as reasons
        try:
            result = _verify(ds, trust, now, values)
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
    return VerificationResult(str(path), result.status, result.signatures, result.unsigned_elements)


def verify_dataset(
    ds: Dataset, trust: TrustStore | None = None, *, now: dt.datetime | None = None
) -> VerificationResult:
    """Check every top-level signature of ``ds`` and the trust in each signer.

    A signature is *valid* when the signed elements hash to what the signer's key signed, and *trusted*
    when the signer's certificate chains to ``trust`` and is unexpired and unrevoked at the certified
    timestamp's time (or now, without a timestamp). Elements present but covered by no signature are
    listed in ``unsigned_elements`` (added after signing; not tampering in themselves).
    """
    return _verify(ds, trust, now, None)


def _verify(
    ds: Dataset, trust: TrustStore | None, now: dt.datetime | None, values: stream.FileValues | None
) -> VerificationResult:
    try:
        return _verify_all(ds, trust, now, values)
    except RadproofError:
        raise
    except Exception as exc:  # pydicom parses lazily: a corrupt element surfaces here, not on read
        raise InputError(f"corrupt DICOM file: {type(exc).__name__}: {str(exc)[:200]}") from None


def _verify_all(
    ds: Dataset, trust: TrustStore | None, now: dt.datetime | None, values: stream.FileValues | None
) -> VerificationResult:
    when = now or dt.datetime.now(dt.UTC)
    items = _sequence_items(ds, stream.DIGITAL_SIGNATURES_SEQUENCE)
    if not items:
        return VerificationResult(None, "unsigned")
    params = _sequence_items(ds, stream.MAC_PARAMETERS_SEQUENCE)
    reports: list[SignatureReport] = []
    covered: set[int] = set()
    for item in items:
        report, tags = _verify_one(ds, item, params, trust, when, values)
        reports.append(report)
        covered.update(tags)
    unsigned = tuple(_describe(t) for t in stream.eligible_tags(ds) if t not in covered)
    status = "valid" if all(r.ok for r in reports) else "invalid"
    return VerificationResult(None, status, tuple(reports), unsigned)


# --- one signature ---------------------------------------------------------------------------------------


@dataclass
class _Facts:
    signer: str | None = None
    role: str | None = None
    purpose: str | None = None
    datetime: str | None = None
    timestamp: str | None = None
    uid: str | None = None
    algorithm: str | None = None
    elements: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)

    def report(self, valid: bool, trusted: bool, reason: str | None) -> SignatureReport:
        if reason is None and self.warnings:
            reason = "warning: " + "; ".join(self.warnings)
        return SignatureReport(
            signer=self.signer,
            role=self.role,
            purpose=self.purpose,
            datetime=self.datetime,
            timestamp=self.timestamp,
            valid=valid,
            trusted=trusted,
            reason=reason,
            uid=self.uid,
            algorithm=self.algorithm,
            elements_signed=self.elements,
            warnings=tuple(self.warnings),
        )


def _verify_one(
    ds: Dataset,
    item: Dataset,
    params: Sequence[Dataset],
    trust: TrustStore | None,
    now: dt.datetime,
    values: stream.FileValues | None,
) -> tuple[SignatureReport, list[int]]:
    facts = _Facts()
    try:
        return _verify_checked(ds, item, params, trust, now, facts, values)
    except Exception as exc:  # a malformed item must give a reason, never a crash
        return facts.report(False, False, f"the signature item is malformed ({_short(exc)})"), []


def _verify_checked(
    ds: Dataset,
    item: Dataset,
    params: Sequence[Dataset],
    trust: TrustStore | None,
    now: dt.datetime,
    facts: _Facts,
    values: stream.FileValues | None,
) -> tuple[SignatureReport, list[int]]:
    facts.uid = _text(item, "DigitalSignatureUID")
    facts.datetime = _iso_datetime(_text(item, "DigitalSignatureDateTime"))
    facts.purpose = _purpose(item)
    mac_id = item.get("MACIDNumber")
    if mac_id is None:
        return facts.report(False, False, "the signature has no MAC ID Number"), []
    cert_bytes = item.get("CertificateOfSigner")
    if not isinstance(cert_bytes, bytes) or not cert_bytes:
        return facts.report(False, False, "the signature carries no signer certificate"), []
    cert_type = _text(item, "CertificateType")
    if cert_type not in (None, "X509_1993_SIG"):
        return facts.report(False, False, f"certificate type {cert_type} is not supported"), []
    try:
        cert = x509.load_der_x509_certificate(der_without_padding(cert_bytes))
    except ValueError:
        return facts.report(False, False, "the signer certificate is not a readable X.509 certificate"), []
    facts.signer = subject_name(cert)
    role = certificate_role(cert)
    facts.role = role.value if role else None

    param = next((p for p in params if p.get("MACIDNumber") == mac_id), None)
    if param is None:
        return facts.report(False, False, f"no MAC Parameters item has MAC ID {mac_id}"), []
    tags = _tag_list(param.get("DataElementsSigned"))
    facts.elements = tuple(_describe(t) for t in tags)
    try:
        algorithm = MacAlgorithm(_text(param, "MACAlgorithm") or "")
    except ValueError:
        name = _text(param, "MACAlgorithm")
        return facts.report(False, False, f"MAC algorithm {name!r} is not one DICOM defines"), tags
    facts.algorithm = algorithm.value
    if not algorithm.strong:
        facts.warnings.append(f"signed with the weak hash {algorithm.value}; re-sign with SHA256")
    syntax = _text(param, "MACCalculationTransferSyntaxUID")
    if syntax in _IMPLICIT_OR_BIG:
        return facts.report(False, False, f"MAC transfer syntax {syntax} is not supported by radproof"), tags
    signature = item.get("Signature")
    if not isinstance(signature, bytes) or not signature:
        return facts.report(False, False, "the signature value is empty"), tags

    hasher = hashlib.new(algorithm.hashlib_name)
    try:
        for chunk in stream.mac_stream(ds, tags, item, values):
            hasher.update(chunk)
    except stream.MissingSignedElement as exc:
        return facts.report(False, False, f"signed element {_describe(exc.tag)} was removed after signing"), tags
    except stream.MalformedElement as exc:
        return facts.report(False, False, f"a signed element cannot be read: {exc}"), tags
    problem = _check_signature(cert, signature, hasher.digest(), algorithm, facts)
    if problem:
        return facts.report(False, False, problem), tags

    at, problem = _trusted_time(item, signature, trust, now, facts)
    if problem:
        return facts.report(True, False, problem), tags
    if trust is None:
        return facts.report(True, False, "no trust anchor was given (--trust CA.pem), so the signer is unknown"), tags
    decision = trust.evaluate(cert, at)
    facts.warnings.extend(decision.warnings)
    if not decision.trusted:
        when = "at the certified timestamp" if facts.timestamp else "now (the file has no certified timestamp)"
        return facts.report(True, False, f"{decision.reason}; checked {when}"), tags
    return facts.report(True, True, None), tags


def _check_signature(
    cert: x509.Certificate, signature: bytes, digest: bytes, algorithm: MacAlgorithm, facts: _Facts
) -> str | None:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            facts.warnings.append(f"the signer key has only {key.key_size} bits")
        size = (key.key_size + 7) // 8
        value = signature[:size] if len(signature) == size + 1 and signature[-1] == 0 else signature
        if len(value) != size:
            return "the signature does not belong to the certificate in the file (wrong length)"
        info = _pkcs1_payload(key, value)
        if info is None:
            return (
                "the signature was not made with the key of the certificate in the file "
                "(certificate swapped, or signature corrupted)"
            )
        expected = _DIGEST_INFO[algorithm]
        if not info.startswith(expected):
            return "the signature names a different hash algorithm than the MAC parameters"
        if info[len(expected) :] != digest:
            return "the signed data changed after signing (pixel data or a signed element was altered)"
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        facts.warnings.append("ECDSA signature: outside the DICOM RSA signature profiles")
        hash_cls = _EC_HASHES.get(algorithm)
        if hash_cls is None:
            return f"ECDSA with {algorithm.value} is not supported"
        der = der_without_padding(signature)
        try:
            key.verify(der, digest, ec.ECDSA(Prehashed(hash_cls())))
        except InvalidSignature:
            return "the signed data changed after signing, or the certificate was swapped"
        return None
    return "the signer certificate holds a key type radproof cannot check"


def _pkcs1_payload(key: rsa.RSAPublicKey, value: bytes) -> bytes | None:
    """The DigestInfo inside a PKCS#1 v1.5 signature block (opened with the public key), or None.

    None when the block is not PKCS#1 v1.5 type 1 padding (00 01, at least eight FF, 00): the signature was
    not made with this key. OpenSSL does the modular exponentiation and the padding check.
    """
    try:
        return key.recover_data_from_signature(value, asym_padding.PKCS1v15(), None)
    except (InvalidSignature, ValueError):
        return None


def _trusted_time(
    item: Dataset, signature: bytes, trust: TrustStore | None, now: dt.datetime, facts: _Facts
) -> tuple[dt.datetime, str | None]:
    token = item.get("CertifiedTimestamp")
    if token is None:
        return now, None
    kind = _text(item, "CertifiedTimestampType")
    if kind not in (None, "CMS_TSP"):
        facts.warnings.append(f"certified timestamp of type {kind} ignored")
        return now, None
    from radproof.provenance.timestamp import check_timestamp  # ASN.1 machinery only for files that need it

    size = len(signature)
    check = check_timestamp(bytes(token), signature if size % 2 == 0 or signature[-1] != 0 else signature[:-1])
    if check.time is not None:
        facts.timestamp = check.time.astimezone(dt.UTC).isoformat()
    if check.problem:
        return now, check.problem
    facts.warnings.extend(check.warnings)
    assert check.time is not None and check.tsa_certificate is not None
    if trust is None:
        return check.time, None
    decision = trust.evaluate(check.tsa_certificate, check.time, extra=check.extra_certificates)
    if not decision.trusted:
        facts.warnings.append(f"timestamp ignored, its TSA is not trusted: {decision.reason}")
        facts.timestamp = None
        return now, None
    return check.time, None


# --- small readers ---------------------------------------------------------------------------------------


def _sequence_items(ds: Dataset, tag: int) -> list[Dataset]:
    if tag not in ds:
        return []
    value = ds[tag].value
    return list(value) if value else []


def _tag_list(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [int(value)]
    return [int(v) for v in value]


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    return str(value).strip()


def _purpose(item: Dataset) -> str | None:
    codes = item.get("DigitalSignaturePurposeCodeSequence")
    if not codes:
        return None
    value = codes[0].get("CodeValue")
    return purpose_name(str(value).strip()) if value is not None else None


def _iso_datetime(text: str | None) -> str | None:
    if not text:
        return None
    from pydicom.valuerep import DT

    try:
        value = DT(text)
    except ValueError:
        return text
    return value.isoformat()


@lru_cache(maxsize=8192)
def _describe(tag: int) -> str:
    """'Keyword (gggg,eeee)'; cached: the dictionary lookup is slow for private tags, and files share tags."""
    name = keyword_for_tag(tag)
    label = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    return f"{name} {label}" if name else label


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
