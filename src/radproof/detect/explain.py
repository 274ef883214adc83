"""Heatmap PNG for one detection: the analysed square in grey with the evidence map in red."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from radproof.detect.detector import Detection


def overlay(gray: npt.NDArray[np.float32], heat: npt.NDArray[np.float32], alpha: float = 0.5) -> npt.NDArray[np.uint8]:
    """RGB uint8: ``gray`` (0..1) with ``heat`` (0..1) blended in red."""
    g = np.clip(gray, 0.0, 1.0)[..., None] * np.ones(3, dtype=np.float32)
    red = np.zeros_like(g)
    red[..., 0] = 1.0
    a = (alpha * np.clip(heat, 0.0, 1.0))[..., None]
    out: npt.NDArray[np.uint8] = np.rint(255.0 * ((1 - a) * g + a * red)).astype(np.uint8)
    return out


def heatmap_png(detection: Detection) -> bytes | None:
    """PNG bytes of the overlay, or None when the detection has no heatmap (e.g. unusable input)."""
    if detection.square_heatmap is None or detection.normalized is None:
        return None
    import io

    from PIL import Image

    rgb = overlay(detection.normalized, detection.square_heatmap)
    buf = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buf, format="PNG")
    return buf.getvalue()


def write_heatmap(detection: Detection, folder: Path, stem: str) -> Path | None:
    """Write ``folder/stem.heatmap.png`` atomically; None when there is nothing to draw."""
    from radproof.fileio import atomic_write_bytes

    data = heatmap_png(detection)
    if data is None:
        return None
    return atomic_write_bytes(folder / f"{stem}.heatmap.png", data)


__all__ = ["heatmap_png", "overlay", "write_heatmap"]
