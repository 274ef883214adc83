"""Does a DICOM data set's declared transfer syntax describe the bytes it was read from?

pydicom guesses when the declaration is wrong (explicit VR declared, implicit VR written, or the
byte order swapped) and reads on. Another reader may decode the same bytes differently and so see
other values than radproof verified; such a file is refused, never judged on a guess.
"""

from __future__ import annotations

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
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
