"""Signing identities: a hospital CA, certificates for technologists, radiologists and devices, revocation.

Folders (a contract shared with the command line):

* ``keys init-ca DIR`` writes ``DIR/ca.pem`` (certificate) and ``DIR/ca.key`` (encrypted PKCS#8 key);
* ``keys issue DIR`` writes ``DIR/cert.pem``, ``DIR/key.pem`` (encrypted PKCS#8) and ``DIR/chain.pem``
  (the issuing CA certificate);
* ``keys revoke DIR --ca CADIR`` rewrites ``CADIR/crl.pem`` (all revocations so far).

The signer's role is recorded in the certificate subject's *title* attribute (X.520, OID 2.5.4.12),
which every X.509 tool displays, and read back by the verifier.

Private keys are written as PKCS#8 ``ENCRYPTED PRIVATE KEY`` (PBES2: PBKDF2-HMAC-SHA256 with
600,000 iterations and AES-256-CBC by default), which OpenSSL, DCMTK ``dcmsign`` and every other
PKCS#8 reader opens. Before a key is decrypted its KDF parameters are read and absurd ones refused,
so a crafted key file cannot make radproof compute for hours.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.x509.oid import NameOID, ObjectIdentifier

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
#: id-kp-documentSigning (RFC 9336): the IETF's vendor-neutral purpose "signing human-readable documents".
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")

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
    """An RSA private key held in memory after decrypting a key file.

    ``encryption`` says how the file was protected (None when not known), so that a caller can
    suggest re-encrypting a key protected below today's strength (:attr:`KeyEncryption.advice`).
    """

    private_key: rsa.RSAPrivateKey
    encryption: KeyEncryption | None = None

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


# --- private keys at rest ---------------------------------------------------------------------------------

#: PBKDF2-HMAC-SHA256 iterations for new key files: OWASP's 2023 figure (NIST SP 800-132 sets no
#: upper bound; 600,000 costs about 0.15-0.3 s on a current core, once per signing session).
PBKDF2_ITERATIONS = 600_000
#: scrypt for new key files when asked for: OWASP's 16 MiB row (N=2^14, r=8, p=5). OpenSSL 3.0, and
#: with it dcmsign, refuses to decrypt scrypt keys needing more than 32 MiB, so N=2^17 is not an option.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 5
# Reading: costs above these are refused before the KDF runs (a crafted key file must not be a DoS).
MAX_ITERATIONS = 10_000_000
MAX_SCRYPT_N = 2**20
MAX_SCRYPT_WORK = 2**24  # N * r * p; 2^14 * 8 * 5 is about 2^19
MAX_SCRYPT_MEMORY = 2**28  # 128 * N * r bytes: 256 MiB (OpenSSL itself stops at 32 MiB)

_SCRYPT_OID = "1.3.6.1.4.1.11591.4.11"  # RFC 7914
_SALT_BYTES = 16  # NIST SP 800-132 asks for at least 128 bits


@functools.cache
def _scrypt_params() -> Any:
    """scrypt-params (RFC 7914, section 7.1) as an asn1crypto type, built on first use.

    The ASN.1 machinery loads only when a key file is written or inspected: verifying a signature
    imports this module for certificates alone.
    """
    from asn1crypto import core as asn1_core

    class ScryptParams(asn1_core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
        _fields = [  # noqa: RUF012 (asn1crypto's declaration style)
            ("salt", asn1_core.OctetString),
            ("cost_parameter", asn1_core.Integer),
            ("block_size", asn1_core.Integer),
            ("parallelization_parameter", asn1_core.Integer),
            ("key_length", asn1_core.Integer, {"optional": True}),
        ]

    return ScryptParams


@dataclass(frozen=True)
class KeyEncryption:
    """How a PEM private key is, or is to be, protected by its passphrase.

    New keys use ``pbkdf2`` (PBES2, PBKDF2-HMAC-SHA256) or ``scrypt`` (PBES2, scrypt), both with
    AES-256-CBC. Keys read from elsewhere may also be ``pbes1`` (PKCS#5 v1.5 or PKCS#12 PBE, as
    ``openssl pkcs8 -v1`` writes) or ``legacy`` (OpenSSL's traditional ``Proc-Type: 4,ENCRYPTED``
    PEM, one MD5 pass over the passphrase).
    """

    scheme: str
    iterations: int = 0  # pbkdf2, pbes1
    prf: str = ""  # pbkdf2: sha1, sha256, ...
    n: int = 0  # scrypt
    r: int = 0
    p: int = 0
    cipher: str = "aes-256-cbc"

    @classmethod
    def pbkdf2(cls, iterations: int = PBKDF2_ITERATIONS) -> KeyEncryption:
        """PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC (readable by every PKCS#8 implementation)."""
        return cls("pbkdf2", iterations=iterations, prf="sha256")

    @classmethod
    def scrypt(cls, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> KeyEncryption:
        """PBES2 with scrypt and AES-256-CBC (memory-hard; OpenSSL 1.1+ reads it, LibreSSL and FIPS mode do not)."""
        return cls("scrypt", n=n, r=r, p=p)

    @property
    def description(self) -> str:
        """For messages, e.g. ``PBKDF2-HMAC-SHA256, 600000 iterations, aes-256-cbc``."""
        if self.scheme == "pbkdf2":
            return f"PBKDF2-HMAC-{self.prf.upper()}, {self.iterations} iterations, {self.cipher}"
        if self.scheme == "scrypt":
            return f"scrypt N={self.n} r={self.r} p={self.p}, {self.cipher}"
        if self.scheme == "pbes1":
            return f"PKCS#5 v1.5 / PKCS#12 PBE, {self.iterations} iterations, {self.cipher}"
        if self.scheme == "legacy":
            return f"OpenSSL traditional PEM encryption (one MD5 pass), {self.cipher}"
        return f"unrecognised encryption ({self.cipher})"

    @property
    def is_current(self) -> bool:
        """Whether the protection is at today's recommended strength (what radproof writes, or stronger)."""
        if not self.cipher.startswith("aes"):
            return False
        if self.scheme == "pbkdf2":
            return self.prf in {"sha256", "sha384", "sha512"} and self.iterations >= PBKDF2_ITERATIONS
        if self.scheme == "scrypt":
            return self.n * self.r * self.p >= SCRYPT_N * SCRYPT_R * SCRYPT_P
        return False

    def advice(self, path: str | Path) -> str | None:
        """A one-line suggestion to re-encrypt ``path`` when its protection is below today's strength."""
        if self.is_current:
            return None
        return (
            f"{path} is encrypted with {self.description}, below today's recommended strength; "
            f"re-encrypt it with `radproof keys reencrypt {path}`"
        )


#: What new key files get. Tests may swap it for a cheaper one; the CLI never does.
DEFAULT_KEY_ENCRYPTION = KeyEncryption.pbkdf2()


def encrypt_private_key(key: rsa.RSAPrivateKey, passphrase: bytes, encryption: KeyEncryption | None = None) -> bytes:
    """``key`` as an encrypted PKCS#8 PEM (``ENCRYPTED PRIVATE KEY``, PBES2 with AES-256-CBC).

    ``cryptography`` only writes PKCS#8 with a fixed, low PBKDF2 count, so the PBES2 structure is
    built here (RFC 8018 appendix A.4 and C; scrypt parameters per RFC 7914 section 7).
    """
    from asn1crypto import algos as asn1_algos
    from asn1crypto import core as asn1_core
    from asn1crypto import keys as asn1_keys
    from asn1crypto import pem as asn1_pem

    enc = encryption or DEFAULT_KEY_ENCRYPTION
    if not passphrase:
        raise PassphraseError("an empty passphrase is not allowed for a private key")
    salt, iv = os.urandom(_SALT_BYTES), os.urandom(16)
    if enc.scheme == "pbkdf2":
        if not 1 <= enc.iterations <= MAX_ITERATIONS or enc.prf != "sha256":
            raise PolicyError(f"cannot write a key with {enc.description}")
        secret = PBKDF2HMAC(hashes.SHA256(), length=32, salt=salt, iterations=enc.iterations).derive(passphrase)
        kdf = asn1_algos.KdfAlgorithm(
            {
                "algorithm": "pbkdf2",
                "parameters": asn1_algos.Pbkdf2Params(
                    {
                        "salt": asn1_algos.Pbkdf2Salt(name="specified", value=salt),
                        "iteration_count": enc.iterations,
                        "prf": {"algorithm": "sha256", "parameters": asn1_core.Null()},
                    }
                ),
            }
        )
    elif enc.scheme == "scrypt":
        _check_scrypt_cost(enc, "the requested key encryption")
        secret = Scrypt(salt=salt, length=32, n=enc.n, r=enc.r, p=enc.p).derive(passphrase)
        params = _scrypt_params()(
            {"salt": salt, "cost_parameter": enc.n, "block_size": enc.r, "parallelization_parameter": enc.p}
        )
        kdf = asn1_algos.KdfAlgorithm({"algorithm": _SCRYPT_OID, "parameters": params})
    else:
        raise PolicyError(f"cannot write a key with {enc.description}")
    padder = sym_padding.PKCS7(128).padder()
    plain = padder.update(
        key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    plain += padder.finalize()
    encryptor = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
    body = encryptor.update(plain) + encryptor.finalize()
    info = asn1_keys.EncryptedPrivateKeyInfo(
        {
            "encryption_algorithm": {
                "algorithm": "pbes2",
                "parameters": {
                    "key_derivation_func": kdf,
                    "encryption_scheme": {"algorithm": "aes256_cbc", "parameters": iv},
                },
            },
            "encrypted_data": body,
        }
    )
    return bytes(asn1_pem.armor("ENCRYPTED PRIVATE KEY", info.dump()))


def inspect_key_encryption(data: bytes, *, where: str = "the key file") -> KeyEncryption | None:
    """How the private key in the PEM ``data`` is encrypted (None when it is not), read without decrypting.

    Raises
    ------
    KeyFileError
        The KDF asks for an absurd cost (more than 10 million iterations, scrypt N above 2^20, ...):
        refused before anything is derived.
    """
    from asn1crypto import pem as asn1_pem

    try:
        blocks = list(asn1_pem.unarmor(data, multiple=True)) if asn1_pem.detect(data) else []
    except (ValueError, TypeError):
        blocks = []
    found: KeyEncryption | None = None
    for label, headers, der in blocks:
        if label == "ENCRYPTED PRIVATE KEY":
            enc = _pkcs8_encryption(der, where)
        elif label.endswith("PRIVATE KEY") and "ENCRYPTED" in headers.get("Proc-Type", ""):
            cipher = headers.get("DEK-Info", "").split(",")[0].strip().lower()
            enc = KeyEncryption("legacy", cipher=cipher or "unknown")
        else:
            continue
        found = found or enc  # every block is checked for its cost; the first one is reported
    if found is None and b"ENCRYPTED" in data:
        return KeyEncryption("unknown", cipher="unknown")  # let the decoder say what it is
    return found


def _pkcs8_encryption(der: bytes, where: str) -> KeyEncryption:
    from asn1crypto import keys as asn1_keys

    try:
        alg = asn1_keys.EncryptedPrivateKeyInfo.load(der)["encryption_algorithm"]
        name = alg["algorithm"].native
        if name != "pbes2":
            enc = KeyEncryption("pbes1", iterations=int(alg.kdf_iterations), cipher=str(alg.encryption_cipher))
        else:
            params = alg["parameters"]
            scheme = params["encryption_scheme"]
            cipher = _cipher_name(str(scheme["algorithm"].native))
            kdf = params["key_derivation_func"]
            kdf_name = kdf["algorithm"].native  # a dotted string for OIDs asn1crypto does not name (scrypt)
            if kdf_name == "pbkdf2":
                enc = KeyEncryption("pbkdf2", iterations=int(alg.kdf_iterations), prf=str(alg.kdf_hmac), cipher=cipher)
            elif kdf_name == _SCRYPT_OID:
                sp = _scrypt_params().load(kdf["parameters"].dump())
                enc = KeyEncryption(
                    "scrypt",
                    n=int(sp["cost_parameter"].native),
                    r=int(sp["block_size"].native),
                    p=int(sp["parallelization_parameter"].native),
                    cipher=cipher,
                )
            else:
                return KeyEncryption("unknown", cipher=cipher)
    except (ValueError, TypeError, KeyError):
        # The decoder will reject what asn1crypto cannot read; nothing can be derived from it.
        return KeyEncryption("unknown", cipher="unknown")
    if enc.scheme in {"pbkdf2", "pbes1"} and not 1 <= enc.iterations <= MAX_ITERATIONS:
        raise KeyFileError(
            f"{where} asks for {enc.iterations} key-derivation iterations (radproof accepts at most "
            f"{MAX_ITERATIONS}); refused before deriving anything"
        )
    if enc.scheme == "scrypt":
        _check_scrypt_cost(enc, where)
    return enc


def _cipher_name(asn1_name: str) -> str:
    """OpenSSL's spelling (``aes-256-cbc``) of asn1crypto's cipher names (``aes256_cbc``)."""
    if asn1_name.startswith("aes") and "_" in asn1_name:
        bits, mode = asn1_name[3:].split("_", 1)
        return f"aes-{bits}-{mode}"
    return asn1_name.replace("_", "-")


def _check_scrypt_cost(enc: KeyEncryption, where: str) -> None:
    n, r, p = enc.n, enc.r, enc.p
    if (
        n < 2
        or n & (n - 1)
        or n > MAX_SCRYPT_N
        or not 1 <= r <= 64
        or not 1 <= p <= 64
        or n * r * p > MAX_SCRYPT_WORK
        or 128 * n * r > MAX_SCRYPT_MEMORY
    ):
        raise KeyFileError(
            f"{where} asks for scrypt N={n} r={r} p={p} (radproof accepts N a power of two up to "
            f"2^20, N*r*p up to 2^24 and 256 MiB of memory); refused before deriving anything"
        )


# --- creating identities ----------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _new_key(bits: int) -> rsa.RSAPrivateKey:
    if bits < MIN_RSA_BITS:
        raise PolicyError(f"RSA keys shorter than {MIN_RSA_BITS} bits are refused (asked for {bits})")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _encrypted_pem(key: rsa.RSAPrivateKey, passphrase: bytes, encryption: KeyEncryption | None = None) -> bytes:
    return encrypt_private_key(key, passphrase, encryption)


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
    encryption: KeyEncryption | None = None,
) -> x509.Certificate:
    """Create a CA in ``directory``: ``ca.pem`` and ``ca.key`` (encrypted with ``passphrase``).

    ``encryption`` defaults to :data:`DEFAULT_KEY_ENCRYPTION`.
    """
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
    atomic_write_bytes(folder / CA_KEY, _encrypted_pem(key, passphrase, encryption), mode=0o600)
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
    encryption: KeyEncryption | None = None,
) -> x509.Certificate:
    """Issue a signing certificate for ``name`` with ``role``, signed by the CA in ``ca_dir``.

    Writes ``cert.pem``, ``chain.pem`` and, unless ``public_key`` is given (a key that lives on a token),
    ``key.pem`` encrypted with ``passphrase`` (``encryption`` defaults to :data:`DEFAULT_KEY_ENCRYPTION`).

    The certificate has basicConstraints CA:FALSE and keyUsage digitalSignature + nonRepudiation (both
    critical), and the extended key usage id-kp-documentSigning (RFC 9336), so it says what it is for
    and cannot pass as a TLS or code-signing certificate.
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
        # Not critical: a verifier that does not know the RFC 9336 purpose may still use the certificate.
        .add_extension(x509.ExtendedKeyUsage([DOCUMENT_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(_rsa_public(ca_cert)), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    if key is not None:
        assert passphrase is not None
        atomic_write_bytes(folder / KEY, _encrypted_pem(key, passphrase, encryption), mode=0o600)
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


def import_identity(
    directory: str | Path,
    key_file: str | Path,
    cert_file: str | Path,
    passphrase: bytes,
    key_passphrase: bytes | None,
    *,
    chain_files: tuple[str | Path, ...] = (),
    encryption: KeyEncryption | None = None,
) -> x509.Certificate:
    """Make an identity folder from a key and certificate made elsewhere (OpenSSL, a hospital PKI).

    The key (PKCS#8, encrypted or not, or OpenSSL's traditional PEM) is opened with
    ``key_passphrase`` and written as ``directory/key.pem`` in radproof's format under
    ``passphrase``; ``cert.pem`` and ``chain.pem`` (the ``chain_files``, else nothing) are copied.
    The original files are left as they are.
    """
    folder = Path(directory)
    key, _ = _load_key_file(Path(key_file), key_passphrase, allow_plain=True)
    cert = load_certificate(cert_file)
    if key.public_key().public_numbers() != _rsa_public(cert).public_numbers():
        raise KeyFileError(f"{key_file} does not belong to the certificate {cert_file}")
    chain = [c for path in chain_files for c in load_certificates(path)]
    folder.mkdir(parents=True, exist_ok=True)
    _refuse_overwrite(folder / CERT, folder / KEY)
    atomic_write_bytes(folder / KEY, _encrypted_pem(key, passphrase, encryption), mode=0o600)
    if chain:
        atomic_write_bytes(folder / CHAIN, b"".join(_pem(c) for c in chain))
    atomic_write_bytes(folder / CERT, _pem(cert))
    return cert


def reencrypt_key(
    key_file: str | Path,
    passphrase: bytes,
    new_passphrase: bytes | None = None,
    *,
    encryption: KeyEncryption | None = None,
) -> KeyEncryption | None:
    """Rewrite ``key_file`` (in place, atomically) with today's encryption; returns the old encryption.

    ``new_passphrase`` changes the passphrase as well (default: keep it).
    """
    path = Path(key_file)
    key, old = _load_key_file(path, passphrase)
    atomic_write_bytes(path, _encrypted_pem(key, new_passphrase or passphrase, encryption), mode=0o600)
    return old


def key_file_encryption(path: str | Path) -> KeyEncryption | None:
    """How the key file at ``path`` is encrypted (None when it is not), without decrypting it."""
    if not Path(path).exists():
        raise KeyFileError(f"{path}: no such key file")
    return inspect_key_encryption(read_input_bytes(path), where=str(path))


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
    key, encryption = _load_key_file(folder / KEY, passphrase)
    if key.public_key().public_numbers() != _rsa_public(cert).public_numbers():
        raise KeyFileError(f"{folder / KEY} does not belong to the certificate {folder / CERT}")
    chain = tuple(load_certificates(folder / CHAIN)) if (folder / CHAIN).exists() else ()
    return Identity(certificate=cert, key=FileKey(key, encryption), chain=chain)


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


def _load_private_key(path: Path, passphrase: bytes | None, *, allow_plain: bool = False) -> rsa.RSAPrivateKey:
    return _load_key_file(path, passphrase, allow_plain=allow_plain)[0]


def _load_key_file(
    path: Path, passphrase: bytes | None, *, allow_plain: bool = False
) -> tuple[rsa.RSAPrivateKey, KeyEncryption | None]:
    """Decrypt the RSA key in ``path``; its encryption is inspected (and absurd KDF costs refused) first."""
    if not path.exists():
        raise KeyFileError(f"{path}: no such key file")
    data = read_input_bytes(path)
    encryption = inspect_key_encryption(data, where=str(path))
    if encryption is None and not allow_plain:
        raise KeyFileError(f"{path} is not encrypted; radproof only uses keys encrypted at rest")
    if encryption is not None and not passphrase:
        raise PassphraseError(f"{path} is encrypted: a passphrase is needed to open it")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase if encryption is not None else None)
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
    return key, encryption


def _rsa_public(cert: x509.Certificate) -> rsa.RSAPublicKey:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFileError("the certificate does not hold an RSA public key")
    return key
