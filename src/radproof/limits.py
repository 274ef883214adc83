"""Allocation limits that keep a hostile file from exhausting memory.

Every size is checked against these limits from what the file *declares* (DICOM Rows, Columns,
Number of Frames, Bits Allocated, Samples per Pixel; the PNG IHDR; the JPEG SOF; the JPEG 2000 SIZ;
the length a deflated dataset inflates to) before any decoder allocates a buffer. The defaults fit
the largest radiographs (16384 x 16384 at 16 bits, 512 MiB of pixels); docs/limits.md gives the
peak memory of one worker at those sizes. Both limits can be raised through the environment.
"""

from __future__ import annotations

import os

from radproof.errors import ResourceLimitError

#: Environment variable: largest decoded pixel buffer radproof allocates for one file (bytes).
PIXEL_BYTES_ENV = "RADPROOF_MAX_PIXEL_BYTES"
#: Environment variable: largest side of one frame (pixels).
SIDE_ENV = "RADPROOF_MAX_SIDE"
#: One 16384 x 16384 frame at 16 bits; the largest flat-panel detectors are ~ 4300 x 4300, and
#: stitched long-leg or full-spine images stay well under 16k on their long side.
DEFAULT_MAX_SIDE = 16384
DEFAULT_MAX_PIXEL_BYTES = DEFAULT_MAX_SIDE * DEFAULT_MAX_SIDE * 2
#: Room for the non-pixel part of a file (header, overlays, icons, private data) on top of the pixels.
HEADER_ALLOWANCE = 64 * 1024**2


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        return max(1, int(value))
    except ValueError:
        return default


def max_pixel_bytes() -> int:
    """The largest pixel buffer (all frames, all samples) accepted for one file, in bytes."""
    return _env_int(PIXEL_BYTES_ENV, DEFAULT_MAX_PIXEL_BYTES)


def max_side() -> int:
    """The largest number of rows or columns accepted for one frame."""
    return _env_int(SIDE_ENV, DEFAULT_MAX_SIDE)


def max_input_bytes() -> int:
    """The most bytes read from one input file, or inflated from a deflated dataset.

    A file bigger than its largest acceptable pixel data plus a header would be refused after
    decoding anyway; refusing it before reading keeps a huge file (or /dev/zero) out of memory.
    """
    return max_pixel_bytes() + HEADER_ALLOWANCE


def check_declared_size(rows: int, cols: int, frames: int, bytes_per_sample: int, samples: int = 1) -> None:
    """Refuse a declared image size before any buffer is allocated.

    Raises
    ------
    ResourceLimitError
        The size is empty, a side is over :func:`max_side`, or the buffer is over :func:`max_pixel_bytes`.
    """
    if rows <= 0 or cols <= 0 or frames <= 0 or samples <= 0:
        raise ResourceLimitError(f"image declares an empty size ({rows} x {cols}, {frames} frames)")
    side = max_side()
    if rows > side or cols > side:
        raise ResourceLimitError(
            f"image declares {cols} x {rows} pixels, over the limit of {side} pixels a side "
            f"(set {SIDE_ENV} to raise it)"
        )
    total = rows * cols * frames * max(1, bytes_per_sample) * samples
    limit = max_pixel_bytes()
    if total > limit:
        shape = f"{cols} x {rows}" + (f" x {frames} frames" if frames > 1 else "")
        raise ResourceLimitError(
            f"image declares {total / 2**20:.0f} MiB of pixel data ({shape}); "
            f"the limit is {limit / 2**20:.0f} MiB (set {PIXEL_BYTES_ENV} to raise it)"
        )
