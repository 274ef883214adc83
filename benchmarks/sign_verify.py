"""Sign and verify 100 real-size radiographs: radproof batch verify vs 100 `dcmsign --verify` runs.

Inputs: the shared DX/CR/MG DICOMs (compressed, 0.4-4 MB) cycled, plus 2-10 MB uncompressed phantoms.
Prints signing throughput (MB/s of pixel data, one core) and the verify time ratio dcmsign / radproof,
both measured in this run on this machine.

    .venv/bin/python benchmarks/sign_verify.py [--files 100]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from itertools import cycle, islice
from pathlib import Path

import pydicom

from radproof.imaging.phantom import simulate
from radproof.provenance import Purpose, Role, init_ca, issue_identity, load_identity, sign_file

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RADPROOF_SHARED", REPO.parent / "shared")) / "data" / "xray" / "real" / "dicom-samples"
PHANTOM_SIZES = [(1024, 1024), (1536, 1536), (2048, 2048), (2236, 2236)]  # 2, 4.5, 8, 10 MB of pixels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # pydicom's notes on non-conformant sample headers
    if shutil.which("dcmsign") is None:
        print("dcmsign (DCMTK) is needed as the peer: apt-get install dcmtk", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="radproof-bench-") as tmp:
        root = Path(tmp)
        init_ca(root / "ca", "Bench CA", b"ca")
        issue_identity(root / "id", root / "ca", "Bench Tech", Role.TECHNOLOGIST, b"id", b"ca")
        identity = load_identity(root / "id", b"id")

        sources = sorted(SHARED.glob("*.dcm")) if SHARED.is_dir() else []
        for i, (rows, cols) in enumerate(PHANTOM_SIZES):
            path = root / f"phantom-{rows}x{cols}.dcm"
            simulate(rows=rows, cols=cols, seed=i).save_as(path, enforce_file_format=True)
            sources.append(path)
        inputs = list(islice(cycle(sources), args.files))

        pixel_bytes = sum(_pixel_bytes(p) for p in inputs)
        file_bytes = sum(p.stat().st_size for p in inputs)
        signed: list[Path] = []
        cpu_start = time.process_time()
        start = time.perf_counter()
        for n, src in enumerate(inputs):
            out = root / "signed" / f"{n:03d}.dcm"
            out.parent.mkdir(exist_ok=True)
            signed.append(sign_file(src, out, identity, Purpose.SOURCE))
        sign_s = time.perf_counter() - start
        sign_cpu = time.process_time() - cpu_start

        radproof = shutil.which("radproof", path=str(Path(sys.executable).parent)) or "radproof"
        start = time.perf_counter()
        done = subprocess.run(
            [radproof, "verify", *map(str, signed), "--trust", str(root / "ca" / "ca.pem"), "--json"],
            capture_output=True,
            text=True,
        )
        ours_s = time.perf_counter() - start
        assert done.returncode == 0, done.stderr[-2000:]

        start = time.perf_counter()
        for path in signed:
            peer = subprocess.run(
                ["dcmsign", "--verify", "-q", "+cf", str(root / "ca" / "ca.pem"), str(path)], capture_output=True
            )
            assert peer.returncode == 0, peer.stderr
        peer_s = time.perf_counter() - start

    mb = 1e6
    print(f"files: {len(inputs)} ({file_bytes / mb:.0f} MB on disk, {pixel_bytes / mb:.0f} MB of pixel data)")
    print(f"sign (radproof, in-process, RSA-3072/SHA-256, read+hash+sign+write): {sign_s:.2f} s")
    print(f"  {pixel_bytes / mb / sign_s:.0f} MB/s of pixel data (wall, incl. fsync of every output)")
    print(f"  {pixel_bytes / mb / sign_cpu:.0f} MB/s of pixel data per CPU second ({sign_cpu:.2f} s CPU)")
    print(f"verify, radproof (one process, {len(signed)} files): {ours_s:.2f} s")
    print(f"verify, dcmsign ({len(signed)} runs):               {peer_s:.2f} s")
    print(f"ratio dcmsign / radproof: {peer_s / ours_s:.2f}x (target >= 2x)")
    return 0


def _pixel_bytes(path: Path) -> int:
    ds = pydicom.dcmread(path, force=True)
    return len(ds.PixelData) if "PixelData" in ds else 0


if __name__ == "__main__":
    sys.exit(main())
