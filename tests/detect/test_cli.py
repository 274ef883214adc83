"""`radproof detect`, `evaluate` and `train` through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from radproof.cli import main

from .conftest import chest_like, png_bytes, tiny_manifest


@pytest.fixture(scope="module")
def phantom_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from radproof.imaging.phantom import simulate

    path = tmp_path_factory.mktemp("ph") / "phantom.dcm"
    simulate(512, 448, seed=1).save_as(path, enforce_file_format=True)
    return path


def test_detect_json_lines_and_heatmap(phantom_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "plain.png"
    png.write_bytes(png_bytes(chest_like(300)))
    code = main(["detect", str(phantom_file), str(png), "--json", "--explain", str(tmp_path / "maps")])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in lines] == [str(phantom_file), str(png)]
    assert all(set(r) == {"path", "synthetic_probability", "verdict", "evidence", "hints"} for r in lines)
    expected = 1 if any(r["verdict"] == "synthetic" for r in lines) else 0
    assert code == expected
    heat = tmp_path / "maps" / "phantom.dcm.heatmap.png"
    with Image.open(heat) as im:
        assert im.size == (256, 256) and im.mode == "RGB"


def test_detect_reports_bad_files_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    good = tmp_path / "good.png"
    good.write_bytes(png_bytes(chest_like(300)))
    code = main(["detect", str(bad), str(good), "--json"])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 2
    assert "error" in out[0] and out[1]["verdict"] in ("real", "synthetic", "uncertain")


def test_detect_walks_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.png").write_bytes(png_bytes(chest_like(300, seed=1)))
    (tmp_path / "b.png").write_bytes(png_bytes(chest_like(300, seed=2)))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub" / "b.png").write_bytes(png_bytes(chest_like(300, seed=3)))
    code = main(["detect", str(tmp_path), "--json", "--explain", str(tmp_path / "maps")])
    paths = sorted(json.loads(line)["path"] for line in capsys.readouterr().out.splitlines())
    expected = [tmp_path / "b.png", tmp_path / "sub" / "a.png", tmp_path / "sub" / "b.png"]
    assert code in (0, 1) and paths == sorted(str(p) for p in expected)
    # two b.png in different folders get two heatmaps
    maps = sorted(p.name for p in (tmp_path / "maps").iterdir())
    assert maps == ["a.png.heatmap.png", "b.png-2.heatmap.png", "b.png.heatmap.png"]


def test_detect_human_output(phantom_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["detect", str(phantom_file)])
    out = capsys.readouterr().out
    assert "synthetic probability" in out and "real radiographs" in out


@pytest.mark.slow
def test_train_then_evaluate_on_a_toy_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tiny_manifest(tmp_path)
    model_dir = tmp_path / "model"
    assert main(["train", str(manifest), "-o", str(model_dir)]) == 0
    config = json.loads((model_dir / "detector.json").read_text())
    # 24 images, and every second real one again after each hospital-style processing
    assert config["model"] is None and config["reference"]["n_images"] == 24 + 12 * 2
    assert config["provenance"]["processed_real_copies"] == 24
    # the thumbnail scale: every image again, shrunk to 128 px, with its own reference and calibration
    assert config["thumbnail"]["work_size"] == 128 and config["thumbnail"]["reference"]["n_images"] == 24 + 12 * 2
    _thumbnails_are_judged(model_dir, tmp_path)
    capsys.readouterr()
    code = main(
        [
            "evaluate",
            str(manifest),
            "--json",
            "--model",
            str(model_dir),
            "--per-set",
            "3",
            "--markdown",
            str(tmp_path / "eval.md"),
        ]
    )
    assert code == 0
    results = json.loads(capsys.readouterr().out)
    assert results["metadata_only_auc"]["normalized_pixel_track"] == pytest.approx(0.5)
    assert {r["fold"] for r in results["leave_one_generator_out"]} == {"generator=gen0", "generator=gen1"}
    assert results["shipped"]["overall"]["auc"] > 0.9
    names = [r["perturbation"] for r in results["perturbations"]["rows"]]
    assert names[0] == "none" and "jpeg75" in names and "secondary_capture" in names
    # Each perturbation is also judged by the fold that did not see the generator.
    for row in results["perturbations"]["rows"]:
        unseen, drops = row["unseen_generator_auc"], row["unseen_generator_auc_drop"]
        assert set(unseen) == set(drops) == {"gen0", "gen1"}
        assert row["largest_unseen_generator_drop"] == max(drops.values())
    clean = results["perturbations"]["rows"][0]
    assert set(clean["unseen_generator_auc_drop"].values()) == {0.0}
    # The forger's view of the clean row is the unseen-generator AUC itself (nothing perturbed).
    for g in ("gen0", "gen1"):
        assert clean["forged"][g]["auc"] == pytest.approx(clean["unseen_generator_auc"][g])
    for row in results["perturbations"]["rows"]:
        for shares in row["forged"].values():
            assert 0.0 <= shares["caught"] <= 1.0 and shares["caught"] + shares["called_real"] <= 1.0
    folds = {r["fold"]: r["auc"] for r in results["leave_one_generator_out"]}
    assert clean["unseen_generator_auc"]["gen1"] > 0.5 and folds["generator=gen1"] > 0.5
    assert "Leave-one-generator-out" in (tmp_path / "eval.md").read_text()
    assert "A forger's view" in (tmp_path / "eval.md").read_text()
    small = results["thumbnail"]
    assert {r["fold"] for r in small["leave_one_generator_out"]} == {"generator=gen0", "generator=gen1"}
    assert "Thumbnails" in (tmp_path / "eval.md").read_text()
    # Without the protocol there are no folds: the suite gives the shipped detector's rows only.
    args = ["evaluate", str(manifest), "--json", "--model", str(model_dir), "--per-set", "3", "--no-protocol"]
    assert main(args) == 0
    quick = json.loads(capsys.readouterr().out)
    assert "leave_one_generator_out" not in quick and "thumbnail" not in quick
    assert [r["perturbation"] for r in quick["perturbations"]["rows"]] == names
    assert all("unseen_generator_auc" not in r for r in quick["perturbations"]["rows"])


def _thumbnails_are_judged(model_dir: Path, folder: Path) -> None:
    """A 150 px image is judged with the thumbnail reference; without one the detector abstains."""
    from radproof.detect.detector import Detector

    real = folder / "small-real.png"
    real.write_bytes(png_bytes(chest_like(150, seed=900, noise=3.0)))
    fake = folder / "small-fake.png"
    smooth = chest_like(40, seed=901, noise=0.2)
    fake.write_bytes(png_bytes(np.asarray(Image.fromarray(smooth).resize((150, 150), Image.Resampling.BILINEAR))))
    detector = Detector.load(model_dir)
    on_real, on_fake = detector.detect_file(real), detector.detect_file(fake)
    assert on_real.evidence and on_fake.evidence
    assert on_fake.synthetic_probability > on_real.synthetic_probability
    assert on_real.verdict != "synthetic"
    assert any(h.name == "thumbnail" and "128 px" in h.message for h in on_real.hints)
    config = json.loads((model_dir / "detector.json").read_text())
    del config["thumbnail"]
    without = Detector.from_config(config, model_dir).detect_file(real)
    assert without.verdict == "uncertain" and without.synthetic_probability == 0.5
    assert any("no reference for thumbnails" in h.message for h in without.hints)


def test_evaluate_rejects_a_bad_manifest(tmp_path: Path) -> None:
    bad = tmp_path / "m.csv"
    bad.write_text("path,label\nx.png,maybe\n")
    assert main(["evaluate", str(bad)]) == 2


@pytest.mark.slow
def test_train_with_the_network_end_to_end(tmp_path: Path, xray_dir: Path) -> None:
    """`radproof train --cnn`: pairs, taef2 reconstructions, one epoch, ONNX export, calibration."""
    pytest.importorskip("torch", reason="the train extra (torch) is not installed")
    taef2 = xray_dir.parent.parent / "models" / "taef2"
    if not (taef2 / "taef2_decoder.pth").is_file():
        pytest.skip(f"taef2 weights not found at {taef2}")
    manifest = tiny_manifest(tmp_path)
    out = tmp_path / "model"
    code = main(
        [
            "train",
            str(manifest),
            "-o",
            str(out),
            "--cnn",
            "--taef2",
            str(taef2),
            "--epochs",
            "1",
            "--autoencoder-steps",
            "2",
        ]
    )
    assert code == 0
    config = json.loads((out / "detector.json").read_text())
    assert config["model"]["file"] == "detector.onnx" and (out / "detector.onnx").is_file()
    assert not (out / "pairs.npz").exists()


def test_detect_uses_the_configured_detector_like_check(
    phantom_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `radproof adapt`, RADPROOF_DETECTOR__MODEL reaches `detect` as it reaches `check`."""
    import shutil

    from radproof.detect.detector import detector_folder

    site = tmp_path / "site-detector"
    shutil.copytree(detector_folder(None), site)
    monkeypatch.setenv("RADPROOF_DETECTOR__MODEL", str(site))
    capsys.readouterr()
    main(["detect", str(phantom_file), "--json"])
    configured = json.loads(capsys.readouterr().out)
    main(["detect", str(phantom_file), "--json", "--model", str(site)])
    assert json.loads(capsys.readouterr().out) == configured
    (site / "detector.json").write_text("{ not json")  # the configured folder is the one read
    assert main(["detect", str(phantom_file)]) == 2
    assert "site-detector" in capsys.readouterr().err
