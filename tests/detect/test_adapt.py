"""Commissioning the detector at a site (`radproof adapt`) and using the result in check/scan."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from radproof.cli import main
from radproof.detect.detector import Detector
from radproof.detect.lab.adapt import ROWS_FILE, adapt_detector, load_rows
from radproof.detect.lab.evaluate import fit
from radproof.errors import ConfigError, InputError

from .conftest import chest_like, png_bytes, tiny_manifest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def toy_detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("toy")
    out = folder / "model"
    assert main(["train", str(tiny_manifest(folder)), "-o", str(out)]) == 0
    return out


def _site(folder: Path, first: int, count: int, side: int = 320) -> list[Path]:
    """Real images of a site that denoises far more than the sources of the toy reference."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(first, first + count):
        path = folder / f"patient-doe-jane-{k}.png"
        path.write_bytes(png_bytes(chest_like(side, seed=500 + k, noise=1.0)))
        paths.append(path)
    return paths


def test_the_stored_rows_reproduce_the_detector(toy_detector: Path) -> None:
    """The rows beside detector.json are exactly what it was fitted on (adapt refits from them)."""
    config = json.loads((toy_detector / "detector.json").read_text())
    rows = load_rows(toy_detector / ROWS_FILE)
    for size, part in ((256, config), (128, config["thumbnail"])):
        r = rows[size]
        refit = fit(r.table, np.ones(len(r.table.items), dtype=bool), "x", r.processed, work_size=size)
        got, shipped = refit.calibration.to_json(), part["calibration"]
        assert got["slope"] == pytest.approx(shipped["slope"])
        assert got["intercept"] == pytest.approx(shipped["intercept"])
        assert got["real_log_atypicality"] == pytest.approx(shipped["real_log_atypicality"])
        assert got["threshold_synthetic"] == pytest.approx(shipped["threshold_synthetic"])
        assert refit.reference.n_images == part["reference"]["n_images"]


def test_adapting_to_a_site_stops_flagging_its_new_images(toy_detector: Path, tmp_path: Path) -> None:
    commissioning = _site(tmp_path / "site", 0, 24)
    later = _site(tmp_path / "later", 100, 12)  # images of the same site the adaptation never saw
    base = Detector.load(toy_detector)
    flagged_before = [base.detect_file(p).verdict == "synthetic" for p in later]
    assert np.mean(flagged_before) >= 0.5, "the toy site must look atypical to the unadapted detector"

    summary = adapt_detector([tmp_path / "site"], tmp_path / "adapted", base=toy_detector, site="hospital-a")
    assert summary["used"] == len(commissioning) and summary["skipped"] == []
    assert summary["site_flagged_after"] < summary["site_flagged_before"]
    assert summary["site_flagged_unseen"] is None  # under 40 images there is no two-fold estimate
    adapted = Detector.load(tmp_path / "adapted")
    flagged_after = [adapted.detect_file(p).verdict == "synthetic" for p in later]
    assert np.mean(flagged_after) < np.mean(flagged_before)
    # the toy fakes are still caught
    fakes = sorted(toy_detector.parent.glob("f*.png"))[:8]
    assert all(adapted.detect_file(p).verdict == "synthetic" for p in fakes)
    config = json.loads((tmp_path / "adapted" / "detector.json").read_text())
    assert config["provenance"]["adapted"] == [{"site": "hospital-a", "images": 24}]
    # no file name of the site (which may name a patient) is kept, in the rows or the configuration
    with np.load(tmp_path / "adapted" / ROWS_FILE) as data:
        texts = [str(v) for name in data.files if data[name].dtype.kind == "U" for v in data[name].tolist()]
    texts.append((tmp_path / "adapted" / "detector.json").read_text())
    assert not any("doe-jane" in t for t in texts)
    # adapting again stacks on the stored rows; the same site name twice is refused
    with pytest.raises(InputError, match="already holds"):
        adapt_detector([tmp_path / "site"], tmp_path / "again", base=tmp_path / "adapted", site="hospital-a")


def test_a_site_of_small_images_adapts_where_they_are_judged(toy_detector: Path, tmp_path: Path) -> None:
    """224 px images are judged as thumbnails; as in training they also join the main reference,
    and the summary speaks of the thumbnail size."""
    _site(tmp_path / "small", 0, 24, side=224)
    summary = adapt_detector([tmp_path / "small"], tmp_path / "adapted", base=toy_detector, site="clinic")
    assert summary["used"] == 24 and summary["judged_at"] == 128
    assert summary["site_flagged_after"] <= summary["site_flagged_before"]
    rows = load_rows(tmp_path / "adapted" / ROWS_FILE)
    for size in (256, 128):
        assert sum(i.set == "clinic" for i in rows[size].table.items) == 24


def test_adapt_refuses_too_few_images_and_a_detector_without_rows(toy_detector: Path, tmp_path: Path) -> None:
    _site(tmp_path / "few", 0, 5)
    with pytest.raises(InputError, match="at least 20"):
        adapt_detector([tmp_path / "few"], tmp_path / "out", base=toy_detector)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "detector.json").write_text((toy_detector / "detector.json").read_text())
    with pytest.raises(ConfigError, match="training rows"):
        adapt_detector([tmp_path / "few"], tmp_path / "out", base=bare)
    good = (toy_detector / ROWS_FILE).read_bytes()
    for broken in (good[: len(good) // 2], b"not an npz at all", b"\x93NUMPY garbage"):
        (bare / ROWS_FILE).write_bytes(broken)
        with pytest.raises(ConfigError, match="cannot be read"):
            adapt_detector([tmp_path / "few"], tmp_path / "out", base=bare)


def test_adapt_command_line(toy_detector: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _site(tmp_path / "site", 0, 21)
    (tmp_path / "site" / "notes.txt").write_text("not an image")
    out = tmp_path / "adapted"
    code = main(["adapt", str(tmp_path / "site"), "-o", str(out), "--model", str(toy_detector), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["used"] == 21 and (out / "detector.json").is_file() and (out / ROWS_FILE).is_file()
    assert main(["adapt", str(tmp_path / "nowhere"), "-o", str(out), "--model", str(toy_detector)]) == 2


def test_check_uses_the_configured_detector(toy_detector: Path, tmp_path: Path) -> None:
    from radproof.config import load_settings
    from radproof.pipeline import Checker

    image = _site(tmp_path / "one", 0, 1)[0]
    settings = load_settings().with_overrides(check={"profile": "detector-only"}, detector={"model": toy_detector})
    detection = Checker.from_settings(settings).check_file(image).evidence.detection
    assert detection is not None
    expected = Detector.load(toy_detector).detect_file(image).synthetic_probability
    shipped = Detector.load().detect_file(image).synthetic_probability
    assert detection.synthetic_probability == pytest.approx(expected)
    assert abs(expected - shipped) > 1e-3, "the toy and the shipped detector must differ for this test to mean anything"
    broken = load_settings().with_overrides(detector={"model": tmp_path / "missing"})
    with pytest.raises(ConfigError, match="not found"):
        Checker.from_settings(broken)


def test_two_fold_estimate_for_the_sites_next_images(toy_detector: Path, tmp_path: Path) -> None:
    """With 40 or more images, each half is judged by a detector adapted on the other half."""
    site = _site(tmp_path / "site", 0, 40)
    summary = adapt_detector([tmp_path / "site"], tmp_path / "adapted", base=toy_detector)
    unseen = summary["site_flagged_unseen"]
    assert unseen is not None and summary["site_flagged_after"] <= unseen < summary["site_flagged_before"]
    # and it agrees with adapting on one half and testing the other by hand
    half = sorted(site)[:20]
    adapt_detector(half, tmp_path / "half", base=toy_detector)
    adapted = Detector.load(tmp_path / "half")
    by_hand = np.mean([adapted.detect_file(p).verdict == "synthetic" for p in sorted(site)[20:]])
    assert abs(by_hand - unseen) <= 0.2
