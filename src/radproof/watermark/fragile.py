"""Reversible fragile layer: per-block keyed tags embedded by prediction-error expansion.

Each block (64 x 64 by default; the last row and column of blocks absorb the remainder) carries
84 bits: a 64-bit keyed tag over its own original pixels and position, a 16-bit share of a
128-bit binding record (a hash of the original pixels, the SOP Instance UID and, for DICOM, the
digest of the protected header attributes), and four flags
saying which of its neighbours could not carry the layer. Blocks are embedded independently, so a
change anywhere invalidates only the blocks it touches.

Embedding, per block, in two checkerboard passes over the interior pixels: the prediction is the
mean of the four neighbours (which belong to the other pass or to the untouched one-pixel border).
The ``PREFIX`` smoothest candidates (smallest neighbour range, ties in a fixed order) are visited in
that order, and the prediction error ``e`` is expanded (``2e + bit``) when ``-T <= e < T`` or
shifted by ``T`` otherwise, until the block's bits are in; the rest of the block is untouched.
Errors are mirrored towards the middle of the value range so that saturated backgrounds carry bits
without overflow. ``T`` is chosen per block (smallest that fits) and is not stored: the reader
tries each candidate and keeps the one whose tag verifies.

A block with too little room (every smooth pixel next to a range limit, or pure high-contrast
noise) is left unmarked; its neighbours' flags say so, with their tags vouching for the flags, so
a reader can tell "unprotected" from "tampered". The binding record covers every pixel, the
unprotected ones included.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from radproof.watermark.keys import WatermarkKey

TAG_BITS = 64
SHARE_BITS = 16
FLAG_BITS = 4  # neighbour above, below, left, right is unprotected
BLOCK_BITS = TAG_BITS + SHARE_BITS + FLAG_BITS
HALF = BLOCK_BITS // 2
BINDING_BYTES = 16
_SHARES = BINDING_BYTES * 8 // SHARE_BITS
THRESHOLDS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
PREFIX = 1024  # candidates per pass, smoothest first, that may carry bits
DEFAULT_BLOCK = 64
MIN_BLOCK = 12
PROBE_BLOCKS = 24  # blocks tried before a whole frame is read
_NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))
_VERSION = b"radproof-fragile-v2"

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
U16Array = npt.NDArray[np.uint16]
Block = tuple[int, int]


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

    def neighbours(self, r: int, c: int) -> list[tuple[int, Block]]:
        """(flag index, block) of the blocks sharing an edge with (r, c)."""
        out = []
        for i, (dr, dc) in enumerate(_NEIGHBOURS):
            rr, cc = r + dr, c + dc
            if 0 <= rr < self.shape[0] and 0 <= cc < self.shape[1]:
                out.append((i, (rr, cc)))
        return out


def _edges(n: int, block: int) -> tuple[int, ...]:
    k = max(1, n // block)
    return (*(i * block for i in range(k)), n)


def _blocks_where(mask: BoolArray) -> list[Block]:
    """(row, col) of the blocks where ``mask`` is set, in raster order."""
    return [(int(r), int(c)) for r, c in zip(*np.nonzero(mask), strict=True)]


@dataclass(frozen=True)
class FragileEmbedding:
    pixels: IntArray
    block: int
    thresholds: IntArray  # per block; 0 where the block could not be protected

    @property
    def unprotected(self) -> list[Block]:
        return _blocks_where(self.thresholds == 0)


@dataclass(frozen=True)
class FragileReading:
    block: int
    grid: BlockGrid
    valid: BoolArray  # (block rows, block cols): the tag verifies
    declared_unprotected: BoolArray  # a verified neighbour says the block carries no tag
    restored: IntArray  # original values where the block verified, received values elsewhere
    binding: bytes | None  # the 128-bit record voted from the valid blocks

    @property
    def found(self) -> bool:
        return bool(self.valid.any())

    @property
    def failing(self) -> list[Block]:
        """Blocks whose tag does not verify (tampered, or declared unprotected)."""
        return _blocks_where(~self.valid)

    @property
    def tampered(self) -> list[Block]:
        """Failing blocks that no verified neighbour declares unprotected."""
        return _blocks_where(~self.valid & ~self.declared_unprotected)

    @property
    def unprotected(self) -> list[Block]:
        """Blocks that carry no tag, as their verified neighbours declare."""
        return _blocks_where(~self.valid & self.declared_unprotected)


def binding_record(original: npt.NDArray[Any], uid: str | None, header: bytes | None = None) -> bytes:
    """The 128-bit record that ties the layer to the original pixels, the SOP Instance UID and the header.

    ``header`` is the :func:`radproof.provenance.protected.protected_digest` of the marked file's
    header (DICOM inputs); without it (PNG, TIFF, or marks made before headers were bound) the
    record binds the pixels and the UID only.
    """
    pixel_hash = hashlib.sha256(np.ascontiguousarray(original, dtype="<i4").tobytes()).digest()
    if header is None:
        data = b"radproof-binding-v2|" + (uid or "").encode() + b"|" + pixel_hash
    else:
        data = b"radproof-binding-v3|" + (uid or "").encode() + b"|" + header + b"|" + pixel_hash
    return hashlib.sha256(data).digest()[:BINDING_BYTES]


# ----------------------------------------------------------------------------------------------
# One pass over a stack of same-shaped blocks (n, h, w), values 0..top as uint16.


def _lattices(h: int, w: int, parity: int) -> list[tuple[int, int]]:
    """Origins (y0, x0) of the two stride-2 sub-lattices that make up one pass's interior pixels."""
    return [(y0, 1 if (y0 + 1) % 2 == parity else 2) for y0 in (1, 2)]


@lru_cache(maxsize=32)
def _candidates(h: int, w: int, parity: int) -> IntArray:
    """Flat positions in the block of one pass's candidates, sub-lattice by sub-lattice."""
    parts = []
    for y0, x0 in _lattices(h, w, parity):
        ys, xs = np.arange(y0, h - 1, 2), np.arange(x0, w - 1, 2)
        parts.append((ys[:, None] * w + xs[None, :]).ravel())
    return np.concatenate(parts).astype(np.int64)


def _visiting_order(stack: U16Array, parity: int) -> IntArray:
    """Flat positions of each block's ``PREFIX`` smoothest candidates of one pass, in visiting order.

    Smoothness is the range of the four neighbours, which the pass never changes, so the reader
    finds the same order (ties: the order of ``_candidates``). A stable sort of 16-bit keys is a
    radix sort: linear in the block size.
    """
    n, h, w = stack.shape
    keys = []
    for y0, x0 in _lattices(h, w, parity):
        up, down = stack[:, y0 - 1 : h - 2 : 2, x0 : w - 1 : 2], stack[:, y0 + 1 : h : 2, x0 : w - 1 : 2]
        left, right = stack[:, y0 : h - 1 : 2, x0 - 1 : w - 2 : 2], stack[:, y0 : h - 1 : 2, x0 + 1 : w : 2]
        spread = np.maximum(up, down)
        np.maximum(spread, np.maximum(left, right), out=spread)
        spread -= np.minimum(np.minimum(up, down), np.minimum(left, right))
        keys.append(spread.reshape(n, -1))
    order = np.argsort(np.concatenate(keys, axis=1), axis=1, kind="stable")[:, :PREFIX]
    picked: IntArray = _candidates(h, w, parity)[order]
    return picked


@dataclass(frozen=True)
class _Pass:
    """Prediction errors, mirrored predictions and mirror flags at the visited positions."""

    pos: IntArray
    e: IntArray
    pw: IntArray
    mirror: BoolArray

    def subset(self, rows: IntArray) -> _Pass:
        return _Pass(self.pos[rows], self.e[rows], self.pw[rows], self.mirror[rows])


def _prepare(flat: U16Array, w: int, pos: IntArray, top: int) -> _Pass:
    n, hw = flat.shape
    lin = pos + (np.arange(n, dtype=np.int64) * hw)[:, None]
    values = flat.ravel()
    v = values.take(lin).astype(np.int32)
    s = values.take(lin - w).astype(np.int32)
    s += values.take(lin + w)
    s += values.take(lin - 1)
    s += values.take(lin + 1)
    pred = s >> 2
    mirror = 2 * pred > top
    pw = np.where(mirror, top - pred, pred)
    e = np.where(mirror, top - v, v) - pw
    return _Pass(pos, e, pw, mirror)


def _embed_pass(p: _Pass, bits: npt.NDArray[np.uint8], top: int, t: int) -> tuple[IntArray, BoolArray]:
    """New values at ``p.pos`` carrying ``bits``, and whether each block took them all in range."""
    e, pw = p.e, p.pw
    one_sided = pw < 2 * t  # next to the range limit only non-negative errors expand
    carrier = (e >= -t) & (e < t) & ~(one_sided & (e < 0))
    cum = np.cumsum(carrier, axis=1, dtype=np.int32)
    need = bits.shape[1]
    enough = cum[:, -1] >= need
    cutoff = np.argmax(cum >= need, axis=1)
    active = np.arange(e.shape[1])[None, :] <= cutoff[:, None]
    b = np.take_along_axis(bits.astype(np.int32), np.clip(cum - 1, 0, need - 1), axis=1)
    e2 = np.where(carrier, 2 * e + b, np.where(e >= t, e + t, np.where(one_sided, e, e - t)))
    e2 = np.where(active, e2, e)
    vw2 = pw + e2
    in_range = ((vw2 >= 0) & (vw2 <= top)) | ~active
    ok = enough & in_range.all(axis=1)
    return np.where(p.mirror, top - vw2, vw2), ok


def _extract_pass(p: _Pass, need: int, top: int, t: int) -> tuple[IntArray, npt.NDArray[np.uint8], BoolArray]:
    """Original values at ``p.pos``, the ``need`` bits, and whether enough carriers were there."""
    e2, pw = p.e, p.pw
    one_sided = pw < 2 * t
    carrier = (e2 >= -2 * t) & (e2 < 2 * t) & ~(one_sided & (e2 < 0))
    cum = np.cumsum(carrier, axis=1, dtype=np.int32)
    enough = cum[:, -1] >= need
    cutoff = np.argmax(cum >= need, axis=1)
    active = np.arange(e2.shape[1])[None, :] <= cutoff[:, None]
    e = np.where(carrier, e2 >> 1, np.where(e2 >= 2 * t, e2 - t, np.where(one_sided, e2, e2 + t)))
    e = np.where(active, e, e2)
    slots = np.where(carrier & active, cum - 1, need)  # the first `need` carriers hold the bits
    bits = np.zeros((e2.shape[0], need + 1), dtype=np.uint8)
    rows = np.arange(e2.shape[0])[:, None]
    bits[rows, slots] = (e2 & 1).astype(np.uint8)
    vw0 = pw + e
    return np.where(p.mirror, top - vw0, vw0), bits[:, :need], enough


def _embed_stack(stack: U16Array, bits: npt.NDArray[np.uint8], top: int) -> tuple[U16Array, IntArray]:
    """Embed ``bits`` (n, BLOCK_BITS) into each block; returns the blocks and their thresholds (0: failed)."""
    n, h, w = stack.shape
    flat = stack.reshape(n, -1)
    result = flat.copy()
    thresholds = np.zeros(n, dtype=np.int64)
    first = _prepare(flat, w, _visiting_order(stack, 0), top)
    # The smallest threshold with enough small errors in the first pass is where trying starts.
    small = np.stack([((first.e >= -t) & (first.e < t)).sum(axis=1) >= HALF for t in THRESHOLDS], axis=1)
    start = np.where(small.any(axis=1), np.argmax(small, axis=1), len(THRESHOLDS) - 1)
    remaining = np.ones(n, dtype=bool)
    for level, t in enumerate(THRESHOLDS):
        pending = np.flatnonzero(remaining & (start <= level))
        if pending.size == 0:
            if not remaining.any():
                break
            continue
        rows = np.arange(pending.size)[:, None]
        p0 = first.subset(pending)
        new0, ok0 = _embed_pass(p0, bits[pending, :HALF], top, t)
        step = flat[pending].copy()
        step[rows, p0.pos] = np.where(ok0[:, None], new0, step[rows, p0.pos])
        p1 = _prepare(step, w, _visiting_order(step.reshape(-1, h, w), 1), top)
        new1, ok1 = _embed_pass(p1, bits[pending, HALF:], top, t)
        step[rows, p1.pos] = np.where(ok1[:, None], new1, step[rows, p1.pos])
        done = ok0 & ok1
        result[pending[done]] = step[done]
        thresholds[pending[done]] = t
        remaining[pending[done]] = False
    return result.reshape(n, h, w), thresholds


def _extract_stack(stack: U16Array, top: int, accept: Callable[[int, U16Array, npt.NDArray[np.uint8]], bool]) -> None:
    """Try the thresholds in turn, lowest first, on the blocks not yet accepted.

    ``accept(index, restored block, bits)`` checks a candidate reading of one block and says
    whether it verified.
    """
    n, h, w = stack.shape
    flat = stack.reshape(n, -1)
    last = _prepare(flat, w, _visiting_order(stack, 1), top)
    # A block embedded with threshold T has enough values in [-2T, 2T) in its last pass, so
    # lower thresholds cannot have been used.
    possible = np.stack(
        [((last.e >= -2 * t) & (last.e < 2 * t)).sum(axis=1) >= BLOCK_BITS - HALF for t in THRESHOLDS], axis=1
    )
    remaining = np.ones(n, dtype=bool)
    for level, t in enumerate(THRESHOLDS):
        pending = np.flatnonzero(remaining & possible[:, level])
        if pending.size == 0:
            continue
        rows = np.arange(pending.size)[:, None]
        p1 = last.subset(pending)
        old1, bits1, ok1 = _extract_pass(p1, BLOCK_BITS - HALF, top, t)
        step = flat[pending].copy()
        step[rows, p1.pos] = np.clip(old1, 0, top)
        p0 = _prepare(step, w, _visiting_order(step.reshape(-1, h, w), 0), top)
        old0, bits0, ok0 = _extract_pass(p0, HALF, top, t)
        step[rows, p0.pos] = np.clip(old0, 0, top)
        bits = np.concatenate([bits0, bits1], axis=1)
        for j in np.flatnonzero(ok0 & ok1):
            i = int(pending[j])
            if accept(i, step[j].reshape(h, w), bits[j]):
                remaining[i] = False


# ----------------------------------------------------------------------------------------------
# Tags, shares and flags


def _tag(mac_key: bytes, frame_id: int, grid: BlockGrid, r: int, c: int, head: bytes, block: U16Array) -> bytes:
    y, x, h, w = grid.box(r, c)
    where = f"|{frame_id}|{grid.rows[-1]}x{grid.cols[-1]}|{y},{x},{h},{w}|".encode()
    data = _VERSION + where + head + np.ascontiguousarray(block, dtype="<u2").tobytes()
    return hmac.new(mac_key, data, hashlib.sha256).digest()[: TAG_BITS // 8]


def _slot(r: int, c: int, ncols: int) -> int:
    return (r * ncols + c) % _SHARES


def _head(binding: bytes, slot: int, flags: int) -> bytes:
    """The share of the binding record and the flag byte that precede the tag."""
    return binding[2 * slot : 2 * slot + 2] + bytes([flags])


def _bits(head: bytes, tag: bytes) -> npt.NDArray[np.uint8]:
    share_and_flags = np.unpackbits(np.frombuffer(head, dtype=np.uint8))[: SHARE_BITS + FLAG_BITS]
    return np.concatenate([share_and_flags, np.unpackbits(np.frombuffer(tag, dtype=np.uint8))])


def _parse(bits: npt.NDArray[np.uint8]) -> tuple[bytes, int, bytes]:
    """(share, flags, tag) from a block's bits."""
    share = np.packbits(bits[:SHARE_BITS]).tobytes()
    flags = int(np.packbits(np.concatenate([bits[SHARE_BITS : SHARE_BITS + FLAG_BITS], np.zeros(4, np.uint8)]))[0])
    tag = np.packbits(bits[SHARE_BITS + FLAG_BITS :]).tobytes()
    return share, flags, tag


def _flag_byte(grid: BlockGrid, r: int, c: int, unprotected: BoolArray) -> int:
    value = 0
    for i, (rr, cc) in grid.neighbours(r, c):
        if unprotected[rr, cc]:
            value |= 0x80 >> i
    return value


def _groups(grid: BlockGrid, members: Iterable[Block]) -> dict[tuple[int, int], list[Block]]:
    groups: dict[tuple[int, int], list[Block]] = {}
    for r, c in members:
        _, _, h, w = grid.box(r, c)
        groups.setdefault((h, w), []).append((r, c))
    return groups


def _stack_of(work: U16Array, grid: BlockGrid, members: list[Block]) -> U16Array:
    return np.stack([work[y : y + h, x : x + w] for y, x, h, w in (grid.box(r, c) for r, c in members)])


# ----------------------------------------------------------------------------------------------


def _work_values(frame: npt.NDArray[Any], lo: int, hi: int) -> tuple[U16Array, BoolArray, int]:
    """Values shifted to 0..top as uint16, and where the frame leaves that range."""
    top = hi - lo
    if not 1 <= top <= 0xFFFF:
        raise ValueError("the fragile layer needs a value range of 2 to 65536 levels")
    shifted = frame.astype(np.int64) - lo
    outside = (shifted < 0) | (shifted > top)
    return np.clip(shifted, 0, top).astype(np.uint16), outside, top


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
    work, outside, top = _work_values(frame, lo, hi)
    if outside.any():
        raise ValueError(f"pixel values outside {lo}..{hi}")
    grid = BlockGrid.of(work.shape, block)
    mac_key = key.derive("fragile-tag")
    thresholds = np.zeros(grid.shape, dtype=np.int64)
    unprotected = np.zeros(grid.shape, dtype=bool)
    out = work.copy()
    todo = [(r, c) for r in range(grid.shape[0]) for c in range(grid.shape[1])]
    # A block that cannot carry its bits becomes unprotected, and its neighbours are embedded again
    # with flags that say so; the set only grows, so this ends.
    while todo:
        failed: list[Block] = []
        for (h, w), members in _groups(grid, todo).items():
            if h < 3 or w < 3:
                failed.extend(members)
                continue
            blocks = _stack_of(work, grid, members)
            heads = [
                _head(binding, _slot(r, c, grid.shape[1]), _flag_byte(grid, r, c, unprotected)) for r, c in members
            ]
            bits = np.stack(
                [
                    _bits(head, _tag(mac_key, frame_id, grid, r, c, head, blk))
                    for (r, c), head, blk in zip(members, heads, blocks, strict=True)
                ]
            )
            marked, used = _embed_stack(blocks, bits, top)
            for (r, c), blk, t in zip(members, marked, used, strict=True):
                y, x, _, _ = grid.box(r, c)
                out[y : y + h, x : x + w] = blk if t else work[y : y + h, x : x + w]
                thresholds[r, c] = t
                if not t:
                    failed.append((r, c))
        for r, c in failed:
            unprotected[r, c] = True
        todo = sorted({nb for r, c in failed for _, nb in grid.neighbours(r, c) if not unprotected[nb]})
    return FragileEmbedding(pixels=out.astype(np.int64) + lo, block=block, thresholds=thresholds)


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
    values = _work_values(frame, lo, max(hi, lo + 1))
    for block in blocks:
        grid = BlockGrid.of(frame.shape, block)
        count = grid.shape[0] * grid.shape[1]
        sample = {divmod(int(i), grid.shape[1]) for i in np.linspace(0, count - 1, min(count, PROBE_BLOCKS))}
        if not _read_with_block(frame, values, lo, key, block, frame_id, only=sample).found:
            continue
        reading = _read_with_block(frame, values, lo, key, block, frame_id)
        if best is None or reading.valid.sum() > best.valid.sum():
            best = reading
        if reading.valid.all():
            break
    if best is None:
        grid = BlockGrid.of(frame.shape, blocks[0])
        empty = np.zeros(grid.shape, dtype=bool)
        return FragileReading(blocks[0], grid, empty, empty, frame.astype(np.int64), None)
    return best


def _read_with_block(
    frame: npt.NDArray[Any],
    values: tuple[U16Array, BoolArray, int],
    lo: int,
    key: WatermarkKey,
    block: int,
    frame_id: int,
    only: set[Block] | None = None,
) -> FragileReading:
    work, outside, top = values
    grid = BlockGrid.of(work.shape, block)
    mac_key = key.derive("fragile-tag")
    valid = np.zeros(grid.shape, dtype=bool)
    flags = np.zeros((*grid.shape, FLAG_BITS), dtype=bool)
    restored = work.copy()
    votes: list[list[bytes]] = [[] for _ in range(_SHARES)]
    everyone = [(r, c) for r in range(grid.shape[0]) for c in range(grid.shape[1])]
    for (h, w), members in _groups(grid, everyone if only is None else sorted(only)).items():
        # A block with values outside the range was changed (marking keeps values in range).
        members = [(r, c) for r, c in members if not outside[_slice(grid, r, c)].any()]
        if h < 3 or w < 3 or not members:
            continue

        def accept(
            i: int, original: U16Array, block_bits: npt.NDArray[np.uint8], members: list[Block] = members
        ) -> bool:
            r, c = members[i]
            share, flag_byte, tag = _parse(block_bits)
            if not hmac.compare_digest(_tag(mac_key, frame_id, grid, r, c, share + bytes([flag_byte]), original), tag):
                return False
            valid[r, c] = True
            restored[_slice(grid, r, c)] = original
            votes[_slot(r, c, grid.shape[1])].append(share)
            flags[r, c] = [(flag_byte >> (7 - k)) & 1 for k in range(FLAG_BITS)]
            return True

        _extract_stack(_stack_of(work, grid, members), top, accept)
    declared = np.zeros(grid.shape, dtype=bool)
    for r, c in _blocks_where(valid):
        for i, (rr, cc) in grid.neighbours(r, c):
            if flags[r, c, i]:
                declared[rr, cc] = True
    binding: bytes | None = None
    if all(votes):
        binding = b"".join(max(set(v), key=v.count) for v in votes)
    restored_values = restored.astype(np.int64) + lo
    restored_values[outside] = frame[outside]
    return FragileReading(block, grid, valid, declared & ~valid, restored_values, binding)


def _slice(grid: BlockGrid, r: int, c: int) -> tuple[slice, slice]:
    y, x, h, w = grid.box(r, c)
    return (slice(y, y + h), slice(x, x + w))
