"""Watermarking: both layers through the library, real DICOM files, and the command line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from radproof.cli import main
from radproof.errors import InputError, PassphraseError
from radproof.imaging import load, render
from radproof.imaging.phantom import simulate_radiograph
from radproof.imaging.radiograph import Photometric, Radiograph
from radproof.watermark import (
    WatermarkKey,
    ecc,
    embed,
    format_payload,
    generate_key,
    load_key,
    parse_payload,
    read,
    restore,
    save_key,
)
from radproof.watermark.fragile import binding_record, embed_fragile, read_fragile

KEY = WatermarkKey(b"\x11" * 32)
OTHER = WatermarkKey(b"\x22" * 32)


@pytest.fixture(scope="module")
def phantom() -> Radiograph:
    return simulate_radiograph(rows=640, cols=576, seed=3, bits=12)


@pytest.fixture(scope="module")
def marked(phantom: Radiograph) -> Radiograph:
    return embed(phantom, KEY, "SITE-042")


def _jpeg(a: np.ndarray, q: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=q)
    return np.asarray(Image.open(buf))


def _as8(pixels: np.ndarray) -> Radiograph:
    return Radiograph(pixels=np.ascontiguousarray(pixels), bits_stored=8)


def test_ecc_corrects_noise() -> None:
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, 88).astype(np.uint8)
    coded = ecc.encode(bits)
    assert coded.size == ecc.coded_length(88)
    noisy = (2.0 * coded - 1) + rng.normal(0, 0.6, coded.size)
    assert ((noisy > 0) != coded).sum() > 0  # the channel made errors
    assert np.array_equal(ecc.decode(noisy), bits)


def test_payload_parsing() -> None:
    assert parse_payload("AB") == b"AB\0\0\0\0\0\0"
    assert parse_payload("0x0102") == b"\x01\x02" + b"\0" * 6
    assert format_payload(b"SITE-042") == "SITE-042"
    assert format_payload(b"\x01\x02" + b"\0" * 6) == "0x0102000000000000"
    with pytest.raises(InputError):
        parse_payload("123456789")


def test_key_roundtrip_is_encrypted(tmp_path: Path) -> None:
    key = generate_key()
    path = save_key(key, tmp_path / "wm.key", b"pass phrase")
    assert key.secret not in path.read_bytes()
    assert load_key(path, b"pass phrase").secret == key.secret
    with pytest.raises(PassphraseError):
        load_key(path, b"wrong")


def test_both_layers_on_phantom(phantom: Radiograph, marked: Radiograph) -> None:
    diff = marked.pixels.astype(np.int64) - phantom.pixels
    psnr = 10 * np.log10(phantom.max_value**2 / np.mean(diff.astype(float) ** 2))
    assert 44.5 < psnr < 48
    reading = read(marked, KEY)
    assert reading.to_dict().keys() == {
        "path",
        "found",
        "payload",
        "bit_errors",
        "confidence",
        "tampered_blocks",
        "restorable",
        "header_bound",
        "fragile_expected",
        "content_match",
        "content_distance",
    }
    assert reading.found and reading.payload == "SITE-042" and reading.confidence > 0.999
    assert reading.fragile_expected and reading.content_match and reading.header_bound
    assert reading.tampered_blocks == [] and reading.restorable and reading.binding_ok


def test_wrong_key_and_unmarked_find_nothing(phantom: Radiograph, marked: Radiograph) -> None:
    for image, key in ((marked, OTHER), (phantom, KEY)):
        reading = read(image, key)
        assert not reading.found and reading.payload is None and reading.tampered_blocks is None


def test_robust_survives_8bit_export_and_jpeg(marked: Radiograph) -> None:
    shot = render(marked)
    for attacked in (shot, _jpeg(shot, 50), np.asarray(Image.fromarray(shot).resize((432, 480)))):
        reading = read(_as8(attacked), KEY)
        assert reading.payload == "SITE-042"


def test_robust_survives_crop(marked: Radiograph) -> None:
    shot = render(marked)
    reading = read(_as8(shot[100:552, 90:500]), KEY)
    assert reading.payload == "SITE-042"


def test_robust_survives_rotation_and_offcentre_crop_of_8bit_mark(phantom: Radiograph) -> None:
    marked = embed(_as8(render(phantom)), KEY, "SITE-042", layers="robust")
    shot = marked.frame(0)
    rotated = np.asarray(Image.fromarray(shot).rotate(-2.0, resample=Image.BILINEAR))
    for attacked in (rotated, shot[40:490, 120:520]):
        assert read(_as8(np.ascontiguousarray(attacked)), KEY).payload == "SITE-042"


def test_spectral_sync_score_matches_the_fold_and_finds_a_crop(phantom: Radiograph) -> None:
    from radproof.watermark import robust

    shot = render(embed(phantom, KEY, "SITE-042", layers="robust"))[60:600, 100:560]
    f = robust._whiten(shot.astype(np.float32))  # d = 1 at this size
    seed = KEY.seed("robust-layout")
    spec = robust._padded_spectrum(f)
    tile = robust.cell_size(phantom.shape) * robust.TILE
    true = robust._square_bases(np.array([tile]), np.array([0.0]))
    fold_z = robust._try_decode(robust._fold(f, true[0, :, 0], true[0, :, 1]), KEY)[1]
    spectral_z = robust._comb_scores(spec, true, seed)[0]
    assert fold_z > 8 and 0.7 * fold_z < spectral_z < 1.2 * fold_z
    wrong = robust._square_bases(np.array([tile * 1.03]), np.array([0.0]))
    assert robust._comb_scores(spec, wrong, seed)[0] < 6
    # The crop hides the image size; the search over scales recovers the tile.
    low, high = 0.97 * min(shot.shape) / robust.CELLS_PER_SIDE * robust.TILE, 1.6 * tile
    best = robust._searched_lattices(f, spec, seed, low, high, tile * 0.8)[0]
    assert abs(np.hypot(*best[:, 0]) / tile - 1) < 0.005 and abs(best[1, 0]) < 0.5


@pytest.mark.shared_data
def test_robust_survives_screenshot_of_a_small_image(shared_dicoms: list[Path]) -> None:
    src = next(p for p in shared_dicoms if p.name.startswith("3fb0e688aa2d"))  # 440 px CR
    shot = render(embed(load(src), KEY, "SITE-042", layers="robust"))
    small = np.asarray(Image.fromarray(shot).resize((264, 264), Image.BICUBIC))
    assert read(_as8(_jpeg(small, 80)), KEY).payload == "SITE-042"


@pytest.mark.shared_data
def test_robust_in_8bit_export_of_sparse_mammogram_survives_crop(shared_dicoms: list[Path]) -> None:
    src = next(p for p in shared_dicoms if p.name.startswith("3e0eae38971b"))  # mostly saturated background
    shot = embed(_as8(render(load(src))), KEY, "SITE-042", layers="robust").frame(0)
    h, w = shot.shape
    hh, ww = int(h * 0.71), int(w * 0.71)
    y, x = (h - hh) // 3, (w - ww) * 2 // 3  # half the area, off centre
    assert read(_as8(np.ascontiguousarray(shot[y : y + hh, x : x + ww])), KEY).payload == "SITE-042"


def test_restore_is_bit_exact_with_fragile_only(phantom: Radiograph) -> None:
    marked = embed(phantom, KEY, "X", layers="fragile")
    assert not np.array_equal(marked.pixels, phantom.pixels)
    assert np.array_equal(restore(marked, KEY).pixels, phantom.pixels)


def test_single_pixel_change_flags_only_its_block(marked: Radiograph) -> None:
    pixels = marked.pixels.copy()
    pixels[200, 300] += 1
    reading = read(marked.with_pixels(pixels), KEY)
    assert [(b.row, b.col) for b in reading.tampered_blocks or []] == [(200 // 64, 300 // 64)]
    assert not reading.restorable
    with pytest.raises(InputError):
        restore(marked.with_pixels(pixels), KEY)


def test_pasted_edit_flags_exactly_the_touched_blocks(marked: Radiograph) -> None:
    pixels = marked.pixels.copy()
    pixels[60:70, 100:200] = 1234  # crosses block rows 0-1 and columns 1-3
    reading = read(marked.with_pixels(pixels), KEY)
    touched = {(r, c) for r in (0, 1) for c in (1, 2, 3)}
    assert {(b.row, b.col) for b in reading.tampered_blocks or []} == touched


def test_fragile_handles_saturated_background_and_monochrome1() -> None:
    rng = np.random.default_rng(0)
    frame = np.full((128, 128), 4095, dtype=np.uint16)  # collimated, saturated
    ramp = np.linspace(200, 3900, 64)[None, :] + rng.normal(0, 25, (128, 64))
    frame[:, :64] = np.clip(ramp, 0, 4095).astype(np.uint16)  # textured anatomy
    frame[:64, 64:] = 0
    binding = binding_record(frame, "1.2.3")
    emb = embed_fragile(frame, 0, 4095, KEY, binding, block=32)
    assert emb.unprotected == []
    assert emb.pixels.min() >= 0 and emb.pixels.max() <= 4095
    back = read_fragile(emb.pixels, 0, 4095, KEY)
    assert back.valid.all() and np.array_equal(back.restored, frame) and back.binding == binding
    image = Radiograph(pixels=frame, bits_stored=12, photometric=Photometric.MONOCHROME1)
    marked = embed(image, KEY, "M1")
    reading = read(marked, KEY)
    assert reading.restorable and reading.binding_ok is None  # 4 blocks cannot hold the whole record


def _busy_image() -> Radiograph:
    """Smooth anatomy with two 64 x 64 blocks of pure 0/4095 checkerboard, too busy for any tag."""
    rng = np.random.default_rng(5)
    pixels = np.clip(2000 + rng.normal(0, 20, (320, 330)), 0, 4095).astype(np.uint16)
    yy, xx = np.mgrid[0:320, 0:330]
    pixels[64:192, 64:128] = np.where((yy + xx) % 2 == 0, 0, 4095)[64:192, 64:128]
    return Radiograph(pixels=pixels, bits_stored=12)


def test_unprotected_blocks_are_declared_not_tampered() -> None:
    image = _busy_image()
    emb = embed_fragile(image.pixels, 0, 4095, KEY, binding_record(image.pixels, None))
    assert emb.unprotected == [(1, 1), (2, 1)]
    marked = embed(image, KEY, "X", layers="fragile")
    reading = read(marked, KEY)
    assert reading.tampered_blocks == [] and reading.binding_ok is True and reading.restorable
    assert [(b.row, b.col) for b in reading.unprotected_blocks] == [(1, 1), (2, 1)]
    assert np.array_equal(restore(marked, KEY).pixels, image.pixels)

    edited = marked.pixels.copy()
    edited[10, 300] ^= 1  # a protected block: located exactly, the busy blocks still declared
    reading = read(marked.with_pixels(edited), KEY)
    assert [(b.row, b.col) for b in reading.tampered_blocks or []] == [(0, 4)]
    assert [(b.row, b.col) for b in reading.unprotected_blocks] == [(1, 1), (2, 1)]

    edited = marked.pixels.copy()
    edited[100, 100] = 7  # inside a block without a tag: only the binding record can notice
    reading = read(marked.with_pixels(edited), KEY)
    assert reading.tampered_blocks == [] and reading.binding_ok is False and not reading.restorable
    with pytest.raises(InputError):
        restore(marked.with_pixels(edited), KEY)


def test_fragile_blocks_of_every_shape_round_trip() -> None:
    rng = np.random.default_rng(2)
    for shape, block in (((77, 131), 12), ((200, 150), 64), ((40, 33), 64), ((129, 64), 32)):
        frame = np.clip(rng.normal(30000, 150, shape), 0, 65535).astype(np.uint16)
        emb = embed_fragile(frame, 0, 65535, KEY, binding_record(frame, None), block=block)
        back = read_fragile(emb.pixels, 0, 65535, KEY, blocks=(block,))
        assert emb.unprotected == [] and back.valid.all() and np.array_equal(back.restored, frame)
        assert not np.array_equal(emb.pixels, frame)


@pytest.mark.shared_data
def test_real_dicom_round_trip(shared_dicoms: list[Path], tmp_path: Path) -> None:
    from radproof.watermark import embed_file, read_file, restore_file

    src = next(p for p in shared_dicoms if p.name.startswith("3fb0e688aa2d"))  # 440 px CR, MONOCHROME1
    out = tmp_path / "marked.dcm"
    embed_file(src, out, KEY, payload="SITE-042", layers="fragile")
    ds = pydicom.dcmread(out)
    original = pydicom.dcmread(src, force=True)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.SOPInstanceUID != original.SOPInstanceUID
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == original.SOPInstanceUID
    assert ds.ImageType[0] == "DERIVED" and "watermark" in ds.DerivationDescription
    assert ds.get("PatientID") == original.get("PatientID") and ds.Rows == original.Rows
    reading = read_file(out, KEY)
    assert reading.restorable and reading.binding_ok
    restore_file(out, tmp_path / "restored.dcm", KEY)
    assert np.array_equal(load(tmp_path / "restored.dcm").pixels, load(src).pixels)


def test_cli_keygen_embed_read_restore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("RADPROOF_WATERMARK_PASSPHRASE", "correct horse")
    key = tmp_path / "wm.key"
    assert main(["watermark", "keygen", str(key)]) == 0
    assert main(["watermark", "keygen", str(key)]) == 2  # never overwrites silently
    phantom = simulate_radiograph(rows=512, cols=448, seed=5, bits=12)
    src = tmp_path / "in.png"
    src.write_bytes(_png16(phantom.pixels))
    out = tmp_path / "out.png"
    assert main(["watermark", "embed", str(src), "-o", str(out), "--key", str(key), "--payload", "HOSP-7"]) == 0
    capsys.readouterr()
    assert main(["watermark", "read", str(out), "--key", str(key), "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["found"] and row["payload"] == "HOSP-7" and row["restorable"] and row["path"] == str(out)
    assert main(["watermark", "read", str(src), "--key", str(key), "--json"]) == 1
    assert json.loads(capsys.readouterr().out.strip())["found"] is False
    restored = tmp_path / "restored.png"
    assert main(["watermark", "restore", str(out), "-o", str(restored), "--key", str(key)]) == 0
    tampered = np.asarray(Image.open(out)).copy()
    tampered[10, 10] += 1
    bad = tmp_path / "bad.png"
    bad.write_bytes(_png16(tampered))
    assert main(["watermark", "read", str(bad), "--key", str(key), "--map", str(tmp_path / "map.png")]) == 1
    assert Image.open(tmp_path / "map.png").mode == "RGB"
    assert main(["watermark", "restore", str(bad), "-o", str(tmp_path / "x.png"), "--key", str(key)]) == 1
    monkeypatch.setenv("RADPROOF_WATERMARK_PASSPHRASE", "wrong")
    assert main(["watermark", "read", str(out), "--key", str(key)]) == 2


def _png16(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def test_cli_reports_untagged_blocks_and_fails_when_one_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RADPROOF_WATERMARK_PASSPHRASE", "busy blocks pass 42")
    key = tmp_path / "wm.key"
    assert main(["watermark", "keygen", str(key)]) == 0
    src = tmp_path / "busy.png"
    src.write_bytes(_png16(_busy_image().pixels))
    out = tmp_path / "marked.png"
    assert main(["watermark", "embed", str(src), "-o", str(out), "--key", str(key), "--layers", "fragile"]) == 0
    assert "2 block(s) were too busy" in " ".join(capsys.readouterr().err.split())  # (rich folds lines)
    assert main(["watermark", "read", str(out), "--key", str(key)]) == 0
    assert "2 block(s) without a tag, covered by the binding record" in " ".join(capsys.readouterr().out.split())
    edited = np.asarray(Image.open(out)).copy()
    edited[100, 100] = 7  # inside an untagged block
    bad = tmp_path / "bad.png"
    bad.write_bytes(_png16(edited))
    assert main(["watermark", "read", str(bad), "--key", str(key), "--map", str(tmp_path / "map.png")]) == 1
    text = " ".join(capsys.readouterr().out.split())
    assert "binding record does not match" in text and "not verified" in text
    assert main(["watermark", "restore", str(bad), "-o", str(tmp_path / "x.png"), "--key", str(key)]) != 0
