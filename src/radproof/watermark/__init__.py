"""Invisible watermarks for radiographs: a robust layer and a reversible fragile layer.

>>> from radproof.watermark import generate_key, embed, read, restore
>>> key = generate_key()
>>> marked = embed(image, key, payload="SITE-042")   # robust + fragile
>>> reading = read(marked, key)                      # WatermarkReading; .to_dict() is the JSON contract
>>> original = restore(marked, key)                  # removes the fragile layer bit for bit

The robust layer carries a 64-bit payload that survives export to 8-bit PNG/JPEG, compression,
resizing, cropping and small rotations; it changes pixels slightly and is not reversible. The
fragile layer carries a keyed tag per block, so any change is localised to its block, and it can be
removed exactly: :func:`restore` gives back the pixels as they were before that layer (the original
pixels when only the fragile layer was embedded).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radproof.errors import InputError, UnsupportedError
from radproof.imaging.radiograph import Radiograph, SourceFormat
from radproof.watermark.fragile import DEFAULT_BLOCK, FragileReading, binding_record, embed_fragile, read_fragile
from radproof.watermark.keys import WatermarkKey, generate_key, load_key, save_key
from radproof.watermark.robust import (
    DEFAULT_PSNR,
    FLAG_FRAGILE,
    PAYLOAD_BYTES,
    RobustReading,
    content_hash,
    embed_robust,
    read_robust,
)

__all__ = [
    "DEFAULT_LAYERS",
    "LAYERS",
    "EmbedSummary",
    "TamperedBlock",
    "WatermarkKey",
    "WatermarkReading",
    "embed",
    "embed_file",
    "format_payload",
    "generate_key",
    "load_key",
    "parse_layers",
    "parse_payload",
    "read",
    "read_file",
    "restore",
    "restore_file",
    "save_key",
    "tamper_overlay_png",
]

LAYERS = ("robust", "fragile")
DEFAULT_LAYERS: tuple[str, ...] = LAYERS


@dataclass(frozen=True)
class TamperedBlock:
    """One fragile-layer block whose tag did not verify (pixel box in the frame)."""

    frame: int
    row: int
    col: int
    y: int
    x: int
    height: int
    width: int

    def to_dict(self) -> dict[str, int]:
        return {
            "frame": self.frame,
            "row": self.row,
            "col": self.col,
            "y": self.y,
            "x": self.x,
            "height": self.height,
            "width": self.width,
        }


@dataclass(frozen=True)
class WatermarkReading:
    """What :func:`read` found. ``to_dict()`` gives exactly the fields of the JSON contract.

    Attributes
    ----------
    found
        A radproof watermark made with this key is present (either layer).
    payload
        The robust payload as text (``0x...`` hex when it is not printable), or None.
    bit_errors
        Coded bits the error-correcting code had to fix in the robust layer, or None.
    confidence
        1 minus the chance that an unmarked image shows a robust synchronisation peak this strong
        (the false-positive rate is measured by ``benchmarks/watermark.py``); 1.0 when only the
        fragile layer was found (64-bit keyed tags); 0.0 when nothing was found.
    tampered_blocks
        Blocks of the fragile layer that fail verification; None when no fragile layer was found.
        Blocks that were too busy to carry a tag at marking time are listed apart, in
        ``unprotected_blocks``, when their verified neighbours declare them so or when the
        binding record proves that every pixel is unchanged.
    restorable
        The fragile layer is present and every pixel is verified (by its block's tag, or by the
        binding record for unprotected blocks), so :func:`restore` is exact.
    binding_ok
        The fragile layer's record matches the restored pixels and this file's SOP Instance UID
        (None when it could not be checked).
    header_bound
        DICOM only: True when the fragile layer's record binds this file's protected header
        attributes (:mod:`radproof.provenance.protected`: identity, pixel description, LUTs,
        spacing, laterality, view, overlays...) as they are now; False when they changed since
        marking; None when there is no fragile layer, no header (PNG, TIFF, JPEG), or the mark
        predates header binding. The fragile layer proves pixels; only with ``header_bound`` True
        does it vouch for the header.
    fragile_expected
        The DICOM header's radproof block or the robust payload says a fragile layer was embedded.
        With ``fragile_found`` False the fragile layer was removed, overwritten, or made with
        another key: the image is not as marked.
    content_match
        The robust payload's perceptual hash matches this image (True), does not (False: a mark
        copied from another image, or a crop), or there is none (None: no robust mark, or a mark
        made before the hash was added).
    content_distance
        Hash bits (of 32) that differ; ``content_match`` is ``content_distance <= 4``.
    """

    path: str | None
    found: bool
    payload: str | None
    bit_errors: int | None
    confidence: float
    tampered_blocks: list[TamperedBlock] | None
    restorable: bool
    robust_found: bool = False
    fragile_found: bool = False
    payload_bytes: bytes | None = None
    binding_ok: bool | None = None
    block_size: int | None = None
    unprotected_blocks: list[TamperedBlock] = field(default_factory=list)
    header_bound: bool | None = None
    fragile_expected: bool = False
    content_match: bool | None = None
    content_distance: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "found": self.found,
            "payload": self.payload,
            "bit_errors": self.bit_errors,
            "confidence": round(self.confidence, 6),
            "tampered_blocks": None if self.tampered_blocks is None else [b.to_dict() for b in self.tampered_blocks],
            "restorable": self.restorable,
            "header_bound": self.header_bound,
            "fragile_expected": self.fragile_expected,
            "content_match": self.content_match,
            "content_distance": self.content_distance,
        }


@dataclass(frozen=True)
class EmbedSummary:
    """What :func:`embed_file` wrote."""

    path: Path
    payload: str
    layers: tuple[str, ...]
    psnr_db: float
    max_abs_change: int
    unprotected_blocks: int


# ----------------------------------------------------------------------------------------------
# Payloads and layers


def parse_payload(payload: bytes | str | None, image: Radiograph | None = None) -> bytes:
    """The 8-byte robust payload from text (UTF-8, or ``0x`` + hex), bytes, or a default.

    The default is the first 8 bytes of SHA-256 of the SOP Instance UID (a key into a registry), or
    of the pixels when there is no UID.
    """
    if payload is None:
        uid = _uid(image) if image is not None else None
        seed = uid.encode() if uid else (image.pixels.tobytes() if image is not None else b"")
        return hashlib.sha256(seed).digest()[:PAYLOAD_BYTES]
    if isinstance(payload, str):
        if payload.lower().startswith("0x"):
            try:
                data = bytes.fromhex(payload[2:])
            except ValueError:
                raise InputError(f"payload {payload!r} is not valid hexadecimal") from None
        else:
            data = payload.encode("utf-8")
    else:
        data = bytes(payload)
    if len(data) > PAYLOAD_BYTES:
        raise InputError(f"the payload holds at most {PAYLOAD_BYTES} bytes; {len(data)} given")
    return data.ljust(PAYLOAD_BYTES, b"\0")


def format_payload(data: bytes) -> str:
    """Text for a payload: the string itself when printable ASCII, else ``0x`` + hex."""
    text = data.rstrip(b"\0")
    if text and all(32 <= b < 127 for b in text) and not text.lower().startswith(b"0x"):
        return text.decode("ascii")
    return "0x" + data.hex()


def parse_layers(layers: str | Iterable[str] | None) -> tuple[str, ...]:
    """Validate a layer list such as ``"robust,fragile"``; returns them in embedding order."""
    if layers is None:
        return DEFAULT_LAYERS
    items = [p.strip().lower() for p in (layers.split(",") if isinstance(layers, str) else layers)]
    items = [p for p in items if p]
    unknown = [p for p in items if p not in LAYERS]
    if unknown or not items:
        raise InputError(f"unknown watermark layer(s) {unknown or items}; choose from robust, fragile")
    return tuple(layer for layer in LAYERS if layer in items)


# ----------------------------------------------------------------------------------------------
# Core API


def _uid(image: Radiograph) -> str | None:
    ds = image.dataset
    if ds is None:
        return None
    value = ds.get("SOPInstanceUID")
    return str(value) if value else None


def value_range(image: Radiograph) -> tuple[int, int]:
    """The stored-value range declared by the image (signed data centred on zero)."""
    if image.pixels.dtype == np.int16:
        lo, hi = -(1 << (image.bits_stored - 1)), (1 << (image.bits_stored - 1)) - 1
    else:
        lo, hi = 0, image.max_value
    if image.pixels.size and (int(image.pixels.min()) < lo or int(image.pixels.max()) > hi):
        raise UnsupportedError(
            f"pixel values lie outside the {image.bits_stored}-bit range the header declares; "
            "fix BitsStored before watermarking"
        )
    return lo, hi


def fragile_range(image: Radiograph) -> tuple[int, int]:
    """The value range the fragile layer works in; it must not change when the marked file is reloaded.

    A DICOM header declares Bits Stored; a 16-bit PNG or TIFF does not (the loader guesses it from the
    largest value, which marking may change), so those use the whole 16-bit range.
    """
    if image.dataset is None and image.pixels.dtype == np.uint16:
        return 0, 65535
    return value_range(image)


def _frames(pixels: npt.NDArray[Any]) -> list[npt.NDArray[Any]]:
    return [pixels] if pixels.ndim == 2 else [pixels[i] for i in range(pixels.shape[0])]


def _stack(frames: list[npt.NDArray[Any]], like: npt.NDArray[Any]) -> npt.NDArray[Any]:
    out = frames[0] if like.ndim == 2 else np.stack(frames)
    return np.ascontiguousarray(out.astype(like.dtype))


def embed(
    radiograph: Radiograph,
    key: WatermarkKey,
    payload: bytes | str | None = None,
    layers: str | Iterable[str] | None = DEFAULT_LAYERS,
    *,
    psnr: float = DEFAULT_PSNR,
    block: int = DEFAULT_BLOCK,
) -> Radiograph:
    """Watermark a radiograph at its native bit depth.

    Parameters
    ----------
    payload
        Up to 8 bytes for the robust layer (text, ``0x`` hex, or bytes); default: a hash of the SOP
        Instance UID.
    layers
        ``robust``, ``fragile`` or both (the robust layer is embedded first).
    psnr
        Target PSNR of the robust layer in dB at native bit depth.
    block
        Fragile-layer block size in pixels.

    Returns
    -------
    Radiograph
        The marked image. For DICOM inputs its header records the marking (new SOP Instance UID,
        DERIVED, Derivation Description, Contributing Equipment, a private block).
    """
    return _embed(radiograph, key, payload, layers, psnr=psnr, block=block)[0]


def _embed(
    radiograph: Radiograph,
    key: WatermarkKey,
    payload: bytes | str | None,
    layers: str | Iterable[str] | None,
    *,
    psnr: float = DEFAULT_PSNR,
    block: int = DEFAULT_BLOCK,
) -> tuple[Radiograph, int]:
    chosen = parse_layers(layers)
    if radiograph.was_color:
        raise UnsupportedError("colour images cannot be watermarked; export a grayscale image first")
    lo, hi = value_range(radiograph)
    data = parse_payload(payload, radiograph)
    header = radiograph.dataset
    header_digest: bytes | None = None
    if header is not None:
        from radproof.provenance.protected import protected_digest
        from radproof.watermark.dicom_marking import new_instance_header, record_header_digest

        header = new_instance_header(header, chosen, fragile_block=block if "fragile" in chosen else None)
        if "fragile" in chosen:
            header_digest = protected_digest(header)
            record_header_digest(header, header_digest)
    uid = str(header.SOPInstanceUID) if header is not None and "SOPInstanceUID" in header else None
    frames = _frames(radiograph.pixels)
    # Every frame carries the first frame's hash: the reader checks the first frame.
    digest = content_hash(frames[0], key) if "robust" in chosen else None
    flags = FLAG_FRAGILE if "fragile" in chosen else 0
    out = []
    unprotected = 0
    for index, frame in enumerate(frames):
        marked = frame
        if "robust" in chosen:
            marked = embed_robust(marked, lo, hi, key, data, psnr=psnr, flags=flags, content=digest)
        if "fragile" in chosen:
            binding = binding_record(marked, uid, header_digest)
            flo, fhi = fragile_range(radiograph)
            result = embed_fragile(marked, flo, fhi, key, binding, block=block, frame_id=index)
            marked = result.pixels
            unprotected += len(result.unprotected)
        out.append(marked)
    return replace(radiograph, pixels=_stack(out, radiograph.pixels), dataset=header), unprotected


def read(radiograph: Radiograph, key: WatermarkKey) -> WatermarkReading:
    """Look for both layers; never raises for an unmarked or damaged image."""
    path = str(radiograph.path) if radiograph.path is not None else None
    frames = _frames(radiograph.pixels)
    robust = read_robust(frames[0], key)
    try:
        lo, hi = fragile_range(radiograph)
    except UnsupportedError:
        lo, hi = 0, int(np.iinfo(radiograph.pixels.dtype).max)
    tampered: list[TamperedBlock] = []
    unprotected: list[TamperedBlock] = []
    fragile_found = False
    binding_ok: bool | None = True
    header_bound: bool | None = True
    block_size: int | None = None
    header = _Header.of(radiograph)
    for index, frame in enumerate(frames):
        reading = read_fragile(frame, lo, hi, key, frame_id=index)
        if not reading.found:
            binding_ok = None if binding_ok is not False else False
            header_bound = None if header_bound is not False else False
            tampered.extend(_blocks(reading, reading.failing, index))
            continue
        fragile_found = True
        block_size = reading.block
        check = _verify_frame(reading, header)
        tampered.extend(_blocks(reading, check.tampered, index))
        unprotected.extend(_blocks(reading, check.unprotected, index))
        binding_ok = _all(binding_ok, check.binding_ok)
        header_bound = _all(header_bound, check.header_bound)
    found = robust.found or fragile_found
    return WatermarkReading(
        path=path,
        found=found,
        payload=format_payload(robust.payload) if robust.payload is not None else None,
        bit_errors=robust.bit_errors,
        confidence=robust.confidence if robust.found else (1.0 if fragile_found else 0.0),
        tampered_blocks=tampered if fragile_found else None,
        restorable=fragile_found and not tampered and (not unprotected or binding_ok is True),
        robust_found=robust.found,
        fragile_found=fragile_found,
        payload_bytes=robust.payload,
        binding_ok=binding_ok if fragile_found else None,
        block_size=block_size,
        unprotected_blocks=unprotected,
        header_bound=header_bound if fragile_found and header.digest is not None else None,
        fragile_expected=header.declares_fragile or _robust_declares_fragile(robust),
        content_match=robust.content_match,
        content_distance=robust.content_distance,
    )


def _all(a: bool | None, b: bool | None) -> bool | None:
    """Combine per-frame answers: False wins, then unknown, then True."""
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def _robust_declares_fragile(robust: RobustReading) -> bool:
    return robust.found and robust.flags is not None and bool(robust.flags & FLAG_FRAGILE)


@dataclass(frozen=True)
class _Header:
    """What the file's header tells the fragile check: UID, protected digest now and at marking."""

    uid: str | None
    digest: bytes | None  # protected_digest of the header as it is; None without a DICOM header
    recorded: bytes | None  # the digest the radproof block says was bound at marking
    declares_fragile: bool

    @classmethod
    def of(cls, radiograph: Radiograph) -> _Header:
        ds = radiograph.dataset
        if ds is None:
            return cls(None, None, None, False)
        from radproof.provenance.protected import protected_digest
        from radproof.watermark.dicom_marking import recorded_header_digest, recorded_layers

        try:
            digest: bytes | None = protected_digest(ds)
        except Exception:  # a header pydicom cannot re-encode is one whose binding cannot be checked
            digest = None
        return cls(_uid(radiograph), digest, recorded_header_digest(ds), "fragile" in recorded_layers(ds))


@dataclass(frozen=True)
class _FrameCheck:
    tampered: list[tuple[int, int]]
    unprotected: list[tuple[int, int]]
    binding_ok: bool | None
    header_bound: bool | None = None


def _record_matches(reading: FragileReading, header: _Header) -> tuple[bool, bool | None]:
    """(the record binds the restored pixels and UID, the record binds the header as it is now)."""
    record, restored = reading.binding, reading.restored
    if record is None:
        return False, None
    if header.digest is not None and record == binding_record(restored, header.uid, header.digest):
        return True, True
    if record == binding_record(restored, header.uid):
        return True, None  # PNG/TIFF, or a mark made before headers were bound
    if (
        header.recorded is not None
        and header.recorded != header.digest
        and record == binding_record(restored, header.uid, header.recorded)
    ):
        return True, False  # the pixels and UID are as marked; the protected header is not
    return False, None


def _verify_frame(reading: FragileReading, header: _Header | str | None) -> _FrameCheck:
    """Tell tampered blocks from unprotected ones, using the binding record where it can be read.

    When the record voted from the verified blocks matches the restored pixels, every pixel is
    as marked, so each failing block is one that could not carry a tag. Otherwise a failing block
    is unprotected only if a verified neighbour says so.
    """
    if not isinstance(header, _Header):
        header = _Header(header, None, None, False)
    matches, header_bound = _record_matches(reading, header)
    if matches:
        return _FrameCheck([], reading.failing, True, header_bound)
    tampered = reading.tampered
    if tampered or reading.binding is None:
        return _FrameCheck(tampered, reading.unprotected, None)
    # Every tagged block verifies, so the pixels they cover are as marked; with no untagged block the
    # mismatch can only come from the header (UID included).
    header_changed = False if not reading.failing and header.digest is not None else None
    return _FrameCheck([], reading.unprotected, False, header_changed)


def _blocks(reading: FragileReading, which: list[tuple[int, int]], frame: int) -> list[TamperedBlock]:
    out = []
    for r, c in which:
        y, x, h, w = reading.grid.box(r, c)
        out.append(TamperedBlock(frame, r, c, y, x, h, w))
    return out


def restore(radiograph: Radiograph, key: WatermarkKey) -> Radiograph:
    """Remove the fragile layer exactly; raises :class:`InputError` when any block fails verification."""
    try:
        lo, hi = fragile_range(radiograph)
    except UnsupportedError:
        raise InputError("no fragile watermark to restore (pixel values out of range)") from None
    out = []
    bound = _Header.of(radiograph)
    for index, frame in enumerate(_frames(radiograph.pixels)):
        reading = read_fragile(frame, lo, hi, key, frame_id=index)
        if not reading.found:
            raise InputError("no fragile watermark made with this key; nothing to restore")
        check = _verify_frame(reading, bound)
        if check.tampered:
            raise InputError(
                f"{len(check.tampered)} block(s) fail verification; the image was changed after "
                "watermarking and cannot be restored exactly (see `watermark read --map`)"
            )
        if check.unprotected and check.binding_ok is not True:
            raise InputError(
                f"{len(check.unprotected)} block(s) carry no fragile tag and the binding record does not "
                "confirm them; exact restoration cannot be guaranteed"
            )
        out.append(reading.restored)
    header = radiograph.dataset
    if header is not None:
        from radproof.watermark.dicom_marking import restored_instance_header

        header = restored_instance_header(header)
    return replace(radiograph, pixels=_stack(out, radiograph.pixels), dataset=header)


# ----------------------------------------------------------------------------------------------
# Files


def _write(image: Radiograph, out: str | os.PathLike[str]) -> Path:
    from radproof.fileio import atomic_write_bytes
    from radproof.imaging.raster_io import encode_raster

    target = Path(out)
    suffix = target.suffix.lower()
    if suffix in (".png", ".tif", ".tiff", ".jpg", ".jpeg"):
        if image.n_frames != 1:
            raise UnsupportedError("a multi-frame image can only be written as DICOM")
        pixels = image.frame(0)
        if pixels.dtype == np.int16:
            raise UnsupportedError("signed pixels can only be written as DICOM")
        if suffix in (".jpg", ".jpeg") and pixels.dtype != np.uint8:
            raise UnsupportedError("JPEG holds 8-bit pixels only; write PNG or TIFF for this image")
        return atomic_write_bytes(target, encode_raster(pixels, suffix, quality=95))
    if image.dataset is None:
        raise UnsupportedError(f"cannot write {target.name}: use .png, .tif or .jpg for a non-DICOM image")
    from radproof.watermark.dicom_marking import encode_dicom

    return atomic_write_bytes(target, encode_dicom(image.dataset, image.pixels))


def _load(path: str | os.PathLike[str]) -> Radiograph:
    from radproof.imaging import load

    return load(Path(path))


def embed_file(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    key: WatermarkKey,
    payload: bytes | str | None = None,
    layers: str | Iterable[str] | None = DEFAULT_LAYERS,
    **options: Any,
) -> EmbedSummary:
    """Watermark a file and write the result to ``out`` (DICOM stays DICOM, uncompressed)."""
    image = _load(src)
    chosen = parse_layers(layers)
    if Path(out).suffix.lower() in (".jpg", ".jpeg") and "fragile" in chosen:
        raise UnsupportedError("JPEG output would destroy the fragile layer; write PNG/TIFF or use --layers robust")
    data = parse_payload(payload, image)
    marked, unprotected = _embed(image, key, data, chosen, **options)
    written = _write(marked, out)
    diff = marked.pixels.astype(np.int64) - image.pixels.astype(np.int64)
    lo, hi = value_range(image)
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10((hi - lo) ** 2 / mse)
    return EmbedSummary(
        path=written,
        payload=format_payload(data),
        layers=chosen,
        psnr_db=psnr,
        max_abs_change=int(np.abs(diff).max()) if diff.size else 0,
        unprotected_blocks=unprotected,
    )


def read_file(path: str | os.PathLike[str], key: WatermarkKey) -> WatermarkReading:
    """Read both layers from a file."""
    reading = read(_load(path), key)
    return replace(reading, path=str(path))


def restore_file(src: str | os.PathLike[str], out: str | os.PathLike[str], key: WatermarkKey) -> Path:
    """Remove the fragile layer from a file and write the exact pre-watermark pixels to ``out``."""
    image = _load(src)
    if image.source_format is SourceFormat.JPEG:
        raise InputError("a JPEG cannot hold the fragile layer; nothing to restore")
    return _write(restore(image, key), out)


def tamper_overlay_png(radiograph: Radiograph, reading: WatermarkReading, *, frame: int = 0) -> bytes:
    """A PNG of the rendered image: tampered blocks tinted red, blocks without a tag outlined in amber."""
    from radproof.imaging.overlays import png, tamper_overlay
    from radproof.imaging.render import render

    drawn = tamper_overlay(
        render(radiograph, frame=frame), reading.tampered_blocks or (), untagged=reading.unprotected_blocks, frame=frame
    )
    return png(drawn)
