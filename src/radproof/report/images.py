"""Thumbnails for the report (the overlays on them are drawn by :mod:`radproof.imaging.overlays`)."""

from __future__ import annotations

import base64

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


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
