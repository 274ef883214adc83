"""Cues respond to what they claim to measure."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from radproof.detect import cues
from radproof.detect.normalize import normalize_array

from .conftest import chest_like


def _norm(a: np.ndarray) -> np.ndarray:
    return normalize_array(a).pixels


def test_all_cues_are_finite_numbers() -> None:
    values = cues.measure(_norm(chest_like(400)))
    assert set(values) == set(cues.CUES)
    assert all(np.isfinite(v) for v in values.values())


def test_noise_level_grows_with_noise() -> None:
    quiet = cues.noise_level(_norm(chest_like(256, noise=0.5).astype(float)))
    loud = cues.noise_level(_norm(chest_like(256, noise=6.0).astype(float)))
    assert loud > 2 * quiet


def test_decoder_checkerboard_leaves_periodic_peaks() -> None:
    rng = np.random.default_rng(0)
    natural = ndimage.gaussian_filter(rng.normal(0, 1, (256, 256)), 1.5) + rng.normal(0, 0.05, (256, 256))
    # A learned 8x up-sampler leaves a faint pattern repeating every 8 pixels (checkerboard artefact).
    tile = rng.normal(0, 1, (8, 8))
    decoded = natural + 0.15 * np.tile(tile, (32, 32))
    assert cues.upsampling_peaks(_norm(decoded)) > cues.upsampling_peaks(_norm(natural)) + 0.5


def test_blur_lowers_high_frequency_ratio_and_sharpness() -> None:
    img = chest_like(256, noise=3.0).astype(float)
    blurred = ndimage.gaussian_filter(img, 1.5)
    assert cues.high_frequency_ratio(_norm(blurred)) < cues.high_frequency_ratio(_norm(img))
    assert cues.edge_sharpness(_norm(blurred)) < cues.edge_sharpness(_norm(img)) + 1e-6


def test_uniform_grain_has_lower_spread_than_patchy_grain() -> None:
    rng = np.random.default_rng(2)
    base = np.full((256, 256), 120.0)
    uniform = base + rng.normal(0, 4, base.shape)
    gain = np.kron(rng.uniform(0.3, 3.0, (8, 8)), np.ones((32, 32)))
    patchy = base + rng.normal(0, 4, base.shape) * gain
    assert cues.grain_uniformity(_norm(patchy)) > cues.grain_uniformity(_norm(uniform)) + 0.2


@pytest.mark.parametrize("name", list(cues.CUES))
def test_constant_image_gives_a_defined_value(name: str) -> None:
    value = cues.CUES[name](np.full((256, 256), 0.5, dtype=np.float32))
    assert np.isfinite(value)
