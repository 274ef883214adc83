"""RFC 3161 timestamps over a signature value: ask a Time-Stamp Authority, check what it returned.

The Certified Timestamp (0400,0310) of a DICOM signature holds a DER TimeStampToken (CMS SignedData
over a TSTInfo) whose message imprint is the hash of the Signature (0400,0120) bytes.

This module opens no connection: the HTTP exchange with the TSA is a function passed in
(:func:`radproof.netio.post_timestamp_query` on the command line, anything else in tests or a gateway).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from asn1crypto import algos, cms, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from radproof.errors import InputError, PolicyError
from radproof.provenance.codes import der_without_padding

MAX_REPLY = 1 << 20

#: ``post(url, der_request) -> der_reply``: one HTTP POST of an ``application/timestamp-query``.
#: It raises OSError when the TSA cannot be reached or answers with an HTTP error.
TimestampPost = Callable[[str, bytes], bytes]
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_STRONG = {"sha256", "sha384", "sha512"}


@dataclass(frozen=True)
class TimestampCheck:
    """What a Certified Timestamp says, and whether it holds up (``problem`` is None when it does)."""

    time: dt.datetime | None
    tsa_certificate: x509.Certificate | None
    extra_certificates: tuple[x509.Certificate, ...]
    problem: str | None
    warnings: tuple[str, ...] = ()


def request_timestamp(url: str, signature: bytes, *, post: TimestampPost, algorithm: str = "sha256") -> bytes:
    """Ask the TSA at ``url`` to timestamp ``signature`` through ``post``; return the DER TimeStampToken.

    The reply is checked here (status, nonce, imprint), whatever carried it.

    Raises
    ------
    InputError
        The TSA cannot be reached or refuses.
    """
    if not url.startswith(("http://", "https://")):
        raise InputError(f"the TSA address {url!r} must start with http:// or https://")
    if algorithm not in _STRONG:
        raise PolicyError(f"{algorithm} is too weak for a timestamp imprint: use sha256 or stronger")
    digest = hashlib.new(algorithm, signature).digest()
    nonce = secrets.randbits(63)
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {"hash_algorithm": {"algorithm": algorithm}, "hashed_message": digest},
            "nonce": nonce,
            "cert_req": True,
        }
    )
    try:
        body = post(url, request.dump())
    except OSError as exc:
        raise InputError(f"cannot reach the TSA at {url} ({exc})") from None
    if len(body) > MAX_REPLY:
        raise InputError(f"the TSA at {url} sent an oversized reply")
    try:
        response = tsp.TimeStampResp.load(body)
        status = response["status"]["status"].native
    except Exception:
        raise InputError(f"the TSA at {url} did not send an RFC 3161 reply") from None
    if status not in ("granted", "granted_with_mods"):
        text = response["status"]["status_string"].native
        raise InputError(f"the TSA at {url} refused the request ({status}{': ' + str(text) if text else ''})")
    token = response["time_stamp_token"]
    try:
        info = token["content"]["encap_content_info"]["content"].parsed
        if info["nonce"].native != nonce:
            raise InputError(f"the TSA at {url} answered with the wrong nonce")
        if info["message_imprint"]["hashed_message"].native != digest:
            raise InputError(f"the TSA at {url} timestamped something else than the signature")
    except InputError:
        raise
    except Exception:
        raise InputError(f"the TSA at {url} sent a malformed timestamp token") from None
    return bytes(token.dump())


@dataclass(frozen=True)
class TimestampAuthority:
    """An RFC 3161 TSA to ask for certified timestamps: its URL and how to reach it.

    Calling it with a signature value returns the DER TimeStampToken for it, as
    :func:`~radproof.provenance.sign_dataset` expects.
    """

    url: str
    post: TimestampPost

    def __call__(self, signature: bytes) -> bytes:
        return request_timestamp(self.url, signature, post=self.post)


def check_timestamp(token_der: bytes, signature: bytes) -> TimestampCheck:
    """Parse a TimeStampToken, check its imprint against ``signature`` and its CMS signature.

    Trust in the TSA certificate is left to the caller (see :class:`~radproof.provenance.TrustStore`).
    Never raises for malformed input; the problem is described in ``problem``.
    """
    try:
        return _check(token_der, signature)
    except Exception as exc:  # malformed ASN.1 of any kind
        return TimestampCheck(None, None, (), f"the certified timestamp is malformed ({type(exc).__name__})")


def _check(token_der: bytes, signature: bytes) -> TimestampCheck:
    token = cms.ContentInfo.load(der_without_padding(token_der))
    if token["content_type"].native != "signed_data":
        return TimestampCheck(None, None, (), "the certified timestamp is not a CMS SignedData")
    signed = token["content"]
    encap = signed["encap_content_info"]
    if encap["content_type"].native != "tst_info":
        return TimestampCheck(None, None, (), "the certified timestamp does not hold a TSTInfo")
    econtent = encap["content"].contents
    info = tsp.TSTInfo.load(econtent)
    gen_time = info["gen_time"].native
    warnings: list[str] = []
    imprint_algo = info["message_imprint"]["hash_algorithm"]["algorithm"].native
    if imprint_algo not in _HASHES and imprint_algo != "md5":
        return TimestampCheck(gen_time, None, (), f"the timestamp uses an unknown hash ({imprint_algo})")
    if imprint_algo not in _STRONG:
        warnings.append(f"the timestamp imprint uses the weak hash {imprint_algo.upper()}")
    if hashlib.new(imprint_algo, signature).digest() != info["message_imprint"]["hashed_message"].native:
        return TimestampCheck(gen_time, None, (), "the certified timestamp was made for a different signature")

    certs = [
        x509.load_der_x509_certificate(c.chosen.dump())
        for c in (signed["certificates"] or [])
        if c.name == "certificate"
    ]
    infos = signed["signer_infos"]
    if len(infos) != 1:
        return TimestampCheck(gen_time, None, tuple(certs), "the certified timestamp must have one signer")
    signer = infos[0]
    tsa = _signer_certificate(signer, certs)
    if tsa is None:
        return TimestampCheck(
            gen_time, None, tuple(certs), "the certified timestamp does not include the TSA certificate"
        )
    digest_algo = signer["digest_algorithm"]["algorithm"].native
    if digest_algo not in _HASHES:
        return TimestampCheck(gen_time, tsa, tuple(certs), f"the timestamp uses an unknown hash ({digest_algo})")
    attrs = signer["signed_attrs"]
    if not attrs:
        signed_bytes = econtent
    else:
        wanted = hashlib.new(digest_algo, econtent).digest()
        message_digest = next((a["values"][0].native for a in attrs if a["type"].native == "message_digest"), None)
        if message_digest != wanted:
            return TimestampCheck(gen_time, tsa, tuple(certs), "the certified timestamp content was altered")
        signed_bytes = b"\x31" + attrs.dump()[1:]
    problem = _verify_cms_signature(tsa, signer, signed_bytes, _HASHES[digest_algo]())
    if problem:
        return TimestampCheck(gen_time, tsa, tuple(certs), problem)
    if not _has_timestamping_eku(tsa):
        warnings.append("the TSA certificate is not marked for time stamping")
    others = tuple(c for c in certs if c != tsa)
    return TimestampCheck(gen_time, tsa, others, None, tuple(warnings))


def _signer_certificate(signer: cms.SignerInfo, certs: list[x509.Certificate]) -> x509.Certificate | None:
    sid = signer["sid"]
    for cert in certs:
        if sid.name == "issuer_and_serial_number":
            ias = sid.chosen
            if ias["serial_number"].native == cert.serial_number and ias["issuer"].dump() == (
                cert.issuer.public_bytes()
            ):
                return cert
        else:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except x509.ExtensionNotFound:
                continue
            if ski == sid.chosen.native:
                return cert
    return None


def _verify_cms_signature(
    cert: x509.Certificate, signer: cms.SignerInfo, data: bytes, hash_algo: hashes.HashAlgorithm
) -> str | None:
    key = cert.public_key()
    sig = signer["signature"].native
    algo: algos.SignedDigestAlgorithm = signer["signature_algorithm"]
    try:
        name = algo.signature_algo
    except ValueError:
        return "the timestamp signature algorithm is not supported"
    try:
        if isinstance(key, rsa.RSAPublicKey) and name == "rsassa_pkcs1v15":
            key.verify(sig, data, padding.PKCS1v15(), hash_algo)
        elif isinstance(key, rsa.RSAPublicKey) and name == "rsassa_pss":
            key.verify(sig, data, padding.PSS(padding.MGF1(hash_algo), padding.PSS.AUTO), hash_algo)
        elif isinstance(key, ec.EllipticCurvePublicKey) and name == "ecdsa":
            key.verify(sig, data, ec.ECDSA(hash_algo))
        else:
            return f"the timestamp signature algorithm ({name}) is not supported"
    except InvalidSignature:
        return "the certified timestamp's own signature is invalid"
    return None


def _has_timestamping_eku(cert: x509.Certificate) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.TIME_STAMPING in eku
