"""Reading DICOM radiographs with pydicom and the pylibjpeg codecs."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset, FileDataset
from pydicom.encaps import generate_frames
from pydicom.errors import InvalidDicomError
from pydicom.pixels.processing import apply_color_lut
from pydicom.pixels.utils import pixel_array
from pydicom.uid import UID

from radproof.dicom_encoding import element_order_problem, encoding_problem
from radproof.errors import InputError, ResourceLimitError, UnsupportedError
from radproof.fileio import source_bytes
from radproof.imaging.codestreams import check_inflated_size, deflated_body_offset, frame_size
from radproof.imaging.radiograph import Photometric, Radiograph, SourceFormat
from radproof.limits import check_declared_size, max_input_bytes

_PIXEL_DATA = 0x7FE00010
#: Enough of a compressed frame to hold its SOF or SIZ (after any APPn and table segments).
_HEADER_BYTES = 1 << 18
_COLOR = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR"}


def looks_like_dicom(head: bytes) -> bool:
    """True for a Part 10 file (preamble + DICM) or a bare dataset starting with a group 0008 tag."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    # Files without preamble start with a low group number: (0002,xxxx) or (0008,xxxx), either endian.
    if len(head) < 8:
        return False
    return head[0:2] in (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08") and (
        head[2:3] == b"\x00" or head[3:4] == b"\x00"
    )


def read_dataset(
    source: str | Path | bytes, *, stop_before_pixels: bool = False, name: str | None = None
) -> FileDataset:
    """Parse a DICOM file, turning every parser failure into :class:`InputError`.

    Files without the Part 10 preamble are accepted when they parse to a dataset with content.
    """
    data, label = source_bytes(source, name)
    body = deflated_body_offset(data)
    if body is not None:
        # pydicom inflates a deflated dataset whole, as soon as it reads the meta information.
        check_inflated_size(data, body, max_input_bytes(), label)
    problem = element_order_problem(io.BytesIO(data))
    if problem:
        raise InputError(f"{label}: {problem}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels)
        except InvalidDicomError:
            if not looks_like_dicom(data[:140]):
                raise InputError(f"{label}: not a DICOM file (no DICM marker)") from None
            try:
                ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels, force=True)
            except Exception as exc:
                raise InputError(f"{label}: corrupt DICOM file ({_short(exc)})") from None
        except Exception as exc:
            raise InputError(f"{label}: corrupt DICOM file ({_short(exc)})") from None
        problem = encoding_problem(ds)  # before the touch below decodes every raw element
        if problem:
            raise InputError(f"{label}: {problem}")
        try:
            # Touch every element so that a truncated or malformed value fails here, not later.
            for _ in ds.iterall():
                pass
        except Exception as exc:
            raise InputError(f"{label}: corrupt DICOM file ({_short(exc)})") from None
    if len(ds) == 0:
        raise InputError(f"{label}: no DICOM elements found")
    if not getattr(ds, "file_meta", None) or "TransferSyntaxUID" not in ds.file_meta:
        # A bare dataset: pydicom tells us how it was encoded.
        implicit = bool(ds.is_implicit_VR) if ds.is_implicit_VR is not None else True
        little = bool(ds.is_little_endian) if ds.is_little_endian is not None else True
        uid = "1.2.840.10008.1.2" if implicit else ("1.2.840.10008.1.2.1" if little else "1.2.840.10008.1.2.2")
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = UID(uid)
    return ds


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _int(ds: Dataset, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword, default)
    if value is None:
        raise InputError(f"DICOM file has no {keyword}; it is not an image")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InputError(f"DICOM {keyword} is not a number: {value!r}") from None


def declared_geometry(ds: Dataset) -> tuple[int, int, int, int, int]:
    """(rows, cols, frames, bytes per sample, samples per pixel) as the header declares them."""
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise InputError("DICOM file has no pixel data; it is not an image")
    if "PixelData" not in ds:
        raise UnsupportedError("float pixel data is not a radiograph format radproof reads")
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    frames = _int(ds, "NumberOfFrames", 1) if ds.get("NumberOfFrames") not in (None, "") else 1
    bits_alloc = _int(ds, "BitsAllocated")
    samples = _int(ds, "SamplesPerPixel", 1)
    if bits_alloc not in (1, 8, 16):
        raise UnsupportedError(f"BitsAllocated {bits_alloc} is not a radiograph format radproof reads (1, 8 or 16)")
    return rows, cols, frames, max(1, bits_alloc // 8), samples


def load_dicom(source: str | Path | bytes, *, frame: int | None = None, name: str | None = None) -> Radiograph:
    """Load a DICOM radiograph at native bit depth.

    Parameters
    ----------
    source
        Path to the file, or its bytes.
    frame
        Decode only this frame of a multi-frame object (0-based); all frames when None.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    path = None if isinstance(source, bytes) else Path(source)
    return radiograph_from_dataset(read_dataset(source, name=label), frame=frame, name=label, path=path)


def radiograph_from_dataset(
    ds: Dataset, *, frame: int | None = None, name: str = "<dataset>", path: Path | None = None
) -> Radiograph:
    """Decode a dataset already parsed by :func:`read_dataset` (so callers that also verify it parse once)."""
    label = name
    try:
        rows, cols, frames, bps, samples = declared_geometry(ds)
    except InputError as exc:
        raise type(exc)(f"{label}: {exc}") from None
    try:
        check_declared_size(rows, cols, frames if frame is None else 1, bps, samples)
    except ResourceLimitError as exc:
        raise ResourceLimitError(f"{label}: {exc}") from None
    if frame is not None and not 0 <= frame < frames:
        raise InputError(f"{label}: frame {frame} requested, the file has {frames} frame(s)")
    _check_compressed_frames(ds, rows, cols, frames, frame, label)

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    tsyntax = ds.file_meta.TransferSyntaxUID
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            arr = pixel_array(ds, index=frame)
        except NotImplementedError as exc:
            raise UnsupportedError(f"{label}: cannot decode {UID(tsyntax).name} ({_short(exc)})") from None
        except MemoryError:
            raise InputError(f"{label}: not enough memory to decode the pixel data") from None
        except Exception as exc:
            raise InputError(f"{label}: pixel data cannot be decoded ({_short(exc)})") from None

    was_color = False
    if photometric in _COLOR or (arr.ndim >= 3 and arr.shape[-1] == 3 and samples == 3):
        if photometric.startswith("YBR"):
            # pydicom converts YBR_FULL(_422) to RGB already; JPEG-encoded YBR comes back RGB too.
            pass
        if photometric == "PALETTE COLOR":
            arr = apply_color_lut(arr, ds)
        arr = _rgb_to_gray(arr)
        photometric = "MONOCHROME2"
        was_color = True
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise UnsupportedError(f"{label}: photometric interpretation {photometric} is not supported")

    arr = _native_dtype(arr, label)
    if frame is None and frames == 1 and arr.ndim == 3:
        arr = arr[0]
    bits_stored = int(ds.get("BitsStored", 8 * arr.dtype.itemsize) or 8 * arr.dtype.itemsize)
    bits_stored = min(max(bits_stored, 1), 8 * arr.dtype.itemsize)
    if was_color:
        bits_stored = 8 * arr.dtype.itemsize

    # Keep the header without the (large) pixel data; the caller still has the original file.
    # A new mapping of the same elements: Dataset(ds) would share ds's mapping, and deleting the pixel
    # data from the header would delete it from the caller's dataset too.
    header = pydicom.dataset.Dataset({tag: ds.get_item(tag) for tag in ds.keys() if tag != _PIXEL_DATA})  # noqa: SIM118 (iterating a Dataset yields elements)
    header.file_meta = ds.file_meta

    return Radiograph(
        pixels=arr,
        bits_stored=bits_stored,
        photometric=Photometric(photometric),
        pixel_spacing=_spacing(ds),
        window=_window(ds),
        rescale=(_float(ds.get("RescaleSlope"), 1.0), _float(ds.get("RescaleIntercept"), 0.0)),
        source_format=SourceFormat.DICOM,
        was_color=was_color,
        dataset=header,
        path=path,
    )


def _check_compressed_frames(ds: Dataset, rows: int, cols: int, frames: int, frame: int | None, label: str) -> None:
    """Refuse compressed frames whose own header declares another size than Rows x Columns.

    The JPEG and JPEG 2000 decoders allocate what the codestream declares, not what the DICOM
    header says: a 64 x 64 header over a 20000 x 20000 codestream would take gigabytes to reject.
    """
    tsyntax = str(ds.file_meta.TransferSyntaxUID)
    uid = UID(tsyntax)
    if not uid.is_transfer_syntax or not uid.is_encapsulated or "PixelData" not in ds:
        return  # native data is as long as declared; an unknown syntax is refused by the decoder
    try:
        stream = generate_frames(ds.PixelData, number_of_frames=frames)
        for index, encoded in enumerate(stream):
            if frame is not None and index != frame:
                if index > frame:
                    break
                continue
            size = frame_size(encoded[:_HEADER_BYTES], tsyntax)
            if size is None:
                continue
            if (size.rows, size.cols) != (rows, cols):
                raise InputError(
                    f"{label}: frame {index} is encoded as {size.cols} x {size.rows} pixels, but the header "
                    f"declares {cols} x {rows}"
                )
            check_declared_size(size.rows, size.cols, 1, (size.precision + 7) // 8, max(1, size.components))
    except ResourceLimitError as exc:
        raise ResourceLimitError(f"{label}: {exc}") from None
    except InputError:
        raise
    except Exception as exc:  # a broken item structure: the decoder would fail on it too
        raise InputError(f"{label}: pixel data cannot be decoded ({_short(exc)})") from None


def _rgb_to_gray(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    gray = np.tensordot(arr[..., :3].astype(np.float32), weights, axes=([-1], [0]))
    out_dtype = np.uint8 if arr.dtype.itemsize == 1 else np.uint16
    return np.clip(np.rint(gray), 0, np.iinfo(out_dtype).max).astype(out_dtype)


def _native_dtype(arr: npt.NDArray[Any], label: str) -> npt.NDArray[Any]:
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype in (np.uint8, np.uint16, np.int16):
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if arr.dtype == np.int8:
        return arr.astype(np.int16)
    raise UnsupportedError(f"{label}: pixel type {arr.dtype} is not a radiograph format radproof reads")


def _float(value: Any, default: float) -> float:
    try:
        if value is None or value == "":
            return default
        if isinstance(value, list | tuple) or (hasattr(value, "__len__") and not isinstance(value, str)):
            value = value[0]
        return float(value)
    except (TypeError, ValueError, IndexError):
        return default


def _spacing(ds: Dataset) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        try:
            if value is not None and len(value) == 2:
                row, col = float(value[0]), float(value[1])
                if row > 0 and col > 0:
                    return (row, col)
        except (TypeError, ValueError):
            continue
    return None


def _window(ds: Dataset) -> tuple[float, float] | None:
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None:
        return None
    c, w = _float(center, float("nan")), _float(width, float("nan"))
    if not (np.isfinite(c) and np.isfinite(w)) or w <= 0:
        return None
    slope, intercept = _float(ds.get("RescaleSlope"), 1.0), _float(ds.get("RescaleIntercept"), 0.0)
    if slope == 0:
        return None
    # Store in stored-value units so that rendering works on raw pixels.
    return ((c - intercept) / slope, w / abs(slope))
