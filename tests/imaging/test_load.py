"""Loading radiographs: every transfer syntax, photometric, bit depth, frames and raster exports."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

from radproof.errors import InputError, ResourceLimitError, UnsupportedError
from radproof.imaging import Photometric, SourceFormat, load, load_bytes, render
from radproof.imaging.phantom import PHANTOM_MARK, is_phantom, simulate

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


@pytest.fixture(scope="module")
def phantom_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("phantom") / "phantom.dcm"
    simulate(96, 80, seed=3).save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="module")
def phantom_pixels(phantom_file: Path) -> np.ndarray:
    return pydicom.dcmread(phantom_file).pixel_array


@pytest.mark.shared_data
def test_every_shared_dicom_loads_at_native_depth(shared_dicoms: list[Path]) -> None:
    for path in shared_dicoms:
        image = load(path)
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        assert image.source_format is SourceFormat.DICOM
        assert image.shape == (int(ds.Rows), int(ds.Columns)), path.name
        assert image.pixels.dtype in (np.uint16, np.int16, np.uint8)
        assert image.bits_stored == int(ds.BitsStored)
        assert image.photometric.value == ds.PhotometricInterpretation
        assert int(image.pixels.max()) <= image.max_value
        assert image.pixels.std() > 0, f"{path.name} decoded to a constant image"
        preview = render(image)
        assert preview.dtype == np.uint8 and preview.shape == image.shape
        assert preview.std() > 5


def _pydicom_images() -> list[Path]:
    names = [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_RLE.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_expb.dcm",
        "MR_small_implicit.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "JPEG2000.dcm",
        "JPGExtended.dcm",
        "image_dfl.dcm",
        "liver_1frame.dcm",
        "JPEGLSNearLossless_16.dcm",
        "693_J2KI.dcm",
    ]
    return [PYDICOM_FILES / n for n in names if (PYDICOM_FILES / n).exists()]


@pytest.mark.parametrize("path", _pydicom_images(), ids=lambda p: p.name)
def test_pydicom_test_files_match_reference_decoder(path: Path) -> None:
    image = load(path)
    reference = pydicom.dcmread(path).pixel_array
    if reference.ndim == 3 and reference.shape[0] == 1:
        reference = reference[0]
    assert np.array_equal(image.pixels, reference.astype(image.pixels.dtype))


def _dcmtk(tool: str) -> str:
    exe = shutil.which(tool, path="/usr/bin") or shutil.which(tool)
    if exe is None:
        pytest.skip(f"DCMTK tool {tool} not installed (apt-get install dcmtk)")
    return exe


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("dcmcjpeg", ["+e1"]),  # JPEG lossless, process 14 SV1
        ("dcmcjpeg", ["+el"]),  # JPEG lossless, process 14
        ("dcmcrle", []),
        ("dcmcjpls", ["+el"]),  # JPEG-LS lossless
        ("dcmcjpls", ["+en", "+md", "2"]),  # JPEG-LS near-lossless
        ("dcmconv", ["+ti"]),  # implicit VR little endian
        ("dcmconv", ["+tb"]),  # explicit VR big endian
        ("dcmconv", ["+td"]),  # deflated
    ],
)
def test_transfer_syntaxes_written_by_dcmtk(
    tool: str, args: list[str], phantom_file: Path, phantom_pixels: np.ndarray, tmp_path: Path
) -> None:
    out = tmp_path / "converted.dcm"
    subprocess.run([_dcmtk(tool), *args, str(phantom_file), str(out)], check=True, capture_output=True)
    image = load(out)
    if "+md" in args:
        assert np.abs(image.pixels.astype(int) - phantom_pixels.astype(int)).max() <= 2
    else:
        assert np.array_equal(image.pixels, phantom_pixels)
    assert image.bits_stored == 14


def test_jpeg_baseline_8bit_written_by_dcmtk(tmp_path: Path) -> None:
    src = tmp_path / "p8.dcm"
    simulate(256, 256, seed=1, bits=8).save_as(src, enforce_file_format=True)
    ds = pydicom.dcmread(src)
    pixels8 = ds.pixel_array.astype(np.uint8)
    ds.BitsAllocated = 8
    ds.PixelData = pixels8.tobytes()
    ds["PixelData"].VR = "OB"
    ds.save_as(src)
    out = tmp_path / "baseline.dcm"
    subprocess.run([_dcmtk("dcmcjpeg"), "+eb", str(src), str(out)], check=True, capture_output=True)
    image = load(out)
    assert image.pixels.dtype == np.uint8
    # Lossy: close to the source, not equal.
    assert np.corrcoef(image.pixels.ravel(), pixels8.ravel())[0, 1] > 0.98
    assert not np.array_equal(image.pixels, pixels8)


@pytest.mark.parametrize(
    "syntax", [JPEG2000Lossless, RLELossless, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian]
)
def test_transfer_syntaxes_written_by_pydicom(
    syntax: pydicom.uid.UID, phantom_file: Path, phantom_pixels: np.ndarray, tmp_path: Path
) -> None:
    ds = pydicom.dcmread(phantom_file)
    if syntax.is_compressed:
        ds.compress(syntax)
    else:
        ds.file_meta.TransferSyntaxUID = syntax
    out = tmp_path / "out.dcm"
    ds.save_as(out, implicit_vr=syntax.is_implicit_VR, little_endian=syntax.is_little_endian)
    assert np.array_equal(load(out).pixels, phantom_pixels)


def test_jpeg2000_lossy_decodes_close(phantom_file: Path, phantom_pixels: np.ndarray, tmp_path: Path) -> None:
    ds = pydicom.dcmread(phantom_file)
    ds.compress(JPEG2000, j2k_cr=[20])
    ds.save_as(tmp_path / "lossy.dcm")
    image = load(tmp_path / "lossy.dcm")
    diff = np.abs(image.pixels.astype(float) - phantom_pixels)
    assert 0 < diff.mean() < 0.02 * image.max_value


def test_big_endian_file_decodes_to_native_order(
    phantom_file: Path, phantom_pixels: np.ndarray, tmp_path: Path
) -> None:
    out = tmp_path / "be.dcm"
    subprocess.run([_dcmtk("dcmconv"), "+tb", str(phantom_file), str(out)], check=True, capture_output=True)
    assert pydicom.dcmread(out).file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    image = load(out)
    assert image.pixels.dtype.isnative
    assert np.array_equal(image.pixels, phantom_pixels)


def test_monochrome1_renders_inverted(phantom_file: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(phantom_file)
    arr = ds.pixel_array
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.PixelData = ((1 << 14) - 1 - arr).astype(np.uint16).tobytes()
    ds.WindowCenter = str((1 << 14) - 1 - float(pydicom.dcmread(phantom_file).WindowCenter))
    ds.save_as(tmp_path / "m1.dcm")
    mono1 = load(tmp_path / "m1.dcm")
    mono2 = load(phantom_file)
    assert mono1.photometric is Photometric.MONOCHROME1
    # Same picture on screen: rendering undoes the inversion (within one grey level of rounding).
    assert np.abs(render(mono1).astype(int) - render(mono2).astype(int)).max() <= 1
    assert np.allclose(mono1.brightness(), mono2.brightness())


def test_multiframe_frames_addressable(phantom_file: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(phantom_file)
    frames = np.stack([ds.pixel_array, ds.pixel_array // 2, ds.pixel_array // 3]).astype(np.uint16)
    ds.NumberOfFrames = 3
    ds.PixelData = frames.tobytes()
    ds.save_as(tmp_path / "mf.dcm")
    image = load(tmp_path / "mf.dcm")
    assert image.n_frames == 3 and image.pixels.shape == frames.shape
    assert np.array_equal(image.frame(2), frames[2])
    single = load(tmp_path / "mf.dcm", frame=1)
    assert single.pixels.shape == frames.shape[1:] and np.array_equal(single.pixels, frames[1])
    with pytest.raises(InputError, match="frame 5"):
        load(tmp_path / "mf.dcm", frame=5)


def test_file_without_preamble_loads(phantom_file: Path, phantom_pixels: np.ndarray, tmp_path: Path) -> None:
    ds = pydicom.dcmread(phantom_file)
    buf = io.BytesIO()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    pydicom.dcmwrite(buf, ds, enforce_file_format=False, implicit_vr=True, little_endian=True)
    raw = buf.getvalue()
    body = raw[raw.index(b"\x08\x00") :] if raw[128:132] == b"DICM" else raw
    image = load_bytes(body, name="bare")
    assert np.array_equal(image.pixels, phantom_pixels)


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("fmt", ["png", "tiff"])
def test_lossless_raster_exports(bits: int, fmt: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    dtype = np.uint8 if bits == 8 else np.uint16
    arr = rng.integers(0, 2**bits - 1, size=(40, 30), dtype=dtype)
    arr[0, 0] = 2**bits - 1
    path = tmp_path / f"x.{fmt}"
    Image.fromarray(arr).save(path)
    image = load(path)
    assert image.source_format.value == ("png" if fmt == "png" else "tiff")
    assert image.pixels.dtype == dtype and np.array_equal(image.pixels, arr)
    assert image.bits_stored == bits


def test_colour_jpeg_becomes_grayscale_and_says_so(tmp_path: Path) -> None:
    rgb = np.zeros((32, 32, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=95)
    image = load(tmp_path / "c.jpg")
    assert image.source_format is SourceFormat.JPEG and image.pixels.ndim == 2 and image.was_color


def test_phantom_is_marked_and_plausible(phantom_file: Path) -> None:
    ds = pydicom.dcmread(phantom_file)
    assert is_phantom(ds) and ds.ImageComments == PHANTOM_MARK
    assert "PHANTOM" in str(ds.PatientName)
    assert ds.Modality == "DX" and ds.PresentationIntentType == "FOR PRESENTATION"
    for keyword in (
        "KVP",
        "ExposureIndex",
        "DeviationIndex",
        "DetectorType",
        "ImagerPixelSpacing",
        "PixelSpacing",
    ):
        assert keyword in ds
    image = load(phantom_file)
    assert image.bits_stored == 14 and int(image.pixels.max()) < 2**14
    # Lungs (air) are darker than the spine (bone) in a MONOCHROME2 log image.
    rows, cols = image.shape
    lung = image.pixels[rows * 2 // 5, cols // 4]
    spine = image.pixels[rows * 2 // 5, cols // 2]
    assert spine > lung


def test_phantom_noise_follows_quantum_statistics() -> None:
    """Noise in the log image is larger where fewer quanta arrive (behind bone), as physics demands."""
    a = simulate(256, 256, seed=10).pixel_array.astype(float)
    b = simulate(256, 256, seed=11).pixel_array.astype(float)
    # Same anatomy up to jitter; compare a noise proxy in a dense and a thin region of one image.
    diff = np.diff(a, axis=1)
    spine = diff[90:150, 124:132].std()
    lung = diff[90:150, 60:68].std()
    assert spine > lung
    assert not np.array_equal(a, b)


# ---------- bad input ----------


def test_missing_file() -> None:
    with pytest.raises(InputError, match="no such file"):
        load("/nonexistent/x.dcm")


def test_empty_and_non_image_files(tmp_path: Path) -> None:
    (tmp_path / "empty.dcm").write_bytes(b"")
    (tmp_path / "text.dcm").write_text("hello, not an image\n" * 20)
    with pytest.raises(InputError, match="empty"):
        load(tmp_path / "empty.dcm")
    with pytest.raises(InputError, match="not a DICOM, PNG, JPEG or TIFF"):
        load(tmp_path / "text.dcm")
    with pytest.raises(InputError, match="folder"):
        load(tmp_path)


def test_dicom_without_pixels(phantom_file: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(phantom_file)
    del ds.PixelData
    ds.save_as(tmp_path / "nopix.dcm")
    with pytest.raises(InputError, match="no pixel data"):
        load(tmp_path / "nopix.dcm")


def test_truncated_dicom_and_png(phantom_file: Path, tmp_path: Path) -> None:
    data = phantom_file.read_bytes()
    (tmp_path / "t.dcm").write_bytes(data[: len(data) - 999])
    with pytest.raises(InputError):
        load(tmp_path / "t.dcm")
    buf = io.BytesIO()
    Image.fromarray(np.arange(4096, dtype=np.uint8).reshape(64, 64)).save(buf, format="PNG")
    (tmp_path / "t.png").write_bytes(buf.getvalue()[:-200])
    with pytest.raises(InputError):
        load(tmp_path / "t.png")


def test_decompression_bomb_refused_before_allocation(phantom_file: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(phantom_file)
    ds.Rows, ds.Columns, ds.NumberOfFrames = 30000, 30000, 50
    ds.save_as(tmp_path / "bomb.dcm")
    with pytest.raises(ResourceLimitError, match="over the limit of 16384 pixels a side"):
        load(tmp_path / "bomb.dcm")
    # A PNG header declaring a huge canvas is refused without decoding.
    png = _png_header_only(60000, 60000)
    with pytest.raises(ResourceLimitError):
        load_bytes(png, name="bomb.png")


def _png_header_only(width: int, height: int) -> bytes:
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_unsupported_bit_depth_is_clear(tmp_path: Path) -> None:
    path = PYDICOM_FILES / "rtdose_1frame.dcm"
    if not path.exists():
        pytest.skip("pydicom test file missing")
    with pytest.raises(UnsupportedError, match="BitsAllocated 32"):
        load(path)


def test_pixel_limit_is_configurable(phantom_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADPROOF_MAX_PIXEL_BYTES", "1000")
    with pytest.raises(ResourceLimitError, match="RADPROOF_MAX_PIXEL_BYTES"):
        load(phantom_file)
    monkeypatch.delenv("RADPROOF_MAX_PIXEL_BYTES")
    assert load(phantom_file).shape == (96, 80)
    assert os.environ.get("RADPROOF_MAX_PIXEL_BYTES") is None


def test_decoding_a_parsed_dataset_leaves_it_whole(phantom_file: Path) -> None:
    """The scan parses once, decodes, then verifies the same dataset: decoding must not strip its pixels."""
    from radproof.imaging import radiograph_from_dataset, read_dataset

    ds = read_dataset(phantom_file)
    image = radiograph_from_dataset(ds, name="p")
    assert "PixelData" in ds
    assert image.dataset is not None and "PixelData" not in image.dataset
    assert np.array_equal(image.pixels, load(phantom_file).pixels)
