"""One robust intensity range: the display window and the detector's stretch read the same percentiles."""

from __future__ import annotations

import numpy as np

from radproof.detect.normalize import stretch
from radproof.imaging import Radiograph, auto_window, render
from radproof.imaging.render import robust_range


def test_display_and_detector_stretch_to_the_same_range() -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(200, 3800, size=(1500, 1200)).astype(np.uint16)
    pixels[:4] = 4095  # a thin burned-in bright band must not set the contrast
    found = robust_range(pixels)
    assert found is not None and 200 <= found.lo < found.hi < 4095
    center, width = auto_window(pixels)
    assert np.isclose(center - width / 2, found.lo) and np.isclose(center + width / 2, found.hi)
    unit, problems = stretch(pixels.astype(np.float32))
    assert not problems
    below, above = pixels <= found.lo, pixels >= found.hi
    assert unit[below].max() == 0.0 and unit[above].min() == 1.0
    shown = render(Radiograph(pixels=pixels, bits_stored=12))
    assert shown[below].max() == 0 and shown[above].min() == 255


def test_non_finite_values_are_left_out_and_an_all_nan_frame_has_no_range() -> None:
    values = np.linspace(0, 1, 10_000, dtype=np.float32).reshape(100, 100)
    values[::7] = np.nan
    found = robust_range(values)
    assert found is not None and np.isfinite(found.lo) and np.isfinite(found.hi)
    assert robust_range(np.full((8, 8), np.nan, dtype=np.float32)) is None
    assert auto_window(np.full((8, 8), np.nan, dtype=np.float32)) == (0.5, 1.0)
