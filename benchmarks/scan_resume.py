"""What resuming a finished scan costs now that it hashes every file before skipping it.

A scan of N images is run once, then again with everything done: the second run reads and hashes
each file (content, not size and time, decides) and checks none. Reported: seconds of the resumed
run, per file and per MB, next to the first run's.

    .venv/bin/python -m benchmarks scan_resume      # or: benchmarks/scan_resume.py [--files 200] [--side 1024]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from pydicom.uid import generate_uid

from radproof.config import load_settings
from radproof.imaging.phantom import simulate
from radproof.scan import scan_paths
from radproof.scan.work import DigestOnly


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--side", type=int, default=1024, help="rows and columns of each 16-bit image")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="radproof-resume-bench-") as tmp:
        root = Path(tmp) / "archive"
        root.mkdir()
        base = simulate(rows=args.side, cols=args.side, seed=0)
        for i in range(args.files):
            base.SOPInstanceUID = generate_uid()
            base.save_as(root / f"img{i:05d}.dcm", enforce_file_format=True)
        total_mb = sum(p.stat().st_size for p in root.iterdir()) / 1e6
        out = Path(tmp) / "results.jsonl"
        settings = load_settings()
        t0 = time.perf_counter()
        first = scan_paths([root], settings, out=out, workers=1, processor=DigestOnly())
        t1 = time.perf_counter()
        again = scan_paths([root], settings, out=out, workers=1, processor=DigestOnly())
        t2 = time.perf_counter()
        assert first.checked == args.files and again.resumed == args.files and again.checked == 0
        print(f"{args.files} files of {args.side}x{args.side} x 16 bit ({total_mb:.0f} MB in all, files in page cache)")
        print(f"  first scan (read + hash + inventory, 1 worker): {t1 - t0:6.2f} s")
        print(
            f"  resumed, all done (hash every file, check none): {t2 - t1:6.2f} s = "
            f"{1e3 * (t2 - t1) / args.files:.2f} ms/file, {(t2 - t1) / total_mb * 1e3:.2f} ms/MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
