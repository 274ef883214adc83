"""Fuzzing the parsers an attacker reaches first: the DICOM signature verifier and the watermark reader.

Whatever the bytes, only a :class:`~radproof.errors.RadproofError` may escape (a message, exit 2 on
the command line), and memory stays bounded: a mutated length field must not make either of them
allocate what it declares.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radproof.errors import RadproofError
from radproof.imaging import load_bytes, read_dataset
from radproof.imaging.phantom import simulate
from radproof.imaging.radiograph import Radiograph
from radproof.provenance import (
    Role,
    TrustStore,
    init_ca,
    issue_identity,
    load_identity,
    sign_dataset,
    verify_dataset,
    verify_file,
)
from radproof.watermark import WatermarkKey, embed, generate_key, read

PW = b"adversarial fuzz passphrase 1"
#: The seeds are ~ 10 kB; 64 MB of Python allocations would mean a declared length was believed.
PEAK_BYTES = 64 * 1024**2
#: The robust reader works on padded spectra of a fixed size: ~ 90 MiB for any small image (measured).
READER_PEAK_BYTES = 256 * 1024**2
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@pytest.fixture(scope="module")
def trust_and_seed(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrustStore, bytes, WatermarkKey]:
    root = tmp_path_factory.mktemp("fuzz-pki")
    try:
        from radproof.provenance.identity import KeyEncryption

        fast: dict[str, Any] = {"encryption": KeyEncryption.pbkdf2(iterations=2048)}
    except (ImportError, AttributeError):
        fast = {}
    init_ca(root / "ca", "Fuzz CA", PW, key_bits=2048, **fast)
    issue_identity(root / "tech", root / "ca", "Fuzz Tech", Role.TECHNOLOGIST, PW, PW, key_bits=2048, **fast)
    key = generate_key()
    ds = simulate(rows=40, cols=48, seed=7)
    marked = embed(Radiograph(pixels=ds.pixel_array.copy(), bits_stored=int(ds.BitsStored), dataset=ds), key)
    ds.PixelData = marked.pixels.astype(np.uint16).tobytes()
    sign_dataset(ds, load_identity(root / "tech", PW))
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return TrustStore.from_files(root / "ca" / "ca.pem"), buf.getvalue(), key


def _mutate(seed: bytes, data: st.DataObject) -> bytes:
    blob = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 6), label="edits")):
        pos = data.draw(st.integers(0, len(blob) - 1), label="pos")
        kind = data.draw(st.sampled_from(["byte", "flip", "u32", "u16", "cut", "dup"]), label="kind")
        if kind == "byte":
            blob[pos] = data.draw(st.integers(0, 255))
        elif kind == "flip":
            blob[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind in ("u32", "u16"):
            # Length fields are where a parser is told to allocate: huge, odd and off-by-one values.
            value = data.draw(st.sampled_from([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFE, 0xFFFFFFFF, len(blob) + 1]))
            fmt = "<I" if kind == "u32" else "<H"
            blob[pos : pos + struct.calcsize(fmt)] = struct.pack(fmt, value & (0xFFFFFFFF if kind == "u32" else 0xFFFF))
        elif kind == "cut":
            del blob[pos:]
            if not blob:
                blob = bytearray(b"\0")
        else:
            blob[pos:pos] = blob[pos : pos + data.draw(st.integers(1, 64))]
    return bytes(blob)


SLOW_FUZZ = settings(FUZZ, max_examples=10)  # one watermark read is ~ 0.5 s


def _bounded(call: Callable[[], object], limit: int = PEAK_BYTES) -> None:
    """Run ``call``: a RadproofError is fine; any other exception fails; so does a big allocation."""
    tracemalloc.start()
    try:
        call()
    except RadproofError as exc:
        assert str(exc)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < limit, f"{peak / 2**20:.0f} MiB allocated"


@FUZZ
@given(data=st.data())
def test_verify_file_on_mutated_signed_dicom(
    trust_and_seed: tuple[TrustStore, bytes, WatermarkKey],
    tmp_path_factory: pytest.TempPathFactory,
    data: st.DataObject,
) -> None:
    trust, seed, _ = trust_and_seed
    path = Path(tmp_path_factory.mktemp("fuzz")) / "f.dcm"
    path.write_bytes(_mutate(seed, data))

    def run() -> None:
        result = verify_file(path, trust)
        for sig in result.signatures:
            assert sig.valid or sig.reason

    _bounded(run)


@FUZZ
@given(data=st.data())
def test_verify_dataset_on_mutated_signed_dicom(
    trust_and_seed: tuple[TrustStore, bytes, WatermarkKey], data: st.DataObject
) -> None:
    trust, seed, _ = trust_and_seed
    blob = _mutate(seed, data)
    _bounded(lambda: verify_dataset(read_dataset(blob, name="fuzz"), trust))


@SLOW_FUZZ
@given(data=st.data())
def test_watermark_reader_on_mutated_marked_dicom(
    trust_and_seed: tuple[TrustStore, bytes, WatermarkKey], data: st.DataObject
) -> None:
    _, seed, key = trust_and_seed
    blob = _mutate(seed, data)
    _bounded(lambda: read(load_bytes(blob, name="fuzz"), key), READER_PEAK_BYTES)


@SLOW_FUZZ
@given(
    rows=st.integers(1, 80),
    cols=st.integers(1, 80),
    frames=st.integers(1, 3),
    dtype=st.sampled_from([np.uint8, np.uint16, np.int16]),
    seed=st.integers(0, 2**16),
    bits=st.integers(1, 16),
)
def test_watermark_reader_on_arbitrary_pixels(
    trust_and_seed: tuple[TrustStore, bytes, WatermarkKey],
    rows: int,
    cols: int,
    frames: int,
    dtype: Any,
    seed: int,
    bits: int,
) -> None:
    """Any shape (1 x 1, thin strips, several frames) and any values: a reading or a RadproofError."""
    _, _, key = trust_and_seed
    bits = min(bits, 8 * np.dtype(dtype).itemsize)
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    shape = (rows, cols) if frames == 1 else (frames, rows, cols)
    pixels = rng.integers(max(info.min, 0), min(info.max, (1 << bits) - 1) + 1, shape).astype(dtype)
    _bounded(lambda: read(Radiograph(pixels=pixels, bits_stored=bits), key), READER_PEAK_BYTES)
