"""Signing keys held on a PKCS#11 token (smart card, HSM; SoftHSM2 in tests).

Tokens are named with RFC 7512 ``pkcs11:`` URIs, for example::

    pkcs11:token=radiology;object=alice?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin

The PIN comes from ``pin-value`` or ``pin-source`` in the URI, or from the caller (the command line's
passphrase mechanism). The private key never leaves the token: radproof hashes the stream itself and
asks the token for a raw PKCS#1 v1.5 signature over the DigestInfo (mechanism CKM_RSA_PKCS).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote

from cryptography.hazmat.primitives.asymmetric import rsa

from radproof.errors import KeyFileError, PassphraseError, PolicyError
from radproof.provenance.codes import DEFAULT_RSA_BITS, MIN_RSA_BITS, MacAlgorithm

_DIGEST_INFO = {
    MacAlgorithm.SHA256: bytes.fromhex("3031300d060960864801650304020105000420"),
    MacAlgorithm.SHA384: bytes.fromhex("3041300d060960864801650304020205000430"),
    MacAlgorithm.SHA512: bytes.fromhex("3051300d060960864801650304020305000440"),
}


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parts of an RFC 7512 URI that radproof uses."""

    module_path: str
    token: str | None = None
    object: str | None = None
    id: bytes | None = None
    pin_value: str | None = None
    pin_source: str | None = None

    @classmethod
    def parse(cls, uri: str) -> Pkcs11Uri:
        """Parse ``pkcs11:path-attributes?query-attributes``; ``module-path`` is required."""
        if not uri.startswith("pkcs11:"):
            raise KeyFileError(f"{uri!r} is not a pkcs11: URI (RFC 7512)")
        body = uri[len("pkcs11:") :]
        path, _, query = body.partition("?")
        attrs: dict[str, str] = {}
        for part in [p for p in path.split(";") if p] + [q for q in query.split("&") if q]:
            name, sep, value = part.partition("=")
            if not sep:
                raise KeyFileError(f"pkcs11 URI attribute {part!r} has no value")
            attrs[name.strip().lower()] = unquote(value)
        module = attrs.get("module-path")
        if not module:
            raise KeyFileError("the pkcs11 URI needs module-path=/path/to/the/pkcs11/library.so")
        id_text = attrs.get("id")
        return cls(
            module_path=module,
            token=attrs.get("token"),
            object=attrs.get("object"),
            id=id_text.encode("latin-1") if id_text is not None else None,
            pin_value=attrs.get("pin-value"),
            pin_source=attrs.get("pin-source"),
        )

    def pin(self, fallback: bytes | None = None) -> str:
        """The user PIN: ``pin-value``, then ``pin-source`` (a file), then ``fallback``."""
        if self.pin_value is not None:
            return self.pin_value
        if self.pin_source is not None:
            source = self.pin_source.removeprefix("file:")
            try:
                return Path(source).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise PassphraseError(f"cannot read the token PIN from {source}: {exc.strerror}") from None
        if fallback is None:
            raise PassphraseError("the token needs a PIN: pin-source in the URI, or the passphrase options")
        return fallback.decode("utf-8")


class Pkcs11Session:
    """An open, logged-in session on a token; use as a context manager."""

    def __init__(self, uri: Pkcs11Uri, pin: str, *, rw: bool = False) -> None:
        import pkcs11

        self.uri = uri
        try:
            lib = pkcs11.lib(uri.module_path)
        except Exception as exc:
            raise KeyFileError(f"cannot load the PKCS#11 module {uri.module_path} ({exc})") from None
        try:
            token = lib.get_token(token_label=uri.token) if uri.token else next(iter(lib.get_tokens()))
        except (pkcs11.NoSuchToken, StopIteration):
            raise KeyFileError(f"no PKCS#11 token labelled {uri.token!r} in {uri.module_path}") from None
        except pkcs11.MultipleTokensReturned:
            raise KeyFileError("several tokens match; name one with token=LABEL in the URI") from None
        try:
            self._session: Any = token.open(user_pin=pin, rw=rw)
        except pkcs11.PinIncorrect:
            raise PassphraseError(f"the PIN does not open token {uri.token!r}") from None
        except pkcs11.PKCS11Error as exc:
            raise KeyFileError(f"cannot open token {uri.token!r} ({type(exc).__name__})") from None

    def __enter__(self) -> Pkcs11Session:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Log out and close the session."""
        self._session.close()

    def _find(self, object_class: Any) -> Any:
        import pkcs11
        from pkcs11 import Attribute, KeyType

        query: dict[Any, Any] = {Attribute.CLASS: object_class, Attribute.KEY_TYPE: KeyType.RSA}
        if self.uri.object is not None:
            query[Attribute.LABEL] = self.uri.object
        if self.uri.id is not None:
            query[Attribute.ID] = self.uri.id
        found = list(self._session.get_objects(query))
        if not found:
            return None
        if len(found) > 1:
            raise KeyFileError("several keys match the pkcs11 URI; add object=LABEL or id=...")
        del pkcs11
        return found[0]

    def signing_key(self) -> Pkcs11Key:
        """The private key the URI names."""
        from pkcs11 import ObjectClass

        key = self._find(ObjectClass.PRIVATE_KEY)
        if key is None:
            raise KeyFileError(f"no RSA private key {self.uri.object!r} on token {self.uri.token!r}")
        return Pkcs11Key(key, self.public_key())

    def public_key(self) -> rsa.RSAPublicKey:
        """The public half of the key the URI names."""
        from pkcs11 import Attribute, ObjectClass

        key = self._find(ObjectClass.PUBLIC_KEY)
        if key is None:
            raise KeyFileError(f"no RSA public key {self.uri.object!r} on token {self.uri.token!r}")
        n = int.from_bytes(key[Attribute.MODULUS], "big")
        e = int.from_bytes(key[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(e, n).public_key()

    def generate_key(self, bits: int = DEFAULT_RSA_BITS) -> rsa.RSAPublicKey:
        """Create an RSA key pair on the token (non-extractable); return its public key."""
        from pkcs11 import Attribute, KeyType

        if bits < MIN_RSA_BITS:
            raise PolicyError(f"RSA keys shorter than {MIN_RSA_BITS} bits are refused (asked for {bits})")
        if self.uri.object is None:
            raise KeyFileError("name the new key with object=LABEL in the pkcs11 URI")
        if self._find_any():
            raise KeyFileError(f"a key labelled {self.uri.object!r} already exists on the token")
        self._session.generate_keypair(
            KeyType.RSA,
            bits,
            label=self.uri.object,
            id=self.uri.id or self.uri.object.encode("utf-8"),
            store=True,
            private_template={Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True},
        )
        return self.public_key()

    def _find_any(self) -> bool:
        from pkcs11 import ObjectClass

        return self._find(ObjectClass.PRIVATE_KEY) is not None


class Pkcs11Key:
    """A token-held RSA key that signs digests (implements :class:`~radproof.provenance.identity.SigningKey`)."""

    def __init__(self, key: Any, public: rsa.RSAPublicKey) -> None:
        self._key = key
        self.public = public

    @property
    def key_size(self) -> int:
        return int(self.public.key_size)

    def sign_digest(self, digest: bytes, algorithm: MacAlgorithm) -> bytes:
        from pkcs11 import Mechanism

        prefix = _DIGEST_INFO.get(algorithm)
        if prefix is None:
            raise PolicyError(f"{algorithm.value} is too weak for a new signature: use SHA256 or stronger")
        return bytes(self._key.sign(prefix + digest, mechanism=Mechanism.RSA_PKCS))
