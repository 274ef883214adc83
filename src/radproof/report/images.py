"""Small preview images for the report: thumbnails, detector heatmaps and tamper overlays (PNG bytes)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from radproof.imaging.radiograph import Radiograph
from radproof.imaging.render import render

THUMB_SIDE = 256


def thumbnail(image: Radiograph, *, max_side: int = THUMB_SIDE) -> npt.NDArray[np.uint8]:
    """The first frame rendered to 8-bit (window/level) and shrunk so its longer side is ``max_side``."""
    gray = render(image)
    h, w = gray.shape
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        gray = np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BOX), dtype=np.uint8)
    return gray


def png(array: npt.NDArray[Any]) -> bytes:
    """A uint8 grayscale (H, W) or RGB (H, W, 3) array as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _fit(values: npt.NDArray[Any], shape: tuple[int, int], *, nearest: bool) -> npt.NDArray[np.float32]:
    """Resample a 2-D map to ``shape`` (rows, cols), as float32 in 0..1."""
    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim != 2 or arr.size == 0:
        return np.zeros(shape, dtype=np.float32)
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    if hi > 1.0 or lo < 0.0:
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    img = Image.fromarray(np.nan_to_num(arr).astype(np.float32), mode="F")
    method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    out: npt.NDArray[np.float32] = np.asarray(img.resize((shape[1], shape[0]), method), dtype=np.float32)
    return np.clip(out, 0.0, 1.0)


def heatmap_overlay(gray: npt.NDArray[np.uint8], heat: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """The detector's heatmap (0..1, any size) blended in warm colours over a grayscale thumbnail."""
    h = _fit(heat, gray.shape, nearest=False)
    base = np.repeat(gray[..., None].astype(np.float32), 3, axis=2)
    color = np.stack([np.full_like(h, 255.0), 255.0 * (1.0 - h), np.zeros_like(h)], axis=2)
    alpha = (0.6 * h)[..., None]
    out: npt.NDArray[np.uint8] = np.clip(base * (1 - alpha) + color * alpha, 0, 255).astype(np.uint8)
    return out


def tamper_overlay(gray: npt.NDArray[np.uint8], mask: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """Tampered areas (mask true, any size: pixels or blocks) tinted red over a grayscale thumbnail."""
    m = _fit(np.asarray(mask, dtype=np.float32), gray.shape, nearest=True) > 0.5
    out = np.repeat(gray[..., None], 3, axis=2).astype(np.float32)
    out[m] = out[m] * 0.45 + np.array([255.0, 0.0, 0.0]) * 0.55
    return out.clip(0, 255).astype(np.uint8)


def blocks_mask(blocks: Any, shape: tuple[int, int], *, frame: int = 0) -> npt.NDArray[np.bool_] | None:
    """A pixel mask of tampered blocks: objects or mappings with ``y``, ``x``, ``height``, ``width``
    (and ``frame``), or (y, x, height, width) tuples. None when the blocks cannot be placed."""
    mask = np.zeros(shape, dtype=bool)
    for b in blocks or ():
        if isinstance(b, dict):
            fields = b
        elif hasattr(b, "y"):
            fields = {k: getattr(b, k, None) for k in ("frame", "y", "x", "height", "width")}
        else:
            try:
                y, x, h, w = (int(v) for v in b)
            except (TypeError, ValueError):
                return None
            fields = {"y": y, "x": x, "height": h, "width": w}
        if int(fields.get("frame") or 0) != frame:
            continue
        try:
            y, x = int(fields["y"]), int(fields["x"])
            h, w = int(fields["height"]), int(fields["width"])
        except (KeyError, TypeError, ValueError):
            return None
        mask[max(0, y) : y + h, max(0, x) : x + w] = True
    return mask
