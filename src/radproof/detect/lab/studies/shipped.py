"""What the detector benchmarks share: the leave-one-generator-out folds refitted from the rows
shipped with the detector (``detector-rows.npz``: cue values and logits, no images needed)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from radproof.detect.lab.studies import shared_dir

if TYPE_CHECKING:
    from radproof.detect.lab.evaluate import Fitted
    from radproof.detect.lab.features import FeatureTable
    from radproof.detect.lab.manifest import Item


MANIFEST = shared_dir() / "data" / "xray" / "manifest.csv"


def development_items() -> list[Item] | None:
    """The development manifest's items, or None (with the reason on stderr) where it is absent."""
    from radproof.detect.lab.manifest import read_manifest

    if not MANIFEST.is_file():
        print(f"no development manifest at {MANIFEST}; nothing to measure", file=sys.stderr)
        return None
    return read_manifest(MANIFEST)


def shipped_logo_folds(items: Sequence[Item]) -> dict[str, Fitted]:
    """Every leave-one-generator-out fold, at both working sizes, from the shipped rows of ``items``
    (the development manifest the detector was built from)."""
    from radproof.detect.detector import detector_folder
    from radproof.detect.lab.adapt import ROWS_FILE, load_rows, row_key
    from radproof.detect.lab.evaluate import leave_one_generator_out_fits
    from radproof.detect.normalize import SMALL_WORK_SIZE, WORK_SIZE

    # The stored rows name images by an opaque key of the file name, not by path.
    by_key = {row_key(i.path.name): i for i in items}
    stored = load_rows(detector_folder() / ROWS_FILE)

    def relabelled(size: int) -> list[FeatureTable]:
        rows = stored[size]
        return [replace(t, items=[by_key[str(i.path)] for i in t.items]) for t in (rows.table, rows.processed)]

    return leave_one_generator_out_fits(*relabelled(WORK_SIZE), *relabelled(SMALL_WORK_SIZE))
