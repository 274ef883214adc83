"""Shared fixtures: where the development data lives, phantoms, temporary identities."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RADPROOF_SHARED", REPO.parent / "shared"))
XRAY = SHARED / "data" / "xray"
DICOM_SAMPLES = XRAY / "real" / "dicom-samples"


@pytest.fixture(scope="session")
def xray_dir() -> Path:
    """The shared development radiographs; tests that need them skip when the folder is absent."""
    if not (XRAY / "manifest.csv").is_file():
        pytest.skip(f"development radiographs not found at {XRAY} (set RADPROOF_SHARED)")
    return XRAY


@pytest.fixture(scope="session")
def shared_dicoms(xray_dir: Path) -> list[Path]:
    """Every DICOM file in the shared dicom-samples set."""
    files = sorted((xray_dir / "real" / "dicom-samples").glob("*.dcm"))
    if not files:
        pytest.skip("no DICOM samples in the shared data")
    return files


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install {package})")
    return path


@pytest.fixture(scope="session")
def dcmtk() -> str:
    """DCMTK's dcmsign, the interoperability peer; tests that need it skip, saying why, without it."""
    return _tool("dcmsign", "dcmtk")


@pytest.fixture(scope="session")
def openssl() -> str:
    """The openssl command line, which makes keys and tokens the way other sites do."""
    return _tool("openssl", "openssl")
