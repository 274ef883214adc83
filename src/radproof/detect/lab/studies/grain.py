"""Two-sidedness of the detector: does added grain turn a smooth fake real, or a real image fake?

A generator prompted for heavy grain (GPT-4o style) is grainier than real radiographs, a diffusion
model with too little quantum mottle is smoother. The shipped detector scores distance from real in
both directions, so grain added to a smooth fake should not make it "real", and enough grain on a real
image should make it less real, not more. Uniform Gaussian grain at native resolution, sigma 0, 3 %
and 6 % of the 1-99 percentile range; shipped detector; up to 60 images per group (fixed sample), the
real ones from the protocol's 30 % hold-out.

    .venv/bin/python -m radproof.detect.lab.studies.grain
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402

import numpy as np  # noqa: E402

from radproof.detect.lab.studies import shared_dir  # noqa: E402

MANIFEST = shared_dir() / "data" / "xray" / "manifest.csv"
GRAIN = (0.0, 0.03, 0.06)
PER_GROUP = 60


def main(argv: list[str]) -> int:
    from radproof.detect.detector import Detector
    from radproof.detect.lab.manifest import Item, in_holdout, read_manifest
    from radproof.detect.lab.perturbations import as_uint16
    from radproof.errors import InputError
    from radproof.imaging import load

    if not MANIFEST.is_file():
        print(f"no development manifest at {MANIFEST}; nothing to measure", file=sys.stderr)
        return 0
    items = read_manifest(MANIFEST)
    groups: dict[str, list[Item]] = {}
    for item in items:
        name = item.generator if item.label == 1 else ("real (held-out)" if in_holdout(item) else "")
        if name:
            groups.setdefault(name, []).append(item)
    detector = Detector.load()
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    print("| images | " + " | ".join(f"+{100 * g:.0f} % grain" if g else "no grain" for g in GRAIN) + " |")
    print("|---|" + "---|" * len(GRAIN))
    for name in sorted(groups):
        chosen = groups[name]
        if len(chosen) > PER_GROUP:
            chosen = [chosen[i] for i in sorted(rng.choice(len(chosen), PER_GROUP, replace=False))]
        cells = []
        for sigma in GRAIN:
            counts: Counter[str] = Counter()
            for k, item in enumerate(chosen):
                try:
                    image = load(item.path)
                except InputError:
                    continue
                f = image.brightness(0).astype(np.float32)
                if sigma:
                    spread = float(np.percentile(f, 99) - np.percentile(f, 1)) or 1.0
                    noise = np.random.default_rng(k).normal(0.0, sigma * spread, f.shape).astype(np.float32)
                    image = as_uint16(f + noise)
                counts[detector.detect(image).verdict] += 1
            n = sum(counts.values()) or 1
            cells.append(" / ".join(f"{counts[v] / n:.2f}" for v in ("synthetic", "uncertain", "real")))
        print(f"| {name} ({len(chosen)}): synthetic / uncertain / real | " + " | ".join(cells) + " |", flush=True)
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
