"""Signing identities: a hospital CA, certificates for technologists, radiologists and devices, revocation.

Folders (a contract shared with the command line):

* ``keys init-ca DIR`` writes ``DIR/ca.pem`` (certificate) and ``DIR/ca.key`` (encrypted PKCS#8 key);
* ``keys issue DIR`` writes ``DIR/cert.pem``, ``DIR/key.pem`` (encrypted PKCS#8) and ``DIR/chain.pem``
  (the issuing CA certificate);
* ``keys revoke DIR --ca CADIR`` rewrites ``CADIR/crl.pem`` (all revocations so far).

The signer's role is recorded in the certificate subject's *title* attribute (X.520, OID 2.5.4.12),
which every X.509 tool displays, and read back by the verifier.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID

from radproof.errors import KeyFileError, PassphraseError, PolicyError
from radproof.fileio import atomic_write_bytes, read_input_bytes
from radproof.provenance.codes import DEFAULT_RSA_BITS, MIN_RSA_BITS, MacAlgorithm, Role

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
CERT = "cert.pem"
KEY = "key.pem"
CHAIN = "chain.pem"
CRL = "crl.pem"

# DCMTK rejects a certificate whose notBefore equals the signing second: start validity a little earlier.
BACKDATE = dt.timedelta(minutes=10)
CA_DAYS = 3650
IDENTITY_DAYS = 825
CRL_DAYS = 30

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
_HASHES: dict[MacAlgorithm, type[hashes.HashAlgorithm]] = {
    MacAlgorithm.SHA256: hashes.SHA256,
    MacAlgorithm.SHA384: hashes.SHA384,
    MacAlgorithm.SHA512: hashes.SHA512,
}


class SigningKey(Protocol):
    """A private key that signs a precomputed digest (a key file, or a key held on a PKCS#11 token)."""

    @property
    def key_size(self) -> int:
        """Modulus length in bits."""
        ...

    def sign_digest(self, digest: bytes, algorithm: MacAlgorithm) -> bytes:
        """A raw PKCS#1 v1.5 signature over ``digest`` (already hashed with ``algorithm``)."""
        ...


@dataclass(frozen=True)
class FileKey:
    """An RSA private key held in memory after decrypting a key file."""

    private_key: rsa.RSAPrivateKey

    @property
    def key_size(self) -> int:
        return int(self.private_key.key_size)

    def sign_digest(self, digest: bytes, algorithm: MacAlgorithm) -> bytes:
        if algorithm not in _HASHES:
            raise PolicyError(f"{algorithm.value} is too weak for a new signature: use SHA256 or stronger")
        return self.private_key.sign(digest, padding.PKCS1v15(), Prehashed(_HASHES[algorithm]()))


@dataclass(frozen=True)
class Identity:
    """A signer: certificate, the certificates that lead to the CA, and the private key."""

    certificate: x509.Certificate
    key: SigningKey
    chain: tuple[x509.Certificate, ...] = field(default=())

    @property
    def name(self) -> str:
        """The certificate subject's common name (or the whole subject when it has none)."""
        return subject_name(self.certificate)

    @property
    def role(self) -> Role | None:
        """The role recorded in the certificate, if any."""
        return certificate_role(self.certificate)


def subject_name(cert: x509.Certificate) -> str:
    """Common name of the subject, or the RFC 4514 subject string."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if names:
        return str(names[0].value)
    return cert.subject.rfc4514_string()


def certificate_role(cert: x509.Certificate) -> Role | None:
    """The radproof role recorded in the subject title, or None for certificates from elsewhere."""
    for attr in cert.subject.get_attributes_for_oid(NameOID.TITLE):
        try:
            return Role(str(attr.value).strip().lower())
        except ValueError:
            continue
    return None


# --- creating identities ----------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _new_key(bits: int) -> rsa.RSAPrivateKey:
    if bits < MIN_RSA_BITS:
        raise PolicyError(f"RSA keys shorter than {MIN_RSA_BITS} bits are refused (asked for {bits})")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _encrypted_pem(key: rsa.RSAPrivateKey, passphrase: bytes) -> bytes:
    if not passphrase:
        raise PassphraseError("an empty passphrase is not allowed for a private key")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _refuse_overwrite(*paths: Path) -> None:
    for path in paths:
        if path.exists():
            raise KeyFileError(f"{path} already exists; choose another folder or remove it first")


def init_ca(
    directory: str | Path,
    name: str,
    passphrase: bytes,
    *,
    key_bits: int = DEFAULT_RSA_BITS,
    days: int = CA_DAYS,
) -> x509.Certificate:
    """Create a CA in ``directory``: ``ca.pem`` and ``ca.key`` (encrypted with ``passphrase``)."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    _refuse_overwrite(folder / CA_CERT, folder / CA_KEY)
    key = _new_key(key_bits)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "radproof signing CA"),
        ]
    )
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    atomic_write_bytes(folder / CA_KEY, _encrypted_pem(key, passphrase), mode=0o600)
    atomic_write_bytes(folder / CA_CERT, _pem(cert))
    return cert


def load_ca(ca_dir: str | Path, passphrase: bytes) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """The CA certificate and its decrypted key."""
    folder = Path(ca_dir)
    cert = load_certificate(folder / CA_CERT)
    key = _load_private_key(folder / CA_KEY, passphrase)
    if key.public_key().public_numbers() != _rsa_public(cert).public_numbers():
        raise KeyFileError(f"{folder / CA_KEY} does not belong to the certificate {folder / CA_CERT}")
    return cert, key


def issue_identity(
    directory: str | Path,
    ca_dir: str | Path,
    name: str,
    role: Role,
    passphrase: bytes | None,
    ca_passphrase: bytes,
    *,
    key_bits: int = DEFAULT_RSA_BITS,
    days: int = IDENTITY_DAYS,
    public_key: rsa.RSAPublicKey | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> x509.Certificate:
    """Issue a signing certificate for ``name`` with ``role``, signed by the CA in ``ca_dir``.

    Writes ``cert.pem``, ``chain.pem`` and, unless ``public_key`` is given (a key that lives on a token),
    ``key.pem`` encrypted with ``passphrase``.
    """
    folder = Path(directory)
    ca_cert, ca_key = load_ca(ca_dir, ca_passphrase)
    folder.mkdir(parents=True, exist_ok=True)
    _refuse_overwrite(folder / CERT, folder / KEY)
    key: rsa.RSAPrivateKey | None = None
    if public_key is None:
        if passphrase is None:
            raise PassphraseError("a passphrase is needed to encrypt the new private key")
        key = _new_key(key_bits)
        public_key = key.public_key()
    elif public_key.key_size < MIN_RSA_BITS:
        raise PolicyError(f"the token key has {public_key.key_size} bits; at least {MIN_RSA_BITS} are needed")
    now = _now()
    start = not_before or now - BACKDATE
    end = not_after or min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.TITLE, role.value),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role.value),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(_rsa_public(ca_cert)), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    if key is not None:
        assert passphrase is not None
        atomic_write_bytes(folder / KEY, _encrypted_pem(key, passphrase), mode=0o600)
    atomic_write_bytes(folder / CHAIN, _pem(ca_cert))
    atomic_write_bytes(folder / CERT, _pem(cert))
    return cert


def revoke_identity(
    directory: str | Path,
    ca_dir: str | Path,
    ca_passphrase: bytes,
    *,
    when: dt.datetime | None = None,
) -> Path:
    """Revoke the certificate in ``directory`` and rewrite ``ca_dir/crl.pem`` with every revocation so far."""
    cert = load_certificate(Path(directory) / CERT)
    ca_cert, ca_key = load_ca(ca_dir, ca_passphrase)
    if cert.issuer != ca_cert.subject:
        raise KeyFileError(f"{Path(directory) / CERT} was not issued by the CA in {ca_dir}")
    crl_path = Path(ca_dir) / CRL
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - dt.timedelta(minutes=1))
        .next_update(now + dt.timedelta(days=CRL_DAYS))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(_rsa_public(ca_cert)), critical=False)
    )
    seen: set[int] = set()
    if crl_path.exists():
        for entry in load_crl(crl_path):
            seen.add(entry.serial_number)
            builder = builder.add_revoked_certificate(entry)
    if cert.serial_number not in seen:
        entry = x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(when or now).build()
        builder = builder.add_revoked_certificate(entry)
    crl = builder.sign(ca_key, hashes.SHA256())
    atomic_write_bytes(crl_path, crl.public_bytes(serialization.Encoding.PEM))
    return crl_path


# --- loading ----------------------------------------------------------------------------------------------


def load_identity(directory: str | Path, passphrase: bytes) -> Identity:
    """The identity in ``directory`` (``cert.pem``, ``key.pem``, ``chain.pem``), key decrypted.

    Raises
    ------
    KeyFileError
        A file is missing or malformed, or the key does not belong to the certificate.
    PassphraseError
        The passphrase does not open the key.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise KeyFileError(f"{folder} is not an identity folder (create one with `radproof keys issue`)")
    cert = load_certificate(folder / CERT)
    key = _load_private_key(folder / KEY, passphrase)
    if key.public_key().public_numbers() != _rsa_public(cert).public_numbers():
        raise KeyFileError(f"{folder / KEY} does not belong to the certificate {folder / CERT}")
    chain = tuple(load_certificates(folder / CHAIN)) if (folder / CHAIN).exists() else ()
    return Identity(certificate=cert, key=FileKey(key), chain=chain)


def load_certificates(path: str | Path) -> list[x509.Certificate]:
    """Every certificate in a PEM file (or the one in a DER file)."""
    data = read_input_bytes(path)
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise KeyFileError(f"{path} does not hold a readable X.509 certificate ({exc})") from None
    if not certs:
        raise KeyFileError(f"{path} holds no certificate")
    return certs


def load_certificate(path: str | Path) -> x509.Certificate:
    """The first certificate in a PEM or DER file."""
    if not Path(path).exists():
        raise KeyFileError(f"{path}: no such certificate file")
    return load_certificates(path)[0]


def load_crl(path: str | Path) -> x509.CertificateRevocationList:
    """A CRL from a PEM or DER file."""
    data = read_input_bytes(path)
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise KeyFileError(f"{path} does not hold a readable certificate revocation list ({exc})") from None


def _load_private_key(path: Path, passphrase: bytes) -> rsa.RSAPrivateKey:
    if not path.exists():
        raise KeyFileError(f"{path}: no such key file")
    data = read_input_bytes(path)
    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError:
        raise KeyFileError(f"{path} is not encrypted; radproof only uses keys encrypted at rest") from None
    except ValueError as exc:
        text = str(exc).lower()
        if "password" in text or "decrypt" in text:
            raise PassphraseError(f"the passphrase does not open {path}") from None
        if b"ENCRYPTED" in data:
            # A wrong passphrase decrypts to garbage whose padding is valid about once in 200
            # tries; the parse then fails. Nothing tells that apart from an altered file.
            raise PassphraseError(f"the passphrase does not open {path}, or the key file was altered") from None
        raise KeyFileError(f"{path} is not a readable PEM private key") from None
    except UnsupportedAlgorithm:
        raise KeyFileError(f"{path} uses an encryption or key type radproof does not support") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PolicyError(f"{path} is not an RSA key; DICOM RSA signature profiles need RSA")
    if key.key_size < MIN_RSA_BITS:
        raise PolicyError(f"{path} is a {key.key_size}-bit RSA key; at least {MIN_RSA_BITS} bits are needed")
    return key


def _rsa_public(cert: x509.Certificate) -> rsa.RSAPublicKey:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFileError("the certificate does not hold an RSA public key")
    return key
