"""Hospital-style post-processing of real radiographs, used to widen the real reference.

Every vendor processes a raw detector image before it reaches the PACS: local contrast
equalization (CLAHE and multi-scale relatives such as MUSICA) and edge enhancement are the common
steps, with strengths that differ from one hospital to the next. A detector whose notion of "real"
comes from a few sources mistakes an unseen hospital's processing for generation. Applying these
steps, at several strengths, to the real training images adds the variation that processing
brings, without any generated image involved.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy import ndimage

FloatImage = npt.NDArray[np.float32]


def _unit(f: npt.NDArray[np.floating] | npt.NDArray[np.integer]) -> FloatImage:
    """Brightness scaled to 0..1 between its 0.5 and 99.5 percentiles."""
    g = np.asarray(f, dtype=np.float32)
    lo, hi = np.percentile(g, [0.5, 99.5])
    unit: FloatImage = np.clip((g - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0).astype(np.float32)
    return unit


def clahe(f: npt.NDArray[np.floating] | npt.NDArray[np.integer], *, tiles: int = 8, clip: float = 2.0) -> FloatImage:
    """Contrast-limited adaptive histogram equalization (Zuiderveld), 256 levels, bilinear blending.

    ``tiles`` tiles along the shorter side; ``clip`` is the histogram clip limit as a multiple of
    the mean bin count. Returns 0..1.
    """
    g = _unit(f)
    h, w = g.shape
    size = max(8, min(h, w) // tiles)
    ny, nx = max(1, round(h / size)), max(1, round(w / size))
    levels = np.minimum((g * 256).astype(np.int64), 255)
    ty = np.minimum(np.arange(h) * ny // h, ny - 1)
    tx = np.minimum(np.arange(w) * nx // w, nx - 1)
    tile = ty[:, None] * nx + tx[None, :]
    hist = np.bincount((tile * 256 + levels).ravel(), minlength=ny * nx * 256).reshape(ny * nx, 256).astype(np.float64)
    counts = hist.sum(axis=1, keepdims=True)
    limit = np.maximum(clip * counts / 256.0, 1.0)
    excess = np.maximum(hist - limit, 0.0).sum(axis=1, keepdims=True)
    hist = np.minimum(hist, limit) + excess / 256.0
    cdf = np.cumsum(hist, axis=1)
    lut = (cdf / np.maximum(cdf[:, -1:], 1.0)).reshape(ny, nx, 256)
    # Blend the four nearest tile mappings by the pixel's position between tile centres.
    cy = (np.arange(h) + 0.5) * ny / h - 0.5
    cx = (np.arange(w) + 0.5) * nx / w - 0.5
    y0 = np.clip(np.floor(cy).astype(np.int64), 0, ny - 1)
    x0 = np.clip(np.floor(cx).astype(np.int64), 0, nx - 1)
    y1, x1 = np.minimum(y0 + 1, ny - 1), np.minimum(x0 + 1, nx - 1)
    wy = np.clip(cy - y0, 0.0, 1.0)[:, None]
    wx = np.clip(cx - x0, 0.0, 1.0)[None, :]
    top = lut[y0[:, None], x0[None, :], levels] * (1 - wx) + lut[y0[:, None], x1[None, :], levels] * wx
    bottom = lut[y1[:, None], x0[None, :], levels] * (1 - wx) + lut[y1[:, None], x1[None, :], levels] * wx
    blended: FloatImage = (top * (1 - wy) + bottom * wy).astype(np.float32)
    return blended


def local_contrast(
    f: npt.NDArray[np.floating] | npt.NDArray[np.integer], *, amount: float = 1.0, edge: float = 0.5
) -> FloatImage:
    """Two-scale enhancement: large-scale unsharp masking (1/16 of the short side) plus edge sharpening."""
    g = _unit(f)
    wide = max(2.0, min(g.shape) / 16.0)
    out = g + amount * (g - ndimage.gaussian_filter(g, wide))
    out = out + edge * (out - ndimage.gaussian_filter(out, 1.5))
    return _unit(out)


#: name -> processing step, as applied to the real training images.
PROCESSING: dict[str, Callable[[npt.NDArray[np.floating] | npt.NDArray[np.integer]], FloatImage]] = {
    "clahe2": lambda f: clahe(f, clip=2.0),
    "contrast": lambda f: local_contrast(f, amount=1.0, edge=0.5),
}
