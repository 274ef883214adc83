"""Detection metrics: AUC with a bootstrap interval, TPR at a fixed false-positive rate, expected
calibration error, and the verdict shares at thresholds fixed beforehand."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def auc(y: npt.NDArray[np.int_], s: FloatArray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    pos, neg = s[y == 1], s[y == 0]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def bootstrap_auc(y: npt.NDArray[np.int_], s: FloatArray, n: int = 500, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the AUC (resampling each class separately)."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if pos.size == 0 or neg.size == 0:
        return (float("nan"), float("nan"))
    values = []
    for _ in range(n):
        idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        values.append(auc(y[idx], s[idx]))
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def tpr_at_fpr(y: npt.NDArray[np.int_], s: FloatArray, fpr: float) -> float:
    neg, pos = s[y == 0], s[y == 1]
    if neg.size == 0 or pos.size == 0:
        return float("nan")
    threshold = float(np.quantile(neg, 1.0 - fpr, method="higher"))
    return float(np.mean(pos > threshold))


def expected_calibration_error(y: npt.NDArray[np.int_], p: FloatArray, bins: int = 10) -> float:
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += float(sel.mean()) * abs(float(p[sel].mean()) - float(y[sel].mean()))
    return total


def metrics(
    y: npt.NDArray[np.int_],
    p: FloatArray,
    threshold: float | FloatArray,
    *,
    ci: bool = True,
    real_threshold: float | FloatArray | None = None,
) -> dict[str, float]:
    """AUC (+ bootstrap CI), balanced accuracy / sensitivity / specificity at ``threshold`` (one, or
    one per row), TPR@FPR, ECE. With ``real_threshold`` (below it the verdict is "real"), also the
    share of real images answered "uncertain" and of synthetic ones confidently called "real"."""
    pred = p >= threshold
    out: dict[str, float] = {"n_real": int((y == 0).sum()), "n_synthetic": int((y == 1).sum())}
    if real_threshold is not None:
        called_real = p < real_threshold
        out["real_uncertain"] = float((~called_real & ~pred)[y == 0].mean()) if (y == 0).any() else float("nan")
        out["synthetic_called_real"] = float(called_real[y == 1].mean()) if (y == 1).any() else float("nan")
    sens = float(pred[y == 1].mean()) if (y == 1).any() else float("nan")
    spec = float((~pred[y == 0]).mean()) if (y == 0).any() else float("nan")
    out.update(
        auc=auc(y, p),
        sensitivity=sens,
        specificity=spec,
        balanced_accuracy=(sens + spec) / 2.0,
        tpr_at_1pct_fpr=tpr_at_fpr(y, p, 0.01),
        tpr_at_5pct_fpr=tpr_at_fpr(y, p, 0.05),
        ece=expected_calibration_error(y, p),
    )
    if ci:
        out["auc_ci_low"], out["auc_ci_high"] = bootstrap_auc(y, p)
    return out
