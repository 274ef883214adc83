"""Scan throughput: images/s for the full check, 1 vs 2 local workers vs a Dask LocalCluster of 2.

Peers, all measured in this run on this machine:
- local scaling: images/s with 2 worker processes / (2 x images/s with 1)      target >= 0.80
- Dask:          images/s on a LocalCluster of 2 workers / images/s of 2 local  target >= 0.80
Also: seconds per image vs image size (0.5, 1, 2, 4 MP, one worker), and the scan machinery's own
overhead vs number of files (100, 1,000, 10,000 small files; per-file function that only reads and
hashes, so only discovery, scheduling and result writing are measured).

The main corpus is 2000 x 2500 (5 MP, 14-bit) phantom DX images, each signed (PS3.15) and, when the
watermark layer is installed, watermarked; every layer the installation has runs on each image.

    .venv/bin/python benchmarks/scan.py [--images 16] [--counts 100,1000,10000] [--sizes 0.5,1,2,4]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.uid import generate_uid

from radproof.config import Settings, load_settings
from radproof.imaging.phantom import simulate
from radproof.scan import scan_paths
from radproof.scan.engine import WORKER_ENVIRONMENT  # what docs/check.md tells clusters to use
from radproof.scan.work import DigestOnly

PW = b"benchmark passphrase"


def _layers(root: Path) -> tuple[Any, Any, Settings, list[str]]:
    """A CA + technologist identity, a watermark key if the layer exists; settings that use them."""
    from radproof.provenance import Role, init_ca, issue_identity, load_identity

    init_ca(root / "ca", "Bench CA", PW, key_bits=2048)
    issue_identity(root / "tech", root / "ca", "Bench Tech", Role.TECHNOLOGIST, PW, PW, key_bits=2048)
    identity = load_identity(root / "tech", PW)
    active = ["signature"]
    key = None
    overrides: dict[str, Any] = {"trust": {"ca": [str(root / "ca" / "ca.pem")]}, "scan": {"previews": True}}
    try:
        from radproof import watermark as wm

        key = wm.generate_key()
        wm.save_key(key, root / "wm.key", PW)
        overrides["watermark"] = {"key": str(root / "wm.key")}
        active.append("watermark")
    except (ImportError, AttributeError):
        pass
    try:
        from radproof.detect.detector import default_detector

        default_detector()
        active.append("detector")
    except Exception as exc:  # the detector model is not installed
        print(f"note: detector not available ({exc}); it is skipped", file=sys.stderr)
    settings = load_settings().with_overrides(**overrides)
    return identity, key, settings, active


def _corpus(folder: Path, n: int, rows: int, cols: int, identity: Any, key: Any) -> None:
    """n distinct signed (and watermarked) images from 2 simulated bases."""
    from radproof.provenance import sign_dataset

    folder.mkdir(parents=True)
    bases = [simulate(rows=rows, cols=cols, seed=s) for s in range(min(2, n))]
    for i in range(n):
        ds = copy.deepcopy(bases[i % len(bases)])
        ds.SOPInstanceUID = generate_uid()
        pixels = ds.pixel_array.copy()
        pixels[i % rows, (7 * i) % cols] ^= 1  # distinct content per file
        if key is not None:
            from radproof import watermark as wm
            from radproof.imaging.radiograph import Radiograph

            image = Radiograph(pixels=pixels, bits_stored=int(ds.BitsStored), dataset=ds)
            marked = wm.embed(image, key, payload=f"B{i}")
            pixels = marked.pixels
            if marked.dataset is not None:
                ds.SOPInstanceUID = marked.dataset.SOPInstanceUID  # the marked image is a new instance
        ds.PixelData = pixels.astype(np.uint16).tobytes()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        sign_dataset(ds, identity)
        ds.save_as(folder / f"img{i:05d}.dcm", enforce_file_format=True)


def _rate(folder: Path, settings: Settings, out: Path, **kwargs: Any) -> tuple[float, int]:
    summary = scan_paths([folder], settings, out=out, passphrase=PW, **kwargs)
    if summary.errors:
        bad = next(r for r in summary.records if r.get("status") != "ok")
        raise SystemExit(f"benchmark images failed to check: {bad.get('error')}")
    return summary.rate, summary.checked


def _cpu_per_image(out: Path) -> float:
    """Mean CPU seconds the worker spent per image (unaffected by how many cores were free)."""
    from radproof.scan import read_records

    values = [float(r.get("cpu_seconds") or 0.0) for r in read_records(out)]
    return sum(values) / max(1, len(values))


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16, help="5 MP images in the main corpus")
    parser.add_argument("--sizes", default="0.5,1,2,4", help="megapixels for the size sweep ('' skips)")
    parser.add_argument("--counts", default="100,1000,10000", help="file counts for the overhead sweep ('' skips)")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    print(f"machine: {os.cpu_count()} CPU core(s) visible", flush=True)
    with tempfile.TemporaryDirectory(prefix="radproof-scan-bench-") as tmp:
        root = Path(tmp)
        identity, key, settings, active = _layers(root)
        print(f"layers checked on every image: {', '.join(active)}", flush=True)

        t0 = time.perf_counter()
        main_corpus = root / "main"
        _corpus(main_corpus, args.images, 2500, 2000, identity, key)
        print(f"corpus: {args.images} x 2000x2500 signed DICOM, built in {time.perf_counter() - t0:.0f} s", flush=True)
        # Warm-up: start the worker pools (kept between scans) and load keys and models in them.
        _rate(main_corpus, settings, root / "warm1.jsonl", workers=1, batch_size=1)
        _rate(main_corpus, settings, root / "warm2.jsonl", workers=2, batch_size=1)
        r1, n = _rate(main_corpus, settings, root / "w1.jsonl", workers=1, batch_size=1)
        r2, _ = _rate(main_corpus, settings, root / "w2.jsonl", workers=2, batch_size=1)
        import dask
        from distributed import LocalCluster

        dask_rates = {}
        configured = ("radproof worker environment (docs/check.md)", WORKER_ENVIRONMENT)
        for label, environ in (("Dask's default worker environment", None), configured):
            overrides = {} if environ is None else {"distributed.nanny.pre-spawn-environ": environ}
            with (
                dask.config.set(overrides),
                LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
            ):
                out = root / f"dask-{len(dask_rates)}.jsonl"
                _rate(
                    main_corpus, settings, root / f"dwarm-{len(dask_rates)}.jsonl", scheduler=cluster.scheduler_address
                )
                rate, _ = _rate(main_corpus, settings, out, scheduler=cluster.scheduler_address, batch_size=1)
                dask_rates[label] = (rate, _cpu_per_image(out))
        c1, c2 = (_cpu_per_image(root / f) for f in ("w1.jsonl", "w2.jsonl"))
        print(f"\nfull check, {n} images of 5 MP ({_load()} after the runs):")
        print(f"  local, 1 worker : {r1:6.2f} images/s   CPU {c1:5.2f} s/image")
        scaling = r2 / (2 * r1)
        print(f"  local, 2 workers: {r2:6.2f} images/s   CPU {c2:5.2f} s/image   scaling {scaling:.2f} (>= 0.80)")
        for label, (rd, cd) in dask_rates.items():
            print(
                f"  Dask LocalCluster, 2 workers, {label}: {rd:6.2f} images/s   CPU {cd:5.2f} s/image   "
                f"vs local 2: {rd / r2:.2f} (>= 0.80)"
            )

        sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
        if sizes:
            print("\nseconds per image vs size (1 worker, 3 images each):")
            for mp in sizes:
                rows = round((mp * 1e6 * 1.25) ** 0.5)
                cols = round(mp * 1e6 / rows)
                folder = root / f"size-{mp}"
                _corpus(folder, 3, rows, cols, identity, key)
                rate, _ = _rate(folder, settings, root / f"size-{mp}.jsonl", workers=1, batch_size=1)
                print(f"  {mp:4.1f} MP ({cols}x{rows}): {1 / rate:6.3f} s/image", flush=True)

        counts = [int(c) for c in args.counts.split(",") if c.strip()]
        if counts:
            print("\nscan machinery overhead (read + hash + schedule + write, no check), 2 workers:")
            small = root / "small"
            small.mkdir()
            base = simulate(rows=64, cols=64, seed=0)
            made = 0
            for count in counts:
                while made < count:
                    base.SOPInstanceUID = generate_uid()
                    base.save_as(small / f"s{made:06d}.dcm", enforce_file_format=True)
                    made += 1
                folder = root / f"count-{count}"
                folder.mkdir()
                for i in range(count):
                    os.link(small / f"s{i:06d}.dcm", folder / f"s{i:06d}.dcm")
                rl, _ = _rate(folder, settings, root / f"c{count}.jsonl", workers=2, processor=DigestOnly())
                with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
                    rdk, _ = _rate(
                        folder, settings, root / f"cd{count}.jsonl", scheduler=c.scheduler_address,
                        processor=DigestOnly(),
                    )  # fmt: skip
                print(
                    f"  {count:6d} files: local {1e3 / rl:6.2f} ms/file ({rl:7.0f} files/s), "
                    f"Dask {1e3 / rdk:6.2f} ms/file ({rdk:7.0f} files/s)",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
