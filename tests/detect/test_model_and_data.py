"""The shipped model files, and sanity on the shared development radiographs (skipped without them)."""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from radproof.detect import detect_file
from radproof.detect.detector import Detector
from radproof.detect.normalize import JPEG_QUALITY, SMALL_WORK_SIZE, WORK_SIZE

MODELS = Path(str(resources.files("radproof.detect") / "models"))


def test_shipped_files_are_small_and_consistent() -> None:
    config = json.loads((MODELS / "detector.json").read_text())
    assert config["reference"]["n_images"] >= 1000
    assert "radproof train" in config["provenance"]["command"]
    onnx = MODELS / config["model"]["file"]
    assert onnx.stat().st_size <= 20 * 1024 * 1024
    for part in (config, config["thumbnail"]):
        cal = part["calibration"]
        assert 0 < cal["threshold_real"] < cal["threshold_synthetic"] < 1
    assert config["thumbnail"]["work_size"] == SMALL_WORK_SIZE and config["thumbnail"]["reference"]["n_images"] >= 1000


def test_shipped_rows_reproduce_the_shipped_detector() -> None:
    """`radproof adapt` refits from the stored rows: they must be exactly what the detector was fitted on."""
    from radproof.detect.lab.adapt import ROWS_FILE, load_rows
    from radproof.detect.lab.evaluate import fit

    config = json.loads((MODELS / "detector.json").read_text())
    assert (MODELS / ROWS_FILE).stat().st_size <= 2 * 1024 * 1024
    rows = load_rows(MODELS / ROWS_FILE)
    for size, part in ((WORK_SIZE, config), (SMALL_WORK_SIZE, config["thumbnail"])):
        r = rows[size]
        refit = fit(r.table, np.ones(len(r.table.items), dtype=bool), "x", r.processed, work_size=size)
        got = refit.calibration.to_json()
        for key in ("slope", "intercept", "real_log_atypicality", "real_model_logit"):
            assert got[key] == pytest.approx(part["calibration"][key])
        assert refit.calibration.threshold_synthetic == pytest.approx(part["calibration"]["threshold_synthetic"])
        assert refit.reference.n_images == part["reference"]["n_images"]


def test_model_runs_on_the_normalized_square() -> None:
    detector = Detector.load()
    assert detector.model is not None
    logit, patch_map = detector.model.logit(np.full((WORK_SIZE, WORK_SIZE), 0.5, dtype=np.float32))
    assert np.isfinite(logit) and patch_map.shape == (WORK_SIZE // 4, WORK_SIZE // 4)


def test_training_reencodes_exactly_like_the_detector() -> None:
    pytest.importorskip("torch", reason="the train extra is not installed")
    from radproof.detect.lab.train import network
    from radproof.detect.normalize import reencode

    # One normalization: the training pairs go through the detector's own function, not a copy.
    assert network.reencode is reencode
    assert reencode.__defaults__ == (JPEG_QUALITY,)


def _files(xray_dir: Path, set_name: str, n: int) -> list[Path]:
    with open(xray_dir / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["set"] == set_name]
    return [xray_dir / r["path"] for r in rows[:n]]


@pytest.mark.shared_data
def test_development_images_get_sensible_verdicts(xray_dir: Path) -> None:
    reals = [detect_file(p) for p in _files(xray_dir, "openist", 6) + _files(xray_dir, "kermany", 6)]
    fakes = [detect_file(p) for p in _files(xray_dir, "ldm-iuxray", 6)]
    assert sum(r.verdict == "synthetic" for r in reals) <= 1
    assert all(f.verdict != "real" for f in fakes)
    assert np.median([f.synthetic_probability for f in fakes]) > np.median([r.synthetic_probability for r in reals])


@pytest.mark.shared_data
@pytest.mark.slow
def test_every_shared_dicom_gets_an_answer(shared_dicoms: list[Path]) -> None:
    for path in shared_dicoms:
        d = detect_file(path).to_dict()
        assert d["verdict"] in ("real", "synthetic", "uncertain")
