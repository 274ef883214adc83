"""Attacks on the watermark's evidence: an edited header, a stripped fragile layer, a copied robust mark.

Each test checks the reading fields that ``radproof check`` turns into a verdict: ``header_bound``,
``fragile_expected`` with ``fragile_found``, and ``content_match``.
"""

from __future__ import annotations

import copy
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from radproof.imaging import load
from radproof.imaging.phantom import simulate_radiograph
from radproof.imaging.radiograph import Radiograph
from radproof.watermark import WatermarkKey, embed, read, restore
from radproof.watermark.dicom_marking import PRIVATE_GROUP, encode_dicom
from radproof.watermark.robust import embed_robust

KEY = WatermarkKey(b"\x5a" * 32)


@pytest.fixture(scope="module")
def original() -> Radiograph:
    return simulate_radiograph(rows=512, cols=448, seed=11, bits=12)


@pytest.fixture(scope="module")
def marked(original: Radiograph) -> Radiograph:
    return embed(original, KEY, "SITE-9")


@pytest.fixture(scope="module")
def other() -> Radiograph:
    # Another picture of the same kind: phantoms of one size differ only in fine detail (their
    # hashes agree), so take a window of a larger phantom, as another patient's framing would differ.
    big = simulate_radiograph(rows=768, cols=672, seed=29, bits=12)
    return replace(big, pixels=np.ascontiguousarray(big.pixels[100:612, 150:598]))


def _with_header(image: Radiograph, **changes: object) -> Radiograph:
    assert image.dataset is not None
    ds = copy.deepcopy(image.dataset)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    return replace(image, dataset=ds)


def _without_radproof_block(image: Radiograph) -> Radiograph:
    assert image.dataset is not None
    ds = copy.deepcopy(image.dataset)
    for tag in [elem.tag for elem in ds if elem.tag.group == PRIVATE_GROUP]:
        del ds[tag]
    return replace(image, dataset=ds)


def _jpeg8(pixels: np.ndarray, quality: int) -> np.ndarray:
    lo, hi = np.percentile(pixels, [0.5, 99.5])
    eight = np.clip((pixels - lo) / (hi - lo) * 255, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(eight).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf))


# ---------------------------------------------------------------------------------------------
# The fragile layer binds the header


def test_marked_dicom_is_bound_to_its_header(marked: Radiograph, tmp_path: Path) -> None:
    reading = read(marked, KEY)
    assert reading.header_bound is True and reading.binding_ok and not reading.tampered_blocks
    path = tmp_path / "marked.dcm"
    assert marked.dataset is not None
    path.write_bytes(encode_dicom(marked.dataset, marked.pixels))
    assert read(load(path), KEY).header_bound is True  # the written file still matches


@pytest.mark.parametrize(
    "changes",
    [
        {"PatientName": "Other^Patient"},
        {"PatientID": "999999"},
        {"Laterality": "R"},
        {"PixelSpacing": [0.3, 0.3]},
        {"WindowCenter": 100, "WindowWidth": 50},
        {"PresentationLUTShape": "INVERSE"},
    ],
)
def test_header_edit_after_marking_is_not_bound(marked: Radiograph, changes: dict[str, object]) -> None:
    reading = read(_with_header(marked, **changes), KEY)
    assert reading.fragile_found and not reading.tampered_blocks  # the pixels are untouched...
    assert reading.binding_ok is True
    assert reading.header_bound is False  # ...but the header is not the one that was marked
    assert reading.to_dict()["header_bound"] is False


def test_header_edit_with_the_radproof_block_removed_is_still_caught(marked: Radiograph) -> None:
    edited = _without_radproof_block(_with_header(marked, PatientName="Other^Patient"))
    reading = read(edited, KEY)
    assert reading.fragile_found and not reading.tampered_blocks
    assert reading.header_bound is False and reading.binding_ok is False


def test_unprotected_attribute_edit_keeps_the_binding(marked: Radiograph) -> None:
    reading = read(_with_header(marked, StationName="ELSEWHERE"), KEY)
    assert reading.header_bound is True and reading.binding_ok is True


# ---------------------------------------------------------------------------------------------
# A fragile layer that should be there


def test_restored_image_still_says_a_fragile_layer_was_embedded(marked: Radiograph) -> None:
    stripped = restore(marked, KEY)
    reading = read(stripped, KEY)
    assert reading.robust_found and not reading.fragile_found
    assert reading.fragile_expected  # the robust payload says so, whatever the header says now
    assert reading.header_bound is None and reading.binding_ok is None


def test_overwritten_lsb_plane_and_stripped_header(marked: Radiograph) -> None:
    rng = np.random.default_rng(5)
    pixels = (marked.pixels & ~np.uint16(1)) | rng.integers(0, 2, marked.pixels.shape, dtype=np.uint16)
    forged = _without_radproof_block(replace(marked, pixels=pixels.astype(marked.pixels.dtype)))
    reading = read(forged, KEY)
    assert reading.robust_found and reading.payload == "SITE-9"
    assert not reading.fragile_found and reading.fragile_expected


def test_robust_only_reembedded_over_the_original_pixels(original: Radiograph, marked: Radiograph) -> None:
    # The forger keeps the marked header (it says "robust, fragile") but ships pixels marked robust only.
    robust_only = embed(original, KEY, "SITE-9", layers="robust")
    forged = replace(robust_only, dataset=marked.dataset)
    reading = read(forged, KEY)
    assert reading.robust_found and not reading.fragile_found and reading.fragile_expected
    # An honest robust-only mark expects no fragile layer.
    assert not read(robust_only, KEY).fragile_expected


def test_no_mark_expects_nothing(original: Radiograph) -> None:
    reading = read(original, KEY)
    assert not reading.found and not reading.fragile_expected
    assert reading.content_match is None and reading.header_bound is None


# ---------------------------------------------------------------------------------------------
# The robust payload is bound to the image's content


def _copy_attack(marked: Radiograph, target: Radiograph, gain: float) -> Radiograph:
    """Estimate the robust mark as the marked image minus a denoised copy, and add it to ``target``."""
    x = marked.pixels.astype(np.float64)
    estimate = x - ndimage.median_filter(x, size=5)
    forged = np.clip(np.rint(target.pixels + gain * estimate), 0, target.max_value)
    return replace(target, pixels=forged.astype(target.pixels.dtype))


def test_copied_robust_mark_does_not_match_its_new_image(marked: Radiograph, other: Radiograph) -> None:
    forged = _copy_attack(marked, other, gain=1.5)
    diff = forged.pixels.astype(np.float64) - other.pixels
    psnr = 10 * np.log10(other.max_value**2 / np.mean(diff**2))
    assert psnr > 35  # a barely visible change
    reading = read(forged, KEY)
    assert reading.robust_found and reading.payload == "SITE-9"  # the copy carries the payload...
    assert reading.content_match is False  # ...but not the hash of the image it now sits on
    assert reading.content_distance is not None and reading.content_distance > 4
    assert not reading.fragile_found and reading.fragile_expected


def test_genuine_mark_matches_after_jpeg(marked: Radiograph) -> None:
    for quality in (90, 75):
        reading = read(Radiograph(pixels=_jpeg8(marked.pixels.astype(np.float64), quality), bits_stored=8), KEY)
        assert reading.robust_found and reading.content_match is True, quality
        assert reading.content_distance is not None and reading.content_distance <= 4


def test_inverted_export_matches(marked: Radiograph) -> None:
    eight = _jpeg8(marked.pixels.astype(np.float64), 95)
    reading = read(Radiograph(pixels=np.ascontiguousarray(255 - eight), bits_stored=8), KEY)
    assert reading.robust_found and reading.content_match is True


def test_old_marks_without_hash_still_read(original: Radiograph, monkeypatch: pytest.MonkeyPatch) -> None:
    from radproof.watermark import robust

    tile = robust._tile
    monkeypatch.setattr(robust, "_tile", lambda key, message: tile(key, message[: robust.PAYLOAD_BYTES]))
    old = embed_robust(original.pixels, 0, original.max_value, KEY, b"OLD-MARK")
    monkeypatch.undo()
    reading = read(Radiograph(pixels=old, bits_stored=12), KEY)
    assert reading.robust_found and reading.payload == "OLD-MARK"
    assert reading.content_match is None and reading.content_distance is None and not reading.fragile_expected
