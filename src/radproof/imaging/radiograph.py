"""The Radiograph value: pixels at native bit depth plus what is needed to interpret them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


class Photometric(StrEnum):
    """How stored values map to brightness."""

    MONOCHROME1 = "MONOCHROME1"  # high values are dark (inverted), common on CR
    MONOCHROME2 = "MONOCHROME2"  # high values are bright


class SourceFormat(StrEnum):
    DICOM = "dicom"
    PNG = "png"
    JPEG = "jpeg"
    TIFF = "tiff"
    ARRAY = "array"


@dataclass(frozen=True)
class Radiograph:
    """One radiograph (or a stack of frames) at its native bit depth.

    Attributes
    ----------
    pixels
        Stored values, shape ``(rows, cols)`` or ``(frames, rows, cols)``; dtype uint8, uint16 or
        int16 exactly as stored (no rescale, no inversion).
    bits_stored
        Significant bits per sample (1-16).
    photometric
        MONOCHROME1 (inverted) or MONOCHROME2.
    pixel_spacing
        Row and column spacing in millimetres, when known.
    window
        (center, width) in stored-value units from the header, when present.
    rescale
        (slope, intercept) from the header; (1, 0) when absent.
    source_format
        What the pixels were read from.
    was_color
        True when a colour file was converted to grayscale on load.
    dataset
        The DICOM header (pixel data removed) for DICOM inputs, else None.
    path
        Where the image was read from, when it came from a file.
    """

    pixels: npt.NDArray[Any]
    bits_stored: int
    photometric: Photometric = Photometric.MONOCHROME2
    pixel_spacing: tuple[float, float] | None = None
    window: tuple[float, float] | None = None
    rescale: tuple[float, float] = (1.0, 0.0)
    source_format: SourceFormat = SourceFormat.ARRAY
    was_color: bool = False
    dataset: Dataset | None = field(default=None, repr=False, compare=False)
    path: Path | None = None

    def __post_init__(self) -> None:
        if self.pixels.ndim not in (2, 3):
            raise ValueError(f"pixels must be 2-D or 3-D (frames first), got shape {self.pixels.shape}")
        if self.pixels.dtype not in (np.uint8, np.uint16, np.int16):
            raise ValueError(f"pixels must be uint8, uint16 or int16, got {self.pixels.dtype}")
        if not 1 <= self.bits_stored <= 16:
            raise ValueError(f"bits_stored must be 1..16, got {self.bits_stored}")

    @property
    def n_frames(self) -> int:
        return 1 if self.pixels.ndim == 2 else int(self.pixels.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of one frame."""
        return (int(self.pixels.shape[-2]), int(self.pixels.shape[-1]))

    @property
    def max_value(self) -> int:
        """Largest value the stored bit depth can hold (for unsigned data)."""
        return int((1 << self.bits_stored) - 1)

    def frame(self, index: int = 0) -> npt.NDArray[Any]:
        """One frame as a 2-D array (a view, not a copy)."""
        if self.pixels.ndim == 2:
            if index not in (0, -1):
                raise IndexError(f"frame {index} requested from a single-frame image")
            return self.pixels
        one: npt.NDArray[Any] = self.pixels[index]
        return one

    def with_pixels(self, pixels: npt.NDArray[Any]) -> Radiograph:
        """A copy of this radiograph with other pixels of the same kind (header kept)."""
        return Radiograph(
            pixels=pixels,
            bits_stored=self.bits_stored,
            photometric=self.photometric,
            pixel_spacing=self.pixel_spacing,
            window=self.window,
            rescale=self.rescale,
            source_format=self.source_format,
            was_color=self.was_color,
            dataset=self.dataset,
            path=self.path,
        )

    def brightness(self, frame: int = 0) -> npt.NDArray[np.float32]:
        """One frame as float32 where larger means brighter (MONOCHROME1 inverted), rescale applied."""
        f = self.frame(frame).astype(np.float32)
        if self.photometric is Photometric.MONOCHROME1:
            f = np.float32(self.max_value) - f
        slope, intercept = self.rescale
        if (slope, intercept) != (1.0, 0.0):
            f = f * np.float32(slope) + np.float32(intercept)
        return f
