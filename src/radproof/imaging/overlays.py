"""Evidence drawn over a rendered radiograph: tamper maps and heatmaps.

One drawing serves ``radproof watermark read --overlay``, ``radproof detect --explain``, the demo and
the HTML report, at full size or on a thumbnail: tampered blocks tinted and outlined in red, blocks
without a tag outlined in amber, the detector's evidence blended from transparent to warm red.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from radproof.imaging.boxes import PixelBox

Gray = npt.NDArray[np.uint8]
Rgb = npt.NDArray[np.uint8]

TAMPERED_RGB = (255, 0, 0)
UNTAGGED_RGB = (255, 176, 0)
#: Share of the tint over a tampered block (the anatomy stays readable underneath).
TAMPER_TINT = 0.55
#: Opacity of the heatmap where the evidence is strongest.
HEAT_ALPHA = 0.6


def tamper_overlay(
    gray: Gray,
    tampered: Iterable[PixelBox],
    *,
    untagged: Iterable[PixelBox] = (),
    image_shape: tuple[int, int] | None = None,
    frame: int = 0,
) -> Rgb:
    """RGB of ``gray`` with the boxes of ``frame`` drawn on it.

    ``image_shape`` is the (rows, cols) the boxes are measured in, when ``gray`` is a smaller rendering
    (a thumbnail); by default the boxes are in ``gray``'s own pixels.
    """
    rows, cols = gray.shape
    full_rows, full_cols = image_shape or (rows, cols)
    sy, sx = rows / max(full_rows, 1), cols / max(full_cols, 1)
    rgb = np.repeat(gray[..., None], 3, axis=2).astype(np.float32)

    def place(b: PixelBox) -> tuple[slice, slice] | None:
        if b.frame != frame:
            return None
        y0, x0 = max(0, int(b.y * sy)), max(0, int(b.x * sx))
        y1 = min(rows, max(y0 + 1, int(np.ceil((b.y + b.height) * sy))))
        x1 = min(cols, max(x0 + 1, int(np.ceil((b.x + b.width) * sx))))
        return (slice(y0, y1), slice(x0, x1)) if y0 < y1 and x0 < x1 else None

    def outline(area: npt.NDArray[np.float32], color: tuple[int, int, int]) -> None:
        area[[0, -1], :, :] = color
        area[:, [0, -1], :] = color

    for b in untagged:
        where = place(b)
        if where is not None:
            outline(rgb[where], UNTAGGED_RGB)
    red = np.asarray(TAMPERED_RGB, dtype=np.float32)
    for b in tampered:
        where = place(b)
        if where is None:
            continue
        area = rgb[where]
        area[...] = area * (1.0 - TAMPER_TINT) + red * TAMPER_TINT
        outline(area, TAMPERED_RGB)
    out: Rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return out


def heat_overlay(gray: Gray, heat: npt.NDArray[Any]) -> Rgb:
    """RGB of ``gray`` with ``heat`` (0..1, any size: resampled to ``gray``) blended from yellow to red."""
    h = fit_map(heat, (gray.shape[0], gray.shape[1]))
    base = np.repeat(gray[..., None].astype(np.float32), 3, axis=2)
    color = np.stack([np.full_like(h, 255.0), 255.0 * (1.0 - h), np.zeros_like(h)], axis=2)
    alpha = (HEAT_ALPHA * h)[..., None]
    out: Rgb = np.clip(np.rint(base * (1 - alpha) + color * alpha), 0, 255).astype(np.uint8)
    return out


def fit_map(values: npt.NDArray[Any], shape: tuple[int, int]) -> npt.NDArray[np.float32]:
    """A 2-D map resampled (bilinear) to ``shape`` (rows, cols), as float32 in 0..1.

    Values outside 0..1 are rescaled by their range; an empty or non-2-D map gives zeros.
    """
    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim != 2 or arr.size == 0:
        return np.zeros(shape, dtype=np.float32)
    arr = np.nan_to_num(arr)
    lo, hi = float(arr.min()), float(arr.max())
    if hi > 1.0 or lo < 0.0:
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    img = Image.fromarray(arr.astype(np.float32), mode="F")
    out: npt.NDArray[np.float32] = np.asarray(img.resize((shape[1], shape[0]), Image.Resampling.BILINEAR))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def png(array: npt.NDArray[np.uint8]) -> bytes:
    """A uint8 grayscale (H, W) or RGB (H, W, 3) array as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


__all__ = ["fit_map", "heat_overlay", "png", "tamper_overlay"]
