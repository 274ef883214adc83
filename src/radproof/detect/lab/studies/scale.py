"""Scale: does a decoder's trace survive the detector's down-sampling to 256 px?

The pixel layer sees every image as a 256 x 256 square (``detect/normalize.py``). A generator that
writes 1024 px images leaves its decoder's up-sampling trace at its own pixel scale; area
down-sampling by 4 averages it over 4 x 4 blocks. This benchmark measures how much of the trace the
shipped network still sees, and what a "native view" (256 px crops at the image's own resolution,
re-encoded like the normalization) would see instead, and would cost on real images.

1. Trace survival: held-out real radiographs with a short side of at least 1024 px; for each output
   size S (256, 512, 1024) the centre S x S square is reconstructed by taef2 (a published latent
   autoencoder, ../shared/models/taef2; one of the network's training decoders) and the network's
   image logit of the square and of its reconstruction are compared, through the normalization and
   through the native view: paired AUC (share of pairs where the reconstruction scores higher; 0.5 =
   trace invisible) and the median paired difference.
2. The native view's cost: the network logit on every held-out real image and on RoentGen-v2, both
   views; median and 90th percentile per real set, and RoentGen-v2's AUC against the reals.

Needs the training extra (torch) and the development data; prints why and exits 0 without them.

    .venv/bin/python -m radproof.detect.lab.studies.scale
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

from radproof.detect.lab.studies import shared_dir  # noqa: E402

SHARED = shared_dir()
MANIFEST = SHARED / "data" / "xray" / "manifest.csv"
TAEF2 = SHARED / "models" / "taef2"
SIZES = (256, 512, 1024)
PAIRS = 20
CROP = 256

Float = npt.NDArray[np.float32]


def _native_view(net: object, unit: Float) -> float | None:
    """Mean network logit over 256 px crops at the image's own scale (2 x 2 around the centre, or one)."""
    from radproof.detect.normalize import reencode

    h, w = unit.shape
    if min(h, w) < CROP:
        return None
    offsets = (-CROP, 0) if min(h, w) >= 2 * CROP else (-CROP // 2,)
    cy, cx = h // 2, w // 2
    logits = [
        net.logit(reencode(unit[cy + dy : cy + dy + CROP, cx + dx : cx + dx + CROP]))[0]  # type: ignore[attr-defined]
        for dy in offsets
        for dx in offsets
    ]
    return float(np.mean(logits))


def _paired(a: Sequence[float], b: Sequence[float]) -> str:
    x, y = np.asarray(a), np.asarray(b)
    return f"{np.mean(y > x):.2f}, {np.median(y - x):+.2f}"


def _auc(pos: npt.NDArray[np.float64], neg: npt.NDArray[np.float64]) -> float:
    return float(np.mean(pos[:, None] > neg[None, :]) + 0.5 * np.mean(pos[:, None] == neg[None, :]))


def main(argv: list[str]) -> int:
    try:
        import torch
    except ImportError:
        print("torch is not installed (pip install -e '.[train]'); nothing to measure", file=sys.stderr)
        return 0
    if not MANIFEST.is_file() or not (TAEF2 / "taef2_decoder.pth").is_file():
        print(f"no development data or taef2 under {SHARED}; nothing to measure", file=sys.stderr)
        return 0
    from radproof.detect.detector import default_detector
    from radproof.detect.lab.manifest import in_holdout, read_manifest
    from radproof.detect.lab.train.taef2 import GrayTaef2
    from radproof.detect.normalize import brightness_frame, normalize_array, resized_square, stretch
    from radproof.errors import InputError
    from radproof.imaging import load

    torch.set_num_threads(2)
    net = default_detector().model
    if net is None:
        print("the shipped detector has no network; nothing to measure", file=sys.stderr)
        return 0
    autoencoder = GrayTaef2(TAEF2).eval()
    items = read_manifest(MANIFEST)
    chosen = [i for i in items if (i.label == 0 and in_holdout(i)) or i.generator == "roentgen-v2"]
    started = time.perf_counter()

    views: dict[str, list[tuple[float, float | None]]] = {}
    survival: dict[int, list[tuple[float, float, float, float]]] = {s: [] for s in SIZES}
    large = 0
    for item in chosen:
        try:
            frame = brightness_frame(load(item.path))
        except InputError:
            continue
        unit, _ = stretch(frame)
        group = item.generator if item.label == 1 else item.set
        views.setdefault(group, []).append((net.logit(normalize_array(frame).pixels)[0], _native_view(net, unit)))
        if item.label == 1 or min(frame.shape) < max(SIZES) or large >= PAIRS:
            continue
        large += 1
        for side in SIZES:
            square = resized_square(unit, side)[0]
            with torch.no_grad():
                recon = autoencoder(torch.from_numpy(square.copy())[None, None]).clamp(0, 1)[0, 0].numpy()
            survival[side].append(
                (
                    net.logit(normalize_array(square).pixels)[0],
                    net.logit(normalize_array(recon).pixels)[0],
                    _native_view(net, square) or 0.0,
                    _native_view(net, recon) or 0.0,
                )
            )

    print(f"1. taef2 trace, {large} held-out real radiographs (short side >= 1024 px)")
    print("cells: paired AUC (0.50 = trace invisible), median logit difference reconstruction - original")
    print("| output size | down-sampling to 256 | normalized view | native view |")
    print("|---|---|---|---|")
    for side in SIZES:
        rows = survival[side]
        if not rows:
            continue
        cols = list(zip(*rows, strict=True))
        print(f"| {side} px | x{side // 256} | {_paired(cols[0], cols[1])} | {_paired(cols[2], cols[3])} |")

    print("\n2. network logit on held-out real images and RoentGen-v2, by view: median / 90th percentile")
    print("| set | n | normalized view | native view (n) |")
    print("|---|---|---|---|")
    real_norm: list[float] = []
    real_native: list[float] = []
    for group in sorted(views, key=lambda g: (g == "roentgen-v2", g)):
        norm = np.array([v[0] for v in views[group]])
        native = np.array([v[1] for v in views[group] if v[1] is not None])
        if group != "roentgen-v2":
            real_norm += norm.tolist()
            real_native += native.tolist()
        native_cell = (
            f"{np.median(native):.2f} / {np.quantile(native, 0.9):.2f} ({native.size})" if native.size else "-"
        )
        print(f"| {group} | {norm.size} | {np.median(norm):.2f} / {np.quantile(norm, 0.9):.2f} | {native_cell} |")
    fakes = views.get("roentgen-v2", [])
    if fakes:
        norm_auc = _auc(np.array([v[0] for v in fakes]), np.array(real_norm))
        native_auc = _auc(np.array([v[1] for v in fakes if v[1] is not None]), np.array(real_native))
        print(f"\nRoentGen-v2 AUC against the held-out reals: normalized view {norm_auc:.3f}", end="")
        print(f", native view {native_auc:.3f}")
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
