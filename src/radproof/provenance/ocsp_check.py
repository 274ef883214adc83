"""OCSP (RFC 6960): ask the responder a certificate names, and believe only a sound, fresh answer.

An answer counts when it is signed by the certificate's issuer, or by a responder certificate that
the issuer made for OCSP signing (id-kp-OCSPSigning), names this very certificate, and is current
(thisUpdate not in the future, nextUpdate not passed). Anything else is no answer: the status stays
unknown, and the caller says so. The network is the caller's: :func:`ask` takes a fetch function.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Answer:
    """What a responder said: revoked (and when), unknown, or good; ``problem`` when it said nothing sound."""

    revoked_at: dt.datetime | None = None
    unknown: bool = False
    next_update: dt.datetime | None = None
    problem: str | None = None


def responder_urls(cert: x509.Certificate) -> list[str]:
    """The OCSP responder URLs in the certificate's Authority Information Access extension."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        str(d.access_location.value)
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


def ask(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    urls: Sequence[str],
    fetch: Callable[[str, bytes], bytes],
    now: dt.datetime,
) -> Answer:
    """Ask each responder in turn; the first sound answer counts."""
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()  # noqa: S303
    der = request.public_bytes(serialization.Encoding.DER)
    problems: list[str] = []
    for url in urls:
        try:
            data = fetch(url, der)
        except Exception as exc:  # network trouble of any kind: no answer from this responder
            problems.append(f"{url} did not answer ({type(exc).__name__})")
            continue
        answer = judge(data, cert, issuer, now)
        if answer.problem is None:
            return answer
        problems.append(f"{url}: {answer.problem}")
    return Answer(problem="; ".join(problems) or "no responder")


def judge(data: bytes, cert: x509.Certificate, issuer: x509.Certificate, now: dt.datetime) -> Answer:
    """Read and check one DER OCSP response about ``cert`` (never raises for malformed input)."""
    try:
        response = ocsp.load_der_ocsp_response(data)
    except ValueError:
        return Answer(problem="the response is not a readable OCSP response")
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return Answer(problem=f"the responder answered {response.response_status.name.lower()}")
    try:
        signer = _responder(response, issuer, now)
        if signer is None:
            return Answer(problem="the response is not signed by the issuer or a responder it authorised")
        if not _signed_by(signer, response):
            return Answer(problem="the response's signature is invalid")
        if response.serial_number != cert.serial_number or response.issuer_key_hash != _key_hash(
            issuer, response.hash_algorithm
        ):
            return Answer(problem="the response is about another certificate")
        this_update = response.this_update_utc
        next_update = response.next_update_utc
    except (ValueError, TypeError) as exc:
        return Answer(problem=f"the response is malformed ({type(exc).__name__})")
    if this_update > now + _SKEW:
        return Answer(problem="the response is dated in the future")
    if next_update is not None and next_update < now:
        return Answer(problem="the response is out of date (its next update has passed)")
    status = response.certificate_status
    if status == ocsp.OCSPCertStatus.REVOKED:
        return Answer(revoked_at=response.revocation_time_utc, next_update=next_update)
    if status == ocsp.OCSPCertStatus.UNKNOWN:
        return Answer(unknown=True, next_update=next_update)
    return Answer(next_update=next_update)


def _key_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    """The hash of the subject public key bits, as OCSP's CertID and ResponderID use it."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.new(algorithm.name, _subject_public_key_bits(spki)).digest()


def _subject_public_key_bits(spki: bytes) -> bytes:
    """The BIT STRING contents of a DER SubjectPublicKeyInfo (after the algorithm identifier)."""
    from asn1crypto import keys as asn1_keys  # only when a responder answered

    return bytes(asn1_keys.PublicKeyInfo.load(spki)["public_key"].contents[1:])


def _responder(response: ocsp.OCSPResponse, issuer: x509.Certificate, now: dt.datetime) -> x509.Certificate | None:
    """The certificate that signed the response, if the issuer stands behind it."""
    if _names(response, issuer):
        return issuer
    for candidate in response.certificates:
        if not _names(response, candidate):
            continue
        try:
            candidate.verify_directly_issued_by(issuer)
            ekus = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            continue
        valid = candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc
        if ExtendedKeyUsageOID.OCSP_SIGNING in ekus and valid:
            return candidate
    return None


def _names(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return bool(response.responder_name == cert.subject)
    key_hash = response.responder_key_hash
    return key_hash is not None and key_hash == _key_hash(cert, hashes.SHA1())  # noqa: S303 (RFC 6960 says SHA-1)


def _signed_by(cert: x509.Certificate, response: ocsp.OCSPResponse) -> bool:
    key = cert.public_key()
    algorithm = response.signature_hash_algorithm
    if algorithm is None:
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except InvalidSignature:
        return False
    return True
