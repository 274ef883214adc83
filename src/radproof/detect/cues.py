"""Physics and forensic cues measured on a normalized radiograph.

Every cue is a plain function ``cue(image) -> float`` over the output of
:func:`radproof.detect.normalize.normalize` (a square float32 array, brightness in 0..1). None of
them says "real" or "synthetic" by itself: the detector compares each value with the distribution
measured on real radiographs (:mod:`radproof.detect.reference`) and flags values far from it in
either direction. Grey levels below are 8-bit units (0..255) of the normalized image.

| cue | what it measures | range |
|---|---|---|
| noise_level | robust standard deviation of the high-pass residual (quantum mottle + detector noise) | 0..~40 |
| noise_intensity_trend | rank correlation of local noise with local brightness (X-ray noise depends on dose) | -1..1 |
| grain_uniformity | spread of local noise once the brightness trend is removed (log units) | 0..~2 |
| noise_correlation | lag-1 autocorrelation of the residual (grain size: detector blur vs synthetic grain) | -1..1 |
| high_frequency_ratio | log10 power above 0.25 cycles/px relative to 0.05-0.25 cycles/px | ~-4..0 |
| upsampling_peaks | strongest periodic peak of the residual spectrum at periods 2, 4 and 8 (log ratio) | 0..~6 |
| neighbour_residual | NPR: difference inside 2 x 2 pixel pairs vs across pairs (log ratio, absolute) | 0..~1 |
| edge_sharpness | log ratio of fine-scale to coarse-scale edge strength | ~0..~2 |

:func:`edge_to_noise` is measured but not used by default: on real knee radiographs with metal
implants it sits far outside the chest-dominated reference (content, not synthesis).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy import ndimage, stats

FloatImage = npt.NDArray[np.float32]

#: Side of the square tiles used for local statistics (pixels of the normalized image).
TILE = 16
_GREY = 255.0
_MEAN_ABS_TO_STD = float(np.sqrt(np.pi / 2.0))
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32) / 6.0


def residual(image: FloatImage) -> FloatImage:
    """High-pass residual in grey levels; for white noise its standard deviation equals the noise's."""
    out: FloatImage = ndimage.convolve(image.astype(np.float32) * np.float32(_GREY), _IMMERKAER, mode="reflect")
    return out


def _valid(image: FloatImage) -> npt.NDArray[np.bool_]:
    """Pixels away from clipping (stretched extremes carry no noise)."""
    mask: npt.NDArray[np.bool_] = (image > 0.02) & (image < 0.98)
    return mask


def tile_statistics(image: FloatImage) -> tuple[FloatImage, FloatImage, npt.NDArray[np.bool_]]:
    """Per-tile mean brightness, robust noise (grey levels) and a usable-tile mask.

    Returns arrays of shape ``(rows // TILE, cols // TILE)``.
    """
    h, w = image.shape
    th, tw = h // TILE, w // TILE
    img = image[: th * TILE, : tw * TILE]
    res = np.abs(residual(image)[: th * TILE, : tw * TILE])
    valid = _valid(img)

    def blocks(a: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        return a.reshape(th, TILE, tw, TILE).transpose(0, 2, 1, 3).reshape(th, tw, TILE * TILE)

    mean = blocks(img).mean(axis=2).astype(np.float32)
    # Mean absolute residual (Immerkaer): continuous even when most residuals are below one grey level.
    noise = (_MEAN_ABS_TO_STD * blocks(res).mean(axis=2)).astype(np.float32)
    usable = blocks(valid).mean(axis=2) > 0.9
    return mean, noise, usable


def noise_level(image: FloatImage) -> float:
    """Noise standard deviation in grey levels from the mean absolute residual, edges left out (0..~40)."""
    res = np.abs(residual(image))
    valid = _valid(image)
    if valid.sum() < 100:
        return 0.0
    values = res[valid]
    # Leave out the strongest 10 % (edges) so that anatomy does not count as noise.
    cut = np.percentile(values, 90)
    return float(_MEAN_ABS_TO_STD * values[values <= cut].mean())


def noise_intensity_trend(image: FloatImage) -> float:
    """Spearman correlation between tile brightness and tile noise (-1..1; 0 when unmeasurable)."""
    mean, noise, usable = tile_statistics(image)
    m, s = mean[usable], noise[usable]
    if m.size < 8 or np.ptp(m) < 1e-3 or np.ptp(s) < 1e-6:
        return 0.0
    rho = stats.spearmanr(m, s).statistic
    return float(rho) if np.isfinite(rho) else 0.0


def _trend_residuals(image: FloatImage) -> FloatImage:
    mean, noise, usable = tile_statistics(image)
    m, s = mean[usable].astype(np.float64), noise[usable].astype(np.float64)
    if m.size < 8:
        return np.zeros(0, dtype=np.float32)
    logs = np.log(np.maximum(s, 0.05))
    degree = 2 if m.size >= 20 and np.ptp(m) > 0.05 else 0
    coeffs = np.polyfit(m, logs, degree)
    out: FloatImage = (logs - np.polyval(coeffs, m)).astype(np.float32)
    return out


def grain_uniformity(image: FloatImage) -> float:
    """Robust spread (IQR / 1.349) of log tile noise around its brightness trend (0 = perfectly even)."""
    r = _trend_residuals(image)
    if r.size < 8:
        return 0.0
    q75, q25 = np.percentile(r, [75, 25])
    return float((q75 - q25) / 1.349)


def noise_correlation(image: FloatImage) -> float:
    """Mean lag-1 autocorrelation of the residual along rows and columns (-1..1)."""
    res = residual(image).astype(np.float64)
    valid = _valid(image)
    res = np.where(valid, res, 0.0)
    res = np.clip(res, -4 * (np.std(res) + 1e-9), 4 * (np.std(res) + 1e-9))
    den = float(np.sum(res * res))
    if den <= 1e-12:
        return 0.0
    horizontal = float(np.sum(res[:, 1:] * res[:, :-1]))
    vertical = float(np.sum(res[1:, :] * res[:-1, :]))
    return (horizontal + vertical) / (2.0 * den)


def _power_spectrum(image: FloatImage) -> npt.NDArray[np.float64]:
    h, w = image.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    centred = (image - image.mean()) * window
    spectrum: npt.NDArray[np.float64] = np.abs(np.fft.fftshift(np.fft.fft2(centred))) ** 2
    return spectrum


def high_frequency_ratio(image: FloatImage) -> float:
    """log10 of spectral power above 0.25 cycles/px over power in 0.05-0.25 cycles/px."""
    h, w = image.shape
    power = _power_spectrum(image)
    fy = np.fft.fftshift(np.fft.fftfreq(h))[:, None]
    fx = np.fft.fftshift(np.fft.fftfreq(w))[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    high = float(power[radius > 0.25].sum())
    mid = float(power[(radius > 0.05) & (radius <= 0.25)].sum())
    return float(np.log10((high + 1e-12) / (mid + 1e-12)))


def upsampling_peaks(image: FloatImage) -> float:
    """Strongest periodic peak of the residual spectrum at periods 2, 4 and 8 pixels.

    The residual's magnitude spectrum is averaged along each axis; the value at frequency 1/period is
    compared with the median of its neighbours (log ratio, 0 when flat). Decoders that up-sample by a
    factor leave peaks at that period.
    """
    res = residual(image).astype(np.float64)
    res = res - res.mean()
    best = 0.0
    for axis in (0, 1):
        profile = np.abs(np.fft.rfft(res, axis=1 - axis)).mean(axis=axis)
        n = res.shape[1 - axis]
        for period in (2, 4, 8):
            k = n // period
            if k < 4 or k >= profile.size:
                continue
            lo, hi = max(1, k - 6), min(profile.size, k + 7)
            neighbours = np.concatenate([profile[lo : k - 1], profile[k + 2 : hi]])
            if neighbours.size == 0:
                continue
            ratio = float(np.log(profile[k] / (np.median(neighbours) + 1e-12) + 1e-12))
            best = max(best, ratio)
    return best


def neighbour_residual(image: FloatImage) -> float:
    """NPR: |log| of mean difference inside 2-pixel pairs over the difference across pairs, both axes."""
    x = image.astype(np.float64)
    total = 0.0
    for a in (x, x.T):
        inside = np.abs(a[:, 0:-1:2] - a[:, 1::2])
        across = np.abs(a[:, 1:-1:2] - a[:, 2::2])
        # Clip the strongest 5 % (anatomical edges, collimator borders): one edge that happens to
        # fall between two pairs must not look like an up-sampling pattern.
        cap = float(np.percentile(np.concatenate([inside.ravel(), across.ravel()]), 95))
        ratio = (np.minimum(inside, cap).mean() + 1e-9) / (np.minimum(across, cap).mean() + 1e-9)
        total += abs(float(np.log(ratio)))
    return total / 2.0


def _gradient_p99(image: FloatImage, sigma: float) -> float:
    g = ndimage.gaussian_gradient_magnitude(image.astype(np.float32), sigma) * np.float32(_GREY)
    return float(np.percentile(g, 99))


def edge_sharpness(image: FloatImage) -> float:
    """log of fine-scale (sigma 0.7) over coarse-scale (sigma 2) strong-edge gradient; larger = sharper."""
    fine, coarse = _gradient_p99(image, 0.7), _gradient_p99(image, 2.0)
    return float(np.log((fine + 1e-6) / (coarse + 1e-6)))


def edge_to_noise(image: FloatImage) -> float:
    """log of the strong-edge gradient (sigma 1) over the noise level plus half a grey level."""
    return float(np.log((_gradient_p99(image, 1.0) + 1e-6) / (noise_level(image) + 0.5)))


#: Every cue, in the order used by the reference statistics and the evidence list.
CUES: dict[str, Callable[[FloatImage], float]] = {
    "noise_level": noise_level,
    "noise_intensity_trend": noise_intensity_trend,
    "grain_uniformity": grain_uniformity,
    "noise_correlation": noise_correlation,
    "high_frequency_ratio": high_frequency_ratio,
    "upsampling_peaks": upsampling_peaks,
    "neighbour_residual": neighbour_residual,
    "edge_sharpness": edge_sharpness,
}

#: What each cue means, for evidence sentences.
DESCRIPTIONS: dict[str, str] = {
    "noise_level": "quantum noise level",
    "noise_intensity_trend": "dependence of noise on brightness",
    "grain_uniformity": "spatial variation of grain",
    "noise_correlation": "grain size (noise correlation)",
    "high_frequency_ratio": "fine-detail energy",
    "upsampling_peaks": "periodic up-sampling peaks",
    "neighbour_residual": "neighbouring-pixel relation",
    "edge_sharpness": "edge sharpness",
}


def measure(image: FloatImage) -> dict[str, float]:
    """Every cue of :data:`CUES` on one normalized image."""
    return {name: float(fn(image)) for name, fn in CUES.items()}


def noise_map(image: FloatImage) -> FloatImage:
    """Per-tile deviation of log noise from the image's own brightness trend (for heatmaps)."""
    mean, _noise, usable = tile_statistics(image)
    out = np.zeros(mean.shape, dtype=np.float32)
    r = _trend_residuals(image)
    if r.size == int(usable.sum()):
        out[usable] = np.abs(r)
    return out
