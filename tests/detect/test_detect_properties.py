"""Property tests: any 2-D input gets an answer within the contract or a clear InputError, never a crash."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radproof.detect import detect
from radproof.detect.detector import Detector
from radproof.detect.fusion import Calibration
from radproof.detect.normalize import SMALL_SIDE, TOO_SMALL_SIDE
from radproof.errors import InputError
from radproof.imaging.radiograph import Radiograph, SourceFormat

VERDICTS = {"real", "synthetic", "uncertain"}


@st.composite
def frames(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    rows = draw(st.integers(20, 320))
    cols = draw(st.integers(20, 320))
    dtype, bits = draw(st.sampled_from([(np.uint8, 8), (np.uint16, 12), (np.uint16, 16), (np.int16, 15)]))
    kind = draw(st.sampled_from(["noise", "smooth", "constant", "binary", "saturated", "stripes"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    top = (1 << bits) - 1 if dtype != np.int16 else 2**14
    y, x = np.mgrid[0:rows, 0:cols]
    if kind == "noise":
        img = rng.integers(0, top, (rows, cols))
    elif kind == "smooth":
        img = top * (0.5 + 0.4 * np.sin(x / 17.0) * np.cos(y / 23.0)) + rng.normal(0, top / 200, (rows, cols))
    elif kind == "constant":
        img = np.full((rows, cols), draw(st.integers(0, top)))
    elif kind == "binary":
        img = (rng.random((rows, cols)) > 0.5) * top
    elif kind == "saturated":
        img = np.where(rng.random((rows, cols)) > 0.03, top, rng.integers(0, top, (rows, cols)))
    else:
        img = ((x // draw(st.integers(1, 9))) % 2) * top
    return np.clip(img, 0, top).astype(dtype), bits


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_any_frame_gets_a_contract_answer_or_a_clear_error(frame: tuple[np.ndarray, int]) -> None:
    pixels, bits = frame
    image = Radiograph(pixels=pixels, bits_stored=bits, source_format=SourceFormat.ARRAY)
    try:
        result = detect(image)
    except InputError as exc:
        assert min(pixels.shape) < 32, f"refused a usable size: {exc}"
        return
    assert result.verdict in VERDICTS
    assert 0.0 <= result.synthetic_probability <= 1.0
    if min(pixels.shape) < TOO_SMALL_SIDE:
        assert result.verdict == "uncertain" and any(h.name == "unreliable_input" for h in result.hints)
    elif min(pixels.shape) < SMALL_SIDE and result.evidence:
        assert any(h.name == "thumbnail" for h in result.hints)


@pytest.mark.parametrize("short", [TOO_SMALL_SIDE, 150, SMALL_SIDE - 1])
def test_thumbnails_of_a_radiograph_get_evidence(short: int) -> None:
    from .conftest import chest_like

    image = Radiograph(pixels=chest_like(short, seed=3, noise=2.5), bits_stored=8, source_format=SourceFormat.ARRAY)
    result = detect(image)
    assert result.evidence and result.synthetic_probability != 0.5
    hint = next(h for h in result.hints if h.name == "thumbnail")
    assert ("mirrored" in hint.message) == (short < 128)
    # Over the whole frame at the working scale: a mirrored thumbnail keeps its own scale.
    assert result.heatmap is not None and result.heatmap.shape == (min(short, 128),) * 2


@functools.cache
def _shipped_calibration() -> Calibration:
    return Detector.load().calibration


@settings(max_examples=200, deadline=None)
@given(
    atypicality=st.floats(1e-6, 1e6),
    more=st.floats(0.0, 1e3),
    logit=st.floats(-1e3, 1e3),
    higher=st.floats(0.0, 1e3),
)
def test_the_shipped_calibration_is_monotone_in_both_inputs(
    atypicality: float, more: float, logit: float, higher: float
) -> None:
    """More atypical cues or a larger network logit never make an image look more real."""
    calibration = _shipped_calibration()
    p = calibration.probability(atypicality, logit)
    assert 0.0 <= p <= 1.0
    assert calibration.probability(atypicality + more, logit) >= p - 1e-12
    assert calibration.probability(atypicality, logit + higher) >= p - 1e-12


def test_a_thumbnail_is_at_best_uncertain() -> None:
    """At 128 px the evidence cannot vouch for an image: `real` becomes `uncertain` there, and the
    evaluation counts it the same way."""
    from radproof.detect.detector import _cleared_only_at_full_size
    from radproof.detect.lab.evaluate import Fitted

    assert _cleared_only_at_full_size("real", 128) == "uncertain"
    assert _cleared_only_at_full_size("real", 256) == "real"
    assert _cleared_only_at_full_size("synthetic", 128) == "synthetic"
    detector = Detector.load()
    assert detector.thumbnail is not None
    thumb = Fitted(detector.thumbnail.reference, detector.thumbnail.calibration, work_size=128)
    main = Fitted(detector.reference, detector.calibration)
    assert thumb.real_threshold == -np.inf and main.real_threshold == detector.calibration.threshold_real > 0
