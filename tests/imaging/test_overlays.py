"""The one drawing of tamper maps and heatmaps, at full size and on thumbnails."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from radproof.imaging import Radiograph
from radproof.imaging.overlays import TAMPERED_RGB, UNTAGGED_RGB, heat_overlay, tamper_overlay
from radproof.watermark import TamperedBlock, WatermarkReading, tamper_overlay_png


def _gray(rows: int, cols: int) -> np.ndarray:
    return np.full((rows, cols), 100, dtype=np.uint8)


def test_tampered_blocks_are_tinted_and_outlined_untagged_ones_outlined_only() -> None:
    cut = TamperedBlock(0, 0, 0, 16, 32, 16, 16)
    untagged = TamperedBlock(0, 0, 0, 64, 64, 16, 16)
    rgb = tamper_overlay(_gray(128, 128), [cut], untagged=[untagged])
    assert tuple(rgb[16, 32]) == TAMPERED_RGB and tuple(rgb[31, 47]) == TAMPERED_RGB  # the outline
    inside = rgb[24, 40].astype(int)
    assert inside[0] > 150 and inside[1] < 60 and inside[1] == inside[2]  # tinted, anatomy still mixed in
    assert tuple(rgb[64, 70]) == UNTAGGED_RGB and tuple(rgb[72, 72]) == (100, 100, 100)
    assert tuple(rgb[100, 10]) == (100, 100, 100)  # nothing drawn elsewhere


def test_boxes_scale_to_a_thumbnail_and_other_frames_are_left_out() -> None:
    cut = TamperedBlock(0, 0, 0, 400, 200, 400, 200)  # the middle of a 1600 x 800 frame
    other = TamperedBlock(1, 0, 0, 0, 0, 400, 200)
    rgb = tamper_overlay(_gray(160, 80), [cut, other], image_shape=(1600, 800))
    assert tuple(rgb[40, 20]) == TAMPERED_RGB and tuple(rgb[79, 39]) == TAMPERED_RGB
    assert tuple(rgb[10, 10]) == (100, 100, 100)  # frame 1's box is not drawn on frame 0
    assert tuple(rgb[100, 60]) == (100, 100, 100)
    # A box reaching past the edge is clipped, not an error.
    edge = tamper_overlay(_gray(10, 10), [TamperedBlock(0, 0, 0, 8, 8, 16, 16)])
    assert tuple(edge[9, 9]) == TAMPERED_RGB


def test_heat_is_warm_where_it_is_and_absent_elsewhere_whatever_its_size() -> None:
    heat = np.zeros((8, 8), np.float32)
    heat[:4, :4] = 1.0
    rgb = heat_overlay(_gray(64, 64), heat).astype(int)
    hot, cold = rgb[4, 4], rgb[60, 60]
    assert hot[0] - hot[2] > 100 and hot[1] >= hot[2] and tuple(cold) == (100, 100, 100)
    assert heat_overlay(_gray(4, 4), np.zeros((0,), np.float32)).shape == (4, 4, 3)


def test_the_watermark_overlay_png_is_this_drawing_at_full_size() -> None:
    image = Radiograph(pixels=np.full((64, 48), 2000, dtype=np.uint16), bits_stored=12)
    reading = WatermarkReading(None, True, "SITE-A", 0, 1.0, [TamperedBlock(0, 0, 0, 8, 8, 16, 16)], False)
    rgb = np.asarray(Image.open(io.BytesIO(tamper_overlay_png(image, reading))).convert("RGB"))
    assert rgb.shape == (64, 48, 3) and tuple(rgb[8, 8]) == TAMPERED_RGB
