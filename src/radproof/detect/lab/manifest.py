"""A labelled manifest of images, and the fixed subsets the evaluation protocol draws from it.

The manifest is a CSV with at least ``path`` (relative to the manifest's folder) and ``label``
(real | synthetic); ``set``, ``generator`` and ``body_part`` are used for per-group tables and for the
leave-one-generator-out / leave-one-set-out protocol.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radproof.errors import InputError


@dataclass(frozen=True)
class Item:
    """One labelled image of a manifest."""

    path: Path
    label: int  # 1 synthetic, 0 real
    set: str
    generator: str
    body_part: str
    fmt: str = ""


def read_manifest(manifest: str | Path) -> list[Item]:
    """Items of a manifest CSV (paths resolved against its folder)."""
    base = Path(manifest).parent
    items: list[Item] = []
    try:
        with open(manifest, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                label = str(row.get("label", "")).strip().lower()
                if label not in ("real", "synthetic"):
                    raise InputError(f"{manifest}: label must be real or synthetic, got {label!r}")
                items.append(
                    Item(
                        path=base / row["path"],
                        label=int(label == "synthetic"),
                        set=row.get("set") or "",
                        generator=row.get("generator") or ("real" if label == "real" else "unknown"),
                        body_part=row.get("body_part") or "",
                        fmt=row.get("format") or "",
                    )
                )
    except FileNotFoundError:
        raise InputError(f"{manifest}: no such file") from None
    except KeyError as exc:
        raise InputError(f"{manifest}: missing column {exc}") from None
    if not items:
        raise InputError(f"{manifest}: no images listed")
    return items


def in_holdout(item: Item, fraction: float = 0.3) -> bool:
    """Whether an image belongs to the evaluation hold-out (a fixed ``fraction`` of every set,
    chosen by a hash of the file name): the network is never trained on it."""
    digest = hashlib.sha256(str(item.path.name).encode()).digest()
    return digest[0] / 256.0 < fraction


def subsample(items: Sequence[Item], per_set: int, seed: int = 0) -> list[Item]:
    """At most ``per_set`` items of each set (deterministic)."""
    rng = np.random.default_rng(seed)
    by: dict[str, list[Item]] = {}
    for i in items:
        by.setdefault(i.set, []).append(i)
    out: list[Item] = []
    for s in sorted(by):
        group = by[s]
        idx = rng.permutation(len(group))[:per_set]
        out += [group[k] for k in sorted(idx)]
    return out
