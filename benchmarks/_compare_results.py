"""Are two scans' results the same, apart from timing? ``python benchmarks/_compare_results.py OLD.jsonl NEW.jsonl``

Compares two results files of ``radproof scan`` line by line (same order, same fields in the same
order, same values), ignoring the fields that measure time (``seconds``, ``cpu_seconds``) and, in
signature blocks, the trust time of signatures without a timestamp (the clock at the check).
Prints the first differences and exits 1 when there are any.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

TIMING = ("seconds", "cpu_seconds")


def normalized(line: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(line)
    for key in TIMING:
        record.pop(key, None)
    for s in (record.get("signature") or {}).get("signatures") or ():
        if s.get("trust_time_source") == "now":
            s.pop("trust_time", None)
    return record


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    old, new = ([normalized(x) for x in Path(p).read_text().splitlines() if x.strip()] for p in argv)
    differences = 0
    if len(old) != len(new):
        print(f"{len(old)} records before, {len(new)} after")
        differences += 1
    for n, (a, b) in enumerate(zip(old, new, strict=False), 1):
        if a == b and list(a) == list(b):
            continue
        differences += 1
        if differences <= 10:
            keys = sorted({k for k in set(a) | set(b) if a.get(k) != b.get(k)}) or ["(field order)"]
            print(f"line {n} ({a.get('path')}): {', '.join(keys)}")
    print(f"{len(new)} records compared; {differences} differ (timing fields ignored)")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
