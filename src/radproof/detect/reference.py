"""Reference distributions of every cue, measured on REAL radiographs only.

A cue value means something only next to what real radiographs show. For each cue the reference
keeps quantiles of its distribution over a set of real images (after the same normalization), so
that a value can be reported as "at the 2nd percentile of real radiographs" and turned into a
two-sided deviation: far below and far above the real range count alike. The joint atypicality of
all cues is a Mahalanobis distance of those deviations, with the correlation measured on the same
real images (no synthetic image is involved in this file).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from radproof.errors import InputError

#: Quantile levels (percent) stored for every cue.
LEVELS: tuple[float, ...] = (
    0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 16.0, 25.0, 50.0, 75.0, 84.0, 90.0, 95.0, 98.0, 99.0, 99.5, 100.0,
)  # fmt: skip
#: Largest absolute deviation counted (keeps one absurd cue from swamping the others).
MAX_DEVIATION = 8.0
#: Shrinkage of the deviation correlation towards the identity.
SHRINKAGE = 0.2
#: Fewest real images a reference is built from.
MIN_IMAGES = 10


@dataclass(frozen=True)
class CueReference:
    """The distribution of one cue on real radiographs, as quantiles at :data:`LEVELS`."""

    name: str
    quantiles: tuple[float, ...]
    between_sets: float = 0.0

    def _q(self, level: float) -> float:
        return float(np.interp(level, LEVELS, self.quantiles))

    @property
    def median(self) -> float:
        return self._q(50.0)

    def percentile(self, value: float) -> float:
        """Percentile (0..100) of ``value`` among the real radiographs (clipped to the stored range)."""
        return float(np.interp(value, self.quantiles, LEVELS, left=0.0, right=100.0))

    def deviation(self, value: float) -> float:
        """Signed robust deviation from the real median, in units of the real spread on that side.

        Scales are the 50-84 and 16-50 percentile distances (one standard deviation for a normal
        distribution), so a skewed reference is handled on each side separately, widened by the
        spread of the cue between sources (hospitals, processing chains) when it was measured: a cue
        that moves from one hospital to the next is trusted less on an unseen one.
        """
        med = self.median
        scale = (self._q(84.0) - med) if value >= med else (med - self._q(16.0))
        spread = self._q(95.0) - self._q(5.0)
        scale = max(float(np.hypot(scale, self.between_sets)), 0.05 * spread, 1e-6)
        return float(np.clip((value - med) / scale, -MAX_DEVIATION, MAX_DEVIATION))

    def describe(self) -> str:
        """A short sentence with the real range, for evidence."""
        return f"real radiographs: median {self.median:.3g}, 5th-95th percentile {self._q(5):.3g} to {self._q(95):.3g}"


@dataclass(frozen=True)
class Reference:
    """Cue references plus the correlation of their deviations on the same real images."""

    cues: Mapping[str, CueReference]
    precision: npt.NDArray[np.float64]
    n_images: int
    description: str

    @property
    def names(self) -> list[str]:
        return list(self.cues)

    def deviations(self, values: Mapping[str, float]) -> npt.NDArray[np.float64]:
        return np.array([self.cues[n].deviation(values[n]) for n in self.names], dtype=np.float64)

    def atypicality(self, values: Mapping[str, float]) -> float:
        """Mahalanobis distance squared of the cue deviations, divided by the number of cues.

        About 1 for a typical real radiograph; larger the further it is from real ones in any direction.
        """
        z = self.deviations(values)
        return float(z @ self.precision @ z) / len(z)

    def contributions(self, values: Mapping[str, float]) -> dict[str, float]:
        """Share (0..1) of each cue in the atypicality (z_i * (P z)_i, negatives floored at 0)."""
        z = self.deviations(values)
        parts = np.maximum(z * (self.precision @ z), 0.0)
        total = float(parts.sum())
        if total <= 0:
            return dict.fromkeys(self.names, 0.0)
        return {n: float(p / total) for n, p in zip(self.names, parts, strict=True)}

    def to_json(self) -> dict[str, Any]:
        return {
            "levels": list(LEVELS),
            "n_images": self.n_images,
            "description": self.description,
            "cues": {n: list(c.quantiles) for n, c in self.cues.items()},
            "between_sets": {n: c.between_sets for n, c in self.cues.items()},
            "precision": self.precision.tolist(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reference:
        if list(data["levels"]) != list(LEVELS):
            raise ValueError("reference quantile levels do not match this version of radproof")
        between = data.get("between_sets", {})
        cues = {
            n: CueReference(n, tuple(float(v) for v in q), float(between.get(n, 0.0))) for n, q in data["cues"].items()
        }
        return cls(
            cues=cues,
            precision=np.asarray(data["precision"], dtype=np.float64),
            n_images=int(data["n_images"]),
            description=str(data["description"]),
        )


def build_reference(
    rows: Sequence[Mapping[str, float]],
    names: Sequence[str],
    description: str,
    groups: Sequence[str] | None = None,
) -> Reference:
    """Reference statistics from cue values measured on real radiographs.

    ``groups`` names the source (set, hospital) of each row; with three or more sources the spread of
    their medians widens each cue's scale (see :meth:`CueReference.deviation`).
    """
    if len(rows) < MIN_IMAGES:
        raise InputError(
            f"a reference needs at least {MIN_IMAGES} usable real images, got {len(rows)}: add real images"
        )
    matrix = np.array([[r[n] for n in names] for r in rows], dtype=np.float64)
    between = dict.fromkeys(names, 0.0)
    if groups is not None and len(set(groups)) >= 3:
        labels = np.asarray(groups)
        medians = np.array([np.median(matrix[labels == g], axis=0) for g in sorted(set(groups))])
        between = {n: float(np.std(medians[:, i], ddof=1)) for i, n in enumerate(names)}
    cues = {
        n: CueReference(n, tuple(float(v) for v in np.percentile(matrix[:, i], LEVELS)), between[n])
        for i, n in enumerate(names)
    }
    z = np.array([[cues[n].deviation(v) for n, v in zip(names, row, strict=True)] for row in matrix])
    corr = np.corrcoef(z, rowvar=False)
    corr = np.nan_to_num(corr, nan=0.0)
    np.fill_diagonal(corr, 1.0)
    shrunk = (1 - SHRINKAGE) * corr + SHRINKAGE * np.eye(len(names))
    return Reference(
        cues=cues,
        precision=np.linalg.inv(shrunk),
        n_images=len(rows),
        description=description,
    )
