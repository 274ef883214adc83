"""Studies of the detector behind docs/detector.md: they measure, they are not tests.

Each runs as ``python -m radproof.detect.lab.studies.NAME`` (adapt, grain, halving, scale,
smoothed) and reads the development data from ``$RADPROOF_SHARED`` or ``../shared`` beside the
repository.
"""

from __future__ import annotations

import os
from pathlib import Path


def shared_dir() -> Path:
    """The shared folder with ``data/xray`` and ``models`` (``$RADPROOF_SHARED``, else beside the repository)."""
    configured = os.environ.get("RADPROOF_SHARED")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[5].parent / "shared"
