"""The public API: detect(radiograph) and detect_file(path), on phantoms, arrays and bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from radproof.detect import Detection, detect, detect_file
from radproof.errors import InputError
from radproof.imaging.radiograph import Radiograph

from .conftest import chest_like, png_bytes

CONTRACT = {"path", "synthetic_probability", "verdict", "evidence", "hints"}


def test_phantom_gets_a_full_answer(phantom: Radiograph) -> None:
    result = detect(phantom)
    d = result.to_dict()
    assert set(d) == CONTRACT
    assert 0.0 <= d["synthetic_probability"] <= 1.0
    assert d["verdict"] in ("real", "synthetic", "uncertain")
    assert d["evidence"], "a usable image must come with evidence"
    assert any(h["name"] == "phantom" for h in d["hints"])
    # 512 x 448 -> working scale 256 / 448: the whole-frame map keeps the image's aspect ratio.
    assert result.heatmap is not None and result.heatmap.shape == (293, 256)
    assert float(result.heatmap.min()) >= 0.0 and float(result.heatmap.max()) <= 1.0
    assert result.square_heatmap is not None and result.square_heatmap.shape == (256, 256)


def test_evidence_entries_follow_the_contract(array_image: Radiograph) -> None:
    evidence = detect(array_image).to_dict()["evidence"]
    for e in evidence:
        assert set(e) == {"name", "value", "reference", "direction", "weight"}
        assert e["direction"] in ("lower than real", "higher than real", "consistent with real")
        assert "real radiographs" in e["reference"]
    # the weights are shares of the evidence, network included, largest first
    weights = [float(e["weight"]) for e in evidence]
    assert abs(sum(weights) - 1.0) < 1e-2 and weights == sorted(weights, reverse=True)
    assert any(e["name"] == "learned_model" for e in evidence)


def test_the_same_pixels_in_png_and_array_get_the_same_score(tmp_path: Path) -> None:
    pixels = chest_like(400, seed=5)
    path = tmp_path / "x.png"
    path.write_bytes(png_bytes(pixels))
    from_file = detect_file(path)
    from_array = detect(Radiograph(pixels=pixels, bits_stored=8))
    assert from_file.synthetic_probability == pytest.approx(from_array.synthetic_probability, abs=1e-9)
    assert from_file.path == str(path)


@pytest.mark.parametrize(
    "pixels",
    [
        np.full((400, 400), 200, dtype=np.uint8),  # blank
        (np.indices((400, 400)).sum(0) % 2 * 255).astype(np.uint8),  # 1-bit checkerboard
    ],
)
def test_garbage_gets_uncertain_with_a_reason(pixels: np.ndarray) -> None:
    d = detect(Radiograph(pixels=pixels, bits_stored=8)).to_dict()
    assert d["verdict"] == "uncertain"
    assert d["synthetic_probability"] == 0.5
    assert any(h["name"] == "unreliable_input" for h in d["hints"])


def test_colour_and_16_bit_files_are_handled(tmp_path: Path) -> None:
    rgb = np.stack([chest_like(300)] * 3, axis=-1)
    rgb[..., 0] = np.clip(rgb[..., 0].astype(int) + 40, 0, 255).astype(np.uint8)
    (tmp_path / "c.png").write_bytes(png_bytes(rgb, "RGB"))
    colour = detect_file(tmp_path / "c.png")
    assert any(h.name == "colour" for h in colour.hints)
    deep = (chest_like(300).astype(np.uint16) * 257).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(deep).save(buf, format="PNG")
    (tmp_path / "d.png").write_bytes(buf.getvalue())
    assert isinstance(detect_file(tmp_path / "d.png"), Detection)


def test_corrupt_tiny_and_missing_files_raise_input_error(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    (tmp_path / "tiny.png").write_bytes(png_bytes(chest_like(20)))
    (tmp_path / "text.png").write_bytes(b"hello")
    for name in ("bad.png", "tiny.png", "text.png", "missing.png"):
        with pytest.raises(InputError):
            detect_file(tmp_path / name)


def test_heavily_upsampled_smooth_image_is_not_called_real() -> None:
    """A decoder-like image (8x nearest up-sampling of a smooth field) sits far from real radiographs."""
    rng = np.random.default_rng(0)
    small = 128 + 40 * np.tanh(rng.normal(0, 1, (40, 40)))
    fake = np.kron(small, np.ones((8, 8))).astype(np.uint8)
    assert detect(Radiograph(pixels=fake, bits_stored=8)).verdict in ("synthetic", "uncertain")


def test_huge_declared_size_is_refused_before_decoding(tmp_path: Path) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    )
    (tmp_path / "bomb.png").write_bytes(bomb)
    with pytest.raises(InputError):
        detect_file(tmp_path / "bomb.png")


def test_the_shipped_detector_is_loaded_once_per_process() -> None:
    from radproof.detect.detector import default_detector

    assert default_detector() is default_detector()
