"""Fixtures shared by the scan tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from scan_helpers import make_tree


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    """A small archive folder (see ``make_tree``) with one unreadable DICOM in ``c/``."""
    root = tmp_path / "archive"
    root.mkdir()
    make_tree(root)
    (root / "c" / "broken.dcm").write_bytes(b"BAD" + b"\0" * 200)
    return root
