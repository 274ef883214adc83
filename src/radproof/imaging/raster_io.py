"""Reading and writing PNG, JPEG and TIFF exports with Pillow."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from radproof.errors import InputError, ResourceLimitError, UnsupportedError
from radproof.fileio import atomic_write_bytes, source_bytes
from radproof.imaging.radiograph import Photometric, Radiograph, SourceFormat
from radproof.limits import check_declared_size, max_pixel_bytes, max_side

_FORMATS = {
    "PNG": SourceFormat.PNG,
    "JPEG": SourceFormat.JPEG,
    "MPO": SourceFormat.JPEG,
    "TIFF": SourceFormat.TIFF,
}


#: Bytes a pixel takes in Pillow's buffer for each mode (others take 4, and palette images become RGB).
_PIL_BYTES_PER_PIXEL = {"1": 1, "L": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
#: Pixels converted to gray at a time (bounds the float32 working copy to ~ 12 MB).
_GRAY_BAND = 1 << 20


def sniff_raster(head: bytes) -> SourceFormat | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return SourceFormat.PNG
    if head.startswith(b"\xff\xd8\xff"):
        return SourceFormat.JPEG
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return SourceFormat.TIFF
    return None


def load_raster(source: str | Path | bytes, *, name: str | None = None) -> Radiograph:
    """Load a PNG, JPEG or TIFF as a grayscale Radiograph (8 or 16 bit as stored)."""
    data, label = source_bytes(source, name)
    # Pillow's own bomb check (2 x MAX_IMAGE_PIXELS) would refuse images radproof's limits accept;
    # ours below is the one that decides, so Pillow's is set to never be the stricter.
    Image.MAX_IMAGE_PIXELS = max(max_pixel_bytes(), max_side() ** 2) // 2 + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise ResourceLimitError(f"{label}: {exc}") from None
        except UnidentifiedImageError:
            raise InputError(f"{label}: not a readable PNG, JPEG or TIFF image") from None
        except Exception as exc:
            raise InputError(f"{label}: corrupt image ({str(exc)[:200]})") from None
        fmt = _FORMATS.get(img.format or "")
        if fmt is None:
            raise UnsupportedError(f"{label}: image format {img.format} is not supported (PNG, JPEG, TIFF)")
        width, height = img.size
        try:
            # What Pillow allocates for the mode (RGB is kept in 4 bytes a pixel), from the header alone.
            check_declared_size(height, width, 1, _PIL_BYTES_PER_PIXEL.get(img.mode, 4))
        except ResourceLimitError as exc:
            raise ResourceLimitError(f"{label}: {exc}") from None
        try:
            img.load()
        except Exception as exc:
            raise InputError(f"{label}: image data is truncated or corrupt ({str(exc)[:200]})") from None
        arr, bits, was_color = _to_gray(img, label)
    dpi = img.info.get("dpi")
    img.close()  # Pillow's own buffer goes now, not when the caller's Radiograph does
    spacing = None
    if dpi and all(isinstance(v, int | float) and v > 0 for v in dpi[:2]) and tuple(dpi[:2]) != (72, 72):
        spacing = (25.4 / float(dpi[1]), 25.4 / float(dpi[0]))
    return Radiograph(
        pixels=arr,
        bits_stored=bits,
        photometric=Photometric.MONOCHROME2,
        pixel_spacing=spacing,
        source_format=fmt,
        was_color=was_color,
        path=None if isinstance(source, bytes) else Path(source),
    )


def _to_gray(img: Image.Image, label: str) -> tuple[npt.NDArray[Any], int, bool]:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img).astype(np.uint16, copy=False)  # one copy out of Pillow, not two (512 MiB at 16k)
        return arr, _bits_used(arr, 16), False
    if mode in ("I", "F"):
        arr = np.asarray(img)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise UnsupportedError(f"{label}: {mode}-mode image with values outside 0..65535")
        return arr.astype(np.uint16), 16, False
    if mode == "1":
        return np.asarray(img.convert("L")), 8, False
    if mode == "L":
        return np.asarray(img), 8, False
    if mode in ("LA", "La"):
        return np.asarray(img.getchannel(0)), 8, False
    if mode in ("P", "PA"):
        img = img.convert("RGB")
        mode = "RGB"
    return _rgb_to_gray(np.asarray(img.convert("RGB")))


def _rgb_to_gray(rgb: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], int, bool]:
    """Luma of an RGB array, a band of rows at a time: a float32 copy of a whole 16k colour image is 3 GiB."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    out = np.empty(rgb.shape[:2], dtype=np.uint8)
    was_color = False
    step = max(1, _GRAY_BAND // max(1, rgb.shape[1]))
    for top in range(0, rgb.shape[0], step):
        band = rgb[top : top + step].astype(np.float32)
        out[top : top + step] = np.clip(np.rint(band @ weights), 0, 255).astype(np.uint8)
        was_color = was_color or bool(band.size and np.ptp(band, axis=2).max() > 2)
    return out, 8, was_color


def _bits_used(arr: npt.NDArray[Any], default: int) -> int:
    if arr.size == 0:
        return default
    top = int(arr.max())
    return max(8, min(default, top.bit_length())) if top > 255 else default


def encode_raster(pixels: npt.NDArray[Any], fmt: str = "png", *, quality: int = 95) -> bytes:
    """Encode a 2-D uint8 or uint16 array as PNG, TIFF (lossless) or JPEG (8-bit only)."""
    fmt = fmt.lower().lstrip(".")
    if pixels.ndim != 2:
        raise ValueError("encode_raster expects one 2-D frame")
    buf = io.BytesIO()
    if fmt in ("jpg", "jpeg"):
        if pixels.dtype != np.uint8:
            raise ValueError("JPEG export needs 8-bit pixels; render the image first")
        Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    elif fmt in ("png", "tif", "tiff"):
        img = Image.fromarray(pixels if pixels.dtype == np.uint8 else pixels.astype(np.uint16))
        img.save(buf, format="PNG" if fmt == "png" else "TIFF")
    else:
        raise UnsupportedError(f"cannot write format {fmt!r} (png, tiff, jpeg)")
    return buf.getvalue()


def save_raster(pixels: npt.NDArray[Any], path: str | Path, *, quality: int = 95) -> Path:
    """Write an array to ``path`` atomically, format taken from the suffix."""
    return atomic_write_bytes(path, encode_raster(pixels, Path(path).suffix or "png", quality=quality))
