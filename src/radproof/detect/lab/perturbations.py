"""Everyday processing of a radiograph: the perturbation suite of ``radproof evaluate`` and the
hospital-style processing whose copies of real images join the reference."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image
from scipy import ndimage

from radproof.detect.lab.processing import PROCESSING
from radproof.imaging import load_bytes, render
from radproof.imaging.radiograph import Photometric, Radiograph, SourceFormat


def _as_8bit(image: Radiograph) -> npt.NDArray[np.uint8]:
    frame = image.frame(0)
    if frame.dtype == np.uint8 and image.photometric is Photometric.MONOCHROME2:
        return frame
    return render(image)


def _raster(pixels: npt.NDArray[Any], bits: int = 8) -> Radiograph:
    return Radiograph(pixels=pixels, bits_stored=bits, source_format=SourceFormat.ARRAY)


def _jpeg(quality: int) -> Callable[[Radiograph], Radiograph]:
    def apply(image: Radiograph) -> Radiograph:
        buf = io.BytesIO()
        Image.fromarray(_as_8bit(image), mode="L").save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        with Image.open(buf) as im:
            return _raster(np.asarray(im.convert("L")))

    return apply


def _resize(factor: float) -> Callable[[Radiograph], Radiograph]:
    def apply(image: Radiograph) -> Radiograph:
        f = image.brightness(0)
        h, w = f.shape
        size = (max(8, round(w * factor)), max(8, round(h * factor)))
        out = np.asarray(Image.fromarray(f, mode="F").resize(size, Image.Resampling.BICUBIC))
        return as_uint16(out)

    return apply


def as_uint16(values: npt.NDArray[Any]) -> Radiograph:
    """A float frame stretched to its full range and stored as a 16-bit radiograph (how the
    perturbations hand their result back, without clipping what they added)."""
    lo, hi = float(values.min()), float(values.max())
    scaled = (values - lo) / max(hi - lo, 1e-6) * 65535.0
    return _raster(np.clip(np.rint(scaled), 0, 65535).astype(np.uint16), 16)


def _crop(image: Radiograph) -> Radiograph:
    f = image.brightness(0)
    h, w = f.shape
    return as_uint16(f[h // 10 + 3 : h - h // 10, w // 10 + 5 : w - w // 10])


def _blur(image: Radiograph) -> Radiograph:
    return as_uint16(ndimage.gaussian_filter(image.brightness(0), 1.0))


def _noise(image: Radiograph) -> Radiograph:
    f = image.brightness(0)
    rng = np.random.default_rng(0)
    spread = float(np.percentile(f, 99) - np.percentile(f, 1)) or 1.0
    return as_uint16(f + rng.normal(0.0, 0.02 * spread, f.shape).astype(np.float32))


def _window8(image: Radiograph) -> Radiograph:
    f = image.brightness(0)
    lo, hi = np.percentile(f, [5, 95])
    return _raster(np.clip(np.rint((f - lo) / max(hi - lo, 1e-6) * 255.0), 0, 255).astype(np.uint8))


def _secondary_capture(image: Radiograph) -> Radiograph:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    pixels = _as_8bit(image)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.7")
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("sc.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return load_bytes(buf.getvalue(), name="secondary-capture")


#: The perturbation suite: name -> function of a loaded radiograph.
PERTURBATIONS: dict[str, Callable[[Radiograph], Radiograph]] = {
    "jpeg95": _jpeg(95),
    "jpeg75": _jpeg(75),
    "jpeg50": _jpeg(50),
    "resize0.5": _resize(0.5),
    "resize0.75": _resize(0.75),
    "resize1.5": _resize(1.5),
    "crop": _crop,
    "blur": _blur,
    "noise": _noise,
    "window8": _window8,
    "secondary_capture": _secondary_capture,
}


def _processed(step: Callable[[npt.NDArray[Any]], npt.NDArray[np.float32]]) -> Callable[[Radiograph], Radiograph]:
    def apply(image: Radiograph) -> Radiograph:
        return as_uint16(step(image.brightness(0)))

    return apply


#: Hospital-style processing of real images (radproof.detect.lab.processing), for the reference.
PROCESSINGS: dict[str, Callable[[Radiograph], Radiograph]] = {name: _processed(f) for name, f in PROCESSING.items()}
