"""Metadata hints are listed apart from the pixel score; a C2PA AI declaration is decisive."""

from __future__ import annotations

import numpy as np
import pytest

from radproof.detect import detect
from radproof.detect.evaluate import PERTURBATIONS
from radproof.detect.hints import blockiness, c2pa_hints, collect_hints
from radproof.imaging import load_bytes
from radproof.imaging.radiograph import Radiograph

from .conftest import chest_like, png_bytes


def test_secondary_capture_and_8_bit_dx_are_flagged(array_image: Radiograph) -> None:
    wrapped = PERTURBATIONS["secondary_capture"](array_image)
    names = {h.name for h in collect_hints(wrapped)}
    assert {"secondary_capture", "low_bit_depth", "no_exposure_data", "no_detector_data"} <= names


def test_phantom_header_is_consistent(phantom: Radiograph) -> None:
    names = {h.name for h in collect_hints(phantom)}
    assert "phantom" in names
    assert not names & {"secondary_capture", "low_bit_depth", "no_exposure_data", "malformed_uid"}


def test_generator_size_is_a_hint_not_a_score() -> None:
    pixels = chest_like(512, seed=1)
    data = png_bytes(pixels)
    image = load_bytes(data)
    result = detect(image, data=data)
    assert any(h.name == "generator_size" for h in result.hints)
    # The pixel score ignores the hint: the same pixels at another size-neutral path score the same.
    plain = detect(Radiograph(pixels=pixels, bits_stored=8))
    assert result.synthetic_probability == pytest.approx(plain.synthetic_probability)


def test_c2pa_marker_without_the_library_is_suspicious_not_decisive() -> None:
    data = b"\x89PNG....jumb....c2pa....http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    hints = c2pa_hints(data, None)
    assert [h.severity for h in hints] == ["suspicious"]


def test_decisive_hint_overrides_the_verdict_but_not_the_probability(array_image: Radiograph) -> None:
    data = png_bytes(array_image.pixels)
    plain = detect(array_image, data=data)
    from radproof.detect import detector as detector_module

    original = detector_module.collect_hints

    def with_c2pa(image: Radiograph, raw: bytes | None = None) -> list:
        from radproof.detect.hints import Hint

        return [*original(image, raw), Hint("c2pa_ai_generated", "decisive", "test manifest")]

    detector_module.collect_hints = with_c2pa  # type: ignore[assignment]
    try:
        marked = detect(array_image, data=data)
    finally:
        detector_module.collect_hints = original  # type: ignore[assignment]
    assert marked.verdict == "synthetic"
    assert marked.synthetic_probability == pytest.approx(plain.synthetic_probability)


def test_blockiness_sees_jpeg_history() -> None:
    import io

    from PIL import Image

    pixels = chest_like(256, noise=4.0)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=30)
    buf.seek(0)
    jpeg = np.asarray(Image.open(buf))
    assert blockiness(jpeg) > 1.25 > blockiness(pixels)
