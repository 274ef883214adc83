"""Per-file functions and fixtures data for the scan tests (module level, so worker processes can import them)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from radproof.errors import InputError
from radproof.scan.discover import ScanItem


class SizeProcessor:
    """Records the byte count and the worker's process id; refuses files that start with b'BAD'."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def __call__(self, data: bytes, item: ScanItem) -> tuple[dict[str, Any], dict[str, bytes]]:
        if self.delay:
            time.sleep(self.delay)
        if data.startswith(b"CRASH"):
            os._exit(3)  # a worker dying as in a segfault in a decoder
        if data.startswith(b"BAD"):
            raise InputError(f"{item.locator}: refused by the test processor")
        return {"verdict": "unverified", "passed": True, "size_seen": len(data), "pid": os.getpid()}, {}


def make_tree(root: Path) -> dict[str, Path]:
    """A small archive: DICOMs in nested folders (one without extension), a PNG, a text file."""
    import numpy as np
    from PIL import Image

    from radproof.imaging.phantom import simulate

    (root / "a" / "b").mkdir(parents=True)
    (root / "c").mkdir()
    files = {}
    for i, rel in enumerate(["a/one.dcm", "a/b/two.dcm", "c/IM0001"]):
        ds = simulate(rows=96, cols=80, seed=i)
        ds.save_as(root / rel, enforce_file_format=True)
        files[rel] = root / rel
    Image.fromarray((np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)).save(root / "c" / "export.png")
    files["c/export.png"] = root / "c" / "export.png"
    (root / "README.txt").write_text("not an image\n")
    (root / "c" / "notes").write_bytes(b"plain bytes, no image magic here at all" * 4)
    return files
