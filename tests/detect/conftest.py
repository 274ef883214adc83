"""Small images for the detector tests."""

from __future__ import annotations

import io
from pathlib import Path

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


def tiny_manifest(folder: Path) -> Path:
    """Real-like grainy images vs smooth 4x up-sampled ones (a toy, for the plumbing only)."""
    rows = ["path,label,set,generator,body_part"]
    rng = np.random.default_rng(0)
    for k in range(24):
        real = chest_like(320, seed=k, noise=float(rng.uniform(1.5, 4.0)))
        (folder / f"r{k}.png").write_bytes(png_bytes(real))
        rows.append(f"r{k}.png,real,{'a' if k % 2 else 'b'},,chest")
        small = chest_like(80, seed=100 + k, noise=0.2)
        fake = np.asarray(Image.fromarray(small).resize((320, 320), Image.Resampling.BILINEAR))
        (folder / f"f{k}.png").write_bytes(png_bytes(fake))
        rows.append(f"f{k}.png,synthetic,gen{k % 2},gen{k % 2},chest")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


@pytest.fixture(scope="session")
def phantom() -> Radiograph:
    from radproof.imaging.phantom import simulate_radiograph

    return simulate_radiograph(512, 448, seed=3)


@pytest.fixture()
def array_image() -> Radiograph:
    return Radiograph(pixels=chest_like(), bits_stored=8, source_format=SourceFormat.ARRAY)
