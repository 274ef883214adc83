"""What compressed data declares, read before any decoder runs (the decoders allocate what it says).

A DICOM header can declare a small image while its JPEG or JPEG 2000 frames declare a huge one,
and a deflated dataset can inflate to gigabytes from a megabyte. These readers look only at the
codestream headers (JPEG SOF, JPEG 2000 SIZ) and count inflated bytes without keeping them, so
:mod:`radproof.imaging.dicom_io` can refuse such files while they are still small.
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

from radproof.errors import InputError, ResourceLimitError
from radproof.limits import PIXEL_BYTES_ENV

DEFLATED = "1.2.840.10008.1.2.1.99"
#: JPEG start-of-frame markers (baseline, extended, progressive, lossless, arithmetic; JPEG-LS SOF55).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
#: Markers without a length field.
_STANDALONE = {0x01, *range(0xD0, 0xD9)}
_J2K_START = b"\xff\x4f\xff\x51"  # SOC then SIZ, the first two markers of every JPEG 2000 codestream
_CHUNK = 1 << 20
_J2K_SYNTAXES = frozenset(f"1.2.840.10008.1.2.4.{n}" for n in (90, 91, 92, 93, 201, 202, 203))


class FrameSize(NamedTuple):
    rows: int
    cols: int
    components: int
    precision: int  # bits per sample


def jpeg_frame_size(data: bytes) -> FrameSize | None:
    """The size a JPEG (or JPEG-LS) codestream's SOF declares; None when there is no SOF to read."""
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker in _SOF:
            if pos + 10 > n:
                return None
            precision, rows, cols, comps = struct.unpack_from(">BHHB", data, pos + 4)
            return FrameSize(rows, cols, comps, precision)
        if marker in (0xD9, 0xDA) or length < 2:  # end of image or scan data before any SOF
            return None
        pos += 2 + length
    return None


def j2k_frame_size(data: bytes) -> FrameSize | None:
    """The image size a JPEG 2000 codestream's SIZ marker declares (a JP2 wrapper is looked into)."""
    at = 0 if data.startswith(_J2K_START) else data.find(_J2K_START, 0, 1 << 16)
    if at < 0 or at + 42 > len(data):
        return None
    xsiz, ysiz, xo, yo = struct.unpack_from(">IIII", data, at + 8)
    (comps,) = struct.unpack_from(">H", data, at + 40)
    precision = (data[at + 42] & 0x7F) + 1 if at + 42 < len(data) else 16
    return FrameSize(max(0, ysiz - yo), max(0, xsiz - xo), comps, precision)


def frame_size(data: bytes, transfer_syntax: str) -> FrameSize | None:
    """The size a compressed frame declares, for the JPEG family and JPEG 2000; None for others (RLE)."""
    if data[:2] == b"\xff\xd8":
        return jpeg_frame_size(data)
    if transfer_syntax in _J2K_SYNTAXES:
        return j2k_frame_size(data)
    return None


def deflated_body_offset(data: bytes) -> int | None:
    """Where the deflated dataset starts, when the file's meta information says Deflated Explicit VR LE.

    Reads group 0002 (always explicit VR little endian) by hand: pydicom would inflate the whole
    rest of the file as soon as it saw the transfer syntax.
    """
    pos = 132 if len(data) >= 132 and data[128:132] == b"DICM" else 0
    syntax = None
    n = len(data)
    while pos + 8 <= n:
        group, _elem = struct.unpack_from("<HH", data, pos)
        if group != 0x0002:
            break
        vr = data[pos + 4 : pos + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV"):
            if pos + 12 > n:
                return None
            (length,) = struct.unpack_from("<I", data, pos + 8)
            start = pos + 12
        else:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            start = pos + 8
        if _elem == 0x0010:
            syntax = data[start : start + length].rstrip(b"\0 ").decode("ascii", "replace")
        pos = start + length
    return pos if syntax == DEFLATED else None


def check_inflated_size(data: bytes, offset: int, limit: int, label: str) -> None:
    """Refuse a deflated dataset that inflates to more than ``limit`` bytes (counted, never kept whole)."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    view = memoryview(data)[offset:]
    try:
        for start in range(0, len(view), _CHUNK):
            pending = bytes(view[start : start + _CHUNK])
            while pending:
                out = inflater.decompress(pending, _CHUNK)
                total += len(out)
                if total > limit:
                    raise ResourceLimitError(
                        f"{label}: the deflated dataset inflates to more than {limit / 2**20:.0f} MiB "
                        f"(from {len(view) / 2**20:.1f} MiB); set {PIXEL_BYTES_ENV} to raise the limit"
                    )
                pending = inflater.unconsumed_tail
            if inflater.eof:
                break
    except zlib.error as exc:
        raise InputError(f"{label}: corrupt deflated dataset ({exc})") from None
    finally:
        view.release()
