"""Recording in a DICOM header that the pixels were watermarked, and writing the marked file.

A watermarked image is a modified image, so the written file says so: a new SOP Instance UID, Image
Type DERIVED, a Derivation Description, the original instance in Source Image Sequence, radproof as
Contributing Equipment ("Modifying Equipment"), and a small private block naming the layers. The
pixels are written uncompressed (Explicit VR Little Endian): never lossy re-encoding.
"""

from __future__ import annotations

import datetime as _dt
import io
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from radproof import __version__
from radproof.errors import UnsupportedError

PRIVATE_GROUP = 0x0069
PRIVATE_CREATOR = "RADPROOF WATERMARK"


def new_instance_header(header: Dataset, layers: tuple[str, ...], *, fragile_block: int | None) -> Dataset:
    """A copy of ``header`` describing the watermarked derivative (new SOP Instance UID)."""
    ds = Dataset()
    ds.update(header)
    original_uid = str(header.get("SOPInstanceUID", "") or "")
    ds.SOPInstanceUID = generate_uid()
    raw = header.get("ImageType")
    image_type = [str(v) for v in raw] if isinstance(raw, list | MultiValue) else ([str(raw)] if raw else [])
    ds.ImageType = ["DERIVED", *(image_type[1:] or ["PRIMARY"])]
    text = f"Invisible watermark embedded by radproof {__version__} (layers: {', '.join(layers)})" + (
        "; the fragile layer is reversible with the key" if "fragile" in layers else ""
    )
    previous = str(header.get("DerivationDescription", "") or "").strip()
    ds.DerivationDescription = (f"{previous}; {text}" if previous else text)[:1024]
    if original_uid and "SOPClassUID" in header:
        source = Dataset()
        source.ReferencedSOPClassUID = header.SOPClassUID
        source.ReferencedSOPInstanceUID = original_uid
        ds.SourceImageSequence = Sequence([*list(header.get("SourceImageSequence", [])), source])
    ds.ContributingEquipmentSequence = Sequence(
        [*list(header.get("ContributingEquipmentSequence", [])), _equipment("Watermark embedded")]
    )
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", "\\".join(layers))
    block.add_new(0x02, "LO", f"radproof {__version__}")
    if fragile_block is not None:
        block.add_new(0x03, "US", fragile_block)
    return ds


def record_header_digest(ds: Dataset, digest: bytes) -> None:
    """Keep the protected-header digest bound at marking in the private block (element 04).

    The copy is no evidence by itself (anyone can edit it): the fragile layer's binding record is.
    It lets a reader tell "the header changed since marking" from "the pixels do not match".
    """
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(0x04, "OB", digest)


def recorded_header_digest(ds: Dataset) -> bytes | None:
    """The digest :func:`record_header_digest` kept, or None."""
    try:
        block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
        value = block[0x04].value
    except (KeyError, ValueError):
        return None
    return bytes(value) if isinstance(value, bytes | bytearray) and len(value) == 32 else None


def recorded_layers(ds: Dataset) -> tuple[str, ...]:
    """The layers the private block says were embedded (empty when there is no block)."""
    try:
        block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
        value = block[0x01].value
    except (KeyError, ValueError):
        return ()
    items = value if isinstance(value, list | MultiValue) else str(value or "").split("\\")
    return tuple(str(v).strip().lower() for v in items if str(v).strip())


def restored_instance_header(header: Dataset) -> Dataset:
    """A copy of ``header`` for pixels whose fragile layer was removed (new SOP Instance UID)."""
    ds = Dataset()
    ds.update(header)
    ds.SOPInstanceUID = generate_uid()
    previous = str(header.get("DerivationDescription", "") or "").strip()
    note = "fragile watermark layer removed by radproof restore (pixels as before that layer)"
    ds.DerivationDescription = (f"{previous}; {note}" if previous else note)[:1024]
    ds.ContributingEquipmentSequence = Sequence(
        [*list(header.get("ContributingEquipmentSequence", [])), _equipment("Fragile watermark removed")]
    )
    layers = recorded_layers(header)
    if layers:
        block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
        block.add_new(0x01, "LO", "\\".join(layer for layer in layers if layer != "fragile") or "none")
        for element in (0x03, 0x04):
            if block.get_tag(element) in ds:
                del ds[block.get_tag(element)]
    return ds


def _equipment(description: str) -> Dataset:
    item = Dataset()
    item.Manufacturer = "radproof"
    item.SoftwareVersions = __version__
    item.ContributionDateTime = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d%H%M%S")
    item.ContributionDescription = description
    code = Dataset()
    code.CodeValue = "109103"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Modifying Equipment"
    item.PurposeOfReferenceCodeSequence = Sequence([code])
    return item


def encode_dicom(header: Dataset, pixels: npt.NDArray[Any]) -> bytes:
    """A Part 10 file: ``header`` with ``pixels`` as uncompressed Explicit VR Little Endian pixel data."""
    if pixels.dtype not in (np.uint8, np.uint16, np.int16):
        raise UnsupportedError(f"cannot write {pixels.dtype} pixels to DICOM")
    bits_allocated = int(header.get("BitsAllocated", 8 * pixels.dtype.itemsize))
    if bits_allocated != 8 * pixels.dtype.itemsize:
        raise UnsupportedError(f"BitsAllocated {bits_allocated} does not match {pixels.dtype} pixels")
    if int(header.get("SamplesPerPixel", 1)) != 1:
        raise UnsupportedError("only grayscale DICOM images can be watermarked")
    meta = FileMetaDataset()
    old_meta = getattr(header, "file_meta", None)
    if old_meta is not None:
        meta.update(old_meta)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = header.get("SOPClassUID", meta.get("MediaStorageSOPClassUID"))
    meta.MediaStorageSOPInstanceUID = header.SOPInstanceUID
    out = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    out.update(header)
    for keyword in ("PixelData", "ExtendedOffsetTable", "ExtendedOffsetTableLengths", "DataSetTrailingPadding"):
        if keyword in out:
            del out[keyword]
    data = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()
    out.PixelData = data
    out["PixelData"].VR = "OW" if bits_allocated > 8 else "OB"
    if len(data) % 2:
        out.PixelData = data + b"\0"
    buf = io.BytesIO()
    out.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
