"""Small images for the detector tests."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from radproof.imaging.radiograph import Radiograph, SourceFormat


def chest_like(size: int = 320, seed: int = 0, noise: float = 2.0) -> np.ndarray:
    """A smooth body-like 8-bit image with grain (not a radiograph, but has one's statistics)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    body = 120 + 60 * np.exp(-((x - 0.5) ** 2 + (y - 0.5) ** 2) / 0.08)
    lungs = -50 * (
        np.exp(-((x - 0.3) ** 2 + (y - 0.45) ** 2) / 0.02) + np.exp(-((x - 0.7) ** 2 + (y - 0.45) ** 2) / 0.02)
    )
    img = body + lungs + rng.normal(0, noise, (size, size))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def png_bytes(pixels: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def phantom() -> Radiograph:
    from radproof.imaging.phantom import simulate_radiograph

    return simulate_radiograph(512, 448, seed=3)


@pytest.fixture()
def array_image() -> Radiograph:
    return Radiograph(pixels=chest_like(), bits_stored=8, source_format=SourceFormat.ARRAY)
