"""The one-image API under load: a `Checker` over many signed, watermarked 2000 x 2500 DICOMs.

What it measures, all in this run on this machine (each figure the median of ``--runs``):
- building the Checker (trust store, watermark key, detector) once;
- per-image wall and CPU seconds of ``Checker.check_file`` under the signature-only policy
  (signatures verified against the CA; no watermark, no detector) and under the full policy
  (signature + watermark + detector), over ``--files`` files (default 100);
- beside it, the peer for the signature layer: one ``dcmsign --verify`` process per file (DCMTK),
  start-up included, and the ratio;
- start-up: ``radproof --version``, ``radproof verify`` and ``radproof check`` on one small file,
  and the import of ``radproof.pipeline`` alone.

The files are ``--distinct`` phantoms (default 4) marked and signed once, then copied: the
Checker keeps nothing between images, so copies cost what distinct files cost.

    .venv/bin/python benchmarks/checker.py [--files 100] [--full-files 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from radproof.pipeline import Checker

ROWS, COLS = 2500, 2000
PW = b"bench"


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _child(cmd: Sequence[str | Path]) -> float:
    start = time.perf_counter()
    subprocess.run([str(c) for c in cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def _make_files(root: Path, n_files: int, distinct: int) -> tuple[Path, Path, list[Path], Path]:
    from radproof.imaging.phantom import simulate
    from radproof.provenance import Purpose, Role, init_ca, issue_identity, load_identity, sign_file
    from radproof.watermark import embed_file, generate_key, save_key

    init_ca(root / "ca", "Bench CA", PW)
    issue_identity(root / "tech", root / "ca", "Bench Tech", Role.TECHNOLOGIST, PW, PW)
    tech = load_identity(root / "tech", PW)
    key = generate_key()
    save_key(key, root / "site.wmk", PW)
    made = []
    for i in range(distinct):
        raw = root / f"raw{i}.dcm"
        simulate(ROWS, COLS, seed=100 + i).save_as(raw, enforce_file_format=True)
        marked = embed_file(raw, root / f"marked{i}.dcm", key, payload=f"SITE{i:04d}")
        made.append(sign_file(marked.path, root / f"signed{i}.dcm", tech, Purpose.SOURCE))
    files = root / "files"
    files.mkdir()
    out = []
    for n in range(n_files):
        target = files / f"{n:04d}.dcm"
        shutil.copyfile(made[n % distinct], target)
        out.append(target)
    small = root / "small.dcm"
    simulate(256, 256, seed=7).save_as(root / "small-raw.dcm", enforce_file_format=True)
    sign_file(root / "small-raw.dcm", small, tech, Purpose.SOURCE)
    return root / "ca" / "ca.pem", root / "site.wmk", out, small


def _check_all(checker: Checker, paths: list[Path]) -> None:
    for path in paths:
        verdict = checker.check_file(path)
        signature = verdict.evidence.signature
        if signature is None or signature.status != "valid" or not all(s.trusted for s in signature.signatures):
            raise SystemExit(f"a signature did not verify: {path}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100, help="files for the signature-only policy and dcmsign")
    parser.add_argument("--full-files", type=int, default=100, help="files for the full policy")
    parser.add_argument("--distinct", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    from radproof.check import Policy
    from radproof.pipeline import Checker
    from radproof.provenance import TrustStore
    from radproof.watermark import load_key

    radproof = shutil.which("radproof", path=str(Path(sys.executable).parent)) or "radproof"
    dcmsign = shutil.which("dcmsign")
    with tempfile.TemporaryDirectory(prefix="radproof-checker-") as tmp:
        root = Path(tmp)
        print(f"making {args.distinct} signed, watermarked {COLS} x {ROWS} phantoms ...", flush=True)
        ca, key_file, files, small = _make_files(root, max(args.files, args.full_files), args.distinct)
        mb = files[0].stat().st_size / 1e6
        print(f"{len(files)} files of {mb:.1f} MB (16-bit, uncompressed)\n")

        build: list[float] = []
        sig_only: list[tuple[float, float]] = []
        full: list[tuple[float, float]] = []
        peer: list[float] = []
        for run in range(args.runs):
            start = time.perf_counter()
            # Everything a checker loads once: trust anchors and CRL, the watermark key, the detector
            # (the shipped detector is loaded once per process, so only the first run pays for it).
            checker = Checker(trust=TrustStore.from_files(ca), key=load_key(key_file, PW))
            checker.detector()
            build.append(time.perf_counter() - start)
            signature = Checker(trust=checker.trust, policy=Policy(use_watermark=False, use_detector=False))
            w, c = _timed(partial(_check_all, signature, files[: args.files]))
            sig_only.append((w / args.files, c / args.files))
            w, c = _timed(partial(_check_all, checker, files[: args.full_files]))
            full.append((w / args.full_files, c / args.full_files))
            if dcmsign:
                start = time.perf_counter()
                for p in files[: args.files]:
                    cmd = [dcmsign, "--verify", "-q", "+cf", str(ca), str(p)]
                    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
                peer.append((time.perf_counter() - start) / args.files)
            print(
                f"run {run + 1}: build {build[-1]:.2f} s; per image: signature-only {sig_only[-1][0] * 1e3:.1f} ms "
                f"(cpu {sig_only[-1][1] * 1e3:.1f}), full {full[-1][0] * 1e3:.0f} ms (cpu {full[-1][1] * 1e3:.0f})"
                + (f", dcmsign --verify per file {peer[-1] * 1e3:.1f} ms" if peer else ""),
                flush=True,
            )

        def med(values: list[float]) -> float:
            return statistics.median(values)

        print("\nmedian over runs (per image):")
        print(f"  Checker build (trust, key, detector)  {med(build):8.2f} s")
        print(f"  signature-only policy                 {med([w for w, _ in sig_only]) * 1e3:8.1f} ms wall")
        print(f"  full policy (signature+mark+detector) {med([w for w, _ in full]) * 1e3:8.1f} ms wall")
        if peer:
            ratio = med(peer) / med([w for w, _ in sig_only])
            print(f"  dcmsign --verify, one process a file  {med(peer) * 1e3:8.1f} ms wall")
            print(f"  ratio dcmsign / signature-only        {ratio:8.1f}x")

        print("\nstart-up (one small signed file, median of 5):")
        startup = {
            "radproof --version": [radproof, "--version"],
            "radproof verify FILE --trust CA": [radproof, "verify", small, "--trust", ca],
            "radproof check FILE --trust CA (signature and detector)": [radproof, "check", small, "--trust", ca],
            "python -c 'import radproof.pipeline'": [sys.executable, "-c", "import radproof.pipeline"],
        }
        for label, cmd in startup.items():
            times = [_child(cmd) for _ in range(5)]
            print(f"  {label:55s} {statistics.median(times) * 1e3:7.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
