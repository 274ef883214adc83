"""Detector speed: every layer on a 2048 x 2048 radiograph, one core, against decoding the file alone.

The peer is the cheapest thing any reader of the file must do anyway: decode it (pydicom for the
16-bit DICOM, Pillow for the 8-bit JPEG). The target is under 0.5 s for all layers together.

    .venv/bin/python -m benchmarks detect
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import io  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def _best(fn: Callable[[], object], repeat: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str]) -> int:
    from radproof.detect import cues
    from radproof.detect.detector import Detector
    from radproof.detect.normalize import normalize
    from radproof.imaging import load_bytes
    from radproof.imaging.phantom import simulate

    detector = Detector.load()
    buf = io.BytesIO()
    simulate(2048, 2048, seed=0).save_as(buf, enforce_file_format=True)
    dicom = buf.getvalue()
    image = load_bytes(dicom)
    jpeg_buf = io.BytesIO()
    from radproof.imaging import render

    Image.fromarray(render(image)).save(jpeg_buf, format="JPEG", quality=90)
    jpeg = jpeg_buf.getvalue()
    norm = normalize(image)
    rows = [
        ("decode DICOM 16-bit (peer)", _best(lambda: load_bytes(dicom))),
        ("decode JPEG 8-bit (peer)", _best(lambda: load_bytes(jpeg))),
        ("normalize", _best(lambda: normalize(image))),
        ("cues", _best(lambda: cues.measure(norm.pixels))),
        ("model (onnxruntime)", _best(lambda: detector.model.logit(norm.pixels)) if detector.model else float("nan")),
        ("detect, all layers (DICOM, from bytes)", _best(lambda: detector.detect(load_bytes(dicom), data=dicom))),
        ("detect, all layers (JPEG, from bytes)", _best(lambda: detector.detect(load_bytes(jpeg), data=jpeg))),
    ]
    peer = rows[0][1]
    print(f"{'step':44s} {'seconds':>8s} {'x decode':>9s}")
    for name, seconds in rows:
        print(f"{name:44s} {seconds:8.3f} {seconds / peer:9.2f}")
    total = rows[5][1]
    print(f"target: all layers under 0.5 s on one core -> {'met' if total < 0.5 else 'NOT met'} ({total:.3f} s)")
    sizes = np.array([len(dicom), len(jpeg)]) / 1e6
    print(f"inputs: DICOM {sizes[0]:.1f} MB, JPEG {sizes[1]:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
