"""How many of its own real images does a site need to commission the detector (`radproof adapt`)?

For each real set of the development data that the detector finds unusual when it is left out, and
for the best-known one as a control: leave it out (and one generator, and the 30 % real hold-out),
then add the first N images of a fixed half of it; specificity is read on the other half,
sensitivity on the held-out generator (mean over the generators judged at that size). N = 0 is the unadapted
detector. Two tables: the images as the detector judges them (a set whose images have a short side
under 256 px, such as the 224 px CLAHE knees, is judged at 128 px and so has no row in the first),
and every image shrunk to 128 px. Cue values are measured once (about 8 minutes on one core), then
every fit is cheap.

    .venv/bin/python -m radproof.detect.lab.studies.adapt
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
import time  # noqa: E402

from radproof.detect.lab.studies import shared_dir  # noqa: E402

MANIFEST = shared_dir() / "data" / "xray" / "manifest.csv"
SETS = ("knee-oa-clahe", "knee-implants", "ieee8023-covid")
COUNTS = (0, 10, 20, 40, 80)


def main(argv: list[str]) -> int:
    from radproof.detect.detector import Detector
    from radproof.detect.lab.evaluate import site_adaptation
    from radproof.detect.lab.features import measure_items_at, measure_processed
    from radproof.detect.lab.manifest import read_manifest
    from radproof.detect.normalize import SMALL_WORK_SIZE, WORK_SIZE

    if not MANIFEST.is_file():
        print(f"no development manifest at {MANIFEST}; nothing to measure", file=sys.stderr)
        return 0
    items = read_manifest(MANIFEST)
    model = Detector.load().model
    started = time.perf_counter()
    sizes = (None, SMALL_WORK_SIZE)
    table, small = measure_items_at(items, sizes, None, model, reference=True)
    processed, small_processed = measure_processed(items, model, work_sizes=sizes, reference=True)
    print(
        f"measured {len(table.items)} images + {len(processed.items)} processed copies, at both sizes, "
        f"in {time.perf_counter() - started:.0f} s"
    )
    for title, rows, copies, size in (
        ("as the detector judges them", table, processed, WORK_SIZE),
        (f"every image shrunk to {SMALL_WORK_SIZE} px", small, small_processed, SMALL_WORK_SIZE),
    ):
        cells: dict[str, list[str]] = {}
        for n in COUNTS:
            for r in site_adaptation(rows, copies, work_size=size, max_adapt=n, sets=SETS):
                name = f"{r['fold'].split('=')[1]} ({r['n_test']} tested)"
                cells.setdefault(name, []).append(
                    f"{r['specificity_adapted']:.3f} / {r['sensitivity_adapted']:.3f} ({r['n_adapt']})"
                )
        print(f"\n{title}, judged at {size} px: specificity on the set's other half / mean sensitivity on")
        print("held-out generators (images added)\n")
        print("| real set left out | " + " | ".join(f"N = {n}" for n in COUNTS) + " |")
        print("|---|" + "---|" * len(COUNTS))
        for name, row in cells.items():
            print(f"| {name} | " + " | ".join(row) + " |")
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
