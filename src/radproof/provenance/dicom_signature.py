"""The byte stream a DICOM digital signature covers (PS3.15 Annex C), and nothing else.

This module is private to :mod:`radproof.provenance`: callers sign and verify through
:mod:`radproof.provenance.signer` and :mod:`radproof.provenance.verifier`.

The rules, checked byte for byte against DCMTK ``dcmsign --dump``:

* the stream is encoded in Explicit VR Little Endian, or in the file's own transfer syntax when it is
  encapsulated (all encapsulated syntaxes are explicit VR little endian too, so only the recorded UID differs);
* the signed elements (top level, ascending tag order) are written as tag, VR, length, value;
* sequences are written as tag, ``SQ``, two zero bytes and no length; each item as the item tag alone,
  then its elements; the sequence delimiter tag closes the sequence;
* encapsulated pixel data is written as tag, ``OB``, two zero bytes, then each fragment (basic offset
  table included) as the item tag followed by its bytes, then the sequence delimiter tag;
* after the signed elements come the signature item's own attributes: MAC ID Number, Digital Signature
  UID, Digital Signature DateTime, Certificate Type and the Purpose Code Sequence when present.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, TypeGuard, cast

from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.fileutil import read_undefined_length_value
from pydicom.filewriter import correct_ambiguous_vr_element, write_data_element
from pydicom.tag import SequenceDelimiterTag
from pydicom.uid import UID

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"

DIGITAL_SIGNATURES_SEQUENCE = 0xFFFAFFFA
MAC_PARAMETERS_SEQUENCE = 0x4FFE0001
PIXEL_DATA = 0x7FE00010
# Attributes of a Digital Signatures Sequence item that the stream covers, in tag order.
SIGNATURE_ITEM_TAGS = (0x04000005, 0x04000100, 0x04000105, 0x04000110, 0x04000401)

_ITEM = b"\xfe\xff\x00\xe0"
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0"
_ITEM_DELIMITER_TAG = 0xFFFEE00D
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})


class MissingSignedElement(Exception):
    """A tag listed in Data Elements Signed is not in the dataset any more."""

    def __init__(self, tag: int) -> None:
        super().__init__(f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
        self.tag = tag


class MalformedElement(Exception):
    """An element cannot be encoded into the stream (corrupt value or unknown structure)."""


def is_signable_tag(tag: int) -> bool:
    """Whether PS3.15 lets a signature cover this tag (ignoring its VR)."""
    group, element = tag >> 16, tag & 0xFFFF
    if element == 0 or group < 0x0008 or group == 0xFFFA:
        return False
    return tag not in (524289, MAC_PARAMETERS_SEQUENCE, 4294770684, _ITEM_DELIMITER_TAG, 4294893789)


def stream_transfer_syntax(ds: Dataset) -> str:
    """The transfer syntax the MAC stream is encoded in (recorded as MAC Calculation Transfer Syntax UID)."""
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid is not None and UID(str(uid)).is_encapsulated:
        return str(uid)
    return EXPLICIT_VR_LITTLE_ENDIAN


def eligible_tags(ds: Dataset) -> list[int]:
    """Top-level tags a new signature covers: every signable element whose VR is known."""
    tags: list[int] = []
    for key, raw in sorted(ds.items()):  # raw elements as parsed (deferred ones stay unread)
        tag = int(key)
        if not is_signable_tag(tag):
            continue
        vr = _explicit_vr(raw)
        if vr is not None:
            if vr != "UN":
                tags.append(tag)
            continue
        try:
            elem = _resolved(ds, tag)
        except Exception:  # noqa: S112 (a value pydicom cannot decode is not signable either)
            continue
        if elem.VR == "UN" or (elem.VR == "SQ" and _sequence_has_unknown(elem)):
            continue
        tags.append(tag)
    return tags


def mac_stream(
    ds: Dataset, signed_tags: Iterable[int], signature_item: Dataset, values: FileValues | None = None
) -> Iterator[bytes | memoryview]:
    """Yield the bytes the MAC covers, in chunks (pixel data is passed through without a copy).

    ``values`` reads the values the parser deferred (see :func:`load_unstreamed`) from the open file; such a
    chunk is only valid until the next one is asked for.

    Raises
    ------
    MissingSignedElement
        When a signed tag is absent from ``ds``.
    MalformedElement
        When an element cannot be encoded.
    """
    encodings = _encodings(ds)
    elements: dict[int, Any] = {int(key): raw for key, raw in ds.items()}  # no tag conversion per look-up
    for tag in signed_tags:
        raw = elements.get(tag)
        if raw is None:
            raise MissingSignedElement(tag)
        yield from _element(ds, tag, encodings, values, raw)
    item_encodings = _encodings(signature_item, encodings)
    for tag in SIGNATURE_ITEM_TAGS:
        if tag in signature_item:
            yield from _element(signature_item, tag, item_encodings)


# --- encoding --------------------------------------------------------------------------------------------


def _encodings(ds: Dataset, default: list[str] | None = None) -> list[str]:
    charset = ds.get_item(0x00080005)
    if charset is None:
        return default or ["iso8859"]
    try:
        value = ds[0x00080005].value
        names = [value] if isinstance(value, str) else list(value)
        return list(convert_encodings(names))
    except Exception:
        return default or ["iso8859"]


def _resolved(ds: Dataset, tag: int) -> DataElement:
    """The element with a concrete two-letter VR (dictionary lookup for implicit VR, ambiguities resolved)."""
    raw = ds.get_item(tag)
    if raw is None:
        raise MissingSignedElement(tag)
    if isinstance(raw, RawDataElement):
        elem = convert_raw_data_element(raw, ds=ds)
        if raw.VR is not None:
            # Explicit VR: the file's VR is authoritative (pydicom may replace UN by a dictionary VR).
            elem.VR = raw.VR
    else:
        elem = raw
    if elem.VR is None or len(elem.VR) != 2:
        elem = correct_ambiguous_vr_element(elem, ds, True)  # type: ignore[assignment]
        if elem.VR is None or len(elem.VR) != 2:
            # pydicom leaves 'OB or OW' on implicit pixel data without context; DICOM says OW.
            elem.VR = "OW" if "OW" in str(elem.VR) else "UN"
    return elem


def _sequence_has_unknown(elem: DataElement) -> bool:
    for item in elem.value or []:
        for tag in item.keys():  # noqa: SIM118 (tags, not elements)
            try:
                child = _resolved(item, int(tag))
            except Exception:
                return True
            if child.VR == "UN" or (child.VR == "SQ" and _sequence_has_unknown(child)):
                return True
    return False


_HEAD_UNDEFINED = struct.Struct("<HH2sH")  # tag, VR, two zero bytes
_HEAD_LONG = struct.Struct("<HH2sHI")  # tag, VR, two zero bytes, 32-bit length
_HEAD_SHORT = struct.Struct("<HH2sH")  # tag, VR, 16-bit length


def _header(tag: int, vr: str, length: int | None) -> bytes:
    code = vr.encode("ascii")
    if length is None:  # undefined-length element in the stream: no length field at all
        return _HEAD_UNDEFINED.pack(tag >> 16, tag & 0xFFFF, code, 0)
    if vr in _LONG_VRS:
        return _HEAD_LONG.pack(tag >> 16, tag & 0xFFFF, code, 0, length)
    return _HEAD_SHORT.pack(tag >> 16, tag & 0xFFFF, code, length)


def _explicit_vr(raw: Any) -> str | None:
    """The VR of a raw explicit-VR element that needs no decoding (not a sequence), else None."""
    if isinstance(raw, RawDataElement) and raw.VR is not None and len(raw.VR) == 2 and raw.VR != "SQ":
        return str(raw.VR)
    return None


def _passthrough(raw: RawDataElement) -> bool:
    return bool(raw.is_little_endian and raw.value is not None and raw.length != _UNDEFINED)


def _element(
    ds: Dataset, tag: int, encodings: list[str], values: FileValues | None = None, raw: Any = None
) -> Iterator[bytes | memoryview]:
    """The stream bytes of one element; ``raw`` is ``ds``'s element for ``tag`` as parsed, when known."""
    if raw is None:
        raw = ds.get_item(tag, keep_deferred=True)
    if values is not None and _deferred(raw) and _streamable(raw):
        # A big value the parser skipped: hashed straight from the file, chunk by chunk, never held whole.
        if raw.length == _UNDEFINED:
            yield _header(tag, "OB", None)
            yield from values.fragments(raw.value_tell)
            yield _SEQUENCE_DELIMITER
        else:
            length = values.available(raw.value_tell, raw.length)
            yield _header(tag, str(raw.VR), length)
            yield from values.chunks(raw.value_tell, length)
        return
    if _deferred(raw):
        raw = ds.get_item(tag)  # pydicom reads it now
    vr_fast = _explicit_vr(raw)
    if vr_fast is not None and isinstance(raw, RawDataElement) and raw.value is not None and _passthrough(raw):
        # The common case: bytes as read from an explicit VR little endian file, passed through.
        yield _header(tag, vr_fast, len(raw.value))
        yield raw.value
        return
    try:
        elem = _resolved(ds, tag)
    except MissingSignedElement:
        raise
    except Exception as exc:
        raise MalformedElement(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) cannot be decoded: {exc}") from None
    vr = elem.VR
    if vr == "SQ":
        yield _header(tag, "SQ", None)
        for item in elem.value or []:
            yield _ITEM
            item_encodings = _encodings(item, encodings)
            for child, child_raw in sorted(item.items()):
                if not is_signable_tag(int(child)):
                    continue
                yield from _element(item, int(child), item_encodings, None, child_raw)
        yield _SEQUENCE_DELIMITER
        return
    if _is_encapsulated(ds, tag, raw, elem):
        value = raw.value if isinstance(raw, RawDataElement) else elem.value
        yield _header(tag, "OB", None)
        yield from _items(_fragments(_as_bytes(value)))
        yield _SEQUENCE_DELIMITER
        return
    if isinstance(raw, RawDataElement) and raw.is_little_endian and raw.value is not None and raw.length != _UNDEFINED:
        value = raw.value
        yield _header(tag, vr, len(value))
        yield value
        return
    yield _encode_with_pydicom(elem, encodings)


def _is_encapsulated(ds: Dataset, tag: int, raw: Any, elem: DataElement) -> bool:
    if tag != PIXEL_DATA:
        return False
    if isinstance(raw, RawDataElement):
        return bool(raw.length == _UNDEFINED)
    if elem.is_undefined_length:
        return True
    return stream_transfer_syntax(ds) != EXPLICIT_VR_LITTLE_ENDIAN


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value) if not isinstance(value, bytes) else value
    raise MalformedElement("encapsulated pixel data has no byte value")


def _items(fragments: Iterator[bytes | memoryview]) -> Iterator[bytes | memoryview]:
    """Each fragment after its item tag; an odd fragment is followed by its pad byte inside the same item."""
    for fragment in fragments:
        yield _ITEM
        yield fragment
        if len(fragment) % 2:
            yield b"\x00"  # odd fragments are padded to even length, as DICOM requires (and DCMTK does)


def _fragment_length(header: bytes, pos: int, end: int) -> int | None:
    """Length of the fragment whose 8-byte item header starts at ``pos``; None at the sequence delimiter."""
    if end - pos < 8 or len(header) < 8:
        raise MalformedElement("encapsulated pixel data ends inside an item header")
    group, element, length = struct.unpack_from("<HHI", header)
    tag = (group << 16) | element
    if tag == 0xFFFEE0DD:
        return None
    if tag != 0xFFFEE000:
        raise MalformedElement(f"encapsulated pixel data has tag {group:04X},{element:04X} instead of an item")
    if length == _UNDEFINED or pos + 8 + length > end:
        raise MalformedElement("an encapsulated pixel data fragment runs past the end of the element")
    return int(length)


def _fragments(value: bytes) -> Iterator[bytes | memoryview]:
    view = memoryview(value)
    pos, end = 0, len(value)
    while pos < end:
        length = _fragment_length(value[pos : pos + 8], pos, end)
        if length is None:
            return
        yield view[pos + 8 : pos + 8 + length]
        pos += 8 + length


# --- values read straight from the file ----------------------------------------------------------------

# Values at least this big are skipped by the parser (pydicom's deferred read) when verifying a file, and the
# stream reads them from the file itself in chunks: pixel data is never copied whole into memory.
DEFER_SIZE = 256 * 1024
_CHUNK = 1 << 20


def _deferred(raw: object) -> TypeGuard[RawDataElement]:
    return isinstance(raw, RawDataElement) and raw.value is None and raw.length != 0


def _streamable(raw: RawDataElement) -> bool:
    """Deferred values :class:`FileValues` can stream: explicit VR little endian, not a sequence."""
    if not raw.is_little_endian or raw.VR is None or len(raw.VR) != 2 or raw.VR == "SQ":
        return False
    return raw.length != _UNDEFINED or raw.tag == PIXEL_DATA


def load_unstreamed(ds: Dataset, fh: io.BufferedIOBase) -> None:
    """Read now, from ``fh``, every deferred top-level value the stream cannot read in chunks itself.

    The value is read the way the parser would have read it (a file cut short gives a short value), so the
    dataset is exactly what a full read gives. What stays deferred (big explicit VR little endian values,
    encapsulated pixel data) is read by :class:`FileValues` while hashing.
    """
    for tag, raw in list(ds.items()):
        if not _deferred(raw) or _streamable(raw):
            continue
        fh.seek(raw.value_tell)
        if raw.length == _UNDEFINED:
            value = read_undefined_length_value(cast(BinaryIO, fh), raw.is_little_endian, SequenceDelimiterTag, None)
        else:
            value = fh.read(raw.length)
        ds[tag] = raw._replace(value=value)


class FileValues:
    """Deferred values read from the open file into one reused buffer (the file is the caller's to close)."""

    def __init__(self, fh: io.BufferedIOBase) -> None:
        self._fh = fh
        self._size = os.fstat(fh.fileno()).st_size
        self._buffer = memoryview(bytearray(_CHUNK))

    def available(self, offset: int, length: int) -> int:
        """How much of ``length`` bytes from ``offset`` the file holds (a full read would be this long)."""
        return max(0, min(length, self._size - offset))

    def chunks(self, offset: int, length: int) -> Iterator[memoryview]:
        """``length`` bytes from ``offset``; each chunk is valid until the next one is asked for."""
        self._fh.seek(offset)
        left = length
        while left > 0:
            got = self._fh.readinto(self._buffer[: min(left, _CHUNK)])
            if not got:
                raise MalformedElement(f"the file ends {left} bytes before the end of a value")
            left -= got
            yield self._buffer[:got]

    def fragments(self, offset: int) -> Iterator[bytes | memoryview]:
        """Encapsulated pixel data starting at ``offset``, as the stream has it: ``_items(_fragments(value))``.

        The element ends where the parser found its sequence delimiter (found again here the same way), so a
        damaged file gives the same reason as when the value is held in memory.
        """
        self._fh.seek(offset)
        value = read_undefined_length_value(cast(BinaryIO, self._fh), True, SequenceDelimiterTag, defer_size=1)
        if value is not None:  # the parser's fallback read it whole
            yield from _items(_fragments(value))
            return
        end = self._fh.tell() - 8  # after the delimiter item (tag, zero length)
        pos = offset
        while pos < end:
            self._fh.seek(pos)
            length = _fragment_length(self._fh.read(8), pos, end)
            if length is None:
                return
            yield _ITEM
            yield from self.chunks(pos + 8, length)
            if length % 2:  # exactly what _items(_fragments(...)) gives for a value held in memory
                yield b"\x00"
            pos += 8 + length


def pad_odd_fragments(ds: Dataset) -> bool:
    """Pad odd-length encapsulated pixel data fragments to even length in place; True when one was odd.

    Such files are not conformant and cannot be rewritten as they are; the pad byte is what DICOM prescribes.
    """
    if PIXEL_DATA not in ds:
        return False
    raw = ds.get_item(PIXEL_DATA)
    elem = _resolved(ds, PIXEL_DATA)
    if not _is_encapsulated(ds, PIXEL_DATA, raw, elem):
        return False
    value = _as_bytes(raw.value if isinstance(raw, RawDataElement) else elem.value)
    lengths: list[int] = []
    pos = 0
    while pos + 8 <= len(value):  # headers only: the common all-even case copies nothing
        group, element, length = struct.unpack_from("<HHI", value, pos)
        if (group, element) != (0xFFFE, 0xE000) or length == _UNDEFINED:
            return False
        lengths.append(length)
        pos += 8 + length
    if not any(length % 2 for length in lengths):
        return False
    view = memoryview(value)
    chunks: list[bytes | memoryview] = []
    pos = 0
    for length in lengths:
        data = view[pos + 8 : pos + 8 + length]
        chunks.append(struct.pack("<HHI", 0xFFFE, 0xE000, len(data) + length % 2))
        chunks.append(data)
        if length % 2:
            chunks.append(b"\x00")
        pos += 8 + length
    ds.add_new(PIXEL_DATA, "OB", b"".join(chunks))
    ds[PIXEL_DATA].is_undefined_length = True
    return True


def _encode_with_pydicom(elem: DataElement, encodings: list[str]) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = False
    try:
        write_data_element(buffer, elem, encodings)
    except Exception as exc:
        raise MalformedElement(f"{elem.tag} cannot be encoded: {exc}") from None
    return buffer.getvalue()
