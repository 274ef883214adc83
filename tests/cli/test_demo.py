"""The demo runs end to end through the real command and finds what it should."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    workdir = tmp_path_factory.mktemp("demo")
    # The default size: the run the README's first command shows (the detector's reading of the
    # phantom export depends on its size).
    proc = subprocess.run(
        [sys.executable, "-m", "radproof.cli", "demo", "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc, workdir


def test_demo_exits_zero_and_reports_every_check(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, _ = demo_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Every check found what it should" in proc.stdout
    assert "WRONG" not in proc.stdout
    assert "Traceback" not in proc.stderr


def test_demo_files_verify_with_dcmtk(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, workdir = demo_run
    dcmsign = shutil.which("dcmsign", path="/usr/bin")
    if dcmsign is None:
        pytest.skip("dcmsign not installed (apt-get install dcmtk)")
    ca = workdir / "hospital-ca" / "ca.pem"

    def verify(name: str) -> int:
        return subprocess.run(
            [dcmsign, "--verify", "+cf", str(ca), str(workdir / name)], capture_output=True
        ).returncode

    assert verify("capture-signed.dcm") == 0
    assert verify("capture-tampered.dcm") != 0
    assert verify("capture-resigned-untrusted.dcm") != 0


def test_demo_keys_are_encrypted_at_rest(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, workdir = demo_run
    for key in (workdir / "hospital-ca" / "ca.key", workdir / "technologist" / "key.pem"):
        text = key.read_text()
        assert "ENCRYPTED PRIVATE KEY" in text and "BEGIN RSA PRIVATE KEY" not in text


def test_demo_rejects_bad_size() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "radproof.cli", "demo", "--size", "huge"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_demo_writes_report_and_tamper_map(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, workdir = demo_run
    report = workdir / "report.html"
    assert report.is_file() and "radproof report" in report.read_text()
    assert (workdir / "capture-tampered-map.png").read_bytes().startswith(b"\x89PNG")
    # The scan's results file holds one record per archive image, keyed by content hash.
    records = [json.loads(line) for line in (workdir / "results.jsonl").read_text().splitlines()]
    assert len(records) == 6 and all(len(r["sha256"]) == 64 for r in records)
    verdicts = {Path(r["path"]).name: r["verdict"] for r in records}
    assert verdicts["capture-signed.dcm"] == "authentic"
    assert verdicts["capture-tampered.dcm"] == "tampered"
    assert verdicts["generated-1024.png"] == "synthetic"
    assert "report.html" in proc.stdout
