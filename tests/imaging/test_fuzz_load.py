"""Fuzzing the loader: any byte string gives a Radiograph or a RadproofError, nothing else."""

from __future__ import annotations

import io
import struct
import tracemalloc

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radproof.errors import RadproofError, ResourceLimitError
from radproof.imaging import Radiograph, load_bytes
from radproof.imaging.phantom import simulate


def _small_dicom(implicit: bool = False) -> bytes:
    ds = simulate(24, 20, seed=5)
    buf = io.BytesIO()
    if implicit:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    ds.save_as(buf, implicit_vr=implicit, little_endian=True, enforce_file_format=True)
    return buf.getvalue()


SEED_EXPLICIT = _small_dicom()
SEED_IMPLICIT = _small_dicom(implicit=True)


def _outcome(data: bytes) -> None:
    try:
        image = load_bytes(data, name="fuzz")
    except RadproofError as exc:
        assert str(exc)  # a message a person can read
        return
    assert isinstance(image, Radiograph)
    assert image.pixels.ndim in (2, 3)


fuzz_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fuzz_settings
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    _outcome(data)


@fuzz_settings
@given(st.sampled_from([SEED_EXPLICIT, SEED_IMPLICIT]), st.data())
def test_mutated_dicom(seed: bytes, data: st.DataObject) -> None:
    buf = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        kind = data.draw(st.sampled_from(["flip", "byte", "cut", "dup", "u32"]))
        if kind == "flip":
            buf[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "byte":
            buf[pos] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del buf[pos : pos + data.draw(st.integers(1, 64))]
        elif kind == "dup":
            buf[pos:pos] = buf[pos : pos + data.draw(st.integers(1, 64))]
        elif pos + 4 <= len(buf):
            # Lengths and sizes are 16/32-bit fields: write extreme values into them.
            buf[pos : pos + 4] = struct.pack("<I", data.draw(st.sampled_from([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF])))
        if not buf:
            break
    _outcome(bytes(buf))


def _header_with(rows: int, cols: int, frames: int) -> bytes:
    ds = simulate(24, 20, seed=6)
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 65535), st.integers(1, 65535), st.integers(1, 100000))
def test_declared_size_never_allocates_more_than_the_data(rows: int, cols: int, frames: int) -> None:
    data = _header_with(rows, cols, frames)
    tracemalloc.start()
    try:
        _outcome(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The file holds 960 bytes of pixels; whatever it declares, we never allocate hundreds of MB.
    assert peak < 64 * 1024 * 1024


def test_bomb_message_names_the_limit() -> None:
    with pytest.raises(ResourceLimitError, match="limit"):
        load_bytes(_header_with(20000, 20000, 10), name="bomb")


def test_seed_files_load() -> None:
    for seed in (SEED_EXPLICIT, SEED_IMPLICIT):
        image = load_bytes(seed)
        assert image.shape == (24, 20) and image.pixels.dtype == np.uint16
