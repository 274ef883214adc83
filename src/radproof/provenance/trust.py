"""Is a certificate trusted at a given time, for a given use? Chain, validity, key usage, revocation.

Two kinds of trust are kept apart: signers of images chain to the signing anchors (``--trust``), and
timestamp authorities chain to their own anchors (``--tsa-trust``). A signer's CA vouches for people,
not for clocks, so a TSA is never trusted because it happens to be issued by the signers' CA.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from radproof.errors import KeyFileError
from radproof.provenance import ocsp_check
from radproof.provenance.codes import MIN_RSA_BITS
from radproof.provenance.identity import CRL, load_certificates, load_crl, subject_name

#: Fetches an OCSP response: (responder URL, DER request) -> DER response. The trust store does no network
#: I/O of its own; a shell passes one in (``radproof.netio.fetch_ocsp``).
OcspFetch = Callable[[str, bytes], bytes]

MAX_CHAIN = 8
#: How far an OCSP response's thisUpdate may lie in the future (clock skew).
_OCSP_SKEW = dt.timedelta(minutes=5)
_MAX_CHECKED = 4096
_WEAK_CERT_HASHES = {"sha1", "md5"}

#: Extended key usages compatible with signing documents such as images. A signer certificate with an
#: EKU extension must name one of them: an EKU of serverAuth only says the key is for TLS, nothing else.
DOCUMENT_SIGNING_EKUS = frozenset(
    {
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
        ExtendedKeyUsageOID.EMAIL_PROTECTION,  # S/MIME: signed content
        ObjectIdentifier("1.3.6.1.5.5.7.3.36"),  # id-kp-documentSigning (RFC 9336)
        ObjectIdentifier("1.3.6.1.4.1.311.10.3.12"),  # Microsoft document signing
        ObjectIdentifier("1.2.840.113583.1.1.5"),  # Adobe authentic documents
    }
)


class Usage(StrEnum):
    """What a certificate is asked to vouch for."""

    SIGNING = "signing"  # a DICOM digital signature
    TIMESTAMPING = "timestamping"  # an RFC 3161 timestamp token


class Revocation(StrEnum):
    """What revocation checking found for a chain (the worst link decides)."""

    GOOD = "good"  # every issued link checked against a current CRL of its issuer
    REVOKED = "revoked"
    STALE = "stale"  # a CRL past its next update was all there was
    UNKNOWN = "unknown"  # no CRL for at least one issuer: revocation was not checked

    @property
    def rank(self) -> int:
        return {"good": 0, "unknown": 1, "stale": 2, "revoked": 3}[self.value]


@dataclass(frozen=True)
class TrustDecision:
    """The outcome of :meth:`TrustStore.evaluate`.

    ``weaknesses`` lists legacy cryptography in the chain (SHA-1 or MD5 certificate signatures, short RSA
    keys, DSA): the chain may be trusted, but a policy decides whether such a chain may vouch for an image.
    """

    trusted: bool
    reason: str | None = None
    chain: tuple[x509.Certificate, ...] = ()
    warnings: tuple[str, ...] = ()
    revocation: Revocation = Revocation.UNKNOWN
    weaknesses: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrustStore:
    """Trust anchors (CA certificates), optional intermediates, CRLs, and the TSA anchors."""

    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    crls: tuple[x509.CertificateRevocationList, ...] = field(default=())
    #: Anchors for timestamp authorities; without them a certified timestamp is not trusted.
    tsa_anchors: tuple[x509.Certificate, ...] = ()
    #: Where the CRLs came from (for messages only).
    crl_sources: tuple[str, ...] = ()
    #: Asked where a certificate names an OCSP responder and no current CRL settles its status.
    ocsp: OcspFetch | None = field(default=None, compare=False)
    # Signature checks already done (certificate by issuer, CRL by issuer): a batch of files signed by the same
    # people checks each link once. Only outcomes of pure functions of the keys are kept.
    _checked: dict[tuple[object, ...], bool] = field(default_factory=dict, init=False, repr=False, compare=False)
    _ocsp_cache: dict[tuple[object, ...], ocsp_check.Answer] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_files(
        cls,
        ca_pem: str | Path,
        crl: str | Path | Sequence[str | Path] | None = None,
        intermediates: Sequence[str | Path] = (),
        *,
        tsa: str | Path | Sequence[str | Path] | None = None,
        default_crl: bool = True,
        allow_leaf_anchors: bool = False,
        ocsp: OcspFetch | None = None,
    ) -> TrustStore:
        """Anchors from a PEM file (one or more CA certificates), CRLs from PEM or DER files.

        Parameters
        ----------
        crl
            Revocation lists. None and ``default_crl``: the ``crl.pem`` that ``radproof keys revoke`` publishes
            beside the CA certificate, when there is one.
        tsa
            PEM files with the anchors that timestamp authorities must chain to.
        allow_leaf_anchors
            Accept an end-entity certificate as an anchor (pinning one signer). Off by default: an anchor is a CA.
        ocsp
            How to ask an OCSP responder (see :data:`OcspFetch`); None: OCSP is not used.
        """
        anchors = tuple(load_certificates(ca_pem))
        for cert in anchors:
            if not _is_ca(cert) and not allow_leaf_anchors:
                raise KeyFileError(
                    f"{ca_pem}: '{subject_name(cert)}' is not a CA certificate; give the CA's ca.pem as --trust "
                    "(to pin a single signer's certificate, allow leaf anchors explicitly)"
                )
        crl_paths = _paths(crl)
        if crl is None and default_crl:
            beside = Path(ca_pem).parent / CRL
            if beside.is_file():
                crl_paths = [beside]
        inter = tuple(c for p in intermediates for c in load_certificates(p))
        tsa_anchors = tuple(c for p in _paths(tsa) for c in load_certificates(p))
        return cls(
            anchors=anchors,
            intermediates=inter,
            crls=tuple(load_crl(p) for p in crl_paths),
            tsa_anchors=tsa_anchors,
            crl_sources=tuple(str(p) for p in crl_paths),
            ocsp=ocsp,
        )

    def evaluate(
        self,
        cert: x509.Certificate,
        at: dt.datetime,
        *,
        extra: Sequence[x509.Certificate] = (),
        usage: Usage = Usage.SIGNING,
        now: dt.datetime | None = None,
    ) -> TrustDecision:
        """Whether ``cert`` may vouch for ``usage`` at time ``at``: chain, validity, key usage, revocation.

        ``now`` (default: the clock) decides whether a CRL is out of date.
        """
        anchors = self.anchors if usage is Usage.SIGNING else self.tsa_anchors
        checked_at = now or dt.datetime.now(dt.UTC)
        chain: list[x509.Certificate] = [cert]
        warnings: list[str] = []
        weaknesses: list[str] = []
        revocation = Revocation.GOOD

        def refuse(reason: str) -> TrustDecision:
            return TrustDecision(False, reason, tuple(chain), tuple(warnings), revocation, tuple(weaknesses))

        if not anchors:
            what = "no trust anchor was given" if usage is Usage.SIGNING else "no TSA trust anchor was given"
            return refuse(what)
        problem = _usage_problem(cert, usage)
        if problem:
            return refuse(problem)
        pool = [*self.intermediates, *extra]
        current = cert
        for depth in range(MAX_CHAIN):
            who = _who(current, cert, usage)
            problem = _validity_problem(current, at, who)
            if problem:
                return refuse(problem)
            weaknesses.extend(_weaknesses(current, who))
            if any(current == anchor for anchor in anchors):
                return TrustDecision(True, None, tuple(chain), tuple(warnings), revocation, tuple(weaknesses))
            issuer = self._find_issuer(current, anchors) or self._find_issuer(current, pool)
            if issuer is None:
                return refuse(f"{who} was issued by '{_issuer_name(current)}', which is not in the trust store")
            problem = _issuer_problem(issuer, depth)
            if problem:
                return refuse(problem)
            state, revoked = self._revocation(current, issuer, at, checked_at, warnings)
            if revoked:
                revocation = Revocation.REVOKED
                return refuse(f"{who} {revoked}")
            if state.rank > revocation.rank:
                revocation = state
            chain.append(issuer)
            current = issuer
        return refuse("certificate chain is too long")

    def _remember(self, key: tuple[object, ...], outcome: bool) -> bool:
        if len(self._checked) >= _MAX_CHECKED:  # a long-running service meeting many signers stays bounded
            self._checked.clear()
        self._checked[key] = outcome
        return outcome

    def _find_issuer(self, cert: x509.Certificate, pool: Sequence[x509.Certificate]) -> x509.Certificate | None:
        for candidate in pool:
            if candidate.subject != cert.issuer:
                continue
            key = ("issued", cert, candidate)
            issued = self._checked.get(key)
            if issued is None:
                issued = self._remember(key, _issued_by(cert, candidate))
            if issued:
                return candidate
        return None

    def _revocation(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        at: dt.datetime,
        now: dt.datetime,
        warnings: list[str],
    ) -> tuple[Revocation, str | None]:
        """The revocation state of one link, and why it is revoked (None when it is not)."""
        state = Revocation.UNKNOWN
        for index, crl in enumerate(self.crls):
            if crl.issuer != issuer.subject:
                continue
            key = ("crl", index, issuer)
            signed = self._checked.get(key)
            if signed is None:
                signed = self._remember(key, _crl_signed_by(crl, issuer))
            if not signed:
                warnings.append(f"a CRL claiming to be from '{subject_name(issuer)}' has a bad signature; ignored")
                continue
            entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is not None and entry.revocation_date_utc <= at:
                return Revocation.REVOKED, f"was revoked on {entry.revocation_date_utc:%Y-%m-%d %H:%M:%S} UTC"
            if crl.next_update_utc is not None and crl.next_update_utc < now:
                warnings.append(
                    f"the CRL of '{subject_name(issuer)}' is out of date (its next update was due "
                    f"{crl.next_update_utc:%Y-%m-%d})"
                )
                if state is Revocation.UNKNOWN:
                    state = Revocation.STALE
            else:
                state = Revocation.GOOD
        if state is not Revocation.GOOD and self.ocsp is not None:
            answer, revoked = self._ask_ocsp(cert, issuer, at, now, warnings)
            if revoked or answer is Revocation.GOOD:
                return answer, revoked
        return state, None  # UNKNOWN is reported through the decision's revocation field

    def _ask_ocsp(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        at: dt.datetime,
        now: dt.datetime,
        warnings: list[str],
    ) -> tuple[Revocation, str | None]:
        """The certificate's status from the OCSP responder it names (UNKNOWN when none answers soundly)."""
        urls = ocsp_check.responder_urls(cert)
        if not urls or self.ocsp is None:
            return Revocation.UNKNOWN, None
        key = ("ocsp", cert, issuer)
        cached = self._ocsp_cache.get(key)
        if cached is not None and (cached.next_update is None or cached.next_update >= now):
            answer = cached
        else:
            answer = ocsp_check.ask(cert, issuer, urls, self.ocsp, now)
            if answer.problem is None:
                if len(self._ocsp_cache) >= _MAX_CHECKED:
                    self._ocsp_cache.clear()
                self._ocsp_cache[key] = answer
        if answer.problem:
            warnings.append(f"OCSP: {answer.problem}")
            return Revocation.UNKNOWN, None
        if answer.revoked_at is not None and answer.revoked_at <= at:
            return Revocation.REVOKED, f"was revoked on {answer.revoked_at:%Y-%m-%d %H:%M:%S} UTC (OCSP)"
        if answer.unknown:
            warnings.append("OCSP: the responder does not know the certificate")
            return Revocation.UNKNOWN, None
        return Revocation.GOOD, None


def _paths(value: str | Path | Sequence[str | Path] | None) -> list[str | Path]:
    if value is None:
        return []
    if isinstance(value, str | Path):
        return [value]
    return list(value)


def _who(current: x509.Certificate, leaf: x509.Certificate, usage: Usage) -> str:
    if current is leaf:
        return "signer certificate" if usage is Usage.SIGNING else "TSA certificate"
    return f"CA certificate '{subject_name(current)}'"


def _usage_problem(cert: x509.Certificate, usage: Usage) -> str | None:
    """Why the end-entity certificate may not be used for ``usage`` (None when it may)."""
    who = "the signer certificate" if usage is Usage.SIGNING else "the TSA certificate"
    try:
        key_usage: x509.KeyUsage | None = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        key_usage = None
    try:
        ekus: set[ObjectIdentifier] | None = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        ekus = None
    if usage is Usage.SIGNING:
        if key_usage is None or not (key_usage.digital_signature or key_usage.content_commitment):
            return f"{who} does not allow signing (key usage digitalSignature or nonRepudiation is required)"
        if ekus is not None and not ekus & DOCUMENT_SIGNING_EKUS:
            names = ", ".join(sorted(getattr(o, "_name", o.dotted_string) for o in ekus))
            return f"{who} is restricted to other uses ({names}), not to signing documents"
        return None
    if ekus is None or ExtendedKeyUsageOID.TIME_STAMPING not in ekus:
        return f"{who} is not marked for time stamping (extended key usage timeStamping)"
    if key_usage is not None and not (key_usage.digital_signature or key_usage.content_commitment):
        return f"{who} does not allow signing (key usage)"
    return None


def _issuer_problem(issuer: x509.Certificate, depth: int) -> str | None:
    """Why ``issuer`` may not issue a certificate ``depth`` CA links below it (None when it may)."""
    if not _is_ca(issuer):
        return f"'{subject_name(issuer)}' is not a CA but issued a certificate"
    try:
        key_usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
        if not key_usage.key_cert_sign:
            return f"'{subject_name(issuer)}' may not sign certificates (key usage keyCertSign is missing)"
    except x509.ExtensionNotFound:
        pass
    try:
        limit = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
    except x509.ExtensionNotFound:
        limit = None
    if limit is not None and depth > limit:
        return f"'{subject_name(issuer)}' may have at most {limit} CA(s) below it (path length constraint)"
    return None


def _weaknesses(cert: x509.Certificate, who: str) -> list[str]:
    found: list[str] = []
    algorithm = cert.signature_hash_algorithm
    if algorithm is not None and algorithm.name in _WEAK_CERT_HASHES:
        found.append(f"{who} is signed with {algorithm.name.upper()}")
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        found.append(f"{who} has a {key.key_size}-bit RSA key (at least {MIN_RSA_BITS} needed)")
    if isinstance(key, dsa.DSAPublicKey):
        found.append(f"{who} has a DSA key")
    return found


def _validity_problem(cert: x509.Certificate, at: dt.datetime, who: str) -> str | None:
    if at < cert.not_valid_before_utc:
        start = cert.not_valid_before_utc
        return f"{who} was not yet valid at {at:%Y-%m-%d %H:%M:%S} UTC (valid from {start:%Y-%m-%d %H:%M:%S})"
    if at > cert.not_valid_after_utc:
        return f"{who} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"
    return None


def _issued_by(cert: x509.Certificate, candidate: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(candidate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return False
    return bool(crl.is_signature_valid(key))


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        # Version 1 self-signed roots have no extensions; accept them as anchors only.
        return cert.version == x509.Version.v1 and cert.issuer == cert.subject


def _issuer_name(cert: x509.Certificate) -> str:
    names = cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.issuer.rfc4514_string()
