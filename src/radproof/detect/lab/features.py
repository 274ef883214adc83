"""Cue values and network logits of many images: the rows every fit and every metric works on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from radproof.detect import cues as cue_functions
from radproof.detect.lab.manifest import Item
from radproof.detect.lab.perturbations import PERTURBATIONS, PROCESSINGS
from radproof.detect.model import OnnxModel
from radproof.detect.normalize import WORK_SIZE, normalize, work_size_for
from radproof.errors import InputError
from radproof.imaging import load

FloatArray = npt.NDArray[np.float64]


@dataclass
class FeatureTable:
    """Cue values (and model logits) of a list of items under one perturbation."""

    items: list[Item]
    names: list[str]
    values: FloatArray  # (n, len(names))
    logits: FloatArray | None = None
    failed: list[tuple[Item, str]] = field(default_factory=list)
    sizes: npt.NDArray[np.int_] | None = None  # working size of each row; None: all at WORK_SIZE
    short_sides: npt.NDArray[np.int_] | None = None  # input short side of each row; None: unknown

    def work_sizes(self) -> npt.NDArray[np.int_]:
        """The working size (normalized square side) of every row."""
        if self.sizes is None:
            return np.full(len(self.items), WORK_SIZE, dtype=np.int_)
        return self.sizes

    def reference_only(self) -> npt.NDArray[np.bool_]:
        """Rows measured at a larger working size than the detector judges their image at (inputs
        between :data:`~radproof.detect.normalize.REFERENCE_SIDE` and ``SMALL_SIDE`` brought up to the
        main size): they shape the reference and calibration, and are never tested there."""
        return np.asarray(self.work_sizes() > self._judged_at(), dtype=bool)

    def routed(self) -> npt.NDArray[np.bool_]:
        """Rows measured at the working size the detector judges their image at."""
        return np.asarray(self.work_sizes() == self._judged_at(), dtype=bool)

    def _judged_at(self) -> npt.NDArray[np.int_]:
        """The working size the detector judges each row's image at (its own size where the short
        side is unknown)."""
        if self.short_sides is None:
            return self.work_sizes()
        return np.array([work_size_for(int(s)) for s in self.short_sides], dtype=np.int_)

    def rows(self, mask: npt.NDArray[np.bool_] | None = None) -> list[dict[str, float]]:
        sel = self.values if mask is None else self.values[mask]
        return [dict(zip(self.names, map(float, r), strict=True)) for r in sel]

    @property
    def labels(self) -> npt.NDArray[np.int_]:
        return np.array([i.label for i in self.items], dtype=np.int_)


def measure_items(
    items: Sequence[Item],
    perturbation: str | None = None,
    model: OnnxModel | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    work_size: int | None = None,
) -> FeatureTable:
    """Load, perturb, normalize and measure every item (unreadable or degenerate ones are listed apart).

    ``work_size`` forces the working size (:data:`~radproof.detect.normalize.SMALL_WORK_SIZE`
    measures every image as a thumbnail); by default each image gets the one the detector picks.
    """
    return measure_items_at(items, (work_size,), perturbation, model, progress)[0]


@dataclass
class _Rows:
    """What one working size has collected so far in :func:`measure_items_at`."""

    items: list[Item] = field(default_factory=list)
    values: list[list[float]] = field(default_factory=list)
    logits: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    shorts: list[int] = field(default_factory=list)
    failed: list[tuple[Item, str]] = field(default_factory=list)

    def table(self, names: list[str], with_logits: bool) -> FeatureTable:
        return FeatureTable(
            items=self.items,
            names=names,
            values=np.array(self.values, dtype=np.float64).reshape(len(self.items), len(names)),
            logits=np.array(self.logits, dtype=np.float64) if with_logits else None,
            failed=self.failed,
            sizes=np.array(self.sizes, dtype=np.int_),
            short_sides=np.array(self.shorts, dtype=np.int_),
        )


def measure_items_at(
    items: Sequence[Item],
    work_sizes: Sequence[int | None],
    perturbation: str | None = None,
    model: OnnxModel | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    reference: bool = False,
) -> list[FeatureTable]:
    """:func:`measure_items` at several working sizes, loading and perturbing each image once.

    A size of None means the one the detector picks for each image; with ``reference``, the one
    each image contributes to when the reference is built
    (:func:`~radproof.detect.normalize.work_size_for`).
    """
    names = list(cue_functions.CUES)
    perturb = {**PERTURBATIONS, **PROCESSINGS}[perturbation] if perturbation else None
    collected = [_Rows() for _ in work_sizes]
    for k, item in enumerate(items):
        if progress is not None:
            progress(k, len(items))
        try:
            image = load(item.path)
            if perturb is not None:
                image = perturb(image)
        except InputError as exc:
            for rows in collected:
                rows.failed.append((item, str(exc)))
            continue
        short = min(image.shape)
        for size, rows in zip(work_sizes, collected, strict=True):
            if size is None and reference:
                size = work_size_for(short, reference=True)
            try:
                norm = normalize(image, size)
            except InputError as exc:
                rows.failed.append((item, str(exc)))
                continue
            if norm.problems:
                rows.failed.append((item, "; ".join(norm.problems)))
                continue
            v = cue_functions.measure(norm.pixels)
            rows.items.append(item)
            rows.sizes.append(norm.work_size)
            rows.shorts.append(short)
            rows.values.append([v[n] for n in names])
            if model is not None:
                rows.logits.append(model.logit(norm.pixels)[0])
    return [rows.table(names, model is not None) for rows in collected]


def concat_tables(tables: Sequence[FeatureTable]) -> FeatureTable:
    """The rows of several tables measured with the same cues (and model) as one table."""
    logits = [t.logits for t in tables]
    return FeatureTable(
        items=[i for t in tables for i in t.items],
        names=list(tables[0].names),
        values=np.concatenate([t.values for t in tables]),
        logits=None if any(v is None for v in logits) else np.concatenate([v for v in logits if v is not None]),
        failed=[f for t in tables for f in t.failed],
        sizes=np.concatenate([t.work_sizes() for t in tables]),
        short_sides=None
        if any(t.short_sides is None for t in tables)
        else np.concatenate([t.short_sides for t in tables if t.short_sides is not None]),
    )


def measure_processed(
    items: Sequence[Item],
    model: OnnxModel | None = None,
    *,
    every: int = 2,
    progress: Callable[[int, int], None] | None = None,
    work_sizes: Sequence[int | None] = (None,),
    reference: bool = False,
) -> list[FeatureTable]:
    """Cue values of every ``every``-th real item after each hospital-style processing of
    :data:`PROCESSINGS`: one table per working size of ``work_sizes`` (None and ``reference`` as
    in :func:`measure_items_at`)."""
    reals = [i for i in items if i.label == 0][::every]
    per_size: list[list[FeatureTable]] = [[] for _ in work_sizes]
    for k, name in enumerate(PROCESSINGS):
        step = None if progress is None else (lambda j, n, k=k: progress(k * n + j, n * len(PROCESSINGS)))
        for tables, table in zip(
            per_size, measure_items_at(reals, work_sizes, name, model, step, reference=reference), strict=True
        ):
            tables.append(table)
    return [concat_tables(tables) for tables in per_size]


def save_table(table: FeatureTable, path: Path) -> None:
    np.savez_compressed(
        path,
        values=table.values,
        logits=table.logits if table.logits is not None else np.zeros(0),
        paths=np.array([str(i.path) for i in table.items]),
        names=np.array(table.names),
        sizes=table.work_sizes(),
        short_sides=table.short_sides if table.short_sides is not None else np.zeros(0, dtype=np.int_),
    )


def load_table(path: Path, items: Sequence[Item]) -> FeatureTable:
    data = np.load(path, allow_pickle=False)
    by_path = {str(i.path): i for i in items}
    kept = [by_path[p] for p in data["paths"].tolist()]
    logits = data["logits"] if data["logits"].size else None
    sizes = data.get("sizes")
    shorts = data.get("short_sides")
    shorts = shorts if shorts is not None and shorts.size else None
    return FeatureTable(kept, data["names"].tolist(), data["values"], logits, sizes=sizes, short_sides=shorts)


def restrict(table: FeatureTable, mask: npt.NDArray[np.bool_]) -> FeatureTable:
    return replace(
        table,
        items=[i for i, m in zip(table.items, mask, strict=True) if m],
        values=table.values[mask],
        logits=None if table.logits is None else table.logits[mask],
        sizes=table.work_sizes()[mask],
        short_sides=None if table.short_sides is None else table.short_sides[mask],
    )
