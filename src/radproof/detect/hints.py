"""Provenance and metadata hints, reported apart from the pixel score.

Metadata is easy to strip or forge, and in the development data it separates the classes almost
perfectly for the wrong reasons (file format, generator output sizes). So hints never enter the pixel
score: they are listed beside it, each with a severity:

- ``decisive``: a C2PA manifest that declares the image AI-generated (IPTC digital source type
  ``trainedAlgorithmicMedia``), read with c2pa-python when it is installed;
- ``suspicious``: inconsistencies a real acquisition would not show (Secondary Capture for a
  radiograph, 8-bit DX, missing exposure or detector attributes, malformed UIDs, generator output
  sizes, JPEG history inside a lossless "original", generator text in the file);
- ``info``: facts worth knowing (a simulated phantom, a multi-frame object, JPEG quality).
"""

from __future__ import annotations

import io
import json
import re
import warnings
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePath
from typing import Any

import numpy as np
import numpy.typing as npt

from radproof.imaging.radiograph import Radiograph, SourceFormat

AI_SOURCE_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia")
#: Output sizes (width, height) of common image generators.
GENERATOR_SIZES = {
    (256, 256), (512, 512), (768, 768), (1024, 1024), (2048, 2048),
    (1024, 1536), (1536, 1024), (1024, 1792), (1792, 1024), (832, 1216), (1216, 832),
    (896, 1152), (1152, 896), (640, 1536), (1536, 640),
}  # fmt: skip
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_GENERATOR_WORDS = re.compile(
    rb"(stable.?diffusion|midjourney|dall.?e|openai|gpt-4o|comfyui|automatic1111|"
    rb"negative prompt|sampler: |roentgen|firefly|imagen|flux\.?[12]?)",
    re.IGNORECASE,
)
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


class HintSeverity(StrEnum):
    """How much a hint weighs (see the module's description)."""

    DECISIVE = "decisive"
    SUSPICIOUS = "suspicious"
    INFO = "info"


@dataclass(frozen=True)
class Hint:
    """One metadata or provenance observation (``severity`` given as text is checked and converted)."""

    name: str
    severity: HintSeverity
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", HintSeverity(self.severity))

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "severity": self.severity.value, "message": self.message}


def c2pa_hints(data: bytes, mime: str | None) -> list[Hint]:
    """Read a C2PA manifest (c2pa-python, optional) or fall back to a byte scan for its markers."""
    hints: list[Hint] = []
    has_jumbf = b"c2pa" in data and b"jumb" in data
    manifest_json: str | None = None
    if has_jumbf and mime is not None:
        try:
            import c2pa  # type: ignore[import-not-found,unused-ignore]

            with c2pa.Reader(mime, io.BytesIO(data)) as reader:
                manifest_json = reader.json()
        except ImportError:
            manifest_json = None
        except Exception as exc:
            hints.append(
                Hint("c2pa", HintSeverity.SUSPICIOUS, f"a C2PA manifest is present but cannot be read ({exc})")
            )
    if manifest_json is not None:
        ai = [t for t in AI_SOURCE_TYPES if t in manifest_json]
        generator = _claim_generator(manifest_json)
        if ai:
            hints.append(
                Hint(
                    "c2pa_ai_generated",
                    HintSeverity.DECISIVE,
                    f"the C2PA manifest declares digital source type {ai[0]}"
                    + (f" (claim generator {generator})" if generator else ""),
                )
            )
        else:
            hints.append(Hint("c2pa", HintSeverity.INFO, "a C2PA manifest is present and declares no AI generation"))
    elif has_jumbf:
        if any(t.encode() in data for t in AI_SOURCE_TYPES):
            hints.append(
                Hint(
                    "c2pa_ai_generated",
                    HintSeverity.SUSPICIOUS,
                    "the file embeds a C2PA manifest naming an AI digital source type; install "
                    "c2pa-python to read and validate it",
                )
            )
        else:
            hints.append(
                Hint("c2pa", HintSeverity.INFO, "the file embeds a C2PA manifest (install c2pa-python to read it)")
            )
    elif any(t.encode() in data for t in AI_SOURCE_TYPES):
        hints.append(
            Hint(
                "xmp_ai_generated",
                HintSeverity.SUSPICIOUS,
                "embedded XMP/IPTC metadata names an AI digital source type",
            )
        )
    return hints


def _claim_generator(manifest_json: str) -> str | None:
    try:
        store = json.loads(manifest_json)
        active = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
        gen = active.get("claim_generator")
        if gen is None and active.get("claim_generator_info"):
            gen = active["claim_generator_info"][0].get("name")
        return str(gen) if gen else None
    except (ValueError, AttributeError, IndexError, TypeError):
        return None


def dicom_hints(image: Radiograph) -> list[Hint]:
    """Inconsistencies between a DICOM header and a supposed original radiograph."""
    ds = image.dataset
    if ds is None:
        return []
    hints: list[Hint] = []
    if str(getattr(ds, "ImageComments", "")).startswith("SIMULATED PHANTOM"):
        hints.append(Hint("phantom", HintSeverity.INFO, "the header marks this image as a simulated phantom"))
    modality = str(ds.get("Modality", "")).upper()
    sop = str(ds.get("SOPClassUID", ""))
    if sop.startswith(_SECONDARY_CAPTURE):
        hints.append(
            Hint(
                "secondary_capture",
                HintSeverity.SUSPICIOUS,
                f"Secondary Capture object (modality {modality or 'unset'}): a re-wrapped picture, not a "
                "detector acquisition",
            )
        )
    if modality in ("DX", "CR", "MG"):
        if image.bits_stored <= 8:
            hints.append(
                Hint(
                    "low_bit_depth",
                    HintSeverity.SUSPICIOUS,
                    f"{modality} image with {image.bits_stored}-bit pixels (detectors store 10-16 bits)",
                )
            )
        exposure = [
            k
            for k in (
                "KVP",
                "ExposureIndex",
                "DeviationIndex",
                "Exposure",
                "ExposureInuAs",
                "XRayTubeCurrent",
                "ExposureTime",
            )
            if k in ds
        ]
        if not exposure:
            hints.append(
                Hint(
                    "no_exposure_data",
                    HintSeverity.SUSPICIOUS,
                    f"{modality} image without any exposure attribute (kVp, mAs, exposure index)",
                )
            )
        if modality == "DX" and not any(k in ds for k in ("DetectorType", "DetectorID", "ImagerPixelSpacing")):
            hints.append(
                Hint(
                    "no_detector_data",
                    HintSeverity.SUSPICIOUS,
                    "DX image without detector attributes (Detector Type/ID, Imager Pixel Spacing)",
                )
            )
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        uid = str(ds.get(keyword, ""))
        if uid and (len(uid) > 64 or not _UID.match(uid)):
            hints.append(Hint("malformed_uid", HintSeverity.SUSPICIOUS, f"{keyword} {uid[:70]!r} is not a valid UID"))
    ts = str(ds.file_meta.get("TransferSyntaxUID", "")) if getattr(ds, "file_meta", None) else ""
    if ts in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51") and modality in ("DX", "CR"):
        hints.append(Hint("lossy_original", HintSeverity.INFO, "the pixel data is lossy JPEG (baseline/extended)"))
    return hints


def blockiness(gray: npt.NDArray[np.uint8] | npt.NDArray[np.float32]) -> float:
    """Ratio of pixel differences across the 8 x 8 JPEG grid to differences elsewhere (1 = none)."""
    x = np.asarray(gray, dtype=np.float32)
    if min(x.shape) < 32:
        return 1.0
    d = np.abs(np.diff(x, axis=1)).mean(axis=0)
    e = np.abs(np.diff(x, axis=0)).mean(axis=1)
    scores = []
    for diffs in (d, e):
        idx = np.arange(diffs.size)
        on = diffs[(idx % 8) == 7].mean()
        off = diffs[(idx % 8) != 7].mean()
        scores.append(float(on / (off + 1e-6)))
    return float(np.mean(scores))


def raster_hints(image: Radiograph, data: bytes | None) -> list[Hint]:
    """Size, compression and embedded-text hints for PNG/JPEG/TIFF exports."""
    hints: list[Hint] = []
    rows, cols = image.shape
    if image.source_format is not SourceFormat.DICOM and (cols, rows) in GENERATOR_SIZES:
        hints.append(
            Hint("generator_size", HintSeverity.SUSPICIOUS, f"{cols} x {rows} is a common image-generator output size")
        )
    if image.source_format in (SourceFormat.PNG, SourceFormat.TIFF, SourceFormat.DICOM) and image.pixels.ndim == 2:
        frame = image.pixels
        if frame.dtype == np.uint8 and min(frame.shape) >= 64:
            b = blockiness(frame[:1024, :1024])
            if b > 1.25:
                hints.append(
                    Hint(
                        "jpeg_history",
                        HintSeverity.SUSPICIOUS,
                        f"8 x 8 block artefacts (blockiness {b:.2f}) in a "
                        f"lossless {image.source_format.value.upper()} file: it was JPEG-compressed before",
                    )
                )
    if data is not None and image.source_format is SourceFormat.JPEG:
        quality = _jpeg_quality(data)
        if quality is not None:
            hints.append(Hint("jpeg_quality", HintSeverity.INFO, f"JPEG quality about {quality}"))
        frame = image.pixels if image.pixels.ndim == 2 else image.pixels[0]
        if frame.dtype == np.uint8 and min(frame.shape) >= 64:
            shifted = blockiness(frame[4:1028, 4:1028])
            if shifted > 1.2:
                hints.append(
                    Hint(
                        "jpeg_double_compression",
                        HintSeverity.SUSPICIOUS,
                        "block artefacts off the current 8 x 8 grid: the image was compressed "
                        "twice, once after cropping or resizing",
                    )
                )
    if data is not None and image.source_format is not SourceFormat.DICOM:
        found = _GENERATOR_WORDS.search(data[:65536] + data[-65536:])
        if found:
            word = found.group(0).decode("latin-1", "replace")
            hints.append(Hint("generator_text", HintSeverity.SUSPICIOUS, f"the file's metadata mentions {word!r}"))
    if image.was_color:
        hints.append(Hint("colour", HintSeverity.INFO, "the file is in colour; radiographs are grayscale"))
    return hints


def _jpeg_quality(data: bytes) -> int | None:
    """Estimate the IJG quality from the luminance quantization table."""
    from PIL import Image

    try:
        with warnings.catch_warnings():  # a corrupt EXIF block is the file's problem, not the user's screen
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data))
        with im:
            tables: Any = getattr(im, "quantization", None)
            if not tables:
                return None
            table = np.asarray(list(tables[0]), dtype=np.float64)
    except Exception:
        return None
    base = np.array(
        [
            16,
            11,
            10,
            16,
            24,
            40,
            51,
            61,
            12,
            12,
            14,
            19,
            26,
            58,
            60,
            55,
            14,
            13,
            16,
            24,
            40,
            57,
            69,
            56,
            14,
            17,
            22,
            29,
            51,
            87,
            80,
            62,
            18,
            22,
            37,
            56,
            68,
            109,
            103,
            77,
            24,
            35,
            55,
            64,
            81,
            104,
            113,
            92,
            49,
            64,
            78,
            87,
            103,
            121,
            120,
            101,
            72,
            92,
            95,
            98,
            112,
            100,
            103,
            99,
        ],
        dtype=np.float64,
    )
    if table.size != 64:
        return None
    # Pillow returns the table in zig-zag order; compare sorted values, which is order-free.
    scale = float(np.median(np.sort(table) / np.sort(base))) * 100.0
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return int(np.clip(round(quality), 1, 100))


#: File name endings that say what a file holds; a file without one of them is not judged by its name.
_SUFFIXES = {
    ".dcm": SourceFormat.DICOM,
    ".dicom": SourceFormat.DICOM,
    ".png": SourceFormat.PNG,
    ".jpg": SourceFormat.JPEG,
    ".jpeg": SourceFormat.JPEG,
    ".jpe": SourceFormat.JPEG,
    ".jfif": SourceFormat.JPEG,
    ".tif": SourceFormat.TIFF,
    ".tiff": SourceFormat.TIFF,
}


def name_hints(image: Radiograph, name: str | None) -> list[Hint]:
    """A file whose name says one format and whose bytes hold another was renamed, not converted
    (a JPEG named .png still carries its JPEG history). Reported, never scored."""
    if name is None:
        return []
    suffix = PurePath(name).suffix.lower()
    claimed = _SUFFIXES.get(suffix)
    if claimed is None or claimed is image.source_format or image.source_format is SourceFormat.ARRAY:
        return []
    return [
        Hint(
            "renamed_file",
            HintSeverity.INFO,
            f"the file holds {image.source_format.value.upper()} data but its name ends in {suffix} "
            "(renamed, not converted)",
        )
    ]


def collect_hints(image: Radiograph, data: bytes | None = None, name: str | None = None) -> list[Hint]:
    """Every hint for one image (``data``: the file's bytes, when available, for C2PA and text
    scans; ``name``: the file's name, for a format its name contradicts)."""
    hints: list[Hint] = name_hints(image, name)
    if data is not None:
        mime = {SourceFormat.JPEG: "image/jpeg", SourceFormat.PNG: "image/png", SourceFormat.TIFF: "image/tiff"}
        hints += c2pa_hints(data, mime.get(image.source_format))
    hints += dicom_hints(image)
    hints += raster_hints(image, data)
    if image.n_frames > 1:
        hints.append(Hint("multi_frame", HintSeverity.INFO, f"only the first of {image.n_frames} frames was analysed"))
    return hints
