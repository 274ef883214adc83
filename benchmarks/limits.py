"""Peak memory of one worker on hostile and on large inputs (decompression bombs, huge declared sizes).

Each input is checked by ``radproof check``, ``radproof detect`` and ``radproof watermark read`` in a
fresh subprocess; the figure is that subprocess's peak resident set (ru_maxrss of the child). The
bombs must be refused (exit 2, one line) at a small peak; a normal radiograph and one at the largest
accepted size show what a legitimate image costs.

    .venv/bin/python -m benchmarks limits            # or: .venv/bin/python benchmarks/limits.py [--max-size]

The builders are also used by tests/adversarial/test_bombs.py.
"""

from __future__ import annotations

import argparse
import io
import os
import struct
import subprocess
import sys
import tempfile
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
)

#: The side the bombs declare: 20000 x 20000 x 16 bit is 800 MB of pixels, 8 GB as float64 x 2.5.
BOMB_SIDE = 20000
PW = b"benchmark passphrase"


# --------------------------------------------------------------------------------------------------
# Builders: each returns the bytes of one hostile file, a few kB at most unless said otherwise.


def png_bomb(side: int = BOMB_SIDE, *, bits: int = 16, rows_of_data: int = 4) -> bytes:
    """A PNG whose IHDR declares side x side; the IDAT holds only a few rows of zeros (a truncated stream)."""
    row = b"\0" + b"\0" * (side * bits // 8)
    idat = zlib.compress(row * rows_of_data, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", side, side, bits, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_bomb(side: int = BOMB_SIDE) -> bytes:
    """A baseline JPEG whose SOF declares side x side (the scan data is that of an 8 x 8 image)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="JPEG")
    return _patch_sof(buf.getvalue(), side, side)


def _patch_sof(data: bytes, rows: int, cols: int) -> bytes:
    out = bytearray(data)
    at = out.find(b"\xff\xc0")
    out[at + 5 : at + 9] = struct.pack(">HH", rows, cols)
    return bytes(out)


def j2k_codestream(rows: int, cols: int) -> bytes:
    """A JPEG 2000 codestream of a small image whose SIZ marker is rewritten to declare rows x cols."""
    import openjpeg

    small = openjpeg.encode(np.zeros((64, 64), np.uint16), bits_stored=16, codec_format=0)
    out = bytearray(small)
    assert out[:4] == b"\xff\x4f\xff\x51"
    # SIZ: Lsiz Rsiz Xsiz Ysiz XOsiz YOsiz XTsiz YTsiz (offsets from the SOC marker).
    out[8:16] = struct.pack(">II", cols, rows)
    out[24:32] = struct.pack(">II", cols, rows)
    return bytes(out)


def rle_frame(rows: int, cols: int, *, segments: int = 2) -> bytes:
    """An RLE Lossless frame with a header and one short run per segment (decodes to far too little)."""
    header = struct.pack("<16I", segments, *[64 + 2 * k for k in range(segments)], *[0] * (15 - segments))
    return header + b"\x81\x00" * segments  # each segment: one run of 128 zeros


def _base(rows: int, cols: int, *, bits: int = 16, frames: int = 1) -> Dataset:
    from radproof.imaging.phantom import simulate

    ds = simulate(rows=16, cols=16, seed=1)
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = bits
    ds.BitsStored = min(int(ds.BitsStored), bits)
    ds.HighBit = ds.BitsStored - 1
    if frames != 1:
        ds.NumberOfFrames = frames
    return ds


def _save(ds: Dataset, syntax: UID) -> bytes:
    ds.file_meta.TransferSyntaxUID = syntax
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def dicom_encapsulated(syntax: UID, frame: bytes, rows: int, cols: int, *, bits: int = 16, frames: int = 1) -> bytes:
    """A DICOM file declaring rows x cols (x frames) whose pixel data is the given compressed frame(s)."""
    ds = _base(rows, cols, bits=bits, frames=frames)
    ds.PixelData = encapsulate([frame] * min(frames, 4))
    ds["PixelData"].VR = "OB"
    return _save(ds, syntax)


def dicom_deflated(rows: int, cols: int, *, extra_zeros: int = 0) -> bytes:
    """Deflated Explicit VR Little Endian: the declared pixel data as zeros (plus ``extra_zeros`` more), deflated.

    With rows = cols = 20000 the inflated dataset is 800 MB from a file of under 1 MB; with a small
    image and ``extra_zeros`` the header looks harmless and only the inflated length gives it away.
    """
    ds = _base(rows, cols)
    del ds.PixelData
    body = io.BytesIO()
    pydicom.filewriter.write_dataset(pydicom.filebase.DicomFileLike(body), _explicit(ds))
    length = rows * cols * 2 + extra_zeros
    length += length % 2
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [comp.compress(body.getvalue()), comp.compress(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, length))]
    chunk = bytes(1 << 22)
    left = length
    while left:
        n = min(left, len(chunk))
        parts.append(comp.compress(chunk[:n]))
        left -= n
    parts.append(comp.flush())
    meta = FileMetaDataset(ds.file_meta)
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    head = io.BytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(pydicom.filebase.DicomFileLike(head), meta, enforce_standard=True)
    return head.getvalue() + b"".join(parts)


def _explicit(ds: Dataset) -> Dataset:
    ds.is_little_endian, ds.is_implicit_VR = True, False  # what write_dataset reads in pydicom 3
    return ds


def dicom_native(rows: int, cols: int, *, frames: int = 1, data_bytes: int | None = None) -> bytes:
    """Native (uncompressed) DICOM declaring rows x cols x frames, with ``data_bytes`` of pixel data."""
    ds = _base(rows, cols, frames=frames)
    n = rows * cols * 2 * frames if data_bytes is None else data_bytes
    ds.PixelData = bytes(n + n % 2)
    return _save(ds, ExplicitVRLittleEndian)


def bombs() -> dict[str, Callable[[], bytes]]:
    """Every hostile input by name (built lazily: the deflated one takes a second)."""
    side = BOMB_SIDE
    return {
        "png-20000": lambda: png_bomb(side),
        "png-16000-truncated": lambda: png_bomb(16000),
        "jpeg-sof-20000": lambda: jpeg_bomb(side),
        "dicom-rle-20000": lambda: dicom_encapsulated(RLELossless, rle_frame(side, side), side, side),
        "dicom-j2k-20000": lambda: dicom_encapsulated(JPEG2000Lossless, j2k_codestream(side, side), side, side),
        "dicom-j2k-small-header-huge-frame": lambda: dicom_encapsulated(
            JPEG2000Lossless, j2k_codestream(side, side), 64, 64
        ),
        "dicom-jpeg-small-header-huge-frame": lambda: dicom_encapsulated(
            JPEGBaseline8Bit, jpeg_bomb(side), 64, 64, bits=8
        ),
        "dicom-deflate-20000": lambda: dicom_deflated(side, side),
        "dicom-deflate-small-header-1gb": lambda: dicom_deflated(64, 64, extra_zeros=1 << 30),
        "dicom-frames-100000": lambda: dicom_encapsulated(RLELossless, rle_frame(512, 512), 512, 512, frames=100000),
        "dicom-native-20000-short": lambda: dicom_native(side, side, data_bytes=1024),
    }


def within_limits() -> dict[str, Callable[[], bytes]]:
    """Tiny files that declare the largest accepted size: they cost what a real image of that size costs."""
    return {
        "dicom-j2k-16000-tiny": lambda: dicom_encapsulated(
            JPEG2000Lossless, j2k_codestream(16000, 16000), 16000, 16000
        ),
        "dicom-rle-16000-tiny": lambda: dicom_encapsulated(RLELossless, rle_frame(16000, 16000), 16000, 16000),
    }


def normal_image(path: Path, rows: int = 2500, cols: int = 2000) -> Path:
    from radproof.imaging.phantom import simulate

    simulate(rows=rows, cols=cols, seed=3).save_as(path, enforce_file_format=True)
    return path


def max_size_image(path: Path, side: int = 16384) -> Path:
    """A 16-bit PNG at the largest accepted size (smooth gradient plus noise, so it is not trivially flat)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    ramp = np.linspace(1000, 3000, side, dtype=np.float32)
    pixels = (ramp[None, :] + ramp[:, None] + rng.normal(0, 8, (side, side)).astype(np.float32)).astype(np.uint16)
    Image.fromarray(pixels).save(path)
    return path


# --------------------------------------------------------------------------------------------------
# Measurement


def peak_rss(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 600) -> tuple[int, float, str]:
    """Run ``radproof ARGS`` in a fresh process: (exit code, peak RSS in MB, last line of stderr).

    The peak comes from wait4 on that child alone (ru_maxrss), so earlier children do not hide it.
    """
    exe = Path(sys.executable).with_name("radproof")
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [str(exe), *args], stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, **(env or {})}
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = err.read().decode("utf-8", "replace").strip().splitlines()
    return proc.returncode, usage.ru_maxrss / 1024, (lines[-1] if lines else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-size", action="store_true", help="also a 16384 x 16384 x 16-bit image (minutes)")
    parser.add_argument("--only", default="", help="comma-separated bomb names")
    parser.add_argument("--commands", default="check,detect,watermark", help="which commands to measure")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    commands = [c for c in args.commands.split(",") if c]
    with tempfile.TemporaryDirectory(prefix="radproof-limits-bench-") as tmp:
        root = Path(tmp)
        (root / "pw").write_bytes(PW)
        code, _, msg = peak_rss(["watermark", "keygen", str(root / "wm.key"), "--passphrase-file", str(root / "pw")])
        if code != 0:
            raise SystemExit(f"watermark keygen failed: {msg}")
        inputs: dict[str, Path] = {}
        inputs["normal-2000x2500-dicom"] = normal_image(root / "normal.dcm")
        wanted = {n for n in args.only.split(",") if n}
        for name, build in {**bombs(), **(within_limits() if args.max_size else {})}.items():
            if wanted and name not in wanted:
                continue
            path = root / name
            path.write_bytes(build())
            inputs[name] = path
        if args.max_size:
            inputs["max-16384x16384-png"] = max_size_image(root / "max.png")
        argv_of = {
            "check": lambda p: ["check", str(p)],
            "detect": lambda p: ["detect", str(p)],
            "watermark": lambda p: [
                "watermark",
                "read",
                str(p),
                "--key",
                str(root / "wm.key"),
                "--passphrase-file",
                str(root / "pw"),
            ],
        }
        print(f"peak RSS of one radproof process (MB); {os.cpu_count()} cores")
        print(f"{'input':38s} {'size':>9s} " + " ".join(f"{c:>22s}" for c in commands))
        for name, path in inputs.items():
            cells = []
            for command in commands:
                code, rss, msg = peak_rss(argv_of[command](path))
                cells.append(f"exit {code} {rss:8.0f} MB")
                last = msg
            print(f"{name:38s} {path.stat().st_size:9d} " + " ".join(f"{c:>22s}" for c in cells), flush=True)
            print(f"    {last[:150]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
