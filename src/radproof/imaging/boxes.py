"""A box of pixels in one frame: what the fragile watermark reports as tampered, the rules describe,
and the overlays draw (:class:`radproof.watermark.TamperedBlock` is one)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class PixelBox(Protocol):
    """A box of pixels in a frame of the full-size image."""

    @property
    def frame(self) -> int: ...
    @property
    def y(self) -> int: ...
    @property
    def x(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def width(self) -> int: ...
