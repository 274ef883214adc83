"""Calibrated fusion of the cue atypicality and the learned model into one probability and a verdict.

The cue layer gives one number, the atypicality (how far the cues sit from real radiographs, in any
direction, see :mod:`radproof.detect.reference`); the learned model gives a logit. A two-input
logistic calibration (monotone: a larger atypicality or logit can only raise the probability) maps
them to ``synthetic_probability``, fitted with balanced class weights, so 0.5 means "as likely
synthetic as real" for a balanced mix. Two thresholds fixed at training time split the verdict into
real / uncertain / synthetic.

The model can accuse, never absolve. The network looks for the traces of decoders it was trained
on; finding none is no evidence that an image is real (a generator it never saw leaves other
traces), and on an image unlike its training data (a blocky up-sampled field, say) it answers far
below anything it saw on real radiographs. So the cue part of the calibration is fitted on the cues
alone, and the network only adds, in proportion to how far its logit exceeds the median real
radiograph's (the floor): at or below the floor the probability is the cue layer's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from radproof.detect.cues import DESCRIPTIONS
from radproof.detect.reference import Reference
from radproof.errors import InputError

#: Percentiles outside [LOW, 100 - LOW] of the real reference are reported as "lower/higher than real".
LOW = 5.0
#: Quantile of the real training images' model logits below which a logit counts no further (the median).
LOGIT_FLOOR_QUANTILE = 0.5


def features(atypicality: float, model_logit: float | None) -> npt.NDArray[np.float64]:
    """The calibration inputs: log atypicality and the model logit (0 when there is no model)."""
    return np.array([np.log(max(atypicality, 1e-3)), 0.0 if model_logit is None else model_logit])


@dataclass(frozen=True)
class Calibration:
    """Logistic calibration and the verdict thresholds (probabilities)."""

    coef: tuple[float, float]
    intercept: float
    threshold_synthetic: float
    threshold_real: float
    #: Model logits below this count as this (None: no floor, as in detector files before it existed).
    logit_floor: float | None = None

    def probability(self, atypicality: float, model_logit: float | None) -> float:
        if model_logit is not None and self.logit_floor is not None:
            model_logit = max(model_logit, self.logit_floor)
        x = features(atypicality, model_logit)
        z = float(np.dot(self.coef, x) + self.intercept)
        return float(1.0 / (1.0 + np.exp(-np.clip(z, -40, 40))))

    def verdict(self, probability: float) -> str:
        if probability >= self.threshold_synthetic:
            return "synthetic"
        if probability < self.threshold_real:
            return "real"
        return "uncertain"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "coef": list(self.coef),
            "intercept": self.intercept,
            "threshold_synthetic": self.threshold_synthetic,
            "threshold_real": self.threshold_real,
        }
        if self.logit_floor is not None:
            out["logit_floor"] = self.logit_floor
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calibration:
        c = data["coef"]
        return cls(
            coef=(float(c[0]), float(c[1])),
            intercept=float(data["intercept"]),
            threshold_synthetic=float(data["threshold_synthetic"]),
            threshold_real=float(data["threshold_real"]),
            logit_floor=None if data.get("logit_floor") is None else float(data["logit_floor"]),
        )


def _newton(
    design: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64],
    free: npt.NDArray[np.bool_],
    start: npt.NDArray[np.float64],
    l2: float,
) -> npt.NDArray[np.float64]:
    """Weighted logistic regression over the ``free`` coefficients (the others stay at ``start``).

    Every coefficient but the last (the intercept) is kept non-negative: more atypical, or a larger
    model logit, never means more real.
    """
    beta = start.copy()
    penalty = np.r_[np.full(design.shape[1] - 1, l2), 0.0][free]
    idx = np.flatnonzero(free)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -40, 40)))
        sub = design[:, idx]
        grad = sub.T @ (weights * (p - y)) + penalty * beta[idx]
        hess = sub.T @ (sub * (weights * p * (1 - p))[:, None]) + np.diag(penalty) + 1e-9 * np.eye(idx.size)
        step = np.linalg.solve(hess, grad)
        beta[idx] -= step
        beta[:-1] = np.maximum(beta[:-1], 0.0)
        if float(np.abs(step).max()) < 1e-8:
            break
    return beta


def fit_calibration(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.int_],
    *,
    use_model: bool,
    target_specificity: float = 0.97,
    l2: float = 1e-2,
    groups: Sequence[str] | None = None,
) -> Calibration:
    """Fit the monotone logistic calibration with balanced class weights and fix the thresholds.

    ``x`` has the two columns of :func:`features`; ``y`` is 1 for synthetic. The cue part (weight
    and intercept) is fitted first, on the cues alone; the model's weight is then fitted on top of
    it, on the logit's excess over the floor (the median real logit). So an image whose logit is at
    or below a typical real radiograph's gets exactly the cue layer's probability: the network can
    accuse, never absolve. The synthetic threshold is the probability that keeps
    ``target_specificity`` of the training real images below it (never under 0.5); the real
    threshold is half of it, leaving an honest "uncertain" band. With ``groups`` (the source of each
    row), every real source weighs the same in the fit and in the threshold, so one large hospital
    does not set the rule for all.
    """
    x = np.array(x, dtype=np.float64)
    target: npt.NDArray[np.float64] = np.asarray(y, dtype=np.float64)
    n_pos, n_neg = float(target.sum()), float(len(target) - target.sum())
    if n_pos == 0 or n_neg == 0:
        raise InputError("calibration needs both real and synthetic examples in the manifest")
    real_w = np.where(target == 0, 1.0, 0.0)
    if groups is not None:
        labels = np.asarray(groups)
        for g in set(labels[target == 0].tolist()):
            sel = (labels == g) & (target == 0)
            real_w[sel] = 1.0 / sel.sum()
    real_w /= real_w.sum()
    weights = np.where(target == 1, 0.5 / n_pos, 0.5 * real_w)
    floor: float | None = None
    excess = np.zeros(len(x))
    if use_model:
        floor = float(np.quantile(x[target == 0, 1], LOGIT_FLOOR_QUANTILE))
        excess = np.maximum(x[:, 1], floor) - floor
    design = np.column_stack([x[:, 0], excess, np.ones(len(x))])
    beta = _newton(design, target, weights, np.array([True, False, True]), np.zeros(3), l2)
    if use_model:
        beta = _newton(design, target, weights, np.array([False, True, False]), beta, l2)
    probs = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -40, 40)))
    order = np.argsort(probs[target == 0])
    cumulative = np.cumsum(real_w[target == 0][order])
    at = min(int(np.searchsorted(cumulative, target_specificity)), order.size - 1)
    t_syn = max(0.5, float(probs[target == 0][order][at]))
    t_syn = min(t_syn, 0.95)
    # Stored against the floored logit itself: z = a log(atyp) + w max(logit, floor) + (b - w floor).
    model_weight = float(beta[1])
    return Calibration(
        coef=(float(beta[0]), model_weight),
        intercept=float(beta[2]) - (model_weight * floor if floor is not None else 0.0),
        threshold_synthetic=t_syn,
        threshold_real=t_syn / 2.0,
        logit_floor=floor,
    )


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def evidence_items(values: Mapping[str, float], reference: Reference) -> list[dict[str, Any]]:
    """One evidence entry per cue, most important first (the contract's five fields)."""
    shares = reference.contributions(values)
    items: list[dict[str, Any]] = []
    for name in reference.names:
        ref = reference.cues[name]
        value = values[name]
        pct = ref.percentile(value)
        if pct < LOW:
            direction = "lower than real"
        elif pct > 100.0 - LOW:
            direction = "higher than real"
        else:
            direction = "consistent with real"
        where = (
            "below every"
            if pct <= 0.0
            else "above every"
            if pct >= 100.0
            else f"at the {_ordinal(round(pct))} percentile of"
        )
        if pct in (0.0, 100.0):
            where += f" one of the {reference.n_images}"
        sentence = f"{DESCRIPTIONS.get(name, name)} {value:.3g}: {where} real radiographs ({ref.describe()})"
        items.append(
            {
                "name": name,
                "value": round(float(value), 6),
                "reference": sentence,
                "direction": direction,
                "weight": round(shares[name], 4),
            }
        )
    items.sort(key=lambda e: -float(e["weight"]))
    return items


def model_evidence(logit: float, reference_logits: Sequence[float]) -> dict[str, Any]:
    """Evidence entry for the learned model, its logit placed among real radiographs' logits."""
    arr = np.sort(np.asarray(reference_logits, dtype=np.float64))
    pct = 100.0 * float(np.searchsorted(arr, logit)) / max(1, arr.size) if arr.size else 50.0
    direction = "higher than real" if pct > 100.0 - LOW else "consistent with real"
    where = f"at the {_ordinal(round(pct))} percentile of" if 0 < pct < 100 else "outside the range of"
    return {
        "name": "learned_model",
        "value": round(float(logit), 6),
        "reference": f"decoder-fingerprint network logit {logit:.3g}: {where} real radiographs",
        "direction": direction,
        "weight": 0.0,
    }
