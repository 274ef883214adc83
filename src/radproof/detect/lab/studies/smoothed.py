"""A smoothed second view against re-added noise: measured, not shipped.

A forger who adds 2 % Gaussian noise to RoentGen-v2 images gets 93 % of them called real (the
forger's table of ``radproof evaluate``): the noise buries the decoder trace and brings the grain
into the real range. Whatever noise is added, what lies under it must still look like a
radiograph. This benchmark measures a second view that looks there: the normalized square smoothed
by a Gaussian of ``SIGMA`` px and re-encoded as the normalization does, scored by the same cues,
network and calibration, then combined with the ordinary view.

For each generator judged at full size, its leave-one-generator-out fold is refitted from the rows
shipped with the detector (``detector-rows.npz``). Each view's probability becomes an upper-tail
z-score on the spread of the fold's **training** real images (a sample of up to
``TRAIN_PER_SET`` per set, outside the 30 % hold-out), one-sided as the network's is; the two tails
are combined by Fisher's method, and the combined threshold is the 97th percentile of the training
reals (the shipped rule). Tested on the held-out reals (up to ``PER_SET`` per set) and on the
generator's images, clean and with the suite's 2 % noise.

ddpm-lunggen (226 px) is judged as a thumbnail and left out here.

    .venv/bin/python -m radproof.detect.lab.studies.smoothed
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

GENERATORS = ("roentgen-v2", "ldm-iuxray", "ldm-iuxray-vae")
PER_SET = 40
TRAIN_PER_SET = 25
SIGMA = 0.7

Views = tuple[dict[str, float], float, dict[str, float], float]


def _views(image: Any, model: Any) -> Views | None:
    """Cue values and network logit of the ordinary and of the smoothed view (None: not judged at
    full size, or unusable)."""
    from scipy import ndimage

    from radproof.detect import cues
    from radproof.detect.normalize import WORK_SIZE, normalize, reencode

    norm = normalize(image)
    if norm.work_size != WORK_SIZE or norm.problems:
        return None
    smooth = reencode(ndimage.gaussian_filter(norm.pixels, SIGMA).astype(np.float32))
    return cues.measure(norm.pixels), model.logit(norm.pixels)[0], cues.measure(smooth), model.logit(smooth)[0]


def _auc(pos: npt.NDArray[np.float64], neg: npt.NDArray[np.float64]) -> float:
    return float(np.mean(pos[:, None] > neg[None, :]) + 0.5 * np.mean(pos[:, None] == neg[None, :]))


def _fold_row(g: str, fold: Any, measured: dict[str, list[tuple[Any, Views]]]) -> str:
    """One table row: the fold without ``g`` on its held-out reals and on ``g``'s images."""
    from scipy.special import log_ndtr, logit, ndtri_exp

    from radproof.detect.fusion import RealSpread

    cal, ref = fold.calibration, fold.reference

    def of(label: str, generator: str | None = None) -> npt.NDArray[np.float64]:
        rows = [v for i, v in measured.get(label, []) if generator in (None, i.generator)]
        return np.array(
            [[cal.probability(ref.atypicality(v[0]), v[1]), cal.probability(ref.atypicality(v[2]), v[3])] for v in rows]
        )

    train, test = of("training real"), of("test real")
    clean, noised = of("clean", g), of("noised", g)
    x_train = logit(np.clip(train, 1e-9, 1 - 1e-9))
    spreads = [RealSpread.of(x_train[:, k]) for k in range(2)]

    def both(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        # Fisher's method on the two one-sided upper tails, as the shipped fusion combines its two
        # layers (chi-squared with 4 degrees of freedom), returned as a z-score.
        x = logit(np.clip(p, 1e-9, 1 - 1e-9))
        log_tails = [log_ndtr(-np.maximum(spreads[k].z(x[:, k]), 0.0)) + np.log(2.0) for k in range(2)]
        half = -(log_tails[0] + log_tails[1])
        return np.asarray(-ndtri_exp(np.minimum(-half + np.log1p(half), -1e-12)), dtype=np.float64)

    limit = float(np.quantile(both(train), 0.97))
    t = cal.threshold_synthetic

    def aucs(fake: npt.NDArray[np.float64]) -> str:
        pairs = ((fake[:, 0], test[:, 0]), (fake[:, 1], test[:, 1]), (both(fake), both(test)))
        return " / ".join(f"{_auc(a, b):.3f}" for a, b in pairs)

    def flagged(fake: npt.NDArray[np.float64]) -> str:
        return f"{np.mean(fake[:, 0] >= t):.2f} / {np.mean(both(fake) >= limit):.2f}"

    specificity = f"{np.mean(test[:, 0] < t):.3f} / {np.mean(both(test) < limit):.3f}"
    cells = [g, str(len(clean)), aucs(clean), aucs(noised), specificity, flagged(clean), flagged(noised)]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str]) -> int:
    from radproof.detect.detector import Detector
    from radproof.detect.lab.manifest import in_holdout, subsample
    from radproof.detect.lab.perturbations import PERTURBATIONS
    from radproof.detect.lab.studies.shipped import development_items, shipped_logo_folds
    from radproof.errors import InputError
    from radproof.imaging import load

    started = time.perf_counter()
    items = development_items()
    if items is None:
        return 0
    folds = shipped_logo_folds(items)
    model = Detector.load().model
    if model is None:
        print("the shipped detector has no network; nothing to measure", file=sys.stderr)
        return 0
    reals = [i for i in items if i.label == 0]
    groups = {
        "test real": subsample([i for i in reals if in_holdout(i)], PER_SET),
        "training real": subsample([i for i in reals if not in_holdout(i)], TRAIN_PER_SET),
    }
    fakes = [i for i in items if i.generator in GENERATORS]
    measured: dict[str, list[tuple[Any, Views]]] = {}
    for name, chosen in [*groups.items(), ("clean", subsample(fakes, PER_SET))]:
        for item in chosen:
            try:
                image = load(item.path)
            except InputError:
                continue
            variants = [(name, image)]
            if name == "clean":
                variants.append(("noised", PERTURBATIONS["noise"](image)))
            for label, variant in variants:
                views = _views(variant, model)
                if views is not None:
                    measured.setdefault(label, []).append((item, views))

    print(f"smoothed view: Gaussian sigma {SIGMA} px on the 256 px square; folds refitted from the shipped rows")
    print("| generator | fakes | AUC clean: ordinary / smoothed / both | AUC noised: ordinary / smoothed / both "
          "| held-out reals not flagged: ordinary / both | fakes flagged, clean: ordinary / both "
          "| fakes flagged, noised: ordinary / both |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for g in GENERATORS:
        print(_fold_row(g, folds[g], measured))
    n_test, n_train = len(measured.get("test real", [])), len(measured.get("training real", []))
    print(f"\nheld-out reals: {n_test}, training reals for the spread and threshold: {n_train}")
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
