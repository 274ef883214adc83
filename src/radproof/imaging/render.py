"""Window/level rendering of native-depth pixels to 8-bit display values, and the one robust
intensity range that display and the detector both stretch to."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from radproof.imaging.radiograph import Photometric, Radiograph

#: The robust range: these percentiles of the values, not the extremes (a burned-in label or a
#: collimator edge must not decide the contrast).
LOW_PERCENTILE, HIGH_PERCENTILE = 0.5, 99.5
#: About this many values are read to find it, on a regular grid over the whole frame.
RANGE_SAMPLE = 250_000


@dataclass(frozen=True)
class RobustRange:
    """The ``low``-``high`` percentile range of a frame, and the regular sample it was read from."""

    lo: np.float64
    hi: np.float64
    #: The sampled values, 2-D (every ``step``-th row and column), non-finite values included.
    sample: npt.NDArray[np.generic]
    #: The finite values of ``sample``, flattened.
    finite: npt.NDArray[np.generic]


def robust_range(
    values: npt.NDArray[np.generic], *, low: float = LOW_PERCENTILE, high: float = HIGH_PERCENTILE
) -> RobustRange | None:
    """The percentile range of a 2-D frame over a regular sample; None when no value is finite."""
    step = max(1, int(np.sqrt(values.size / RANGE_SAMPLE)))
    sample = values[::step, ::step]
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return None
    lo, hi = np.percentile(finite, [low, high])
    # Kept as numpy float64 (a float): comparisons with float32 pixels then run in float64.
    return RobustRange(lo, hi, sample, finite)


def auto_window(
    pixels: npt.NDArray[np.generic], *, low: float = LOW_PERCENTILE, high: float = HIGH_PERCENTILE
) -> tuple[float, float]:
    """(center, width) covering the given percentiles of the stored values (:func:`robust_range`)."""
    found = robust_range(pixels, low=low, high=high)
    lo, hi = (0.0, 1.0) if found is None else (found.lo, found.hi)
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
