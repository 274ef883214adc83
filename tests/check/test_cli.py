"""``radproof check`` and ``radproof scan`` end to end: real signatures, exit codes, JSON Lines, reports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest

from radproof.cli import main

PW = b"correct horse battery staple"


@dataclass(frozen=True)
class Files:
    ca: Path
    signed: Path
    altered: Path
    unsigned: Path
    broken: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    from radproof.imaging.phantom import simulate
    from radproof.provenance import Role, init_ca, issue_identity, load_identity, sign_dataset

    root = tmp_path_factory.mktemp("check-cli")
    init_ca(root / "ca", "Test Hospital CA", PW, key_bits=2048)
    issue_identity(root / "tech", root / "ca", "Alice Tech", Role.TECHNOLOGIST, PW, PW, key_bits=2048)
    identity = load_identity(root / "tech", PW)
    images = root / "images"
    images.mkdir()
    ds = simulate(rows=96, cols=80, seed=1)
    sign_dataset(ds, identity)
    ds.save_as(images / "signed.dcm", enforce_file_format=True)
    altered = pydicom.dcmread(images / "signed.dcm")
    pixels = altered.pixel_array.copy()
    pixels[40:50, 30:40] += 1
    altered.PixelData = pixels.tobytes()
    altered.save_as(images / "altered.dcm", enforce_file_format=True)
    simulate(rows=96, cols=80, seed=2).save_as(images / "unsigned.dcm", enforce_file_format=True)
    broken = root / "broken.dcm"
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 40)
    return Files(root / "ca" / "ca.pem", images / "signed.dcm", images / "altered.dcm", images / "unsigned.dcm", broken)


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, object]]]:
    code = main([*args, "--json"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    return code, lines


def test_signed_image_with_trust_passes(files: Files, capsys: pytest.CaptureFixture[str]) -> None:
    code, [record] = run_json(capsys, "check", str(files.signed), "--trust", str(files.ca))
    assert code == 0
    assert record["signature"]["status"] == "valid"  # type: ignore[index]
    assert record["verdict"] in {"authentic", "suspect"}  # suspect only if the detector disagrees
    assert "signature-trusted" in record["reason_codes"]  # type: ignore[operator]


def test_altered_pixels_are_tampered_and_exit_1(files: Files, capsys: pytest.CaptureFixture[str]) -> None:
    code, [record] = run_json(capsys, "check", str(files.altered), "--trust", str(files.ca))
    assert code == 1
    assert record["verdict"] == "tampered" and record["passed"] is False
    assert record["reason_codes"][0] == "signature-invalid"  # type: ignore[index]
    assert set(record) >= {"path", "verdict", "reasons", "signature", "watermark", "detector"}


def test_untrusted_signer_without_trust_anchor_is_suspect(files: Files, capsys: pytest.CaptureFixture[str]) -> None:
    code, [record] = run_json(capsys, "check", str(files.signed))
    assert record["verdict"] == "suspect" and code == 0
    assert "signature-untrusted" in record["reason_codes"]  # type: ignore[operator]


def test_pacs_profile_fails_unsigned_images(files: Files, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run_json(
        capsys, "check", str(files.unsigned), str(files.signed), "--trust", str(files.ca), "--profile", "pacs"
    )
    assert code == 1
    by_name = {Path(str(r["path"])).name: r for r in lines}
    unsigned_record = by_name["unsigned.dcm"]
    assert unsigned_record["passed"] is False
    assert "signature-required" in str(unsigned_record["reason_codes"])


def test_profile_from_config_file(files: Files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "radproof.toml"
    cfg.write_text(f'[check]\nprofile = "pacs"\n[trust]\nca = "{files.ca}"\n')
    code, [record] = run_json(capsys, "check", str(files.unsigned), "--config", str(cfg))
    assert code == 1 and record["verdict"] == "suspect"


def test_human_output_names_signer_and_reasons(files: Files, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(files.altered), "--trust", str(files.ca)])
    out = capsys.readouterr().out
    assert code == 1 and "TAMPERED" in out and "Alice Tech" in out and "INVALID" in out


def test_unreadable_file_is_exit_2_and_others_still_checked(files: Files, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run_json(capsys, "check", str(files.broken), str(files.unsigned))
    assert code == 2 and len(lines) == 2 and "error" in lines[0] and lines[1]["verdict"]


def test_usage_errors_are_exit_2(files: Files, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["check", str(files.signed), "--profile", "nope"]) == 2
    assert main(["check", str(files.signed), "--trust", str(tmp_path / "missing.pem")]) == 2
    assert main(["scan", str(tmp_path / "missing-folder"), "--out", str(tmp_path / "o.jsonl")]) == 2
    capsys.readouterr()


def test_check_report(files: Files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "check.html"
    main(["check", str(files.signed), str(files.altered), "--trust", str(files.ca), "--report", str(out)])
    html = out.read_text()
    assert "Alice Tech" in html and "tampered" in html and "data:image/png;base64," in html
    capsys.readouterr()


def test_scan_command_exit_codes_resume_and_report(
    files: Files, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "r.jsonl"
    report = tmp_path / "r.html"
    folder = str(files.signed.parent)
    code, [summary] = run_json(
        capsys,
        "scan",
        folder,
        "--out",
        str(results),
        "--report",
        str(report),
        "--trust",
        str(files.ca),
        "--workers",
        "1",
    )
    assert code == 1  # the altered image fails
    assert summary["found"] == 3 and summary["checked"] == 3
    assert summary["verdicts"]["tampered"] == 1  # type: ignore[index]
    assert report.is_file()
    code, [again] = run_json(capsys, "scan", folder, "--out", str(results), "--trust", str(files.ca), "--workers", "1")
    assert code == 1 and again["checked"] == 0 and again["resumed"] == 3
    code, [passing] = run_json(capsys, "scan", str(files.unsigned), "--out", str(tmp_path / "u.jsonl"))
    assert code == 0 and passing["checked"] == 1


@dataclass(frozen=True)
class Marked:
    key: Path
    ca: Path
    both: Path  # watermarked, then signed
    cut: Path  # watermarked, then a region changed (no signature)


@pytest.fixture(scope="module")
def marked(files: Files, tmp_path_factory: pytest.TempPathFactory) -> Marked:
    from radproof.imaging.phantom import simulate
    from radproof.provenance import load_identity, sign_file
    from radproof.watermark import embed_file, generate_key, save_key

    root = tmp_path_factory.mktemp("marked")
    key_path = root / "wm.key"
    key = generate_key()
    save_key(key, key_path, PW)
    simulate(rows=512, cols=416, seed=5).save_as(root / "plain.dcm", enforce_file_format=True)
    embed_file(root / "plain.dcm", root / "marked.dcm", key, payload="SITE-A")
    identity = load_identity(files.ca.parent.parent / "tech", PW)
    sign_file(root / "marked.dcm", root / "both.dcm", identity)
    ds = pydicom.dcmread(root / "marked.dcm")
    pixels = ds.pixel_array.copy()
    pixels[100:140, 60:100] = pixels[100:140, 60:100] // 2  # paint over a region
    ds.PixelData = pixels.tobytes()
    ds.save_as(root / "cut.dcm", enforce_file_format=True)
    return Marked(key_path, files.ca, root / "both.dcm", root / "cut.dcm")


def test_signed_and_watermarked_image_with_all_layers(
    marked: Marked, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RADPROOF_PASSPHRASE", PW.decode())
    code, [record] = run_json(capsys, "check", str(marked.both), "--trust", str(marked.ca), "--key", str(marked.key))
    watermark = record["watermark"]
    assert isinstance(watermark, dict) and watermark["found"] is True and watermark["payload"] == "SITE-A"
    assert watermark["tampered_blocks"] == []
    assert record["signature"]["status"] == "valid"  # type: ignore[index]
    codes = record["reason_codes"]
    assert isinstance(codes, list) and "signature-trusted" in codes and "watermark-intact" in codes
    assert record["verdict"] in {"authentic", "suspect"} and code == 0


def test_painted_region_is_located_by_the_fragile_mark(
    marked: Marked, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RADPROOF_PASSPHRASE", PW.decode())
    report = tmp_path / "cut.html"
    code, [record] = run_json(capsys, "check", str(marked.cut), "--key", str(marked.key), "--report", str(report))
    assert code == 1 and record["verdict"] == "tampered"
    reasons = record["reasons"]
    assert isinstance(reasons, list) and "fragile watermark broken" in reasons[0]
    # The painted rows 100-139 and columns 60-99 lie inside the reported area.
    import re

    m = re.search(r"rows (\d+)-(\d+), columns (\d+)-(\d+)", reasons[0])
    assert m is not None
    top, bottom, left, right = (int(g) for g in m.groups())
    assert top <= 100 and bottom >= 139 and left <= 60 and right >= 99
    assert "Tampered regions" in report.read_text()


def test_watermark_key_without_passphrase_is_a_usage_error(
    marked: Marked, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RADPROOF_PASSPHRASE", raising=False)
    assert main(["check", str(marked.cut), "--key", str(marked.key)]) == 2
    capsys.readouterr()


def test_a_renamed_file_is_named_in_the_detector_hints(
    files: Files, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    renamed = tmp_path / "scan.jpg"
    renamed.write_bytes(files.unsigned.read_bytes())
    code, results = run_json(capsys, "check", str(renamed), str(files.unsigned))
    assert code in (0, 1)
    hints = [{h["name"] for h in r["detector"]["hints"]} for r in results]  # type: ignore[index]
    assert "renamed_file" in hints[0] and "renamed_file" not in hints[1]
