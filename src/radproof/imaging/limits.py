"""Allocation limits that keep a hostile file from exhausting memory."""

from __future__ import annotations

import os

from radproof.errors import ResourceLimitError

#: Largest decoded pixel buffer radproof allocates for one file (bytes). RADPROOF_MAX_PIXEL_BYTES overrides.
DEFAULT_MAX_PIXEL_BYTES = 2 * 1024**3
#: Largest side of one frame in pixels; no radiograph detector is bigger than ~ 4300 x 4300.
MAX_SIDE = 32768


def max_pixel_bytes() -> int:
    value = os.environ.get("RADPROOF_MAX_PIXEL_BYTES")
    if value is None:
        return DEFAULT_MAX_PIXEL_BYTES
    try:
        return max(1, int(value))
    except ValueError:
        return DEFAULT_MAX_PIXEL_BYTES


def check_declared_size(rows: int, cols: int, frames: int, bytes_per_sample: int, samples: int = 1) -> None:
    """Refuse a declared image size before any buffer is allocated."""
    if rows <= 0 or cols <= 0 or frames <= 0:
        raise ResourceLimitError(f"image declares an empty size ({rows} x {cols}, {frames} frames)")
    if rows > MAX_SIDE or cols > MAX_SIDE:
        raise ResourceLimitError(f"image declares {rows} x {cols} pixels; the largest side accepted is {MAX_SIDE}")
    total = rows * cols * frames * bytes_per_sample * samples
    limit = max_pixel_bytes()
    if total > limit:
        raise ResourceLimitError(
            f"image declares {total / 1e6:.0f} MB of pixel data ({frames} x {rows} x {cols}); "
            f"the limit is {limit / 1e6:.0f} MB (set RADPROOF_MAX_PIXEL_BYTES to raise it)"
        )
