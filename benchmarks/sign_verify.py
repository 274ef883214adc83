"""Sign and verify real-size radiographs: radproof batch verify vs one `dcmsign --verify` run per file.

Inputs: the shared DX/CR/MG DICOMs (compressed, 0.4-4 MB) cycled, plus 2-10 MB uncompressed phantoms
(100 files by default). Everything is measured in this run on this machine; each measurement is repeated
``--runs`` times (default 3) and every run is printed, then the median.

Per run:
- sign (library, in-process, RSA-3072/SHA-256, read + hash + sign + write + fsync): wall and CPU seconds,
  MB/s of pixel data; then the same work split into phases (CPU seconds): read, hash of the signed
  stream, RSA, encode, write, and the fsync of each output (wall, measured on its own);
- verify: ``radproof verify FILE... --trust CA.pem --json`` (one command over all files; it forks a
  worker per core) against one ``dcmsign --verify`` process per file (which goes first alternates
  between runs), wall and CPU of the child processes; the ratio dcmsign / radproof (target >= 3x)
  per run, its median and the ratio of the fastest runs; radproof's start-up share
  (``radproof --version``, and ``radproof verify`` on one small file); the library verify loop
  in-process; SHA-256 over the same pixel bytes alone.

Then, once: cost vs image size (1, 4, 16 MB phantoms: sign and verify, per file) and vs number of
files (10 and 100 files, batch verify against dcmsign).

    .venv/bin/python benchmarks/sign_verify.py [--files 100] [--runs 3] [--no-scaling]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import cycle, islice
from pathlib import Path

import numpy as np
import pydicom

from radproof.imaging.phantom import simulate
from radproof.provenance import Identity, Purpose, Role, TrustStore, init_ca, issue_identity, load_identity
from radproof.provenance.codes import MacAlgorithm
from radproof.provenance.signer import dataset_chunks, read_for_signature, sign_dataset, sign_file
from radproof.provenance.verifier import verify_file

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RADPROOF_SHARED", REPO.parent / "shared")) / "data" / "xray" / "real" / "dicom-samples"
PHANTOM_SIZES = [(1024, 1024), (1536, 1536), (2048, 2048), (2236, 2236)]  # 2, 4.5, 8, 10 MB of pixels
SCALING_SIDES = {1: 724, 4: 1448, 16: 2896}  # MB of 16-bit pixels -> rows = cols
MB = 1e6


@dataclass
class Run:
    """One repetition of the main measurement (seconds unless named otherwise)."""

    sign_wall: float
    sign_cpu: float
    phases: dict[str, float]
    fsync_wall: float
    verify_wall: float
    verify_cpu: float
    peer_wall: float
    peer_cpu: float
    version_wall: float
    one_file_wall: float
    inproc_wall: float
    inproc_cpu: float
    sha256_cpu: float

    @property
    def ratio(self) -> float:
        return self.peer_wall / self.verify_wall


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-scaling", action="store_true", help="skip the image-size and file-count tables")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # pydicom's notes on non-conformant sample headers
    if shutil.which("dcmsign") is None:
        print("dcmsign (DCMTK) is needed as the peer: apt-get install dcmtk", file=sys.stderr)
        return 2
    radproof = shutil.which("radproof", path=str(Path(sys.executable).parent)) or "radproof"
    with tempfile.TemporaryDirectory(prefix="radproof-bench-") as tmp:
        root = Path(tmp)
        init_ca(root / "ca", "Bench CA", b"ca")
        issue_identity(root / "id", root / "ca", "Bench Tech", Role.TECHNOLOGIST, b"id", b"ca")
        identity = load_identity(root / "id", b"id")
        ca = root / "ca" / "ca.pem"

        sources = sorted(SHARED.glob("*.dcm")) if SHARED.is_dir() else []
        for i, (rows, cols) in enumerate(PHANTOM_SIZES):
            path = root / f"phantom-{rows}x{cols}.dcm"
            simulate(rows=rows, cols=cols, seed=i).save_as(path, enforce_file_format=True)
            sources.append(path)
        inputs = list(islice(cycle(sources), args.files))
        pixels = [_pixel_bytes(p) for p in inputs]
        pixel_bytes = sum(len(p) for p in pixels)
        file_bytes = sum(p.stat().st_size for p in inputs)

        _header(len(inputs), file_bytes, pixel_bytes)
        runs = [_one_run(n, root, inputs, pixels, identity, ca, radproof) for n in range(args.runs)]
        _report(runs, len(inputs), pixel_bytes)
        if not args.no_scaling:
            _by_size(root, identity, ca, radproof)
            _by_count(root, inputs, identity, ca, radproof)
    return 0


# --- one run -------------------------------------------------------------------------------------------


def _one_run(
    n: int, root: Path, inputs: list[Path], pixels: list[bytes], identity: Identity, ca: Path, radproof: str
) -> Run:
    out = root / f"signed-{n}"
    out.mkdir()
    signed = [out / f"{i:03d}.dcm" for i in range(len(inputs))]
    wall, cpu = _timed(lambda: [sign_file(s, d, identity, Purpose.SOURCE) for s, d in zip(inputs, signed, strict=True)])
    phases, fsync_wall = _sign_phases(root / f"phases-{n}", inputs, identity)

    command = [radproof, "verify", *map(str, signed), "--trust", str(ca), "--json"]
    # Alternate which tool goes first, so that a change of machine load during a run favours neither.
    if n % 2:
        peer_wall, peer_cpu = _child(partial(_dcmsign, ca, signed))
        verify_wall, verify_cpu = _child(partial(_run_ok, command))
    else:
        verify_wall, verify_cpu = _child(partial(_run_ok, command))
        peer_wall, peer_cpu = _child(partial(_dcmsign, ca, signed))

    smallest = min(signed, key=lambda p: p.stat().st_size)
    version_wall = _median(3, _child, partial(_run_ok, [radproof, "--version"]))
    one = [radproof, "verify", str(smallest), "--trust", str(ca), "--json"]
    one_file_wall = _median(3, _child, partial(_run_ok, one))
    store = TrustStore.from_files(ca)
    inproc_wall, inproc_cpu = _timed(partial(_verify_all, signed, store))
    sha256_cpu = _timed(lambda: [hashlib.sha256(p).digest() for p in pixels])[1]
    shutil.rmtree(out)
    run = Run(
        sign_wall=wall,
        sign_cpu=cpu,
        phases=phases,
        fsync_wall=fsync_wall,
        verify_wall=verify_wall,
        verify_cpu=verify_cpu,
        peer_wall=peer_wall,
        peer_cpu=peer_cpu,
        version_wall=version_wall,
        one_file_wall=one_file_wall,
        inproc_wall=inproc_wall,
        inproc_cpu=inproc_cpu,
        sha256_cpu=sha256_cpu,
    )
    print(
        f"run {n + 1}: sign {wall:.2f} s wall / {cpu:.2f} s CPU; verify radproof {verify_wall:.2f} s, "
        f"dcmsign {peer_wall:.2f} s -> ratio {run.ratio:.2f}x  (load {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    return run


def _sign_phases(folder: Path, inputs: list[Path], identity: Identity) -> tuple[dict[str, float], float]:
    """The signing work of sign_file, phase by phase (CPU seconds), and the fsync of each output (wall)."""
    folder.mkdir()
    cpu = {"read": 0.0, "hash+RSA (sign_dataset)": 0.0, "encode": 0.0, "write (no fsync)": 0.0}
    fsync = 0.0
    for i, src in enumerate(inputs):
        t = time.process_time()
        ds = read_for_signature(src, str(src))
        cpu["read"] += time.process_time() - t
        t = time.process_time()
        sign_dataset(ds, identity, Purpose.SOURCE)
        cpu["hash+RSA (sign_dataset)"] += time.process_time() - t
        t = time.process_time()
        data = b"".join(dataset_chunks(ds))
        cpu["encode"] += time.process_time() - t
        target = folder / f"{i:03d}.dcm"
        t = time.process_time()
        with open(folder / f".{i:03d}.tmp", "wb") as fh:
            fh.write(data)
            fh.flush()
            w = time.perf_counter()
            os.fsync(fh.fileno())
            fsync += time.perf_counter() - w
        os.replace(folder / f".{i:03d}.tmp", target)
        cpu["write (no fsync)"] += time.process_time() - t
    # RSA alone, to split it from the hashing inside sign_dataset.
    digest = hashlib.sha256(b"x").digest()
    cpu["  of which RSA-3072"] = _timed(
        lambda: [identity.key.sign_digest(digest, MacAlgorithm.SHA256) for _ in inputs]
    )[1]
    shutil.rmtree(folder)
    return cpu, fsync


# --- reports --------------------------------------------------------------------------------------------


def _header(files: int, file_bytes: int, pixel_bytes: int) -> None:
    block = os.urandom(64 << 20)
    _, sha_cpu = _timed(lambda: hashlib.sha256(block).digest())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"files: {files} ({file_bytes / MB:.0f} MB on disk, {pixel_bytes / MB:.0f} MB of pixel data)")
    print(
        f"machine: {cores} cores usable, load average {os.getloadavg()[0]:.1f}; "
        f"SHA-256 (hashlib/OpenSSL) {64 * 1.048576 / sha_cpu:.0f} MB/s per CPU second"
    )
    print(flush=True)


def _report(runs: list[Run], files: int, pixel_bytes: int) -> None:
    def med(values: Callable[[Run], float]) -> float:
        return statistics.median(values(r) for r in runs)

    def each(values: Callable[[Run], float], fmt: str = "{:.2f}") -> str:
        return " / ".join(fmt.format(values(r)) for r in runs)

    mbs = pixel_bytes / MB
    print(f"\n== sign, {files} files, in-process (runs: {' / '.join(str(i + 1) for i in range(len(runs)))}; median)")
    print(f"wall s                         {each(lambda r: r.sign_wall)}  ({med(lambda r: r.sign_wall):.2f})")
    print(f"CPU s                          {each(lambda r: r.sign_cpu)}  ({med(lambda r: r.sign_cpu):.2f})")
    print(
        f"MB/s of pixel data, wall       {each(lambda r: mbs / r.sign_wall, '{:.0f}')}  "
        f"({med(lambda r: mbs / r.sign_wall):.0f})  (includes the fsync of every output)"
    )
    print(
        f"MB/s of pixel data, per CPU s  {each(lambda r: mbs / r.sign_cpu, '{:.0f}')}  "
        f"({med(lambda r: mbs / r.sign_cpu):.0f})  (target > 300)"
    )
    print(
        f"fsync of the outputs, wall s   {each(lambda r: r.fsync_wall)}  ({med(lambda r: r.fsync_wall):.2f})  "
        f"-> wall without fsync ~{med(lambda r: mbs / max(r.sign_wall - r.fsync_wall, 1e-9)):.0f} MB/s"
    )
    print("phases, CPU s (a second pass doing the same work step by step):")
    for phase in runs[0].phases:
        values = [r.phases[phase] for r in runs]
        print(f"  {phase:<28} {' / '.join(f'{v:.2f}' for v in values)}  ({statistics.median(values):.2f})")
    print(
        f"  SHA-256 of the pixel data alone {each(lambda r: r.sha256_cpu)}  "
        f"= {med(lambda r: r.sha256_cpu / r.sign_cpu) * 100:.0f}% of signing CPU"
    )
    compute = [sum(r.phases[p] for p in ("read", "hash+RSA (sign_dataset)", "encode")) for r in runs]
    share = med(lambda r: r.sha256_cpu) / statistics.median(compute)
    print(
        f"  read + hash + RSA + encode (no write): {' / '.join(f'{mbs / c:.0f}' for c in compute)} MB/s per CPU s "
        f"({mbs / statistics.median(compute):.0f}); SHA-256 is {share * 100:.0f}% of that"
    )

    print(f"\n== verify, {files} files")
    print(f"radproof verify (1 command) s  {each(lambda r: r.verify_wall)}  ({med(lambda r: r.verify_wall):.2f}) wall")
    print(f"                    CPU s      {each(lambda r: r.verify_cpu)}  ({med(lambda r: r.verify_cpu):.2f})")
    print(f"dcmsign --verify ({files} runs) s {each(lambda r: r.peer_wall)}  ({med(lambda r: r.peer_wall):.2f}) wall")
    print(f"                    CPU s      {each(lambda r: r.peer_cpu)}  ({med(lambda r: r.peer_cpu):.2f})")
    print(f"ratio dcmsign / radproof, wall {each(lambda r: r.ratio)}  ({med(lambda r: r.ratio):.2f}x, target >= 3x)")
    best = min(r.peer_wall for r in runs) / min(r.verify_wall for r in runs)
    print(f"ratio of the fastest runs      {best:.2f}x  (least disturbed by other load on the machine)")
    print(
        f"ratio by CPU s                 {each(lambda r: r.peer_cpu / r.verify_cpu)}  "
        f"({med(lambda r: r.peer_cpu / r.verify_cpu):.2f}x)"
    )
    print(
        f"start-up: radproof --version   {each(lambda r: r.version_wall * 1000, '{:.0f}')} ms; "
        f"verify of 1 small file {each(lambda r: r.one_file_wall * 1000, '{:.0f}')} ms "
        f"= {med(lambda r: r.one_file_wall / r.verify_wall) * 100:.0f}% of the batch"
    )
    print(
        f"library verify loop, 1 thread  {each(lambda r: r.inproc_wall)}  ({med(lambda r: r.inproc_wall):.2f}) wall, "
        f"{med(lambda r: r.inproc_cpu):.2f} CPU s; SHA-256 alone {med(lambda r: r.sha256_cpu):.2f} CPU s "
        f"= {med(lambda r: r.sha256_cpu / r.inproc_cpu) * 100:.0f}%"
    )


def _by_size(root: Path, identity: Identity, ca: Path, radproof: str) -> None:
    print("\n== cost vs image size (phantoms, uncompressed; medians of 5 in-process, of 3 for processes)")
    print("  sign and verify: the library in this process, wall ms / CPU ms (MB/s of pixel data per CPU s);")
    print("  sign includes the fsync of the output (wall only). CLI and dcmsign: one process per file, wall ms.")
    print("     MB  sign wall/CPU ms  (MB/s)  verify wall/CPU ms  (MB/s)  radproof verify  dcmsign --verify")
    store = TrustStore.from_files(ca)
    for mb, side in SCALING_SIDES.items():
        src = root / f"size-{mb}.dcm"
        _phantom(side).save_as(src, enforce_file_format=True)
        dst = root / f"size-{mb}.signed.dcm"
        size = len(_pixel_bytes(src)) / MB
        sign_wall, sign_cpu = _medians(5, _timed, partial(sign_file, src, dst, identity, Purpose.SOURCE))
        verify_wall, verify_cpu = _medians(5, _timed, partial(_verify_ok, dst, store))
        cli = _medians(3, _child, partial(_run_ok, [radproof, "verify", str(dst), "--trust", str(ca), "--json"]))[0]
        peer = _medians(3, _child, partial(_dcmsign, ca, [dst]))[0]
        print(
            f"  {size:5.1f}  {sign_wall * 1000:6.1f} /{sign_cpu * 1000:6.1f}  ({size / sign_cpu:5.0f})"
            f"  {verify_wall * 1000:7.1f} /{verify_cpu * 1000:6.1f}  ({size / verify_cpu:5.0f})"
            f"  {cli * 1000:12.0f} ms  {peer * 1000:13.0f} ms"
        )


def _by_count(root: Path, inputs: list[Path], identity: Identity, ca: Path, radproof: str) -> None:
    print("\n== cost vs number of files (the first N main inputs, signed; median of 3)")
    print("  files  radproof verify wall s (CPU s)  dcmsign wall s (CPU s)  ratio  radproof ms/file  dcmsign ms/file")
    folder = root / "signed-count"
    folder.mkdir()
    signed = [sign_file(src, folder / f"{i:03d}.dcm", identity, Purpose.SOURCE) for i, src in enumerate(inputs)]
    for count in sorted({min(10, len(signed)), len(signed)}):
        batch = signed[:count]
        command = [radproof, "verify", *map(str, batch), "--trust", str(ca), "--json"]
        ours, ours_cpu = _medians(3, _child, partial(_run_ok, command))
        peer, peer_cpu = _medians(3, _child, partial(_dcmsign, ca, batch))
        print(
            f"  {count:5d}  {ours:22.2f} ({ours_cpu:4.2f})  {peer:14.2f} ({peer_cpu:4.2f})  {peer / ours:4.2f}x"
            f"  {ours / count * 1000:16.1f}  {peer / count * 1000:15.1f}"
        )


# --- helpers --------------------------------------------------------------------------------------------


def _timed(work: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU of this process) seconds."""
    cpu = time.process_time()
    start = time.perf_counter()
    work()
    return time.perf_counter() - start, time.process_time() - cpu


def _child(work: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU of the child processes it ran) seconds."""
    before = os.times()
    start = time.perf_counter()
    work()
    wall = time.perf_counter() - start
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def _median(
    times: int, measure: Callable[[Callable[[], object]], tuple[float, float]], work: Callable[[], object]
) -> float:
    """Median wall seconds of ``times`` measurements."""
    return _medians(times, measure, work)[0]


def _medians(
    times: int, measure: Callable[[Callable[[], object]], tuple[float, float]], work: Callable[[], object]
) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``times`` measurements."""
    results = [measure(work) for _ in range(times)]
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


def _run_ok(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, (command[:3], done.stderr[-2000:])


def _verify_ok(path: Path, store: TrustStore) -> None:
    result = verify_file(path, store)
    assert result.passed, result


def _verify_all(paths: list[Path], store: TrustStore) -> None:
    for path in paths:
        _verify_ok(path, store)


def _dcmsign(ca: Path, paths: list[Path]) -> None:
    for path in paths:
        _run_ok(["dcmsign", "--verify", "-q", "+cf", str(ca), str(path)])


def _pixel_bytes(path: Path) -> bytes:
    ds = pydicom.dcmread(path, force=True)
    return bytes(ds.PixelData) if "PixelData" in ds else b""


def _phantom(side: int) -> pydicom.FileDataset:
    """A side x side phantom; big ones are a smaller simulation enlarged 2x (simulating 16 MB takes seconds)."""
    if side <= 1536:
        return simulate(rows=side, cols=side, seed=side)
    ds = simulate(rows=side // 2, cols=side // 2, seed=side)
    pixels = np.frombuffer(ds.PixelData, dtype="<u2").reshape(side // 2, side // 2)
    big = np.ascontiguousarray(pixels.repeat(2, axis=0).repeat(2, axis=1))
    ds.Rows, ds.Columns = big.shape
    ds.PixelData = big.tobytes()
    return ds


if __name__ == "__main__":
    sys.exit(main())
