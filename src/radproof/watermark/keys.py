"""Secret watermark keys: generation, sub-key derivation, sealed storage."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from radproof.errors import KeyFileError
from radproof.fileio import atomic_write_bytes, read_input_bytes
from radproof.sealed import seal, unseal

KEY_KIND = "radproof-watermark-key"
_FORMAT = "radproof-watermark-key-v1"


@dataclass(frozen=True, repr=False)
class WatermarkKey:
    """A 256-bit secret from which every keyed pattern and tag of both layers is derived."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise KeyFileError("a watermark key must hold 32 secret bytes")

    def __repr__(self) -> str:
        return f"WatermarkKey(id={self.key_id})"

    @property
    def key_id(self) -> str:
        """A short public fingerprint of the key (safe to log)."""
        return hashlib.sha256(b"radproof-wm-id" + self.secret).hexdigest()[:16]

    def derive(self, label: str, length: int = 32) -> bytes:
        """A sub-key for one purpose (HKDF-like expansion with HMAC-SHA256)."""
        out = b""
        counter = 0
        while len(out) < length:
            counter += 1
            out += hmac.new(self.secret, f"{label}|{counter}".encode(), hashlib.sha256).digest()
        return out[:length]

    def seed(self, label: str) -> int:
        """A 64-bit seed for a keyed pseudo-random generator."""
        return int.from_bytes(self.derive(label, 8), "big")


def generate_key() -> WatermarkKey:
    """A fresh random watermark key."""
    return WatermarkKey(secrets.token_bytes(32))


def key_to_bytes(key: WatermarkKey) -> bytes:
    doc = {"format": _FORMAT, "secret": base64.b64encode(key.secret).decode(), "id": key.key_id}
    return json.dumps(doc).encode()


def key_from_bytes(blob: bytes) -> WatermarkKey:
    try:
        doc = json.loads(blob.decode("utf-8"))
        if doc.get("format") != _FORMAT:
            raise ValueError("format")
        secret = base64.b64decode(doc["secret"], validate=True)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise KeyFileError("the key file does not hold a radproof watermark key") from None
    return WatermarkKey(secret)


def save_key(key: WatermarkKey, path: str | os.PathLike[str], passphrase: bytes) -> Path:
    """Write ``key`` to ``path`` encrypted under ``passphrase`` (file mode 0600)."""
    return atomic_write_bytes(path, seal(key_to_bytes(key), passphrase, kind=KEY_KIND), mode=0o600)


def load_key(path: str | os.PathLike[str], passphrase: bytes) -> WatermarkKey:
    """Read and decrypt a key written by :func:`save_key`."""
    try:
        blob = read_input_bytes(path, limit=1 << 16)
    except Exception as exc:
        raise KeyFileError(f"cannot read watermark key: {exc}") from None
    return key_from_bytes(unseal(blob, passphrase, kind=KEY_KIND))
