"""Halving: who moves when every image is halved, the fakes or the real images?

The perturbation suite of ``radproof evaluate`` shows that halving costs an unseen generator far
more AUC than the pooled rows suggest. This benchmark looks at why: the leave-one-generator-out
folds of RoentGen-v2 and ldm-iuxray-vae are refitted from the rows shipped with the detector
(``detector-rows.npz``, no images needed for that), then the perturbation sample (up to 40 images
per set, the real ones from the 30 % hold-out) is measured clean and halved (bicubic, as the suite
does). Per set: the share judged at the thumbnail size, the median probability (and its 90th
percentile) and the median network logit.

    .venv/bin/python -m radproof.detect.lab.studies.halving
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

GENERATORS = ("roentgen-v2", "ldm-iuxray-vae")
PER_SET = 40


def main(argv: list[str]) -> int:
    from radproof.detect.detector import Detector
    from radproof.detect.lab.features import measure_items
    from radproof.detect.lab.manifest import in_holdout, subsample
    from radproof.detect.lab.studies.shipped import development_items, shipped_logo_folds
    from radproof.detect.normalize import SMALL_WORK_SIZE

    started = time.perf_counter()
    items = development_items()
    if items is None:
        return 0
    all_folds = shipped_logo_folds(items)
    folds = {g: all_folds[g] for g in GENERATORS}
    sample = subsample([i for i in items if i.label == 1 or in_holdout(i)], PER_SET)
    model = Detector.load().model
    measured = {name: measure_items(sample, name, model) for name in (None, "resize0.5")}
    for g, fold in folds.items():
        print(f"\nfold without {g}: median probability (90th percentile), median network logit")
        print("| set | n | clean | halved | share judged at 128 px, halved |")
        print("|---|---|---|---|---|")
        groups = [*sorted({i.set for i in sample if i.label == 0}), g]
        for group in groups:
            cells, n, small = [], 0, 0.0
            for name, table in measured.items():
                p = fold.scores(table)
                mask = np.array([i.set == group if i.label == 0 else i.generator == g == group for i in table.items])
                if not mask.any():
                    cells.append("-")
                    continue
                logit = "" if table.logits is None else f", {np.median(table.logits[mask]):+.2f}"
                cells.append(f"{np.median(p[mask]):.2f} ({np.quantile(p[mask], 0.9):.2f}){logit}")
                if name is not None:
                    n, small = int(mask.sum()), float(np.mean(table.work_sizes()[mask] == SMALL_WORK_SIZE))
            print(f"| {group} | {n} | {cells[0]} | {cells[1]} | {small:.2f} |")
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
