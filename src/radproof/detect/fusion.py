"""Calibrated fusion of the cue atypicality and the learned model into one probability and a verdict.

Both layers are scored the same way: by how far they sit from what REAL radiographs give. The cue
layer's number is the atypicality (how far the cues are from real radiographs, in any direction, see
:mod:`radproof.detect.reference`); the network's is its logit. For each, the training real images
give a median and an upper spread, and a value becomes an upper-tail probability ("a real radiograph
scores this high in p of cases", from a normal tail on that scale). The two probabilities are
combined with Fisher's method into one z-score, and a one-input monotone logistic fit maps it to
``synthetic_probability``, with balanced class weights, so 0.5 means "as likely synthetic as real"
for a balanced mix. Two thresholds fixed at training time split the verdict into real / uncertain /
synthetic.

Why tails, not a logistic regression on both inputs: the development fakes are few and mostly
smooth, and the cues already separate them, so a regression learns that the network adds little and
gives it almost no weight; a generator the cues miss (RoentGen) is then missed although the network
ranks it well. Scoring each layer against real images only weighs them by how unusual they are for a
real radiograph, which does not depend on which fakes were at hand.

The model can accuse, never absolve. The network looks for the traces of decoders it was trained
on; finding none is no evidence that an image is real (a generator it never saw leaves other
traces), and on an image unlike its training data (a blocky up-sampled field, say) it answers far
below anything it saw on real radiographs. So a logit at or below the median real radiograph's adds
nothing: the score is then the cue layer's alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import log_ndtr, ndtri_exp

from radproof.detect.cues import DESCRIPTIONS
from radproof.detect.reference import Reference
from radproof.errors import InputError


class DetectorVerdict(StrEnum):
    """The detector's answer: two thresholds fixed at training time split the probability."""

    REAL = "real"
    UNCERTAIN = "uncertain"
    SYNTHETIC = "synthetic"


#: Percentiles outside [LOW, 100 - LOW] of the real reference are reported as "lower/higher than real".
LOW = 5.0
#: Quantile whose distance from the median is the upper spread of a score on real images (one
#: standard deviation for a normal distribution).
SPREAD_QUANTILE = 0.84
#: Largest share of the training real images that may get the verdict "real": the others are at
#: least "uncertain". An image less typical than 1 in 10 real radiographs is not called real.
REAL_BAND = 0.90

FloatArray = npt.NDArray[np.float64]


def features(atypicality: float, model_logit: float | None) -> FloatArray:
    """The calibration inputs: log atypicality and the model logit (0 when there is no model)."""
    return np.array([np.log(max(atypicality, 1e-3)), 0.0 if model_logit is None else model_logit])


@dataclass(frozen=True)
class RealSpread:
    """Where real radiographs put one score: its median and its upper spread."""

    median: float
    spread: float

    @classmethod
    def of(cls, values: npt.ArrayLike) -> RealSpread:
        v = np.asarray(values, dtype=np.float64)
        median = float(np.median(v))
        return cls(median, max(float(np.quantile(v, SPREAD_QUANTILE)) - median, 1e-6))

    def z(self, value: npt.ArrayLike) -> FloatArray:
        return (np.asarray(value, dtype=np.float64) - self.median) / self.spread

    def to_json(self) -> dict[str, float]:
        return {"median": self.median, "spread": self.spread}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RealSpread:
        return cls(float(data["median"]), float(data["spread"]))


def _log_tails(
    log_atypicality: npt.ArrayLike,
    model_logit: npt.ArrayLike | None,
    cues: RealSpread,
    model: RealSpread | None,
) -> tuple[FloatArray, FloatArray | None]:
    """Log upper-tail probabilities of both scores among real radiographs. The model's is one-sided
    from the real median (p = 1 at or below it), so a low logit never counts as evidence of reality."""
    cue = np.asarray(log_ndtr(-cues.z(log_atypicality)), dtype=np.float64)
    if model is None or model_logit is None:
        return cue, None
    z = np.maximum(model.z(model_logit), 0.0)
    return cue, np.asarray(log_ndtr(-z) + np.log(2.0), dtype=np.float64)


def tail_score(
    log_atypicality: npt.ArrayLike,
    model_logit: npt.ArrayLike | None,
    cues: RealSpread,
    model: RealSpread | None,
) -> FloatArray:
    """How unlike real radiographs an image is, as one z-score.

    Fisher's method combines the two tail probabilities (-2 sum log p follows a chi-squared law
    with 4 degrees of freedom for real images); the combined probability is returned as the normal
    quantile it corresponds to. With the cues alone this is just their z-score. A z-score, not the
    chi-squared statistic, goes into the logistic map: the statistic grows with the square of the
    distance, so generators far from real images would pull the map's midpoint far out.
    """
    cue, net = _log_tails(log_atypicality, model_logit, cues, model)
    if net is None:
        log_p = cue
    else:
        half = -(cue + net)  # half of Fisher's statistic
        log_p = -half + np.log1p(half)  # chi-squared survival function, 4 degrees of freedom
    return np.asarray(-ndtri_exp(np.minimum(log_p, -1e-12)), dtype=np.float64)


def _sigmoid(z: npt.ArrayLike) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -40, 40))), dtype=np.float64)


@dataclass(frozen=True)
class Calibration:
    """The real-image tails of both scores, the logistic map of their combination, and the verdict
    thresholds (probabilities).

    ``legacy_coef`` / ``legacy_floor`` hold the two-input logistic calibration of detector files
    written before the tail combination; such files still load and score as they did.
    """

    slope: float
    intercept: float
    threshold_synthetic: float
    threshold_real: float
    cue_tail: RealSpread | None = None
    model_tail: RealSpread | None = None
    legacy_coef: tuple[float, float] | None = None
    legacy_floor: float | None = None

    @property
    def uses_model(self) -> bool:
        """Whether the model's logit can change a probability (else the network need not run)."""
        if self.legacy_coef is not None:
            return self.legacy_coef[1] > 0
        return self.model_tail is not None and self.slope > 0

    @property
    def logit_floor(self) -> float | None:
        """The model logit at and below which the network adds nothing (None: no model)."""
        if self.legacy_coef is not None:
            return self.legacy_floor
        return None if self.model_tail is None else self.model_tail.median

    def score(self, atypicality: float, model_logit: float | None) -> float:
        """The combined tail z-score of one image (larger: less like a real radiograph)."""
        if self.cue_tail is None:
            raise ValueError("a legacy calibration has no tail score")
        x = features(atypicality, model_logit)
        logit = None if model_logit is None else x[1]
        return float(tail_score(x[0], logit, self.cue_tail, self.model_tail)[()])

    def model_share(self, atypicality: float, model_logit: float | None) -> float:
        """The network's share (0..1) of Fisher's statistic, -2 sum log p; the cues have the rest."""
        if self.legacy_coef is not None or self.model_tail is None or model_logit is None or self.cue_tail is None:
            return 0.0
        x = features(atypicality, model_logit)
        cue, net = _log_tails(x[0], x[1], self.cue_tail, self.model_tail)
        total = float(cue + net) if net is not None else 0.0
        return 0.0 if net is None or total >= 0 else float(net / total)

    def probability(self, atypicality: float, model_logit: float | None) -> float:
        if self.legacy_coef is not None:
            if model_logit is not None and self.legacy_floor is not None:
                model_logit = max(model_logit, self.legacy_floor)
            z = float(np.dot(self.legacy_coef, features(atypicality, model_logit)) + self.intercept)
        else:
            z = self.slope * self.score(atypicality, model_logit) + self.intercept
        return float(_sigmoid(z))

    def verdict(self, probability: float) -> DetectorVerdict:
        if probability >= self.threshold_synthetic:
            return DetectorVerdict.SYNTHETIC
        if probability < self.threshold_real:
            return DetectorVerdict.REAL
        return DetectorVerdict.UNCERTAIN

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.legacy_coef is not None:
            out["coef"] = list(self.legacy_coef)
            if self.legacy_floor is not None:
                out["logit_floor"] = self.legacy_floor
        else:
            assert self.cue_tail is not None
            out["combination"] = "fisher"
            out["slope"] = self.slope
            out["real_log_atypicality"] = self.cue_tail.to_json()
            out["real_model_logit"] = None if self.model_tail is None else self.model_tail.to_json()
        out |= {
            "intercept": self.intercept,
            "threshold_synthetic": self.threshold_synthetic,
            "threshold_real": self.threshold_real,
        }
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calibration:
        intercept = float(data["intercept"])
        t_syn, t_real = float(data["threshold_synthetic"]), float(data["threshold_real"])
        if "coef" in data:  # the two-input logistic calibration of older detector files
            c = data["coef"]
            floor = data.get("logit_floor")
            return cls(
                0.0,
                intercept,
                t_syn,
                t_real,
                legacy_coef=(float(c[0]), float(c[1])),
                legacy_floor=None if floor is None else float(floor),
            )
        if data.get("combination") != "fisher":
            raise ValueError(f"unknown calibration combination {data.get('combination')!r}")
        model = data.get("real_model_logit")
        return cls(
            float(data["slope"]),
            intercept,
            t_syn,
            t_real,
            cue_tail=RealSpread.from_json(data["real_log_atypicality"]),
            model_tail=None if model is None else RealSpread.from_json(model),
        )


def _newton(
    design: FloatArray,
    y: FloatArray,
    weights: FloatArray,
    l2: float,
) -> FloatArray:
    """Weighted logistic regression; every coefficient but the last (the intercept) is kept
    non-negative: a larger score never means more real."""
    beta = np.zeros(design.shape[1])
    penalty = np.r_[np.full(design.shape[1] - 1, l2), 0.0]
    for _ in range(100):
        p = _sigmoid(design @ beta)
        grad = design.T @ (weights * (p - y)) + penalty * beta
        hess = design.T @ (design * (weights * p * (1 - p))[:, None]) + np.diag(penalty)
        step = np.linalg.solve(hess + 1e-9 * np.eye(beta.size), grad)
        beta -= step
        beta[:-1] = np.maximum(beta[:-1], 0.0)
        if float(np.abs(step).max()) < 1e-8:
            break
    return beta


def fit_calibration(
    x: FloatArray,
    y: npt.NDArray[np.int_],
    *,
    use_model: bool,
    target_specificity: float = 0.97,
    l2: float = 1e-2,
    groups: Sequence[str] | None = None,
) -> Calibration:
    """Fit the calibration with balanced class weights and fix the thresholds.

    ``x`` has the two columns of :func:`features`; ``y`` is 1 for synthetic. The real rows give each
    score's median and upper spread; the synthetic rows take part only in the one-input logistic map
    of the combined z-score (its slope and intercept). The synthetic threshold is the probability
    that keeps ``target_specificity`` of the training real images below it (never under 0.5); the
    real threshold is half of it, or lower where needed so that no more than :data:`REAL_BAND` of
    the training real images are called real, leaving an honest "uncertain" band. With ``groups``
    (the source of each row), every real source weighs the same in the fit and in the threshold,
    so one large hospital does not set the rule for all.
    """
    x = np.array(x, dtype=np.float64)
    target: FloatArray = np.asarray(y, dtype=np.float64)
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
    cue_tail = RealSpread.of(x[target == 0, 0])
    model_tail = RealSpread.of(x[target == 0, 1]) if use_model else None
    score = tail_score(x[:, 0], x[:, 1] if use_model else None, cue_tail, model_tail)
    beta = _newton(np.column_stack([score, np.ones(len(x))]), target, weights, l2)
    probs = _sigmoid(score * beta[0] + beta[1])
    order = np.argsort(probs[target == 0])
    cumulative = np.cumsum(real_w[target == 0][order])
    real_probs = probs[target == 0][order]

    def quantile(level: float) -> float:
        return float(real_probs[min(int(np.searchsorted(cumulative, level)), order.size - 1)])

    t_syn = min(max(0.5, quantile(target_specificity)), 0.95)
    return Calibration(
        slope=float(beta[0]),
        intercept=float(beta[1]),
        threshold_synthetic=t_syn,
        threshold_real=min(t_syn / 2.0, quantile(REAL_BAND)),
        cue_tail=cue_tail,
        model_tail=model_tail,
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


def model_evidence(logit: float, reference_logits: Sequence[float], weight: float = 0.0) -> dict[str, Any]:
    """Evidence entry for the learned model, its logit placed among real radiographs' logits;
    ``weight`` is its share of the evidence (the cue entries share the rest)."""
    arr = np.sort(np.asarray(reference_logits, dtype=np.float64))
    pct = 100.0 * float(np.searchsorted(arr, logit)) / max(1, arr.size) if arr.size else 50.0
    direction = "higher than real" if pct > 100.0 - LOW else "consistent with real"
    where = f"at the {_ordinal(round(pct))} percentile of" if 0 < pct < 100 else "outside the range of"
    return {
        "name": "learned_model",
        "value": round(float(logit), 6),
        "reference": f"decoder-fingerprint network logit {logit:.3g}: {where} real radiographs",
        "direction": direction,
        "weight": round(float(weight), 4),
    }
