"""Preparing the network's training file: normalized images as JPEG bytes in one small npz.

The file holds only what the network may see (normalized 256 x 256 images): the real training images
(the 30 % evaluation hold-out left out) and, for monitoring only, the hold-out reals and the
development fakes. Storing the normalized images as JPEG at quality 95 keeps the file small (about
20 kB per image); the training step re-encodes both members of each pair identically.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from radproof.detect.lab.manifest import Item, in_holdout
from radproof.detect.normalize import normalize
from radproof.errors import InputError
from radproof.imaging import load


def _jpeg(pixels: npt.NDArray[np.float32]) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8), mode="L").save(
        buf, format="JPEG", quality=95
    )
    return buf.getvalue()


def _pack(blobs: Sequence[bytes]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    return np.frombuffer(b"".join(blobs), dtype=np.uint8), offsets


def prepare(items: Sequence[Item], output: Path, progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Write the training npz; return counts per group."""
    train: list[bytes] = []
    evals: list[bytes] = []
    groups: list[str] = []
    for k, item in enumerate(items):
        if progress is not None and k % 250 == 0:
            progress(f"  {k}/{len(items)}")
        try:
            norm = normalize(load(item.path))
        except InputError:
            continue
        if norm.problems:
            continue
        blob = _jpeg(norm.pixels)
        if item.label == 0 and not in_holdout(item):
            train.append(blob)
        elif item.label == 0:
            evals.append(blob)
            groups.append("real-holdout")
        else:
            evals.append(blob)
            groups.append(item.generator)
    tb, to = _pack(train)
    eb, eo = _pack(evals)
    np.savez(output, train_blob=tb, train_offsets=to, eval_blob=eb, eval_offsets=eo, eval_groups=np.array(groups))
    counts = {"train": len(train)}
    for g in groups:
        counts[g] = counts.get(g, 0) + 1
    return counts
