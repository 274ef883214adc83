"""Would every DICOM reader see the same data set in these bytes? Two ways they would not.

* The declared transfer syntax does not describe the bytes (explicit VR declared, implicit VR
  written, or the byte order swapped): pydicom guesses and reads on.
* An element appears twice, or out of order: pydicom keeps the last one.

Either way another reader may decode the same bytes differently and so see other values than the
ones radproof verified; such a file is refused, never judged on a guess.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import data_element_generator
from pydicom.uid import UID


def encoding_problem(ds: Dataset) -> str | None:
    """Why the declared transfer syntax does not match how the elements were read (None when it does).

    Only elements still raw (as read, not yet decoded) record how they were read; a data set built or
    fully decoded in memory has nothing to compare, and passes.
    """
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid is None:
        return None
    syntax = UID(str(uid))
    if not syntax.is_transfer_syntax or syntax.is_deflated:
        return None
    for _, raw in ds.items():
        if not isinstance(raw, RawDataElement):
            continue
        if raw.is_implicit_VR != syntax.is_implicit_VR or raw.is_little_endian != syntax.is_little_endian:
            vr = "implicit" if raw.is_implicit_VR else "explicit"
            order = "little" if raw.is_little_endian else "big"
            return (
                f"the transfer syntax {syntax.name or syntax} does not match the encoded bytes "
                f"({vr} VR {order} endian): the file is malformed and cannot be judged"
            )
    return None


def element_order_problem(fp: BinaryIO) -> str | None:
    """Why the top-level elements of a Part 10 file are not in strictly ascending tag order (None: they are).

    DICOM requires ascending tags, each at most once. pydicom keeps the last of two elements with one tag;
    another reader may keep the first, and show a value other than the one verified. So a file with a
    repeated or out-of-order element is refused. Values are skipped, not read (the scan costs no memory).
    """
    start = fp.tell()
    try:
        head = fp.read(132)
        if len(head) < 132 or head[128:132] != b"DICM":
            return None  # no Part 10 header: pydicom found the encoding by guessing; judged elsewhere
        syntax = _meta_syntax(fp)
        if syntax is None or not syntax.is_transfer_syntax or syntax.is_deflated:
            return None
        previous = -1
        elements = data_element_generator(fp, syntax.is_implicit_VR, syntax.is_little_endian, defer_size=1)
        for element in elements:
            tag = int(element.tag)
            if tag <= previous:
                kind = "repeated" if tag == previous else "out of order"
                return (
                    f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) is {kind}: readers disagree on which value "
                    "counts, so the file cannot be judged"
                )
            previous = tag
    except Exception:
        return None
    finally:
        fp.seek(start)
    return None


def _meta_syntax(fp: BinaryIO) -> UID | None:
    """The Transfer Syntax UID of the file meta group, leaving ``fp`` at the first data set element."""
    syntax = None
    while True:
        at = fp.tell()
        header = fp.read(8)
        if len(header) < 8:
            return None
        group, element = struct.unpack("<HH", header[:4])
        if group != 0x0002:
            fp.seek(at)
            return syntax
        vr = header[4:6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV", b"SV", b"UV"):
            length = struct.unpack("<I", fp.read(4))[0]
        else:
            length = struct.unpack("<H", header[6:8])[0]
        value = fp.read(length)
        if element == 0x0010:
            syntax = UID(value.rstrip(b"\0 ").decode("ascii", "replace"))
