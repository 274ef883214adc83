"""Reference percentiles are two-sided; calibration is monotone; evidence reads like a sentence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from radproof.detect.detector import Detector, detector_folder, read_config
from radproof.detect.fusion import REAL_BAND, Calibration, evidence_items, fit_calibration
from radproof.detect.reference import Reference, build_reference
from radproof.errors import ConfigError


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
    assert cal.slope > 0 and not cal.uses_model and cal.model_tail is None
    assert 0 < cal.threshold_real < cal.threshold_synthetic < 1
    probs = [cal.probability(float(np.exp(v)), None) for v in (-1.0, 0.0, 1.0, 3.0)]
    assert probs == sorted(probs)
    assert cal.verdict(0.99) == "synthetic" and cal.verdict(0.0) == "real"
    assert cal.verdict((cal.threshold_real + cal.threshold_synthetic) / 2) == "uncertain"
    assert Calibration.from_json(cal.to_json()) == cal
    called_real = np.mean([cal.probability(float(np.exp(v)), None) < cal.threshold_real for v in x[y == 0, 0]])
    assert 0.8 <= called_real <= REAL_BAND + 0.01  # an image less typical than 1 in 10 reals is not called real


def test_a_model_logit_below_every_real_one_cannot_outvote_the_cues() -> None:
    """The network can raise suspicion, never lower it below a typical real radiograph's (the floor)."""
    rng = np.random.default_rng(3)
    real_atyp, fake_atyp = rng.normal(0, 1, 400), rng.normal(2, 1, 400)
    real_logit, fake_logit = rng.normal(-1, 1, 400), rng.normal(1, 1, 400)
    x = np.column_stack([np.r_[real_atyp, fake_atyp], np.r_[real_logit, fake_logit]])
    y = np.r_[np.zeros(400), np.ones(400)].astype(int)
    cal = fit_calibration(x, y, use_model=True)
    assert cal.slope > 0 and cal.uses_model
    assert cal.logit_floor is not None
    assert abs(cal.logit_floor - float(np.median(real_logit))) < 1e-9
    very_atypical = float(np.exp(6.0))
    at_floor = cal.probability(very_atypical, cal.logit_floor)
    assert cal.probability(very_atypical, -1e6) == at_floor
    assert cal.verdict(at_floor) == "synthetic"
    for atyp in (0.5, 1.0, 3.0, 20.0):  # at or below the floor the network adds nothing; above, it accuses
        below = cal.probability(atyp, cal.logit_floor - 2.0)
        assert below == cal.probability(atyp, cal.logit_floor)
        assert cal.probability(atyp, cal.logit_floor + 3.0) > below
    assert Calibration.from_json(json.loads(json.dumps(cal.to_json()))) == cal


def test_the_network_weighs_by_how_rare_its_logit_is_among_real_images() -> None:
    """A generator the cues miss but the network ranks well is still caught: the network's weight
    comes from the real images' logits, not from how much it adds on the fakes at hand."""
    rng = np.random.default_rng(4)
    real_atyp, real_logit = rng.normal(0, 0.5, 600), rng.normal(-1, 0.5, 600)
    # training fakes: far out on the cues, and the network agrees
    x = np.column_stack([np.r_[real_atyp, rng.normal(4, 0.5, 300)], np.r_[real_logit, rng.normal(1, 0.5, 300)]])
    y = np.r_[np.zeros(600), np.ones(300)].astype(int)
    cal = fit_calibration(x, y, use_model=True)
    # an unseen generator: typical cues, network logits 4 and 6 spreads above the real median
    cues = rng.normal(0, 0.5, 200)
    real_logits = rng.normal(-1, 0.5, 200)
    reals = np.array([cal.probability(float(np.exp(a)), g) for a, g in zip(cues, real_logits, strict=True)])
    for logit, flagged in ((1.0, 0.0), (2.0, 0.9)):
        unseen = np.array([cal.probability(float(np.exp(a)), logit) for a in cues])
        assert np.mean(unseen[:, None] > reals[None, :]) > 0.97  # ranked above the real images
        assert np.mean(unseen >= cal.threshold_synthetic) >= flagged
    assert np.mean(reals < cal.threshold_synthetic) > 0.95


def test_a_calibration_written_before_the_tail_combination_still_loads() -> None:
    for old in (
        {"coef": [2.0, 0.5], "intercept": -1.0, "threshold_synthetic": 0.6, "threshold_real": 0.3},
        {"coef": [2.0, 0.5], "intercept": -1.0, "threshold_synthetic": 0.6, "threshold_real": 0.3, "logit_floor": -1},
    ):
        cal = Calibration.from_json(old)
        assert cal.uses_model and cal.logit_floor == old.get("logit_floor")
        assert cal.probability(1.0, 3.0) > cal.probability(1.0, 0.0)
        assert cal.to_json() == {k: (float(v) if k != "coef" else v) for k, v in old.items()}
    assert Calibration.from_json(old).probability(1.0, -10.0) == Calibration.from_json(old).probability(1.0, -1.0)


def test_evidence_has_the_contract_fields_and_a_percentile_sentence() -> None:
    ref = _reference()
    items = evidence_items({"a": 4.0, "b": 0.1}, ref)
    assert [set(e) for e in items] == [{"name", "value", "reference", "direction", "weight"}] * 2
    first = items[0]
    assert first["name"] == "a" and first["direction"] == "lower than real"
    assert "percentile" in first["reference"] or "below every" in first["reference"]
    assert abs(sum(e["weight"] for e in items) - 1.0) < 1e-3


def test_equal_source_weights_protect_a_small_unusual_source() -> None:
    rng = np.random.default_rng(2)
    big = rng.normal(0, 1, 900)  # one large, typical hospital
    small = rng.normal(1.5, 0.5, 100)  # a small hospital whose processing looks more atypical
    fakes = rng.normal(2.5, 1, 500)
    x = np.column_stack([np.r_[big, small, fakes], np.zeros(1500)])
    y = np.r_[np.zeros(1000), np.ones(500)].astype(int)
    groups = ["big"] * 900 + ["small"] * 100 + ["fake"] * 500
    pooled = fit_calibration(x, y, use_model=False)
    equal = fit_calibration(x, y, use_model=False, groups=groups)

    def specificity(cal: Calibration, values: np.ndarray) -> float:
        return float(np.mean([cal.probability(float(np.exp(v)), None) < cal.threshold_synthetic for v in values]))

    assert specificity(equal, small) > specificity(pooled, small) + 0.05 and specificity(equal, small) >= 0.93
    assert specificity(equal, big) >= 0.97


def test_clahe_and_local_contrast_stay_in_range_and_raise_local_contrast() -> None:
    from radproof.detect.lab.processing import PROCESSING, clahe

    rng = np.random.default_rng(3)
    ramp = np.linspace(1000, 1400, 256)[None, :] + rng.normal(0, 8, (200, 256))  # low contrast, 16-bit-like
    out = clahe(ramp, clip=2.0)
    assert out.dtype == np.float32 and out.shape == ramp.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    # An image whose histogram is already flat everywhere is left nearly as it is.
    flat = rng.random((240, 240))
    assert np.corrcoef(clahe(flat).ravel(), flat.ravel())[0, 1] > 0.99
    # Local contrast grows: the noise relative to the local mean is amplified.
    for step in PROCESSING.values():
        processed = step(ramp)
        unit = (ramp - ramp.min()) / np.ptp(ramp)
        assert np.std(np.diff(processed, axis=0)) > 1.2 * np.std(np.diff(unit, axis=0))


def test_processed_reals_widen_the_reference() -> None:
    from radproof.detect.lab.evaluate import fit
    from radproof.detect.lab.features import FeatureTable
    from radproof.detect.lab.manifest import Item

    rng = np.random.default_rng(4)

    def item(k: int, label: int, kind: str) -> Item:
        return Item(
            path=Path(f"{kind}{k}.png"), label=label, set=kind, generator="gen" if label else "", body_part="chest"
        )

    reals = [item(k, 0, "real") for k in range(200)]
    fakes = [item(k, 1, "fake") for k in range(200)]
    values = np.r_[rng.normal(0, 1, (200, 2)), rng.normal(-3, 1, (200, 2))]
    table = FeatureTable(reals + fakes, ["a", "b"], values)
    # The same real images after processing: cue "a" moves up, a direction no fake takes.
    processed = FeatureTable(reals, ["a", "b"], values[:200] + np.array([4.0, 0.0]))
    everything = np.ones(400, dtype=bool)
    plain = fit(table, everything, "plain")
    widened = fit(table, everything, "widened", processed)
    unseen_processed_real = {"a": 4.0, "b": 0.0}
    assert widened.reference.atypicality(unseen_processed_real) < 0.5 * plain.reference.atypicality(
        unseen_processed_real
    )
    assert widened.reference.n_images == 400
    fake = {"a": -3.0, "b": -3.0}
    assert widened.calibration.probability(widened.reference.atypicality(fake), None) > 0.5


@pytest.mark.parametrize(
    "calibration",
    [
        {"combination": "stouffer", "slope": 1.0, "intercept": 0.0, "threshold_synthetic": 0.6, "threshold_real": 0.3},
        {"combination": "fisher", "intercept": 0.0, "threshold_synthetic": 0.6, "threshold_real": 0.3},
        {"combination": "fisher", "slope": "x", "intercept": 0.0, "threshold_synthetic": 0.6, "threshold_real": 0.3},
    ],
)
def test_a_damaged_calibration_is_a_clear_configuration_error(calibration: dict[str, object]) -> None:
    config = read_config(detector_folder(None))
    config = {**config, "calibration": {**config["calibration"], **calibration}}
    if "slope" not in calibration:
        config["calibration"].pop("slope", None)
    with pytest.raises(ConfigError, match="detector configuration is invalid"):
        Detector.from_config(config, None)
