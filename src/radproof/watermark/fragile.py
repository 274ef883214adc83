"""Reversible fragile layer: per-block keyed tags embedded by prediction-error expansion.

Each block (32 x 32 by default; the last row and column of blocks absorb the remainder) carries
80 bits: a 64-bit keyed tag over its own original pixels and position, and a 16-bit share of a
128-bit binding record (a hash of the original pixels and the SOP Instance UID). Blocks are
embedded independently, so a change anywhere invalidates only the blocks it touches.

Embedding, per block, in two checkerboard passes over the interior pixels: the prediction is the
mean of the four neighbours (which belong to the other pass or to the untouched one-pixel border),
pixels are visited smoothest-first, and the prediction error ``e`` is expanded (``2e + bit``) when
``-T <= e < T`` or shifted by ``T`` otherwise, until the block's bits are in; the rest of the block
is untouched. Errors are mirrored towards the middle of the value range so that saturated
backgrounds carry bits without overflow. ``T`` is chosen per block (smallest that fits) and is not
stored: the reader tries each candidate and keeps the one whose tag verifies.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from radproof.watermark.keys import WatermarkKey

TAG_BITS = 64
SHARE_BITS = 16
BLOCK_BITS = TAG_BITS + SHARE_BITS
BINDING_BYTES = 16
_SHARES = BINDING_BYTES * 8 // SHARE_BITS
THRESHOLDS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
DEFAULT_BLOCK = 64
MIN_BLOCK = 12
PROBE_BLOCKS = 24  # blocks tried before a whole frame is read

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class BlockGrid:
    """Block boundaries of one frame: the last block in each direction absorbs the remainder."""

    rows: tuple[int, ...]
    cols: tuple[int, ...]

    @classmethod
    def of(cls, shape: tuple[int, int], block: int) -> BlockGrid:
        return cls(_edges(shape[0], block), _edges(shape[1], block))

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.rows) - 1, len(self.cols) - 1)

    def box(self, r: int, c: int) -> tuple[int, int, int, int]:
        """(y, x, height, width) of block (r, c)."""
        return (self.rows[r], self.cols[c], self.rows[r + 1] - self.rows[r], self.cols[c + 1] - self.cols[c])


def _edges(n: int, block: int) -> tuple[int, ...]:
    k = max(1, n // block)
    return (*(i * block for i in range(k)), n)


@dataclass(frozen=True)
class FragileEmbedding:
    pixels: IntArray
    block: int
    thresholds: npt.NDArray[np.int64]  # per block; 0 where the block could not be protected

    @property
    def unprotected(self) -> list[tuple[int, int]]:
        return [(int(r), int(c)) for r, c in zip(*np.nonzero(self.thresholds == 0), strict=True)]


@dataclass(frozen=True)
class FragileReading:
    block: int
    grid: BlockGrid
    valid: npt.NDArray[np.bool_]  # (block rows, block cols)
    restored: IntArray  # original values where the block verified, received values elsewhere
    binding: bytes | None  # the 128-bit record voted from the valid blocks

    @property
    def found(self) -> bool:
        return bool(self.valid.any())

    @property
    def tampered(self) -> list[tuple[int, int]]:
        return [(int(r), int(c)) for r, c in zip(*np.nonzero(~self.valid), strict=True)]


def binding_record(original: npt.NDArray[Any], uid: str | None) -> bytes:
    """The 128-bit record that ties the layer to the original pixels and the SOP Instance UID."""
    pixel_hash = hashlib.sha256(np.ascontiguousarray(original, dtype="<i8").tobytes()).digest()
    data = b"radproof-binding-v1|" + (uid or "").encode() + b"|" + pixel_hash
    return hashlib.sha256(data).digest()[:BINDING_BYTES]


# ----------------------------------------------------------------------------------------------
# Geometry of one block shape: interior pixels split in two checkerboard passes.


@lru_cache(maxsize=16)
def _layout(h: int, w: int) -> tuple[tuple[IntArray, IntArray], tuple[IntArray, IntArray]]:
    yy, xx = np.mgrid[1 : h - 1, 1 : w - 1]
    out = []
    for parity in (0, 1):
        sel = ((yy + xx) % 2) == parity
        y, x = yy[sel], xx[sel]
        cand = (y * w + x).astype(np.int64)
        nbrs = np.stack([(y - 1) * w + x, (y + 1) * w + x, y * w + x - 1, y * w + x + 1], axis=1)
        out.append((cand, nbrs.astype(np.int64)))
    return (out[0], out[1])


Prep = tuple[IntArray, IntArray, npt.NDArray[np.bool_], IntArray]


def _prepare(flat: IntArray, layout: tuple[IntArray, IntArray], top: int) -> Prep:
    """For one pass: prediction errors, predictions and mirror flags in visiting order, and the order.

    Nothing here depends on the threshold, so a pass whose neighbours are fixed is prepared once.
    """
    cand, nbrs = layout
    n = flat[:, nbrs]  # (blocks, cand, 4)
    s = n.sum(axis=2)
    pred = s // 4
    complexity = 4 * (n * n).sum(axis=2) - s * s
    order = np.argsort(complexity, axis=1, kind="stable")
    pred = np.take_along_axis(pred, order, axis=1)
    v = np.take_along_axis(flat[:, cand], order, axis=1)
    mirror = 2 * pred > top
    pw = np.where(mirror, top - pred, pred)
    e = np.where(mirror, top - v, v) - pw
    return e, pw, mirror, order


def _subset(prep: Prep, rows: IntArray) -> Prep:
    return (prep[0][rows], prep[1][rows], prep[2][rows], prep[3][rows])


def _embed_pass(
    flat: IntArray,
    layout: tuple[IntArray, IntArray],
    bits: npt.NDArray[np.uint8],
    top: int,
    t: int,
    prep: Prep | None = None,
) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    cand = layout[0]
    e, pw_s, mir_s, order = prep if prep is not None else _prepare(flat, layout, top)
    os_s = pw_s < 2 * t
    carrier = (e >= -t) & (e < t) & ~(os_s & (e < 0))
    cum = np.cumsum(carrier, axis=1)
    need = bits.shape[1]
    enough = cum[:, -1] >= need
    cutoff = np.argmax(cum >= need, axis=1)
    active = np.arange(e.shape[1])[None, :] <= cutoff[:, None]
    bit_index = np.clip(cum - 1, 0, need - 1)
    b = np.take_along_axis(bits.astype(np.int64), bit_index, axis=1)
    e2 = np.where(carrier, 2 * e + b, np.where(e >= t, e + t, np.where(os_s, e, e - t)))
    e2 = np.where(active, e2, e)
    vw2 = pw_s + e2
    in_range = ((vw2 >= 0) & (vw2 <= top)) | ~active
    ok = enough & in_range.all(axis=1)
    new = np.where(mir_s, top - vw2, vw2)
    out = flat.copy()
    rows = np.arange(flat.shape[0])[:, None]
    out[rows, cand[order]] = new
    return out, ok


def _extract_pass(
    flat: IntArray,
    layout: tuple[IntArray, IntArray],
    need: int,
    top: int,
    t: int,
    prep: Prep | None = None,
) -> tuple[IntArray, npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    cand = layout[0]
    e2, pw_s, mir_s, order = prep if prep is not None else _prepare(flat, layout, top)
    os_s = pw_s < 2 * t
    carrier = (e2 >= -2 * t) & (e2 < 2 * t) & ~(os_s & (e2 < 0))
    cum = np.cumsum(carrier, axis=1)
    enough = cum[:, -1] >= need
    cutoff = np.argmax(cum >= need, axis=1)
    active = np.arange(e2.shape[1])[None, :] <= cutoff[:, None]
    e = np.where(carrier, e2 >> 1, np.where(e2 >= 2 * t, e2 - t, np.where(os_s, e2, e2 + t)))
    e = np.where(active, e, e2)
    bits_all = (e2 & 1).astype(np.uint8)
    # The first `need` carriers in visiting order hold the bits.
    keys = np.where(carrier & active, cum - 1, need)
    bits = np.zeros((flat.shape[0], need + 1), dtype=np.uint8)
    rows = np.arange(flat.shape[0])[:, None]
    bits[rows, keys] = bits_all
    vw0 = pw_s + e
    original = np.where(mir_s, top - vw0, vw0)
    out = flat.copy()
    out[rows, cand[order]] = original
    return out, bits[:, :need], enough


def _start_levels(flat: IntArray, layout: tuple[IntArray, IntArray], need: int, top: int) -> IntArray:
    """Per block, the index of the smallest threshold that could give enough carriers in pass 0."""
    cand, nbrs = layout
    pred = flat[:, nbrs].sum(axis=2) // 4
    mag = np.abs(flat[:, cand] - pred)
    counts = np.stack([(mag <= t).sum(axis=1) for t in THRESHOLDS], axis=1)
    enough = counts >= need
    levels: IntArray = np.where(enough.any(axis=1), np.argmax(enough, axis=1), len(THRESHOLDS) - 1)
    return levels


# ----------------------------------------------------------------------------------------------


def _tag(
    mac_key: bytes, frame_id: int, grid: BlockGrid, r: int, c: int, share: bytes, block: npt.NDArray[Any]
) -> bytes:
    y, x, h, w = grid.box(r, c)
    head = f"radproof-fragile-v1|{frame_id}|{grid.rows[-1]}x{grid.cols[-1]}|{y},{x},{h},{w}|".encode()
    data = head + share + np.ascontiguousarray(block, dtype="<i8").tobytes()
    return hmac.new(mac_key, data, hashlib.sha256).digest()[: TAG_BITS // 8]


def _share(binding: bytes, r: int, c: int, ncols: int) -> tuple[int, bytes]:
    slot = (r * ncols + c) % _SHARES
    return slot, binding[2 * slot : 2 * slot + 2]


def _groups(grid: BlockGrid) -> dict[tuple[int, int], list[tuple[int, int]]]:
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for r in range(grid.shape[0]):
        for c in range(grid.shape[1]):
            _, _, h, w = grid.box(r, c)
            groups.setdefault((h, w), []).append((r, c))
    return groups


def _payload_bits(tag: bytes, share: bytes) -> npt.NDArray[np.uint8]:
    return np.unpackbits(np.frombuffer(share + tag, dtype=np.uint8))


def embed_fragile(
    frame: npt.NDArray[Any],
    lo: int,
    hi: int,
    key: WatermarkKey,
    binding: bytes,
    *,
    block: int = DEFAULT_BLOCK,
    frame_id: int = 0,
) -> FragileEmbedding:
    """Embed the fragile layer in one 2-D frame whose values lie in ``lo..hi``."""
    if block < MIN_BLOCK:
        raise ValueError(f"block size must be at least {MIN_BLOCK}")
    if len(binding) != BINDING_BYTES:
        raise ValueError("binding record must be 16 bytes")
    work = frame.astype(np.int64) - lo
    top = hi - lo
    grid = BlockGrid.of(work.shape, block)
    mac_key = key.derive("fragile-tag")
    thresholds = np.zeros(grid.shape, dtype=np.int64)
    out = work.copy()
    for (h, w), members in _groups(grid).items():
        if h < 3 or w < 3:
            continue
        blocks = np.stack([work[y : y + h, x : x + w] for y, x, _, _ in (grid.box(r, c) for r, c in members)])
        bits = np.stack(
            [
                _payload_bits(
                    _tag(mac_key, frame_id, grid, r, c, _share(binding, r, c, grid.shape[1])[1], blk),
                    _share(binding, r, c, grid.shape[1])[1],
                )
                for (r, c), blk in zip(members, blocks, strict=True)
            ]
        )
        flat = blocks.reshape(len(members), -1)
        result = flat.copy()
        layouts = _layout(h, w)
        half = BLOCK_BITS // 2
        start = _start_levels(flat, layouts[0], half, top)
        prep0 = _prepare(flat, layouts[0], top)
        remaining = np.ones(len(members), dtype=bool)
        for level, t in enumerate(THRESHOLDS):
            pending = np.flatnonzero(remaining & (start <= level))
            if not remaining.any():
                break
            if pending.size == 0:
                continue
            sub = flat[pending]
            step1, ok1 = _embed_pass(sub, layouts[0], bits[pending, :half], top, t, _subset(prep0, pending))
            step2, ok2 = _embed_pass(step1, layouts[1], bits[pending, half:], top, t)
            done = ok1 & ok2
            result[pending[done]] = step2[done]
            remaining[pending[done]] = False
            for i in pending[done]:
                thresholds[members[i]] = t
        for i, (r, c) in enumerate(members):
            y, x, _, _ = grid.box(r, c)
            out[y : y + h, x : x + w] = result[i].reshape(h, w)
    return FragileEmbedding(pixels=out + lo, block=block, thresholds=thresholds)


def read_fragile(
    frame: npt.NDArray[Any],
    lo: int,
    hi: int,
    key: WatermarkKey,
    *,
    blocks: tuple[int, ...] = (64, 32),
    frame_id: int = 0,
) -> FragileReading:
    """Verify every block of one frame and undo the embedding where the tag verifies.

    A sample of blocks is probed first for each block size, so that an unmarked image (or one
    marked with another key) is dismissed quickly.
    """
    best: FragileReading | None = None
    for block in blocks:
        grid = BlockGrid.of(frame.shape, block)
        count = grid.shape[0] * grid.shape[1]
        sample = {divmod(int(i), grid.shape[1]) for i in np.linspace(0, count - 1, min(count, PROBE_BLOCKS))}
        if not _read_with_block(frame, lo, hi, key, block, frame_id, only=sample).found:
            continue
        reading = _read_with_block(frame, lo, hi, key, block, frame_id)
        if best is None or reading.valid.sum() > best.valid.sum():
            best = reading
        if reading.valid.all():
            break
    if best is None:
        grid = BlockGrid.of(frame.shape, blocks[0])
        empty = np.zeros(grid.shape, dtype=bool)
        return FragileReading(blocks[0], grid, empty, frame.astype(np.int64), None)
    return best


def _read_with_block(
    frame: npt.NDArray[Any],
    lo: int,
    hi: int,
    key: WatermarkKey,
    block: int,
    frame_id: int,
    only: set[tuple[int, int]] | None = None,
) -> FragileReading:
    work = frame.astype(np.int64) - lo
    top = hi - lo
    grid = BlockGrid.of(work.shape, block)
    mac_key = key.derive("fragile-tag")
    valid = np.zeros(grid.shape, dtype=bool)
    restored = work.copy()
    votes: list[list[bytes]] = [[] for _ in range(_SHARES)]
    half = BLOCK_BITS // 2
    for (h, w), everyone in _groups(grid).items():
        members = everyone if only is None else [m for m in everyone if m in only]
        if h < 3 or w < 3 or not members:
            continue
        layouts = _layout(h, w)
        flat = np.stack([work[y : y + h, x : x + w] for y, x, _, _ in (grid.box(r, c) for r, c in members)]).reshape(
            len(members), -1
        )
        prep1 = _prepare(flat, layouts[1], top)
        # A block embedded with threshold T has at least `need` values in [-2T, 2T) in its last
        # pass; lower thresholds cannot have been used, so they are not tried.
        e_last = prep1[0]
        possible = np.stack(
            [((e_last >= -2 * t) & (e_last < 2 * t)).sum(axis=1) >= BLOCK_BITS - half for t in THRESHOLDS],
            axis=1,
        )
        remaining = np.ones(len(members), dtype=bool)
        for level, t in enumerate(THRESHOLDS):
            if not remaining.any():
                break
            pending = np.flatnonzero(remaining & possible[:, level])
            if pending.size == 0:
                continue
            sub = flat[pending]
            prep = _subset(prep1, pending)
            step1, bits2, ok2 = _extract_pass(sub, layouts[1], BLOCK_BITS - half, top, t, prep)
            step0, bits1, ok1 = _extract_pass(step1, layouts[0], half, top, t)
            usable = ok1 & ok2
            for j in np.flatnonzero(usable):
                i = int(pending[j])
                r, c = members[i]
                payload = np.packbits(np.concatenate([bits1[j], bits2[j]])).tobytes()
                share, tag = payload[: SHARE_BITS // 8], payload[SHARE_BITS // 8 :]
                original = step0[j].reshape(h, w)
                expected = _tag(mac_key, frame_id, grid, r, c, share, original)
                if hmac.compare_digest(expected, tag):
                    valid[r, c] = True
                    y, x, _, _ = grid.box(r, c)
                    restored[y : y + h, x : x + w] = original
                    votes[_share(b"\0" * BINDING_BYTES, r, c, grid.shape[1])[0]].append(share)
                    remaining[i] = False
    binding: bytes | None = None
    if all(votes):
        binding = b"".join(max(set(v), key=v.count) for v in votes)
    return FragileReading(block=block, grid=grid, valid=valid, restored=restored + lo, binding=binding)
