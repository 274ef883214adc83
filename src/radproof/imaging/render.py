"""Window/level rendering of native-depth pixels to 8-bit display values."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from radproof.imaging.radiograph import Photometric, Radiograph


def auto_window(pixels: npt.NDArray[np.generic], *, low: float = 0.5, high: float = 99.5) -> tuple[float, float]:
    """(center, width) covering the given percentiles of the stored values, ignoring empty borders."""
    sample = pixels[:: max(1, pixels.shape[0] // 512), :: max(1, pixels.shape[1] // 512)]
    lo, hi = np.percentile(sample.astype(np.float32), [low, high])
    if hi <= lo:
        hi = lo + 1.0
    return (float(lo + hi) / 2.0, float(hi - lo))


def apply_window(
    pixels: npt.NDArray[np.generic], center: float, width: float, *, invert: bool = False
) -> npt.NDArray[np.uint8]:
    """Map stored values to 0..255 with a linear window (PS3.3 C.11.2.1.2 simplified)."""
    width = max(float(width), 1.0)
    lo = center - width / 2.0
    scaled = (pixels.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / width)
    out = np.clip(scaled, 0, 255)
    if invert:
        out = 255 - out
    result: npt.NDArray[np.uint8] = np.rint(out).astype(np.uint8)
    return result


def render(
    image: Radiograph,
    *,
    frame: int = 0,
    center: float | None = None,
    width: float | None = None,
) -> npt.NDArray[np.uint8]:
    """Render one frame to 8-bit for display or export.

    The window comes from the arguments, else the header, else the 0.5-99.5 percentile range.
    MONOCHROME1 images are inverted so that bone is bright.
    """
    pixels = image.frame(frame)
    if center is None or width is None:
        header = image.window
        if header is not None and not _window_fits(pixels, *header):
            header = None  # the header window misses the data (seen in the wild); do not render a blank
        c, w = header if header is not None else auto_window(pixels)
        center = c if center is None else center
        width = w if width is None else width
    return apply_window(pixels, center, width, invert=image.photometric is Photometric.MONOCHROME1)


def _window_fits(pixels: npt.NDArray[np.generic], center: float, width: float) -> bool:
    """True when at least 5% of the pixels fall inside the window."""
    sample = pixels[:: max(1, pixels.shape[0] // 256), :: max(1, pixels.shape[1] // 256)].astype(np.float32)
    inside = (sample >= center - width / 2) & (sample <= center + width / 2)
    return bool(inside.mean() >= 0.05)
