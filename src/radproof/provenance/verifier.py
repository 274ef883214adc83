"""Verify every DICOM digital signature of a dataset or file, and say in plain words what holds.

Each signature is judged on two separate questions, and reported with both answers:

* **integrity** (:class:`Integrity`): do the signed elements still hash to what the key signed? When not,
  was the signature at least made by the key of the certificate it carries (then the data changed after
  signing: tampering, if the signer is trusted), or not (a bogus or corrupted signature: a stranger's claim,
  proof of nothing)?
* **trust**: does the signer's certificate chain to a trust anchor, allow signing, and hold (unexpired,
  unrevoked) at the trust time? The trust time is the certified timestamp's time only when a TSA trusted
  in its own right vouches for it, else now.

What those answers mean for the image (which elements must be covered, which algorithms count) is the
business of :mod:`radproof.check`; this module reports facts, with the tags each signature covers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID

from radproof.dicom_encoding import encoding_problem
from radproof.errors import InputError, RadproofError
from radproof.provenance import dicom_signature as stream
from radproof.provenance.codes import MacAlgorithm, Role, der_without_padding, purpose_name
from radproof.provenance.identity import certificate_role, subject_name
from radproof.provenance.trust import Revocation, TrustStore, Usage

# DigestInfo prefixes (PKCS#1 v1.5) by MAC algorithm.
_DIGEST_INFO = {
    MacAlgorithm.SHA256: bytes.fromhex("3031300d060960864801650304020105000420"),
    MacAlgorithm.SHA384: bytes.fromhex("3041300d060960864801650304020205000430"),
    MacAlgorithm.SHA512: bytes.fromhex("3051300d060960864801650304020305000440"),
    MacAlgorithm.SHA1: bytes.fromhex("3021300906052b0e03021a05000414"),
    MacAlgorithm.MD5: bytes.fromhex("3020300c06082a864886f70d020505000410"),
    MacAlgorithm.RIPEMD160: bytes.fromhex("3021300906052b2403020105000414"),
}
_PREHASHES: dict[MacAlgorithm, type[hashes.HashAlgorithm]] = {
    MacAlgorithm.SHA256: hashes.SHA256,
    MacAlgorithm.SHA384: hashes.SHA384,
    MacAlgorithm.SHA512: hashes.SHA512,
    MacAlgorithm.SHA1: hashes.SHA1,
    MacAlgorithm.MD5: hashes.MD5,
}
# MAC transfer syntaxes whose stream is not Explicit VR Little Endian (not what DICOM's profiles produce).
_IMPLICIT_OR_BIG = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.2"}
#: How far in the future a signing time or a timestamp may lie before it is refused (clock skew).
CLOCK_SKEW = dt.timedelta(minutes=5)
#: Sequence nesting searched for item-level signatures.
_MAX_DEPTH = 8
#: Signatures checked on one object: each one hashes what it covers, so thousands of copies of a signature
#: over the pixel data would cost thousands of passes over them. Real objects carry one to a few.
MAX_SIGNATURES = 64


class Integrity(StrEnum):
    """What the cryptographic check of one signature found."""

    INTACT = "intact"  # the signed data hash to what the key signed
    DATA_CHANGED = "data-changed"  # made by the certificate's key; a signed element changed since
    ENCODING_CHANGED = "encoding-changed"  # made by the key; the pixel data was re-encoded (transcoded) since
    ELEMENT_REMOVED = "element-removed"  # a signed element is no longer in the object
    NOT_SIGNERS_KEY = "not-signers-key"  # not made with the key of the certificate it carries (bogus, corrupt)
    MISMATCH = "mismatch"  # does not verify, and the algorithm cannot tell a forgery from altered data (ECDSA)
    UNVERIFIABLE = "unverifiable"  # malformed, unsupported, or ambiguous: cannot be checked at all

    @property
    def proves_change(self) -> bool:
        """The signer's key made this signature over other data: the signed content was altered."""
        return self in (Integrity.DATA_CHANGED, Integrity.ENCODING_CHANGED, Integrity.ELEMENT_REMOVED)


class SignatureStatus(StrEnum):
    """The outcome for a whole file."""

    VALID = "valid"  # at least one signature, and every signature valid and trusted
    INVALID = "invalid"  # at least one signature fails
    UNSIGNED = "unsigned"  # no signature at all


class TrustTimeSource(StrEnum):
    """Where the time a signer's certificate was checked at comes from."""

    TIMESTAMP = "timestamp"  # a certified timestamp from a trusted TSA
    NOW = "now"  # no trusted timestamp: the certificate must hold today


@dataclass(frozen=True)
class SignatureReport:
    """One signature: who, why, when, whether it holds, and what it covers.

    ``to_dict`` gives the JSON contract fields and the details below them.
    """

    signer: str | None
    role: Role | None
    #: The CID 7007 purpose: ``source``, ``author``, ``approval``, another code's meaning, or ``code N``.
    purpose: str | None
    datetime: str | None
    timestamp: str | None
    valid: bool
    trusted: bool
    reason: str | None
    uid: str | None = None
    algorithm: str | None = None
    elements_signed: tuple[int, ...] = ()
    warnings: tuple[str, ...] = ()
    integrity: Integrity = Integrity.UNVERIFIABLE
    #: None for a top-level signature; else where its item is ("ReferencedImageSequence[0]").
    location: str | None = None
    trust_time: str | None = None
    trust_time_source: TrustTimeSource = TrustTimeSource.NOW
    revocation: Revocation | None = None
    #: Legacy cryptography in the signature or its chain (a policy decides whether it may count).
    weaknesses: tuple[str, ...] = ()
    #: Why the signer is not trusted (None when trusted).
    trust_reason: str | None = None

    def __post_init__(self) -> None:
        # Coded values given as text are checked and converted here, where a report is made.
        if self.role is not None:
            object.__setattr__(self, "role", Role(self.role))
        object.__setattr__(self, "integrity", Integrity(self.integrity))
        object.__setattr__(self, "trust_time_source", TrustTimeSource(self.trust_time_source))
        if self.revocation is not None:
            object.__setattr__(self, "revocation", Revocation(self.revocation))

    @property
    def ok(self) -> bool:
        """Valid and trusted."""
        return self.valid and self.trusted

    @property
    def top_level(self) -> bool:
        """A signature over top-level elements (not an item-level one inside a sequence)."""
        return self.location is None

    def to_dict(self) -> dict[str, Any]:
        """``signer``, ``role``, ``purpose``, ``datetime``, ``timestamp``, ``valid``, ``reason``, ``trusted``, ..."""
        return {
            "signer": self.signer,
            "role": None if self.role is None else self.role.value,
            "purpose": self.purpose,
            "datetime": self.datetime,
            "timestamp": self.timestamp,
            "valid": self.valid,
            "reason": self.reason,
            "trusted": self.trusted,
            "integrity": str(self.integrity),
            "location": self.location,
            "algorithm": self.algorithm,
            "trust_time": self.trust_time,
            "trust_time_source": str(self.trust_time_source),
            "revocation": None if self.revocation is None else str(self.revocation),
            "weaknesses": list(self.weaknesses),
            "trust_reason": self.trust_reason,
            "elements_signed": [describe_tag(t) for t in self.elements_signed],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class VerificationResult:
    """All signatures of one file. ``status`` (given as text, it is checked and converted): see
    :class:`SignatureStatus`.

    Attributes
    ----------
    unsigned_elements
        Top-level elements present that no valid, trusted top-level signature covers (tags).
    present_elements
        Every top-level element present, except the signature machinery itself (tags).
    unsignable_elements
        Present elements that no signature can cover (VR UN, group lengths, groups below 0008, trailing
        padding): they are in ``unsigned_elements`` too.
    """

    path: str | None
    status: SignatureStatus
    signatures: tuple[SignatureReport, ...] = ()
    unsigned_elements: tuple[int, ...] = ()
    present_elements: tuple[int, ...] = ()
    unsignable_elements: tuple[int, ...] = ()
    error: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", SignatureStatus(self.status))

    @property
    def passed(self) -> bool:
        """Every signature valid and trusted, and at least one signature."""
        return self.status is SignatureStatus.VALID

    def to_dict(self) -> dict[str, Any]:
        """The verify JSON contract: ``path``, ``status``, ``signatures``, ``unsigned_elements``."""
        return {
            "path": self.path,
            "status": self.status.value,
            "signatures": [s.to_dict() for s in self.signatures],
            "unsigned_elements": [describe_tag(t) for t in self.unsigned_elements],
            "unsignable_elements": [describe_tag(t) for t in self.unsignable_elements],
        }


def verify_file(path: str | Path, trust: TrustStore | None, *, now: dt.datetime | None = None) -> VerificationResult:
    """Verify the signatures of a DICOM file (see :func:`verify_dataset`).

    Raises
    ------
    InputError
        The file cannot be read, is not DICOM, or its transfer syntax does not match its encoding.
    """
    from radproof.provenance.signer import open_for_verification

    # The pixel data stays in the file and is hashed from it in chunks (never copied whole into memory).
    with open_for_verification(Path(path), str(path)) as (ds, values), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's value warnings; problems are reported as reasons
        try:
            result = _verify(ds, trust, now, values)
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
    return VerificationResult(
        str(path),
        result.status,
        result.signatures,
        result.unsigned_elements,
        result.present_elements,
        result.unsignable_elements,
    )


def verify_dataset(
    ds: Dataset, trust: TrustStore | None = None, *, now: dt.datetime | None = None
) -> VerificationResult:
    """Check every signature of ``ds`` (top level and inside sequence items) and the trust in each signer.

    A signature is *valid* when the signed elements hash to what the signer's key signed, and *trusted*
    when the signer's certificate allows signing and chains to ``trust``, unexpired and unrevoked at the
    trust time. Elements present but covered by no valid, trusted signature are listed in
    ``unsigned_elements``.

    Raises
    ------
    InputError
        The dataset cannot be decoded, or its transfer syntax does not match the encoding it was read in.
    """
    return _verify(ds, trust, now, None)


def _verify(
    ds: Dataset, trust: TrustStore | None, now: dt.datetime | None, values: stream.FileValues | None
) -> VerificationResult:
    problem = encoding_problem(ds)
    if problem:
        raise InputError(problem)
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
    reports: list[SignatureReport] = []
    covered: set[int] = set()
    found: list[tuple[Dataset, Dataset, str | None]] = [
        (ds, item, None) for item in _sequence_items(ds, stream.DIGITAL_SIGNATURES_SEQUENCE)
    ]
    for where, holder in _nested_signatures(ds, "", 0):
        found.extend((holder, item, where) for item in _sequence_items(holder, stream.DIGITAL_SIGNATURES_SEQUENCE))
        if len(found) > MAX_SIGNATURES:
            break
    if len(found) > MAX_SIGNATURES:
        raise InputError(f"the object holds more than {MAX_SIGNATURES} signatures; radproof checks at most that many")
    for holder, item, location in found:
        params = _sequence_items(holder, stream.MAC_PARAMETERS_SEQUENCE)
        report = _verify_one(holder, item, params, trust, when, values if location is None else None, location)
        reports.append(report)
        if report.ok and location is None:
            covered.update(report.elements_signed)
    # Everything but the signature machinery itself: nothing may escape both the signed set and this list.
    machinery = (stream.DIGITAL_SIGNATURES_SEQUENCE, stream.MAC_PARAMETERS_SEQUENCE)
    present = tuple(int(t) for t in sorted(ds.keys()) if int(t) not in machinery)
    unsignable = tuple(t for t in present if not stream.is_signable_tag(t) or _vr(ds, t) == "UN")
    unsigned = tuple(t for t in present if t not in covered)
    if not reports:
        return VerificationResult(None, SignatureStatus.UNSIGNED, (), unsigned, present, unsignable)
    status = SignatureStatus.VALID if all(r.ok for r in reports) else SignatureStatus.INVALID
    return VerificationResult(None, status, tuple(reports), unsigned, present, unsignable)


def _nested_signatures(ds: Dataset, where: str, depth: int) -> Iterator[tuple[str, Dataset]]:
    """Sequence items that hold a Digital Signatures Sequence of their own (PS3.15 item-level signatures)."""
    if depth >= _MAX_DEPTH:
        return
    for key in list(ds.keys()):
        tag = int(key)
        if tag in (stream.PIXEL_DATA, stream.DIGITAL_SIGNATURES_SEQUENCE, stream.MAC_PARAMETERS_SEQUENCE):
            continue
        if _vr(ds, tag) != "SQ":
            continue
        name = keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        for index, item in enumerate(ds[tag].value or ()):
            location = f"{where}{name}[{index}]"
            if stream.DIGITAL_SIGNATURES_SEQUENCE in item:
                yield location, item
            yield from _nested_signatures(item, location + ".", depth + 1)


def _vr(ds: Dataset, tag: int) -> str | None:
    """An element's VR without decoding its value (the file's VR, else the dictionary's)."""
    raw = ds.get_item(tag, keep_deferred=True)
    vr = raw.VR if isinstance(raw, RawDataElement) else getattr(raw, "VR", None)
    if vr is None:
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            return "UN"
    return str(vr)


# --- one signature ---------------------------------------------------------------------------------------


@dataclass
class _Facts:
    signer: str | None = None
    role: Role | None = None
    purpose: str | None = None
    datetime: str | None = None
    timestamp: str | None = None
    uid: str | None = None
    algorithm: str | None = None
    elements: tuple[int, ...] = ()
    warnings: list[str] = field(default_factory=list)
    weaknesses: list[str] = field(default_factory=list)
    location: str | None = None
    trust_time: dt.datetime | None = None
    source: TrustTimeSource = TrustTimeSource.NOW
    revocation: Revocation | None = None

    def report(
        self, integrity: Integrity, problem: str | None, trusted: bool = False, trust_reason: str | None = None
    ) -> SignatureReport:
        reason = problem or trust_reason
        if reason is None and (self.weaknesses or self.warnings):
            reason = "warning: " + "; ".join([*self.weaknesses, *self.warnings])
        return SignatureReport(
            signer=self.signer,
            role=self.role,
            purpose=self.purpose,
            datetime=self.datetime,
            timestamp=self.timestamp,
            valid=integrity is Integrity.INTACT,
            trusted=trusted,
            reason=reason,
            uid=self.uid,
            algorithm=self.algorithm,
            elements_signed=self.elements,
            warnings=tuple(self.warnings),
            integrity=integrity,
            location=self.location,
            trust_time=None if self.trust_time is None else self.trust_time.isoformat(),
            trust_time_source=self.source,
            revocation=self.revocation,
            weaknesses=tuple(dict.fromkeys(self.weaknesses)),
            trust_reason=trust_reason,
        )


def _verify_one(
    ds: Dataset,
    item: Dataset,
    params: Sequence[Dataset],
    trust: TrustStore | None,
    now: dt.datetime,
    values: stream.FileValues | None,
    location: str | None,
) -> SignatureReport:
    facts = _Facts(location=location)
    try:
        return _verify_checked(ds, item, params, trust, now, facts, values)
    except Exception as exc:  # a malformed item must give a reason, never a crash
        return facts.report(Integrity.UNVERIFIABLE, f"the signature item is malformed ({_short(exc)})")


def _verify_checked(
    ds: Dataset,
    item: Dataset,
    params: Sequence[Dataset],
    trust: TrustStore | None,
    now: dt.datetime,
    facts: _Facts,
    values: stream.FileValues | None,
) -> SignatureReport:
    unverifiable = Integrity.UNVERIFIABLE
    facts.uid = _text(item, "DigitalSignatureUID")
    facts.datetime = _iso_datetime(_text(item, "DigitalSignatureDateTime"))
    facts.purpose = _purpose(item)
    mac_id = item.get("MACIDNumber")
    if mac_id is None:
        return facts.report(unverifiable, "the signature has no MAC ID Number")
    cert = _signer_certificate(item)
    if isinstance(cert, str):
        return facts.report(unverifiable, cert)
    facts.signer = subject_name(cert)
    role = certificate_role(cert)
    facts.role = role

    # Trust is judged whatever the integrity: an altered signature is tampering only if its signer is trusted.
    trusted, trust_reason = _signer_trust(cert, item, trust, now, facts)

    mac = _mac_parameters(params, mac_id, facts)
    if isinstance(mac, str):
        return facts.report(unverifiable, mac, trusted, trust_reason)
    algorithm, syntax = mac
    signature = item.get("Signature")
    if not isinstance(signature, bytes) or not signature:
        return facts.report(unverifiable, "the signature value is empty", trusted, trust_reason)

    hasher = hashlib.new(algorithm.hashlib_name)
    removed: int | None = None
    try:
        for chunk in stream.mac_stream(ds, facts.elements, item, values):
            hasher.update(chunk)
    except stream.MissingSignedElement as exc:
        removed = exc.tag
    except stream.MalformedElement as exc:
        return facts.report(unverifiable, f"a signed element cannot be read: {exc}", trusted, trust_reason)
    integrity, problem = _check_signature(cert, signature, hasher.digest(), algorithm, facts)
    if integrity is Integrity.DATA_CHANGED or (removed is not None and integrity is Integrity.MISMATCH):
        integrity, problem = _what_changed(ds, facts.elements, integrity, syntax, removed)
    return facts.report(integrity, problem, trusted, trust_reason)


def _signer_certificate(item: Dataset) -> x509.Certificate | str:
    """The signer certificate a signature item carries, or why it cannot be used."""
    cert_bytes = item.get("CertificateOfSigner")
    if not isinstance(cert_bytes, bytes) or not cert_bytes:
        return "the signature carries no signer certificate"
    cert_type = _text(item, "CertificateType")
    if cert_type not in (None, "X509_1993_SIG"):
        return f"certificate type {cert_type} is not supported"
    try:
        return x509.load_der_x509_certificate(der_without_padding(cert_bytes))
    except ValueError:
        return "the signer certificate is not a readable X.509 certificate"


def _mac_parameters(params: Sequence[Dataset], mac_id: object, facts: _Facts) -> tuple[MacAlgorithm, str | None] | str:
    """The algorithm and transfer syntax of the one MAC Parameters item for ``mac_id`` (the signed
    elements and any weakness go into ``facts``), or why the signature cannot be checked."""
    matching = [p for p in params if p.get("MACIDNumber") == mac_id]
    if not matching:
        return f"no MAC Parameters item has MAC ID {mac_id}"
    if len(matching) > 1:
        return f"{len(matching)} MAC Parameters items claim MAC ID {mac_id}"
    param = matching[0]
    facts.elements = tuple(_tag_list(param.get("DataElementsSigned")))
    if any(b <= a for a, b in zip(facts.elements, facts.elements[1:], strict=False)):
        # PS3.15 lists them ascending, each once; a repeat would be hashed again (and again).
        return "Data Elements Signed is not in ascending order, or repeats a tag"
    try:
        algorithm = MacAlgorithm(_text(param, "MACAlgorithm") or "")
    except ValueError:
        return f"MAC algorithm {_text(param, 'MACAlgorithm')!r} is not one DICOM defines"
    facts.algorithm = algorithm.value
    if not algorithm.strong:
        facts.weaknesses.append(f"signed with the legacy hash {algorithm.value}")
    syntax = _text(param, "MACCalculationTransferSyntaxUID")
    if syntax in _IMPLICIT_OR_BIG:
        return f"MAC transfer syntax {syntax} is not supported by radproof"
    return algorithm, syntax


def _what_changed(
    ds: Dataset, signed: Sequence[int], integrity: Integrity, syntax: str | None, removed: int | None
) -> tuple[Integrity, str]:
    """The accurate reason for a signature its key made over other data."""
    if removed is not None:
        if integrity is Integrity.MISMATCH:
            return Integrity.MISMATCH, f"signed element {describe_tag(removed)} is missing"
        return Integrity.ELEMENT_REMOVED, f"signed element {describe_tag(removed)} was removed after signing"
    now_syntax = stream.stream_transfer_syntax(ds)
    if syntax and syntax != now_syntax and stream.PIXEL_DATA in signed:
        return (
            Integrity.ENCODING_CHANGED,
            f"the pixel data was re-encoded after signing (signed as {_syntax_name(syntax)}, now "
            f"{_syntax_name(now_syntax)}); a transcode, lossless or not, is outside what the signer signed",
        )
    return Integrity.DATA_CHANGED, "the signed data changed after signing (pixel data or a signed element was altered)"


def _check_signature(
    cert: x509.Certificate, signature: bytes, digest: bytes, algorithm: MacAlgorithm, facts: _Facts
) -> tuple[Integrity, str | None]:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        size = (key.key_size + 7) // 8
        value = signature[:size] if len(signature) == size + 1 and signature[-1] == 0 else signature
        if len(value) != size:
            return (
                Integrity.NOT_SIGNERS_KEY,
                "the signature does not belong to the certificate in the file (wrong length)",
            )
        info = _pkcs1_payload(key, value)
        if info is None:
            return (
                Integrity.NOT_SIGNERS_KEY,
                "the signature was not made with the key of the certificate in the file "
                "(a bogus or corrupted signature, or a swapped certificate)",
            )
        expected = _DIGEST_INFO[algorithm]
        if not info.startswith(expected):
            return (
                Integrity.UNVERIFIABLE,
                "the signature holds a digest of another algorithm than the MAC parameters name",
            )
        if info[len(expected) :] != digest:
            return Integrity.DATA_CHANGED, None
        return Integrity.INTACT, None
    if isinstance(key, ec.EllipticCurvePublicKey | dsa.DSAPublicKey):
        kind = "ECDSA" if isinstance(key, ec.EllipticCurvePublicKey) else "DSA"
        facts.warnings.append(f"{kind} signature: outside the DICOM RSA signature profiles")
        hash_cls = _PREHASHES.get(algorithm)
        if hash_cls is None:
            return Integrity.UNVERIFIABLE, f"{kind} with {algorithm.value} is not supported"
        der = der_without_padding(signature)
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(der, digest, ec.ECDSA(Prehashed(hash_cls())))
            else:
                key.verify(der, digest, Prehashed(hash_cls()))
        except InvalidSignature:
            return (
                Integrity.MISMATCH,
                f"the signature does not verify; with {kind} a bogus signature cannot be told from altered data",
            )
        return Integrity.INTACT, None
    return Integrity.UNVERIFIABLE, "the signer certificate holds a key type radproof cannot check"


def _pkcs1_payload(key: rsa.RSAPublicKey, value: bytes) -> bytes | None:
    """The DigestInfo inside a PKCS#1 v1.5 signature block (opened with the public key), or None.

    None when the block is not PKCS#1 v1.5 type 1 padding (00 01, at least eight FF, 00): the signature was
    not made with this key. OpenSSL does the modular exponentiation and the padding check.
    """
    try:
        return key.recover_data_from_signature(value, asym_padding.PKCS1v15(), None)
    except (InvalidSignature, ValueError):
        return None


# --- trust -----------------------------------------------------------------------------------------------


def _signer_trust(
    cert: x509.Certificate, item: Dataset, trust: TrustStore | None, now: dt.datetime, facts: _Facts
) -> tuple[bool, str | None]:
    """Whether the signer is trusted at the trust time, and why not."""
    claimed = _parse_datetime(_text(item, "DigitalSignatureDateTime"))
    if claimed is not None and claimed > now + CLOCK_SKEW:
        facts.trust_time = now
        return False, f"the signature claims to be made in the future ({claimed:%Y-%m-%d %H:%M:%S} UTC)"
    at, problem = _trust_time(item, cert, trust, now, facts)
    facts.trust_time, facts.source = at, (TrustTimeSource.NOW if at is now else TrustTimeSource.TIMESTAMP)
    if problem:
        return False, problem
    if trust is None:
        return False, "no trust anchor was given (--trust CA.pem), so the signer is unknown"
    decision = trust.evaluate(cert, at, now=now)
    facts.warnings.extend(decision.warnings)
    facts.weaknesses.extend(decision.weaknesses)
    facts.revocation = decision.revocation
    if not decision.trusted:
        when = (
            "at the certified timestamp" if facts.source is TrustTimeSource.TIMESTAMP else "now (no trusted timestamp)"
        )
        return False, f"{decision.reason}; checked {when}"
    return True, None


def _trust_time(
    item: Dataset, signer: x509.Certificate, trust: TrustStore | None, now: dt.datetime, facts: _Facts
) -> tuple[dt.datetime, str | None]:
    """The time to judge the signer's certificate at: a trusted TSA's, else now; and a refusal, if any.

    A timestamp can only extend trust into the past. One that does not hold up, or whose TSA is not trusted
    in its own right, is ignored (with a warning): the Certified Timestamp is outside the signed stream, so
    anyone can damage or replace it, and that must not change the verdict.
    """
    token = item.get("CertifiedTimestamp")
    signature = item.get("Signature")
    if token is None or not isinstance(signature, bytes):
        return now, None
    kind = _text(item, "CertifiedTimestampType")
    if kind not in (None, "CMS_TSP"):
        facts.warnings.append(f"certified timestamp of type {kind} ignored")
        return now, None
    from radproof.provenance.timestamp import check_timestamp  # ASN.1 machinery only for files that need it

    size = len(signature)
    check = check_timestamp(bytes(token), signature if size % 2 == 0 or signature[-1] != 0 else signature[:-1])
    if check.problem or check.time is None or check.tsa_certificate is None:
        facts.warnings.append(f"certified timestamp ignored: {check.problem or 'it names no time'}")
        return now, None
    facts.warnings.extend(check.warnings)
    stamped = check.time.astimezone(dt.UTC)
    if check.tsa_certificate == signer or check.tsa_certificate.public_key() == signer.public_key():
        facts.warnings.append("certified timestamp ignored: it was made by the signer itself, not by a TSA")
        return now, None
    if trust is None:
        facts.warnings.append("certified timestamp ignored: no TSA trust anchor was given (--tsa-trust)")
        return now, None
    decision = trust.evaluate(check.tsa_certificate, stamped, extra=check.extra_certificates, usage=Usage.TIMESTAMPING)
    if not decision.trusted:
        facts.warnings.append(f"certified timestamp ignored, its TSA is not trusted: {decision.reason}")
        return now, None
    facts.timestamp = stamped.isoformat()
    if decision.weaknesses:
        facts.weaknesses.extend(f"timestamp: {w}" for w in decision.weaknesses)
    if stamped > now + CLOCK_SKEW:
        return now, f"the trusted timestamp lies in the future ({stamped:%Y-%m-%d %H:%M:%S} UTC)"
    return stamped, None


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


def _parse_datetime(text: str | None) -> dt.datetime | None:
    """A DICOM DT as an aware UTC datetime (no offset: UTC), or None when absent or unreadable."""
    if not text:
        return None
    from pydicom.valuerep import DT

    try:
        value = DT(text)
    except ValueError:
        return None
    plain = dt.datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, value.tzinfo
    )
    return plain.replace(tzinfo=dt.UTC) if plain.tzinfo is None else plain.astimezone(dt.UTC)


def _iso_datetime(text: str | None) -> str | None:
    if not text:
        return None
    from pydicom.valuerep import DT

    try:
        value = DT(text)
    except ValueError:
        return text
    return value.isoformat()


def _syntax_name(uid: str) -> str:
    name = UID(uid).name
    return f"{name} ({uid})" if name and name != uid else uid


@lru_cache(maxsize=8192)
def describe_tag(tag: int) -> str:
    """'Keyword (gggg,eeee)'; cached: the dictionary lookup is slow for private tags, and files share tags."""
    name = keyword_for_tag(tag)
    label = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    return f"{name} {label}" if name else label


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
