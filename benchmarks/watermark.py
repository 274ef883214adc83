"""Watermark benchmark: radproof robust, radproof reversible, and invisible-watermark 0.2.0, side by side.

Images: the shared DICOM radiographs at native bit depth, 8-bit exports of them (window/level from
the header, else the 0.5-99.5 percentile range), and simulated 14-bit chest phantoms. Every method
gets the same images, the same 64-bit payloads and the same attacks. The peer works on 8-bit images
only: on the native-depth sets it marks the 8-bit export (its PSNR is then measured at 8 bits) and the
window/level attacks do not apply to it.

Metrics: PSNR and max abs change at native depth, SSIM, payload bit accuracy, payload success after
error correction (the whole 64-bit payload right, and for radproof its keyed tag verified), false
positives on unmarked images and crops, time per image (one thread).

    .venv/bin/python benchmarks/watermark.py [--quick] [--out results.md]
    .venv/bin/python benchmarks/watermark.py --content-hash   # the robust payload's perceptual hash only

The peer row needs the ``bench`` extra: ``pip install -e '.[bench]'`` (invisible-watermark 0.2.0).
"""

# ruff: noqa: E402  (the thread limits below must be set before numpy is imported)
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core, as the timing targets say

import argparse
import csv
import io
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from radproof.imaging import load, render
from radproof.imaging.phantom import simulate_radiograph
from radproof.imaging.radiograph import Photometric, Radiograph
from radproof.imaging.render import apply_window, auto_window
from radproof.watermark import WatermarkKey, embed, read, restore
from radproof.watermark.fragile import read_fragile
from radproof.watermark.robust import CONTENT_MATCH_MAX, HASH_BITS, content_hash, hash_distance, read_robust

REPO = Path(__file__).resolve().parents[1]
XRAY = Path(os.environ.get("RADPROOF_SHARED", REPO.parent / "shared")) / "data" / "xray"
KEY = WatermarkKey(bytes(range(32)))

Array = np.ndarray[Any, Any]


# ----------------------------------------------------------------------------------------------
# Attacks on 8-bit images


def _jpeg(a: Array, q: int) -> Array:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=q)
    return np.asarray(Image.open(buf))


def _jp2k(a: Array, ratio: float = 20.0) -> Array:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG2000", quality_mode="rates", quality_layers=[ratio])
    return np.asarray(Image.open(buf))


def _resize(a: Array, s: float) -> Array:
    h, w = a.shape
    return np.asarray(Image.fromarray(a).resize((max(8, round(w * s)), max(8, round(h * s))), Image.BICUBIC))


def _crop(a: Array, frac: float) -> Array:
    s = np.sqrt(frac)
    h, w = a.shape
    hh, ww = int(h * s), int(w * s)
    y, x = (h - hh) // 3, (w - ww) * 2 // 3  # off-centre, so that the tile grid is shifted
    return a[y : y + hh, x : x + ww]


def _u8(a: Array) -> Array:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _rotate(a: Array, deg: float) -> Array:
    return np.asarray(Image.fromarray(a).rotate(deg, resample=Image.BILINEAR))


def _poisson(a: Array, rng: np.random.Generator) -> Array:
    scale = 4.0  # 4 quanta per grey level: standard deviation 5.7 levels at mid-grey, like gauss5
    return _u8(rng.poisson(a.astype(np.float64) * scale) / scale)


def attacks(rng: np.random.Generator) -> dict[str, Callable[[Array], Array]]:
    return {
        "none": lambda a: a,
        "jpeg95": lambda a: _jpeg(a, 95),
        "jpeg75": lambda a: _jpeg(a, 75),
        "jpeg50": lambda a: _jpeg(a, 50),
        "jp2k20": _jp2k,
        "resize0.5": lambda a: _resize(a, 0.5),
        "resize0.75": lambda a: _resize(a, 0.75),
        "resize1.5": lambda a: _resize(a, 1.5),
        "crop90": lambda a: _crop(a, 0.9),
        "crop75": lambda a: _crop(a, 0.75),
        "crop50": lambda a: _crop(a, 0.5),
        "blur1": lambda a: _u8(ndimage.gaussian_filter(a.astype(np.float32), 1.0)),
        "bright+20": lambda a: _u8(a.astype(np.float32) + 20),
        "contrast1.2": lambda a: _u8((a.astype(np.float32) - 128) * 1.2 + 128),
        "gamma0.8": lambda a: _u8(255 * (a / 255.0) ** 0.8),
        "gauss5": lambda a: _u8(a + rng.normal(0, 5, a.shape)),
        "poisson": lambda a: _poisson(a, rng),
        "rot1": lambda a: _rotate(a, 1.0),
        "rot2": lambda a: _rotate(a, -2.0),
        "screenshot": lambda a: _jpeg(_resize(a, 0.6), 80),
    }


QUICK_ATTACKS = ["none", "jpeg50", "jp2k20", "resize0.5", "crop50", "blur1", "gamma0.8", "rot2", "screenshot"]
WINDOW_ATTACKS = ["wl-header", "wl-narrow", "wl-full"]
AS_SHIPPED_ATTACKS = ["none", "jpeg75"]


def windows(image: Radiograph) -> dict[str, Array]:
    """8-bit exports of a native image at three windows (the reader never knows which)."""
    px = image.frame(0)
    c, w = image.window if image.window is not None else auto_window(px)
    inv = image.photometric.value == "MONOCHROME1"
    out = {
        "wl-header": apply_window(px, c, w, invert=inv),
        "wl-narrow": apply_window(px, c, w / 2, invert=inv),
        "wl-full": apply_window(px, image.max_value / 2, image.max_value + 1, invert=inv),
    }
    # An export that is blank (a header window that misses every stored value) carries nothing to read.
    return {k: v for k, v in out.items() if np.mean((v == 0) | (v == 255)) < 0.98}


# ----------------------------------------------------------------------------------------------
# Quality metrics


def psnr(a: Array, b: Array, peak: float) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def ssim(a: Array, b: Array, peak: float) -> float:
    x, y = a.astype(np.float64) / peak, b.astype(np.float64) / peak
    g = lambda z: ndimage.gaussian_filter(z, 1.5)  # noqa: E731
    mx, my = g(x), g(y)
    sxx, syy, sxy = g(x * x) - mx * mx, g(y * y) - my * my, g(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(m.mean())


def bit_accuracy(found: bytes | None, truth: bytes) -> float:
    if found is None:
        return 0.5
    a = np.unpackbits(np.frombuffer(found, np.uint8))
    b = np.unpackbits(np.frombuffer(truth, np.uint8))
    return float((a == b).mean())


# ----------------------------------------------------------------------------------------------
# Methods: each embeds into an image (native or 8-bit) and reads from an 8-bit or native array.


class Method:
    name = ""
    native = True  # embeds at native depth

    def embed(self, image: Radiograph, payload: bytes) -> Radiograph:
        raise NotImplementedError

    def read(self, pixels: Array) -> tuple[bool, bytes | None]:
        """(payload found and verified, best guess of the 64 payload bits)."""
        raise NotImplementedError


class RadproofRobust(Method):
    name = "radproof robust"

    def __init__(self) -> None:
        self.found_scores: list[float] = []  # synchronisation score of every read that found a payload

    def embed(self, image: Radiograph, payload: bytes) -> Radiograph:
        return embed(image, KEY, payload, layers="robust")

    def read(self, pixels: Array) -> tuple[bool, bytes | None]:
        r = read_robust(pixels, KEY)
        if r.found:
            self.found_scores.append(r.sync_z)
        return r.found, r.payload if r.found else r.best_guess


class Peer(Method):
    """invisible-watermark 0.2.0, dwtDctSvd; ``luma`` forces it onto the Y channel (scales 36,0,0)."""

    native = False

    def __init__(self, luma: bool) -> None:
        from imwatermark import WatermarkDecoder, WatermarkEncoder

        self.luma = luma
        self.name = "invisible-watermark dwtDctSvd" + (" (luma)" if luma else " (as shipped)")
        self._enc, self._dec = WatermarkEncoder, WatermarkDecoder
        self._cfg: dict[str, Any] = {"scales": [36, 0, 0]} if luma else {}

    def embed(self, image: Radiograph, payload: bytes) -> Radiograph:
        gray = image.frame(0) if image.pixels.dtype == np.uint8 else render(image)
        enc = self._enc()
        enc.set_watermark("bytes", payload)
        bgr = enc.encode(np.ascontiguousarray(np.stack([gray] * 3, axis=-1)), "dwtDctSvd", **self._cfg)
        out = np.clip(bgr.astype(np.float32) @ np.array([0.114, 0.587, 0.299], np.float32), 0, 255)
        return Radiograph(pixels=np.rint(out).astype(np.uint8), bits_stored=8)

    def read(self, pixels: Array) -> tuple[bool, bytes | None]:
        dec = self._dec("bytes", 64)
        try:
            bits = dec.decode(np.ascontiguousarray(np.stack([pixels] * 3, axis=-1)), "dwtDctSvd", **self._cfg)
        except Exception:  # images too small for its block grid
            return False, None
        return False, bytes(bits)[:8]


# ----------------------------------------------------------------------------------------------


@dataclass
class Cell:
    success: list[bool] = field(default_factory=list)
    bits: list[float] = field(default_factory=list)


@dataclass
class Row:
    psnr: list[float] = field(default_factory=list)
    psnr8: list[float] = field(default_factory=list)
    maxabs: list[int] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    t_embed: list[float] = field(default_factory=list)
    t_read: list[float] = field(default_factory=list)
    cells: dict[str, Cell] = field(default_factory=lambda: defaultdict(Cell))


def image_sets(quick: bool) -> dict[str, list[Radiograph]]:
    warnings.simplefilter("ignore")
    dicoms = sorted((XRAY / "real" / "dicom-samples").glob("*.dcm"))
    if quick:
        dicoms = [d for d in dicoms if d.name[:4] in ("0d1f", "3fb0", "92d2", "a3b8")]
    native = [load(p) for p in dicoms]
    exports = [Radiograph(pixels=render(im), bits_stored=8) for im in (native[::3] if not quick else native[:2])]
    phantoms = [simulate_radiograph(rows=1536, cols=1280, seed=s, bits=14) for s in range(1 if quick else 2)]
    return {"DICOM native": native, "8-bit export": exports, "phantom 14-bit": phantoms}


def payload_for(i: int) -> bytes:
    return bytes(np.random.default_rng(1000 + i).integers(0, 256, 8, dtype=np.uint8))


def run_robust(methods: list[Method], sets: dict[str, list[Radiograph]], names: list[str]) -> dict[Any, Row]:
    rows: dict[Any, Row] = defaultdict(Row)
    rng = np.random.default_rng(7)
    atk = attacks(rng)
    for set_name, images in sets.items():
        for i, image in enumerate(images):
            payload = payload_for(i)
            native_set = image.bits_stored > 8
            for m in methods:
                row = rows[(m.name, set_name)]
                t0 = time.perf_counter()
                marked = m.embed(image, payload)
                row.t_embed.append(time.perf_counter() - t0)
                if m.native or not native_set:
                    ref = image.frame(0)
                    peak = float(image.max_value)
                    row.psnr.append(psnr(marked.frame(0), ref, peak))
                    row.maxabs.append(int(np.abs(marked.frame(0).astype(np.int64) - ref).max()))
                    row.ssim.append(ssim(marked.frame(0), ref, peak))
                else:  # the peer marked the 8-bit export
                    ref8 = render(image)
                    row.psnr8.append(psnr(marked.frame(0), ref8, 255.0))
                    row.maxabs.append(int(np.abs(marked.frame(0).astype(np.int64) - ref8).max()))
                    row.ssim.append(ssim(marked.frame(0), ref8, 255.0))
                if native_set and m.native:
                    shot = render(marked)
                    t0 = time.perf_counter()
                    ok, guess = m.read(marked.frame(0))
                    row.t_read.append(time.perf_counter() - t0)
                    row.cells["native"].success.append(ok and guess == payload)
                    row.cells["native"].bits.append(bit_accuracy(guess, payload))
                    for wl, arr in windows(marked).items():
                        ok, guess = m.read(arr)
                        row.cells[wl].success.append(ok and guess == payload)
                        row.cells[wl].bits.append(bit_accuracy(guess, payload))
                else:
                    shot = marked.frame(0) if marked.pixels.dtype == np.uint8 else render(marked)
                for name in names:
                    if isinstance(m, Peer) and not m.luma and name not in AS_SHIPPED_ATTACKS:
                        continue  # nothing survives its conversion to grey even unattacked
                    attacked = atk[name](shot)
                    t0 = time.perf_counter()
                    ok, guess = m.read(attacked)
                    if name == "none" and not (native_set and m.native):
                        row.t_read.append(time.perf_counter() - t0)
                    # The peer has no detector: success means all 64 bits right.
                    good = (ok or not isinstance(m, RadproofRobust)) and guess == payload
                    row.cells[name].success.append(bool(good))
                    row.cells[name].bits.append(bit_accuracy(guess, payload))
            print(f"  robust: {set_name} {i + 1}/{len(images)} {image.shape}", file=sys.stderr, flush=True)
    return rows


def run_reversible(sets: dict[str, list[Radiograph]]) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    rng = np.random.default_rng(11)
    for set_name, images in sets.items():
        for image in images:
            res = out[set_name]
            t0 = time.perf_counter()
            marked = embed(image, KEY, b"\0" * 8, layers="fragile")
            res["t_embed"].append(time.perf_counter() - t0)
            ref = image.frame(0)
            peak = float(image.max_value)
            res["psnr"].append(psnr(marked.frame(0), ref, peak))
            if image.bits_stored == 12:
                res["psnr12"].append(res["psnr"][-1])
            res["maxabs"].append(float(np.abs(marked.frame(0).astype(np.int64) - ref).max()))
            res["ssim"].append(ssim(marked.frame(0), ref, peak))
            t0 = time.perf_counter()
            reading = read(marked, KEY)
            res["t_read"].append(time.perf_counter() - t0)
            res["clean_ok"].append(float(reading.restorable and reading.tampered_blocks == []))
            res["exact"].append(float(np.array_equal(restore(marked, KEY).pixels, image.pixels)))
            # Paste a patch copied from elsewhere in the image; every touched block, and no other, must flag.
            h, w = image.shape
            ph, pw = rng.integers(8, max(9, h // 8)), rng.integers(8, max(9, w // 6))
            sy, sx = rng.integers(0, h - ph), rng.integers(0, w - pw)
            dy, dx = rng.integers(0, h - ph), rng.integers(0, w - pw)
            edited = marked.pixels.copy()
            edited[dy : dy + ph, dx : dx + pw] = marked.pixels[sy : sy + ph, sx : sx + pw]
            changed = edited != marked.pixels
            got = {(b.row, b.col) for b in read(marked.with_pixels(edited), KEY).tampered_blocks or []}
            bs = reading.block_size or 64
            rows_e = [*range(0, h // bs * bs, bs)][: max(1, h // bs)]
            cols_e = [*range(0, w // bs * bs, bs)][: max(1, w // bs)]
            ys, xs = np.nonzero(changed)
            expected = {
                (min(int(y) // bs, len(rows_e) - 1), min(int(x) // bs, len(cols_e) - 1))
                for y, x in zip(ys, xs, strict=True)
            }
            res["localised"].append(float(got == expected))
            # A single +1 change.
            one = marked.pixels.copy()
            y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
            one[y, x] = one[y, x] - 1 if one[y, x] > 0 else one[y, x] + 1
            got1 = {(b.row, b.col) for b in read(marked.with_pixels(one), KEY).tampered_blocks or []}
            res["one_pixel"].append(float(got1 == {(min(y // bs, len(rows_e) - 1), min(x // bs, len(cols_e) - 1))}))
        print(f"  reversible: {set_name} done", file=sys.stderr, flush=True)
    return out


def unmarked_images(n: int) -> list[Array]:
    """n unmarked 8-bit images: shared real and synthetic files, plus crops of them."""
    rows = list(csv.DictReader((XRAY / "manifest.csv").open()))
    files = [XRAY / r["path"] for r in rows if r["format"] != "dcm"]
    rng = np.random.default_rng(3)
    rng.shuffle(files)
    out: list[Array] = []
    for p in files:
        if len(out) >= n:
            break
        try:
            px = load(p).frame(0)
        except Exception:
            continue
        px = px if px.dtype == np.uint8 else render(load(p))
        out.append(px)
        if len(out) < n and min(px.shape) >= 320:  # and one crop of it
            h, w = px.shape
            out.append(px[h // 8 : h - h // 6, w // 5 : w - w // 10])
    return out[:n]


def run_false_positives(
    methods: list[Method], n: int, n_peer: int
) -> tuple[dict[str, tuple[int, int, float]], list[float]]:
    images = unmarked_images(n)
    truth = payload_for(0)
    out = {}
    null_z: list[float] = []
    for m in methods:
        hits, confs = 0, []
        for px in images if isinstance(m, RadproofRobust) else images[:n_peer]:
            if isinstance(m, RadproofRobust):
                r = read_robust(px, KEY)
                hits += int(r.found)
                confs.append(r.confidence)
                null_z.append(r.sync_z)
            else:
                _, guess = m.read(px)
                hits += int(guess == truth)
        out[m.name] = (hits, len(confs) or min(len(images), n_peer), max(confs) if confs else float("nan"))
        print(f"  false positives: {m.name} done", file=sys.stderr, flush=True)
    return out, null_z


def timing_2k() -> dict[str, float]:
    image = simulate_radiograph(rows=2500, cols=2048, seed=9, bits=14)
    out: dict[str, float] = {}
    for layers in ("robust", "fragile"):
        best_e, best_r = 1e9, 1e9
        for _ in range(2):
            t0 = time.perf_counter()
            marked = embed(image, KEY, b"SITE0042", layers=layers)
            t1 = time.perf_counter()
            if layers == "robust":
                read_robust(marked.frame(0), KEY)
            else:
                read_fragile(marked.frame(0), 0, (1 << 14) - 1, KEY)
            t2 = time.perf_counter()
            best_e, best_r = min(best_e, t1 - t0), min(best_r, t2 - t1)
        out[f"{layers} embed"], out[f"{layers} read"] = best_e, best_r
    # The robust reader on an 8-bit 2k x 2.5k export.
    shot = render(embed(image, KEY, b"SITE0042", layers="robust"))
    t0 = time.perf_counter()
    read_robust(shot, KEY)
    out["robust read (8-bit export)"] = time.perf_counter() - t0
    return out


def timing_by_size() -> list[tuple[str, float, float, float, float]]:
    """Both layers, embed and full read, as the image grows (one run each)."""
    rows = []
    warm = simulate_radiograph(rows=512, cols=512, seed=4, bits=14)
    read(embed(warm, KEY, b"SITE0042"), KEY)  # first-call costs (caches, FFT plans) are not per-size costs
    for h, w in ((1024, 1024), (2500, 2048), (4096, 4096)):
        image = simulate_radiograph(rows=h, cols=w, seed=4, bits=14)
        t0 = time.perf_counter()
        marked = embed(image, KEY, b"SITE0042")
        t1 = time.perf_counter()
        reading = read(marked, KEY)
        t2 = time.perf_counter()
        assert reading.payload == "SITE0042" and reading.restorable
        mp = h * w / 1e6
        rows.append((f"{h} x {w}", mp, t1 - t0, t2 - t1, (t2 - t0) / mp))
    return rows


# ----------------------------------------------------------------------------------------------


def _gumbel(z: Array) -> tuple[float, float]:
    """Method-of-moments Gumbel fit (location, scale) of the maximum-of-offsets null score."""
    scale = float(np.std(z)) * np.sqrt(6) / np.pi
    return float(np.mean(z)) - 0.5772 * scale, scale


def _pct(xs: list[bool]) -> str:
    return f"{100 * np.mean(xs):.0f}" if xs else "n/a"


def _found_scores(methods: list[Method]) -> str:
    scores = [z for m in methods if isinstance(m, RadproofRobust) for z in m.found_scores]
    if not scores:
        return ""
    low, mid = float(np.min(scores)), float(np.median(scores))
    return f"Reads of marked images that found the payload ({len(scores)}): score minimum {low:.2f}, median {mid:.2f}."


def _timing_tables(timing: dict[str, float], by_size: list[tuple[str, float, float, float, float]]) -> str:
    lines: list[str] = []
    lines.append("### Time on a 2500 x 2048 14-bit image, one thread (best of 2)")
    lines.append("")
    lines.append("| step | seconds |")
    lines.append("|---|---|")
    for k, v in timing.items():
        lines.append(f"| {k} | {v:.2f} |")
    lines.append("")
    lines.append("### Cost by image size: both layers, embed and full read (one run each)")
    lines.append("")
    lines.append("| image | megapixels | embed s | read s | s per megapixel |")
    lines.append("|---|---|---|---|---|")
    for name, mp, te, tr, per in by_size:
        lines.append(f"| {name} | {mp:.1f} | {te:.2f} | {tr:.2f} | {per:.3f} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# The robust payload's perceptual hash


def _hash_sets() -> tuple[list[Radiograph], list[str]]:
    """Real radiographs: the DICOMs at native depth and 8-bit chest and knee images; a group per picture."""
    names = {r["path"]: r["original_name"] for r in csv.DictReader((XRAY / "manifest.csv").open())}
    images, groups = [], []
    picks = [("dicom-samples", 99), ("kermany", 60), ("openist", 60), ("knee-implants", 20)]
    for folder, count in picks:
        for path in sorted((XRAY / "real" / folder).iterdir())[:count]:
            try:
                images.append(load(path))
            except Exception:  # a file the loader refuses is not part of this measurement
                continue
            original = names.get(f"real/{folder}/{path.name}", path.name)
            # The WG04 set holds one picture in several transfer syntaxes: one group.
            groups.append(original.rsplit("_", 1)[0] if original.startswith("WG04") else f"{folder}/{path.name}")
    return images, groups


def run_content_hash() -> str:
    """Hash distances: a marked image after attacks against itself, different images, the copy attack."""
    started = time.perf_counter()
    images, groups = _hash_sets()
    rng = np.random.default_rng(0)
    genuine_attacks: dict[str, Callable[[Array], Array]] = {
        "8-bit export": lambda a: a,
        "jpeg90": lambda a: _jpeg(a, 90),
        "jpeg75": lambda a: _jpeg(a, 75),
        "resize0.75": lambda a: _resize(a, 0.75),
        "noise 2%": lambda a: np.clip(a + rng.normal(0, 0.02 * 255, a.shape), 0, 255).astype(np.uint8),
        "gamma0.8": lambda a: (255 * (a / 255.0) ** 0.8).astype(np.uint8),
        "screenshot": lambda a: _jpeg(_resize(a, 0.6), 80),
    }
    polarity = [-1 if im.photometric is Photometric.MONOCHROME1 else 1 for im in images]
    hashes = [content_hash(im.frame(0), KEY, polarity=p) for im, p in zip(images, polarity, strict=True)]
    genuine: dict[str, list[int]] = defaultdict(list)
    for im, p in zip(images, polarity, strict=True):
        stored = content_hash(im.frame(0), KEY)  # what embed puts in the payload
        marked = embed(replace(im, was_color=False), KEY, "BENCH", layers="robust")
        genuine["marked, native"].append(hash_distance(stored, content_hash(marked.frame(0), KEY)))
        eight = render(marked)  # MONOCHROME1 is inverted here: the reader finds polarity -1
        for name, attack in genuine_attacks.items():
            genuine[name].append(hash_distance(stored, content_hash(attack(eight), KEY, polarity=p)))
    impostor = [
        hash_distance(hashes[i], hashes[j])
        for i in range(len(images))
        for j in range(i + 1, len(images))
        if groups[i] != groups[j]
    ]
    copies = _copy_attacks(images[:40])
    lines = [
        f"Generated by `python benchmarks/watermark.py --content-hash` in {time.perf_counter() - started:.0f} s: "
        f"{len(images)} real radiographs ({len(set(groups))} different pictures), {HASH_BITS}-bit hash, "
        f"match when at most {CONTENT_MATCH_MAX} bits differ.",
        "",
        "| pair | n | mean | 99th pct | max | matches |",
        "|---|---|---|---|---|---|",
    ]
    for name, d in genuine.items():
        lines.append(_distance_row(f"same image: {name}", d))
    lines.append(_distance_row("different images", impostor, minimum=True))
    lines.append(_distance_row("copy attack (read from the forged image)", copies, minimum=True))
    return "\n".join(lines) + "\n"


def _distance_row(name: str, d: list[int], *, minimum: bool = False) -> str:
    a = np.array(d)
    matches = f"{100 * np.mean(a <= CONTENT_MATCH_MAX):.2f} %"
    tail = f"min {a.min()}, 1st pct {np.percentile(a, 1):.0f}" if minimum else f"{np.percentile(a, 99):.0f}"
    return f"| {name} | {a.size} | {a.mean():.2f} | {tail} | {a.max()} | {matches} |"


def _copy_attacks(images: list[Radiograph]) -> list[int]:
    """Copy each marked image's robust mark (marked minus its median-filtered self) onto the next image."""
    out = []
    eights = [render(im) for im in images]
    marked = [render(embed(Radiograph(pixels=e, bits_stored=8), KEY, "COPY", layers="robust")) for e in eights]
    for i, source in enumerate(marked):
        target = eights[(i + 1) % len(eights)]
        estimate = source.astype(np.float64) - ndimage.median_filter(source.astype(np.float64), size=5)
        estimate = np.asarray(Image.fromarray(estimate.astype(np.float32)).resize(target.shape[::-1]))
        forged = np.clip(np.rint(target + 1.5 * estimate), 0, 255).astype(np.uint8)
        reading = read_robust(forged, KEY)
        if reading.found and reading.content_distance is not None:
            out.append(reading.content_distance)
    return out or [HASH_BITS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few images and attacks (smoke run, ~1-2 min)")
    parser.add_argument("--out", type=Path, help="also write the Markdown tables to this file")
    parser.add_argument("--unmarked", type=int, default=None, help="unmarked images for false positives")
    parser.add_argument("--timing-only", action="store_true", help="only the time tables (run on a quiet machine)")
    parser.add_argument("--content-hash", action="store_true", help="only the robust payload's perceptual hash")
    args = parser.parse_args(argv)
    if args.content_hash:
        if not (XRAY / "manifest.csv").is_file():
            print(f"shared radiographs not found at {XRAY} (set RADPROOF_SHARED)", file=sys.stderr)
            return 2
        print(run_content_hash())
        return 0
    if args.timing_only:
        print(_timing_tables(timing_2k(), timing_by_size()))
        return 0
    if not (XRAY / "manifest.csv").is_file():
        print(f"shared radiographs not found at {XRAY} (set RADPROOF_SHARED)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    methods: list[Method] = [RadproofRobust()]
    try:
        methods += [Peer(luma=False), Peer(luma=True)]
    except ImportError:
        print("invisible-watermark is not installed (pip install -e '.[bench]'): peer rows skipped", file=sys.stderr)
    names = QUICK_ATTACKS if args.quick else list(attacks(np.random.default_rng(0)))
    sets = image_sets(args.quick)
    robust_rows = run_robust(methods, sets, names)
    reversible = run_reversible(sets)
    n_unmarked = args.unmarked or (100 if args.quick else 1000)
    fp, null_z = run_false_positives(methods, n_unmarked, min(n_unmarked, 100))
    timing = timing_2k()
    by_size = timing_by_size()

    lines: list[str] = []
    cmd = "python benchmarks/watermark.py" + (" --quick" if args.quick else "")
    lines.append(f"Generated by `{cmd}` in {time.perf_counter() - started:.0f} s on one core.")
    lines.append("")
    lines.append("Images: " + ", ".join(f"{k} ({len(v)})" for k, v in sets.items()) + ".")
    lines.append("")
    lines.append("### Robust layer and peer: image quality and time")
    lines.append("")
    lines.append(
        "| method | images | PSNR native dB (min) | PSNR 8-bit dB | max abs change | SSIM | embed s | read s |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    for (mname, sname), row in robust_rows.items():
        p = f"{np.mean(row.psnr):.1f} ({np.min(row.psnr):.1f})" if row.psnr else "n/a"
        p8 = f"{np.mean(row.psnr8):.1f}" if row.psnr8 else "-"
        lines.append(
            f"| {mname} | {sname} | {p} | {p8} | {max(row.maxabs)} | {np.mean(row.ssim):.4f} | "
            f"{np.mean(row.t_embed):.2f} | {np.mean(row.t_read):.2f} |"
        )
    for metric, title in (("success", "payload success after ECC, %"), ("bits", "payload bit accuracy, %")):
        lines.append("")
        lines.append(f"### Robust layer and peer: {title}")
        lines.append("")
        cols = ["native", *WINDOW_ATTACKS, *names]
        lines.append("| method | images | " + " | ".join(cols) + " |")
        lines.append("|---|---|" + "---|" * len(cols))
        for (mname, sname), row in robust_rows.items():
            cells = []
            for c in cols:
                cell = row.cells.get(c)
                if cell is None or not cell.success:
                    cells.append("n/a")
                elif metric == "success":
                    cells.append(_pct(cell.success))
                else:
                    cells.append(f"{100 * np.mean(cell.bits):.0f}")
            lines.append(f"| {mname} | {sname} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("### False positives on unmarked images")
    lines.append("")
    lines.append("| method | unmarked images and crops | reported as marked | highest confidence |")
    lines.append("|---|---|---|---|")
    for mname, (hits, n, conf) in fp.items():
        note = f"{conf:.4f}" if conf == conf else "n/a (no detector; counted: exact payload match)"
        lines.append(f"| {mname} | {n} | {hits} | {note} |")
    z = np.array(null_z)
    lines.append("")
    lines.append(
        f"Synchronisation score of radproof's reader on the {len(z)} unmarked images: median {np.median(z):.2f}, "
        f"99th percentile {np.percentile(z, 99):.2f}, max {z.max():.2f}; Gumbel fit location "
        f"{_gumbel(z)[0]:.3f}, scale {_gumbel(z)[1]:.3f} (the constants behind `confidence`). " + _found_scores(methods)
    )
    lines.append("")
    lines.append("### Reversible fragile layer (64x64 blocks, 84 bits each)")
    lines.append("")
    lines.append(
        "| images | PSNR dB mean (min) | PSNR 12-bit images | max abs change | SSIM | exact restore | "
        "clean image: no block flagged | pasted patch: exactly its blocks | +1 on one pixel: its block | "
        "embed s | read s |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for sname, r in reversible.items():
        p12 = f"{np.mean(r['psnr12']):.1f} (min {np.min(r['psnr12']):.1f})" if r["psnr12"] else "-"
        lines.append(
            f"| {sname} ({len(r['psnr'])}) | {np.mean(r['psnr']):.1f} ({np.min(r['psnr']):.1f}) | {p12} | "
            f"{max(r['maxabs']):.0f} | {np.mean(r['ssim']):.5f} | {100 * np.mean(r['exact']):.0f}% | "
            f"{100 * np.mean(r['clean_ok']):.0f}% | {100 * np.mean(r['localised']):.0f}% | "
            f"{100 * np.mean(r['one_pixel']):.0f}% | {np.mean(r['t_embed']):.2f} | {np.mean(r['t_read']):.2f} |"
        )
    lines.append("")
    lines.append(_timing_tables(timing, by_size))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
