"""Heatmap PNG for one detection: the analysed square in grey with the evidence map over it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radproof.detect.detector import Detection


def heatmap_png(detection: Detection) -> bytes | None:
    """PNG bytes of the overlay, or None when the detection has no heatmap (e.g. unusable input)."""
    if detection.square_heatmap is None or detection.normalized is None:
        return None
    from radproof.imaging.overlays import heat_overlay, png

    gray = np.rint(255.0 * np.clip(detection.normalized, 0.0, 1.0)).astype(np.uint8)
    return png(heat_overlay(gray, detection.square_heatmap))


def write_heatmap(detection: Detection, folder: Path, stem: str) -> Path | None:
    """Write ``folder/stem.heatmap.png`` atomically; None when there is nothing to draw."""
    from radproof.fileio import atomic_write_bytes

    data = heatmap_png(detection)
    if data is None:
        return None
    return atomic_write_bytes(folder / f"{stem}.heatmap.png", data)


__all__ = ["heatmap_png", "write_heatmap"]
