"""Coded values of the provenance layer: signature purposes (CID 7007), signer roles, MAC algorithms; DER helper."""

from __future__ import annotations

from enum import Enum, StrEnum

from radproof.errors import PolicyError

# Coding scheme of the signature purpose codes (ASTM E1762), as DICOM CID 7007 lists them.
PURPOSE_SCHEME = "ASTM-sigpurpose"


class Purpose(Enum):
    """Why a signature was made (DICOM CID 7007, a subset); the value is the code value."""

    AUTHOR = "1"
    APPROVAL = "5"
    SOURCE = "14"

    @property
    def meaning(self) -> str:
        """The code meaning as CID 7007 words it."""
        return _PURPOSE_MEANINGS[self.value]

    @property
    def label(self) -> str:
        """The short name used on the command line and in reports (source, author, approval)."""
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Purpose:
        """Parse ``source``, ``author`` or ``approval``."""
        try:
            return cls[label.strip().upper()]
        except KeyError:
            raise PolicyError(f"unknown signature purpose {label!r}: use source, author or approval") from None


_PURPOSE_MEANINGS = {
    "1": "Author's Signature",
    "2": "Coauthor's Signature",
    "3": "Co-participant's Signature",
    "4": "Transcriptionist/Recorder Signature",
    "5": "Verification Signature",
    "6": "Validation Signature",
    "7": "Consent Signature",
    "8": "Signature Witness Signature",
    "9": "Event Witness Signature",
    "10": "Identity Witness Signature",
    "11": "Consent Witness Signature",
    "12": "Interpreter Signature",
    "13": "Review Signature",
    "14": "Source Signature",
    "15": "Addendum Signature",
    "16": "Modification Signature",
    "17": "Administrative (Error/Edit) Signature",
    "18": "Timestamp Signature",
}


def purpose_name(code_value: str) -> str:
    """A readable name for any CID 7007 code value (``source`` for the three radproof makes)."""
    for purpose in Purpose:
        if purpose.value == code_value:
            return purpose.label
    meaning = _PURPOSE_MEANINGS.get(code_value)
    return meaning if meaning else f"code {code_value}"


class Role(StrEnum):
    """Who holds a signing identity; recorded in the certificate's subject title and read back by verify."""

    TECHNOLOGIST = "technologist"
    RADIOLOGIST = "radiologist"
    DEVICE = "device"

    @classmethod
    def parse(cls, text: str) -> Role:
        """Parse a role name (case-insensitive)."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise PolicyError(f"unknown role {text!r}: use technologist, radiologist or device") from None


class MacAlgorithm(Enum):
    """MAC Algorithm (0400,0015) values; ``strong`` ones are allowed for new signatures."""

    SHA256 = "SHA256"
    SHA384 = "SHA384"
    SHA512 = "SHA512"
    SHA1 = "SHA1"
    MD5 = "MD5"
    RIPEMD160 = "RIPEMD160"

    @property
    def strong(self) -> bool:
        """SHA-2 family only."""
        return self in (MacAlgorithm.SHA256, MacAlgorithm.SHA384, MacAlgorithm.SHA512)

    @property
    def hashlib_name(self) -> str:
        """The name :func:`hashlib.new` knows."""
        return self.value.lower()


MIN_RSA_BITS = 2048
DEFAULT_RSA_BITS = 3072


def der_without_padding(data: bytes) -> bytes:
    """DICOM pads OB values to even length; cut a DER value to the length its header declares."""
    if len(data) < 2:
        return data
    first = data[1]
    if first < 0x80:
        total = 2 + first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(data) < 2 + count:
            return data
        total = 2 + count + int.from_bytes(data[2 : 2 + count], "big")
    return data[:total] if total <= len(data) else data
