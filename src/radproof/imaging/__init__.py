"""Loading, rendering and simulating radiographs.

>>> from radproof.imaging import load, render
>>> image = load("chest.dcm")          # Radiograph at native bit depth
>>> preview = render(image)            # uint8, window/level applied
"""

from __future__ import annotations

from pathlib import Path

from radproof.errors import InputError
from radproof.fileio import read_input_bytes
from radproof.imaging.dicom_io import load_dicom, looks_like_dicom, radiograph_from_dataset, read_dataset
from radproof.imaging.radiograph import Photometric, Radiograph, SourceFormat
from radproof.imaging.raster_io import encode_raster, load_raster, save_raster, sniff_raster
from radproof.imaging.render import apply_window, auto_window, render

__all__ = [
    "Photometric",
    "Radiograph",
    "SourceFormat",
    "apply_window",
    "auto_window",
    "encode_raster",
    "load",
    "load_bytes",
    "radiograph_from_dataset",
    "read_dataset",
    "render",
    "save_raster",
    "sniff_format",
]


def sniff_format(head: bytes) -> SourceFormat | None:
    """The image format from a file's first bytes (at least 132), or None if unknown."""
    # DICM first: a DICOM preamble may legally hold a TIFF header (dual-personality files).
    if len(head) >= 132 and head[128:132] == b"DICM":
        return SourceFormat.DICOM
    raster = sniff_raster(head)
    if raster is not None:
        return raster
    return SourceFormat.DICOM if looks_like_dicom(head) else None


def load_bytes(data: bytes, *, name: str = "<bytes>", frame: int | None = None) -> Radiograph:
    """Load a radiograph from bytes in any supported format."""
    fmt = sniff_format(data[:140])
    if fmt is SourceFormat.DICOM:
        return load_dicom(data, frame=frame, name=name)
    if fmt is not None:
        if frame not in (None, 0):
            raise InputError(f"{name}: frame {frame} requested from a single-frame image")
        return load_raster(data, name=name)
    if len(data) == 0:
        raise InputError(f"{name}: file is empty")
    raise InputError(f"{name}: not a DICOM, PNG, JPEG or TIFF file")


def load(path: str | Path, *, frame: int | None = None) -> Radiograph:
    """Load a radiograph (DICOM, PNG, JPEG or TIFF) at native bit depth.

    Raises
    ------
    InputError
        The file is missing, corrupt, too large, or not an image.
    """
    p = Path(path)
    image = load_bytes(read_input_bytes(p), name=str(p), frame=frame)
    return image if image.path == p else _with_path(image, p)


def _with_path(image: Radiograph, path: Path) -> Radiograph:
    from dataclasses import replace

    return replace(image, path=path)
