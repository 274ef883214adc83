"""The one normalization: same output geometry for every input, clear errors or reasons for garbage."""

from __future__ import annotations

import numpy as np
import pytest

from radproof.detect.normalize import SMALL_WORK_SIZE, WORK_SIZE, normalize, normalize_array, work_size_for
from radproof.errors import InputError
from radproof.imaging import load_bytes
from radproof.imaging.radiograph import Radiograph

from .conftest import chest_like, png_bytes


def test_every_input_becomes_the_same_square() -> None:
    for shape in [(300, 500), (1024, 1024), (256, 256), (2000, 1500)]:
        out = normalize_array(np.random.default_rng(0).normal(100, 10, shape))
        assert out.pixels.shape == (WORK_SIZE, WORK_SIZE)
        assert out.pixels.dtype == np.float32
        assert out.pixels.min() >= 0.0 and out.pixels.max() <= 1.0


@pytest.mark.parametrize(
    ("short", "size"), [(255, SMALL_WORK_SIZE), (224, SMALL_WORK_SIZE), (96, SMALL_WORK_SIZE), (256, WORK_SIZE)]
)
def test_thumbnails_get_their_own_working_size(short: int, size: int) -> None:
    """Inputs under 256 px are shrunk (or up-sampled at most 4/3) to the thumbnail size, never
    blown up to the main size; a forced size overrides the choice."""
    arr = np.random.default_rng(0).normal(100, 10, (short, short + 40))
    out = normalize_array(arr)
    assert out.work_size == size and out.pixels.shape == (size, size) and not out.problems
    assert normalize_array(arr, SMALL_WORK_SIZE).work_size == SMALL_WORK_SIZE


@pytest.mark.parametrize(
    ("short", "judged", "reference"), [(191, 128, 128), (192, 128, 256), (255, 128, 256), (256, 256, 256)]
)
def test_reference_takes_slightly_smaller_images_than_it_judges(short: int, judged: int, reference: int) -> None:
    """From 192 px up an image is brought to the main size for the reference (up-sampled at most
    4/3), while the detector judges only inputs of at least 256 px there."""
    assert work_size_for(short) == judged
    assert work_size_for(short, reference=True) == reference


def test_bit_depth_and_format_do_not_reach_the_pixels() -> None:
    img8 = chest_like(512)
    as8 = normalize(Radiograph(pixels=img8, bits_stored=8))
    as16 = normalize(Radiograph(pixels=img8.astype(np.uint16) * 257, bits_stored=16))
    from_png = normalize(load_bytes(png_bytes(img8)))
    assert np.abs(as8.pixels - as16.pixels).mean() < 1 / 255
    assert np.abs(as8.pixels - from_png.pixels).max() == 0.0


def test_monochrome1_is_inverted() -> None:
    from radproof.imaging.radiograph import Photometric

    img = chest_like(300)
    inverted = Radiograph(pixels=(255 - img).astype(np.uint8), bits_stored=8, photometric=Photometric.MONOCHROME1)
    a = normalize(Radiograph(pixels=img, bits_stored=8)).pixels
    b = normalize(inverted).pixels
    assert np.abs(a - b).mean() < 2 / 255


def test_tiny_image_is_refused_with_a_reason() -> None:
    with pytest.raises(InputError, match="at least"):
        normalize_array(np.zeros((10, 400)))


@pytest.mark.parametrize(
    ("pixels", "reason"),
    [
        (np.full((300, 300), 77, dtype=np.uint8), "blank or constant"),
        ((np.random.default_rng(1).random((300, 300)) > 0.5).astype(np.uint8) * 255, "grey levels"),
        (chest_like(90), "small"),
    ],
)
def test_garbage_is_flagged(pixels: np.ndarray, reason: str) -> None:
    out = normalize(Radiograph(pixels=pixels, bits_stored=8))
    assert any(reason in p for p in out.problems)


def test_non_finite_values_do_not_crash() -> None:
    arr = np.random.default_rng(0).normal(0, 1, (300, 300))
    arr[10:20, 10:20] = np.nan
    assert np.isfinite(normalize_array(arr).pixels).all()


def test_a_thumbnail_under_the_thumbnail_size_is_mirrored_not_interpolated() -> None:
    """Interpolating up would correlate neighbouring pixels (smooth, generated-looking grain); the
    centre is kept pixel for pixel and the border mirrored, so white noise stays white."""
    arr = np.random.default_rng(0).normal(100, 10, (112, 150))
    out = normalize_array(arr)
    assert out.work_size == SMALL_WORK_SIZE and not out.problems
    top, left, rows, cols = out.placement
    assert (rows, cols) == (112, 150) and top == -8 and left == 11
    assert out.crop == (0, 11, 112, 128)
    centre = out.pixels[8:120].astype(np.float64)
    neighbours = np.corrcoef(centre[:, :-1].ravel(), centre[:, 1:].ravel())[0, 1]
    assert abs(neighbours) < 0.15
    # The mirrored border repeats the rows next to it (up to the JPEG re-encoding).
    assert np.abs(out.pixels[7] - out.pixels[9]).mean() < np.abs(out.pixels[7] - out.pixels[60]).mean() / 2


def test_the_heatmap_of_a_mirrored_thumbnail_covers_its_frame() -> None:
    from radproof.detect.detector import Detection

    square = np.ones((SMALL_WORK_SIZE, SMALL_WORK_SIZE), dtype=np.float32)
    found = Detection(None, 0.5, "uncertain", (), (), square, None, (-8, 11, 112, 150)).heatmap
    assert found is not None and found.shape == (112, 150)
    assert found[:, 11:139].min() == 1.0 and found[:, :11].max() == 0.0 and found[:, 139:].max() == 0.0
