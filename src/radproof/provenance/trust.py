"""Is a signer's certificate trusted at a given time? Chain to a trust anchor, validity, CRL revocation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from radproof.errors import KeyFileError
from radproof.provenance.identity import load_certificates, load_crl, subject_name

MAX_CHAIN = 8
_MAX_CHECKED = 4096
_WEAK_CERT_HASHES = {"sha1", "md5"}


@dataclass(frozen=True)
class TrustDecision:
    """The outcome of :meth:`TrustStore.evaluate`."""

    trusted: bool
    reason: str | None = None
    chain: tuple[x509.Certificate, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrustStore:
    """Trust anchors (CA certificates), optional intermediates, and CRLs."""

    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    crls: tuple[x509.CertificateRevocationList, ...] = field(default=())
    # Signature checks already done (certificate by issuer, CRL by issuer): a batch of files signed by the same
    # people checks each link once. Only outcomes of pure functions of the keys are kept.
    _checked: dict[tuple[object, ...], bool] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_files(
        cls,
        ca_pem: str | Path,
        crl: str | Path | Sequence[str | Path] | None = None,
        intermediates: Sequence[str | Path] = (),
    ) -> TrustStore:
        """Anchors from a PEM file (one or more CA certificates), CRLs from PEM or DER files."""
        anchors = tuple(load_certificates(ca_pem))
        for cert in anchors:
            if not _is_ca(cert) and cert.issuer != cert.subject:
                raise KeyFileError(
                    f"{ca_pem}: '{subject_name(cert)}' is not a CA certificate; give the CA's ca.pem as --trust"
                )
        crl_paths: list[str | Path] = [] if crl is None else [crl] if isinstance(crl, str | Path) else list(crl)
        inter = tuple(c for p in intermediates for c in load_certificates(p))
        return cls(anchors=anchors, intermediates=inter, crls=tuple(load_crl(p) for p in crl_paths))

    def evaluate(
        self,
        cert: x509.Certificate,
        at: dt.datetime,
        *,
        extra: Sequence[x509.Certificate] = (),
    ) -> TrustDecision:
        """Whether ``cert`` chains to an anchor, every link valid and unrevoked at time ``at``."""
        chain: list[x509.Certificate] = [cert]
        warnings: list[str] = []
        pool = [*self.intermediates, *extra]
        current = cert
        for _ in range(MAX_CHAIN):
            who = "signer certificate" if current is cert else f"CA certificate '{subject_name(current)}'"
            problem = _validity_problem(current, at, who)
            if problem:
                return TrustDecision(False, problem, tuple(chain), tuple(warnings))
            if current.signature_hash_algorithm is not None and (
                current.signature_hash_algorithm.name in _WEAK_CERT_HASHES
            ):
                warnings.append(f"{who} is signed with {current.signature_hash_algorithm.name.upper()}")
            if any(current == anchor for anchor in self.anchors):
                return TrustDecision(True, None, tuple(chain), tuple(warnings))
            issuer = self._find_issuer(current, self.anchors) or self._find_issuer(current, pool)
            if issuer is None:
                return TrustDecision(
                    False,
                    f"{who} was issued by '{_issuer_name(current)}', which is not in the trust store",
                    tuple(chain),
                    tuple(warnings),
                )
            if not _is_ca(issuer):
                return TrustDecision(
                    False, f"'{subject_name(issuer)}' is not a CA but issued a certificate", tuple(chain)
                )
            revoked = self._revocation(current, issuer, at, warnings)
            if revoked:
                return TrustDecision(False, f"{who} {revoked}", tuple(chain), tuple(warnings))
            chain.append(issuer)
            current = issuer
        return TrustDecision(False, "certificate chain is too long", tuple(chain), tuple(warnings))

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
        self, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime, warnings: list[str]
    ) -> str | None:
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
            if crl.next_update_utc is not None and crl.next_update_utc < dt.datetime.now(dt.UTC):
                warnings.append(f"the CRL of '{subject_name(issuer)}' is out of date (next update was due)")
            entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is not None and entry.revocation_date_utc <= at:
                return f"was revoked on {entry.revocation_date_utc:%Y-%m-%d %H:%M:%S} UTC"
        return None


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
