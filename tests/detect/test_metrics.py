"""The evaluation metrics against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from radproof.detect.lab.metrics import auc, bootstrap_auc, expected_calibration_error, metrics, tpr_at_fpr


def test_auc_counts_pairs_and_ties() -> None:
    y = np.array([0, 0, 1, 1])
    assert auc(y, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert auc(y, np.array([0.4, 0.3, 0.2, 0.1])) == 0.0
    assert auc(y, np.array([0.1, 0.3, 0.3, 0.4])) == pytest.approx(0.875)  # one tie of four pairs
    assert np.isnan(auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_tpr_at_fpr_uses_the_real_quantile() -> None:
    y = np.array([0] * 100 + [1] * 4)
    s = np.r_[np.arange(100) / 100.0, [0.5, 0.96, 0.985, 2.0]]
    assert tpr_at_fpr(y, s, 0.05) == pytest.approx(0.75)  # threshold 0.95: 0.96, 0.985 and 2.0 pass
    assert tpr_at_fpr(y, s, 0.01) == pytest.approx(0.25)  # threshold 0.99: only 2.0


def test_ece_of_perfect_and_overconfident_predictions() -> None:
    y = np.array([0, 1] * 50)
    assert expected_calibration_error(y, y.astype(float)) == 0.0
    assert expected_calibration_error(y, np.full(100, 0.95)) == pytest.approx(0.45)


def test_metrics_and_bootstrap_interval() -> None:
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(200, int), np.ones(200, int)]
    p = np.clip(np.r_[rng.normal(0.3, 0.15, 200), rng.normal(0.7, 0.15, 200)], 0, 1)
    m = metrics(y, p, 0.5)
    assert 0.9 < m["auc"] < 1.0
    assert m["auc_ci_low"] < m["auc"] < m["auc_ci_high"]
    assert m["balanced_accuracy"] == pytest.approx((m["sensitivity"] + m["specificity"]) / 2)
    lo, hi = bootstrap_auc(y, p, n=200, seed=1)
    assert hi - lo < 0.05


def test_metrics_count_the_uncertain_band_apart() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.05, 0.1, 0.3, 0.7, 0.05, 0.3, 0.6, 0.9])
    m = metrics(y, p, 0.5, ci=False, real_threshold=0.2)
    assert m["real_uncertain"] == pytest.approx(0.25)  # 0.3: between the thresholds
    assert m["synthetic_called_real"] == pytest.approx(0.25)  # 0.05: a fake confidently called real
    assert "real_uncertain" not in metrics(y, p, 0.5, ci=False)
