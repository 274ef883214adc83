"""The one normalization every pixel cue and the learned model see.

A detector that can see file format, size, bit depth or metadata learns those shortcuts instead of
telling real radiographs from generated ones (the development fakes are 256 px PNG files, most real
images are larger JPEGs). So every input, whatever it was, goes through the same steps:

1. brightness: one frame, MONOCHROME1 inverted, rescale applied, colour already reduced to gray;
2. intensity: a robust stretch of the 0.5-99.5 percentiles to 0..1 (bit depth and window vanish);
3. scale: area-averaged down-sampling so that the short side is the working size, then a centred
   square crop. The working size is :data:`WORK_SIZE` for ordinary inputs and
   :data:`SMALL_WORK_SIZE` for thumbnails (short side under :data:`SMALL_SIDE`), each with its own
   reference and calibration. Nothing is interpolated up: it smooths a real image into looking
   generated (a halved 400 px radiograph did). A thumbnail under the thumbnail size keeps its
   centre pixel for pixel, the missing border mirrored; inputs under :data:`TOO_SMALL_SIDE` are
   reported as a reason for caution;
4. one re-encoding: 8-bit quantization and a JPEG round trip at :data:`JPEG_QUALITY` (a PNG fake and
   a JPEG original both arrive with the same compression history).

The result is a :class:`Normalized` image: a square float32 array in 0..1 at the working size,
plus what the pipeline noticed about the input (reasons the pixel score cannot be trusted).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from radproof.errors import InputError
from radproof.imaging.radiograph import Radiograph
from radproof.imaging.render import robust_range

#: Side of the square every cue and the model see (pixels).
WORK_SIZE = 256
#: JPEG quality of the single re-encoding.
JPEG_QUALITY = 90
#: Smallest short side accepted at all (pixels); smaller inputs are refused.
MIN_SIDE = 32
#: Short sides under this are analysed at :data:`SMALL_WORK_SIZE` (thumbnails): the main view is
#: never reached by up-sampling.
SMALL_SIDE = WORK_SIZE
#: Short sides from this up still join the main *reference* (up-sampled by at most 4/3), when the
#: detector is built or evaluated; they are judged as thumbnails (see docs/detector.md).
REFERENCE_SIDE = 192
#: Working size for thumbnails.
SMALL_WORK_SIZE = 128
#: Short sides under this are flagged: too small to judge (up-sampling would exceed 4/3).
TOO_SMALL_SIDE = 96
#: Short side of the preview kept for the stability probe.
PREVIEW_SIZE = 2 * WORK_SIZE

FloatImage = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Normalized:
    """A radiograph after the detector's normalization.

    Attributes
    ----------
    pixels
        Square float32 in 0..1 at the working size (:data:`WORK_SIZE`, or
        :data:`SMALL_WORK_SIZE` for thumbnails), brightness (bone bright).
    original_shape
        (rows, cols) of the input frame.
    crop
        (top, left, height, width) of the analysed square in input pixel coordinates.
    problems
        Reasons the pixel evidence is unreliable (tiny, blank, binary, mostly saturated...).
    preview
        The stretched image at a short side of at most ``PREVIEW_SIZE`` (before cropping and
        re-encoding): the source of the stability probe, an ordinary web-size JPEG export.
    placement
        (top, left, rows, cols): where the square sits in the whole frame resized to the working
        scale (rows x cols), so that maps over the square can be drawn over the whole image. The
        offsets are negative where the square's border was mirrored (see :func:`_mirror_padded`).
    """

    pixels: FloatImage
    original_shape: tuple[int, int]
    crop: tuple[int, int, int, int]
    problems: tuple[str, ...] = ()
    preview: FloatImage | None = None
    placement: tuple[int, int, int, int] = (0, 0, WORK_SIZE, WORK_SIZE)

    @property
    def work_size(self) -> int:
        """Side of the analysed square (selects the reference and calibration)."""
        return int(self.pixels.shape[0])


def brightness_frame(image: Radiograph) -> FloatImage:
    """Frame 0 as float32 brightness (the loader already turned colour into gray)."""
    return image.brightness(0)


def stretch(values: FloatImage) -> tuple[FloatImage, list[str]]:
    """Map the 0.5-99.5 percentiles to 0..1 and report degenerate intensity content."""
    problems: list[str] = []
    found = robust_range(values)  # the same range a display window stretches to
    if found is None:
        raise InputError("image has no finite pixel values")
    lo, hi, sample, finite = found.lo, found.hi, found.sample, found.finite
    levels = np.unique(finite[:: max(1, finite.size // 20000)]).size
    if hi - lo <= 1e-6 * max(1.0, abs(float(hi))):
        problems.append("the image is blank or constant: there is nothing to analyse")
        hi = lo + 1.0
    elif levels <= 4:
        problems.append(f"the image has only {levels} grey levels (binary or posterised)")
    out = np.clip((values - np.float32(lo)) / np.float32(hi - lo), 0.0, 1.0).astype(np.float32)
    saturated = float(np.mean((sample <= lo) | (sample >= hi)))
    if saturated > 0.9 and not problems:
        problems.append(f"{saturated:.0%} of the image is saturated")
    return out, problems


def _resize(values: FloatImage, rows: int, cols: int) -> FloatImage:
    """Area-averaging resize of a float image (fast integer pre-reduction, then Pillow)."""
    h, w = values.shape
    factor = min(h // rows, w // cols)
    if factor >= 2:
        hh, ww = (h // factor) * factor, (w // factor) * factor
        values = values[:hh, :ww].reshape(hh // factor, factor, ww // factor, factor).mean(axis=(1, 3))
    img = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32), mode="F")
    if img.size != (cols, rows):
        shrinking = img.size[0] >= cols and img.size[1] >= rows
        method = Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC
        img = img.resize((cols, rows), method)
    return np.asarray(img, dtype=np.float32)


def reencode(unit: FloatImage, quality: int = JPEG_QUALITY) -> FloatImage:
    """Quantize 0..1 to 8 bits, round-trip through JPEG at ``quality``, return 0..1 float32."""
    q = np.clip(np.rint(unit * 255.0), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(q, mode="L").save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        back = np.asarray(im.convert("L"), dtype=np.float32)
    out: FloatImage = back / np.float32(255.0)
    return out


def work_size_for(short_side: int, *, reference: bool = False) -> int:
    """The working size an input with this short side is analysed at.

    With ``reference``, the size it contributes to when the reference is built: inputs from
    :data:`REFERENCE_SIDE` up join the main one.
    """
    return WORK_SIZE if short_side >= (REFERENCE_SIDE if reference else SMALL_SIDE) else SMALL_WORK_SIZE


def clears_as_real(work_size: int) -> bool:
    """Whether an image judged at ``work_size`` may get the verdict ``real``.

    Only at the main size: at the thumbnail size the evidence is too thin to vouch for an image
    (an unseen generator's thumbnails were ranked at AUC 0.67, and grain added to a 226 px fake
    read as real far more often there), so a thumbnail is at best ``uncertain``.
    """
    return work_size == WORK_SIZE


def normalize_array(
    values: npt.NDArray[np.floating] | npt.NDArray[np.integer], work_size: int | None = None
) -> Normalized:
    """Normalize one 2-D brightness array (larger = brighter) of any dtype.

    ``work_size`` forces a working size (used to build the thumbnail reference from full-size
    images); by default it follows from the input's short side (:func:`work_size_for`).
    """
    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim != 2:
        raise InputError(f"expected one 2-D frame, got shape {arr.shape}")
    h, w = arr.shape
    if min(h, w) < MIN_SIDE:
        raise InputError(f"image is {h} x {w} pixels; the detector needs at least {MIN_SIDE} pixels on each side")
    if not np.isfinite(arr).all():
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
    unit, problems = stretch(arr)
    short = min(h, w)
    size = work_size_for(short) if work_size is None else work_size
    if short < TOO_SMALL_SIDE:
        problems.append(
            f"the image is small ({h} x {w}); up-sampling it to {size} px would hide the noise the cues measure"
        )
    if size == SMALL_WORK_SIZE and TOO_SMALL_SIDE <= short < size:
        square, crop, placement = _mirror_padded(unit, size)
    else:
        square, crop, placement = resized_square(unit, size)
    pixels = reencode(square)
    if short > PREVIEW_SIZE:
        ratio = PREVIEW_SIZE / short
        preview = _resize(unit, round(h * ratio), round(w * ratio))
    else:
        preview = unit
    return Normalized(
        pixels=pixels,
        original_shape=(h, w),
        crop=crop,
        problems=tuple(problems),
        preview=preview,
        placement=placement,
    )


def resized_square(
    unit: FloatImage, size: int
) -> tuple[FloatImage, tuple[int, int, int, int], tuple[int, int, int, int]]:
    """The centred ``size`` square of an image area-resized to a short side of ``size``.

    Returns the square, the region it covers in input pixels (top, left, height, width) and its
    placement over the resized frame (top, left, rows, cols).
    """
    h, w = unit.shape
    scale = size / min(h, w)
    rows, cols = max(size, round(h * scale)), max(size, round(w * scale))
    resized = _resize(unit, rows, cols)
    top, left = (rows - size) // 2, (cols - size) // 2
    square = np.ascontiguousarray(resized[top : top + size, left : left + size])
    crop = (round(top / scale), round(left / scale), round(size / scale), round(size / scale))
    return square, crop, (top, left, rows, cols)


def _mirror_padded(
    unit: FloatImage, size: int
) -> tuple[FloatImage, tuple[int, int, int, int], tuple[int, int, int, int]]:
    """A ``size`` square from an image whose short side is under ``size``, without interpolation.

    Interpolating up smooths the grain into what generated images look like (a real radiograph
    halved to 112 px and brought up to 128 px read as generated). Instead the centre of the image is
    kept pixel for pixel and the missing border mirrored. Returns the square, the kept region
    (top, left, height, width) and the square's placement over the frame (offsets may be negative).
    """
    h, w = unit.shape
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    inner = unit[top : top + size, left : left + size]
    pad_y, pad_x = size - inner.shape[0], size - inner.shape[1]
    square = np.pad(inner, ((pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2)), mode="reflect")
    return square, (top, left, inner.shape[0], inner.shape[1]), (top - pad_y // 2, left - pad_x // 2, h, w)


def normalize(image: Radiograph, work_size: int | None = None) -> Normalized:
    """Normalize a :class:`~radproof.imaging.Radiograph` (frame 0) for the detector."""
    result = normalize_array(brightness_frame(image), work_size)
    extra: list[str] = []
    if image.bits_stored == 1:
        extra.append("the image is 1-bit (binary)")
    if extra:
        return Normalized(
            pixels=result.pixels,
            original_shape=result.original_shape,
            crop=result.crop,
            problems=result.problems + tuple(extra),
            preview=result.preview,
            placement=result.placement,
        )
    return result
