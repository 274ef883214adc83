"""Reference percentiles are two-sided; calibration is monotone; evidence reads like a sentence."""

from __future__ import annotations

import json

import numpy as np

from radproof.detect.fusion import Calibration, evidence_items, fit_calibration
from radproof.detect.reference import Reference, build_reference


def _reference() -> Reference:
    rng = np.random.default_rng(0)
    rows = [{"a": float(rng.normal(10, 2)), "b": float(rng.normal(0, 1))} for _ in range(400)]
    return build_reference(rows, ["a", "b"], "test reals")


def test_percentiles_and_deviations_are_two_sided() -> None:
    ref = _reference()
    a = ref.cues["a"]
    assert 40 < a.percentile(10.0) < 60
    assert a.percentile(4.0) < 2 and a.percentile(16.0) > 98
    assert a.deviation(4.0) < -2 and a.deviation(16.0) > 2
    typical = ref.atypicality({"a": 10.0, "b": 0.0})
    assert ref.atypicality({"a": 3.0, "b": 0.0}) > 5 * typical
    assert ref.atypicality({"a": 17.0, "b": 0.0}) > 5 * typical


def test_reference_survives_json() -> None:
    ref = _reference()
    back = Reference.from_json(json.loads(json.dumps(ref.to_json())))
    values = {"a": 13.0, "b": -1.5}
    assert abs(back.atypicality(values) - ref.atypicality(values)) < 1e-9


def test_calibration_is_monotone_and_thresholds_ordered() -> None:
    rng = np.random.default_rng(1)
    x = np.column_stack([np.r_[rng.normal(0, 1, 300), rng.normal(2, 1, 300)], np.zeros(600)])
    y = np.r_[np.zeros(300), np.ones(300)].astype(int)
    cal = fit_calibration(x, y, use_model=False)
    assert cal.coef[0] > 0 and cal.coef[1] == 0
    assert 0 < cal.threshold_real < cal.threshold_synthetic < 1
    probs = [cal.probability(float(np.exp(v)), None) for v in (-1.0, 0.0, 1.0, 3.0)]
    assert probs == sorted(probs)
    assert cal.verdict(0.99) == "synthetic" and cal.verdict(0.0) == "real"
    assert cal.verdict((cal.threshold_real + cal.threshold_synthetic) / 2) == "uncertain"
    assert Calibration.from_json(cal.to_json()) == cal


def test_evidence_has_the_contract_fields_and_a_percentile_sentence() -> None:
    ref = _reference()
    items = evidence_items({"a": 4.0, "b": 0.1}, ref)
    assert [set(e) for e in items] == [{"name", "value", "reference", "direction", "weight"}] * 2
    first = items[0]
    assert first["name"] == "a" and first["direction"] == "lower than real"
    assert "percentile" in first["reference"] or "below every" in first["reference"]
    assert abs(sum(e["weight"] for e in items) - 1.0) < 1e-3
