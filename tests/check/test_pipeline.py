"""The one-image API (``radproof.check_file``, ``check_bytes``, ``check_dataset``, ``Checker``) on real files.

The same image must get the same verdict whichever door it comes through: a file, its bytes, the
pydicom Dataset a C-STORE handler holds, or ``radproof check --json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest

import radproof
from radproof.check import Policy, VerdictKind
from radproof.cli import main
from radproof.errors import ConfigError, InputError
from radproof.pipeline import Checker

PW = b"correct horse battery staple"
SIGNATURE_ONLY = Policy(use_watermark=False, use_detector=False)


@dataclass(frozen=True)
class Images:
    ca: Path
    signed: Path
    altered: Path
    png: Path


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    from radproof.imaging import load, render, save_raster
    from radproof.imaging.phantom import simulate
    from radproof.provenance import Role, init_ca, issue_identity, load_identity, sign_dataset

    root = tmp_path_factory.mktemp("pipeline")
    init_ca(root / "ca", "Pipeline Test CA", PW, key_bits=2048)
    issue_identity(root / "tech", root / "ca", "Bob Tech", Role.TECHNOLOGIST, PW, PW, key_bits=2048)
    ds = simulate(rows=96, cols=80, seed=3)
    sign_dataset(ds, load_identity(root / "tech", PW))
    ds.save_as(root / "signed.dcm", enforce_file_format=True)
    altered = pydicom.dcmread(root / "signed.dcm")
    pixels = altered.pixel_array.copy()
    pixels[10:20, 10:20] += 3
    altered.PixelData = pixels.tobytes()
    altered.save_as(root / "altered.dcm", enforce_file_format=True)
    save_raster(render(load(root / "signed.dcm")), root / "export.png")
    return Images(root / "ca" / "ca.pem", root / "signed.dcm", root / "altered.dcm", root / "export.png")


def without_path(record: dict[str, object]) -> dict[str, object]:
    """The record without where it came from and without the check's own clock (no timestamp: trust time is now)."""
    out = json.loads(json.dumps({k: v for k, v in record.items() if k != "path"}))
    for s in (out.get("signature") or {}).get("signatures", []):
        s.pop("trust_time")
    return out  # type: ignore[no-any-return]


def test_top_level_check_file_authenticates_a_trusted_signature(images: Images) -> None:
    verdict = radproof.check_file(images.signed, trust=images.ca, policy=SIGNATURE_ONLY)
    assert verdict.verdict is VerdictKind.AUTHENTIC and verdict.passed
    assert verdict.image is not None and verdict.image.shape == (96, 80)
    record = verdict.to_dict()
    assert record["format"] == "dicom" and record["shape"] == [96, 80]
    assert "patient" not in record


def test_a_changed_pixel_is_tampered_through_every_door(images: Images) -> None:
    checker = Checker(trust=images.ca, policy=SIGNATURE_ONLY)
    from_file = checker.check_file(images.altered)
    from_bytes = checker.check_bytes(images.altered.read_bytes(), name="altered.dcm")
    from_dataset = checker.check_dataset(pydicom.dcmread(images.altered))
    for verdict in (from_file, from_bytes, from_dataset):
        assert verdict.verdict is VerdictKind.TAMPERED and not verdict.passed
    assert without_path(dict(from_file.to_dict())) == without_path(dict(from_bytes.to_dict()))
    assert without_path(dict(from_file.to_dict())) == without_path(dict(from_dataset.to_dict()))
    assert from_dataset.path == f"<dataset {pydicom.dcmread(images.altered).SOPInstanceUID}>"


def test_check_dataset_of_a_signed_image_keeps_the_signature_valid(images: Images) -> None:
    ds = pydicom.dcmread(images.signed)
    verdict = radproof.check_dataset(ds, name="from-scp", trust=images.ca, policy=SIGNATURE_ONLY)
    assert verdict.verdict is VerdictKind.AUTHENTIC and verdict.path == "from-scp"


def test_a_dataset_without_file_meta_is_an_input_error(images: Images) -> None:
    ds = pydicom.dcmread(images.signed)
    bare = pydicom.Dataset()
    bare.update(ds)
    with pytest.raises(InputError, match="file meta"):
        radproof.check_dataset(bare, policy=SIGNATURE_ONLY)


def test_bytes_that_are_not_an_image_are_an_input_error() -> None:
    with pytest.raises(InputError, match="not a DICOM, PNG, JPEG or TIFF"):
        radproof.check_bytes(b"hello world" * 20, name="note.txt")


def test_a_profile_name_is_a_policy_and_an_unknown_one_a_config_error(images: Images) -> None:
    verdict = Checker(policy="pacs").check_file(images.signed)  # signed, but no trust anchor given
    assert verdict.verdict is VerdictKind.SUSPECT and not verdict.passed
    with pytest.raises(ConfigError, match="unknown check profile"):
        Checker(policy="lenient")


def test_the_checker_loads_its_detector_once_and_reuses_it(images: Images) -> None:
    checker = Checker(policy="detector-only")
    first = checker.check_file(images.png)
    assert first.evidence.detection is not None and first.image is not None
    assert first.to_dict()["format"] == "png"
    detector = checker.detector()
    checker.check_file(images.png)
    assert checker.detector() is detector


def test_show_phi_keeps_patient_identifiers_only_when_asked(images: Images) -> None:
    assert Checker(policy=SIGNATURE_ONLY).check_file(images.signed).patient == {}
    kept = Checker(policy=SIGNATURE_ONLY, show_phi=True).check_file(images.signed).patient
    assert kept.get("PatientName")


def test_check_json_is_the_pipelines_record(images: Images, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(images.signed), "--trust", str(images.ca), "--profile", "detector-only", "--json"])
    assert code in (0, 1)
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    expected = Checker(trust=images.ca, policy="detector-only").check_file(images.signed).to_dict()
    assert without_path(line) == without_path(dict(expected)) and line["path"] == str(images.signed)


def test_import_radproof_is_cheap_and_names_resolve_on_use() -> None:
    code = (
        "import sys, radproof\n"
        "heavy = [m for m in ('numpy', 'pydicom', 'onnxruntime', 'cryptography') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert callable(radproof.check_file) and radproof.Checker.__module__ == 'radproof.pipeline'\n"
        "assert 'check_dataset' in dir(radproof)\n"
        "try:\n    radproof.no_such_name\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit(1)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
