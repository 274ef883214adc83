"""Secrets encrypted at rest with a passphrase (scrypt + AES-256-GCM).

Used for watermark keys and any other secret that is not a PEM private key (PEM keys use PKCS#8
PBES2, see :mod:`radproof.provenance.identity`). The sealed form is a small JSON document, so a reader
can see what it is without being able to use it.
"""

from __future__ import annotations

import base64
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from radproof.errors import KeyFileError, PassphraseError

FORMAT = "radproof-sealed-v1"
# scrypt cost of new files: OWASP's first choice (N=2^17, r=8, p=1: 128 MiB, about 0.4 s on a current
# core). Files made with the earlier N=2^15 still open. (PEM private keys cannot use this: OpenSSL,
# and so dcmsign, refuses scrypt above 32 MiB; see provenance/identity.py.)
_N, _R, _P = 2**17, 8, 1
# Reading: refused before deriving anything above these (a crafted file must not take the machine).
_MAX_N, _MAX_MEMORY, _MAX_WORK = 2**20, 2**30, 2**24


def _kdf(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)


def _acceptable_cost(n: int, r: int, p: int) -> bool:
    power_of_two = n > 0 and n & (n - 1) == 0
    return (
        power_of_two
        and 2**14 <= n <= _MAX_N
        and 1 <= r <= 16
        and 1 <= p <= 4
        and 128 * n * r <= _MAX_MEMORY
        and n * r * p <= _MAX_WORK
    )


def seal(secret: bytes, passphrase: bytes, *, kind: str) -> bytes:
    """Encrypt ``secret`` under ``passphrase``; ``kind`` names what it is (authenticated, not secret)."""
    if not passphrase:
        raise PassphraseError("an empty passphrase is not allowed for a secret key")
    salt, nonce = os.urandom(16), os.urandom(12)
    key = _kdf(passphrase, salt, _N, _R, _P)
    header = {"format": FORMAT, "kind": kind, "kdf": {"name": "scrypt", "n": _N, "r": _R, "p": _P}}
    aad = json.dumps(header, sort_keys=True).encode()
    body = AESGCM(key).encrypt(nonce, secret, aad)
    doc = dict(header)
    doc["salt"] = base64.b64encode(salt).decode()
    doc["nonce"] = base64.b64encode(nonce).decode()
    doc["ciphertext"] = base64.b64encode(body).decode()
    return (json.dumps(doc, indent=1) + "\n").encode()


def unseal(blob: bytes, passphrase: bytes, *, kind: str) -> bytes:
    """Decrypt a sealed secret of the expected ``kind``."""
    try:
        doc = json.loads(blob.decode("utf-8"))
        if doc.get("format") != FORMAT:
            raise ValueError("format")
        kdf = doc["kdf"]
        header = {"format": doc["format"], "kind": doc["kind"], "kdf": kdf}
        salt = base64.b64decode(doc["salt"], validate=True)
        nonce = base64.b64decode(doc["nonce"], validate=True)
        body = base64.b64decode(doc["ciphertext"], validate=True)
        n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise KeyFileError("not a radproof key file (expected a sealed JSON document)") from None
    if doc["kind"] != kind:
        raise KeyFileError(f"this file holds a {doc['kind']!r}, not a {kind!r}")
    if kdf.get("name") != "scrypt" or not _acceptable_cost(n, r, p):
        raise KeyFileError(
            f"key file uses unsupported or unsafe key-derivation parameters (scrypt N={n} r={r} p={p}; "
            "radproof accepts N a power of two from 2^14 to 2^20, at most 1 GiB and N*r*p up to 2^24)"
        )
    aad = json.dumps(header, sort_keys=True).encode()
    try:
        return AESGCM(_kdf(passphrase, salt, n, r, p)).decrypt(nonce, body, aad)
    except InvalidTag:
        raise PassphraseError("wrong passphrase, or the key file was altered") from None
