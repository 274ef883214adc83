"""Checking many images: folders and DICOMweb servers, a local process pool or a Dask cluster.

>>> from radproof.config import load_settings
>>> from radproof.scan import scan_paths
>>> summary = scan_paths(["/archive"], load_settings(), out="results.jsonl", report="scan.html")
>>> summary.verdicts, summary.failed

Results go to a JSON Lines file keyed by content hash (sha256): an interrupted scan resumes, and
a rerun skips images already checked. See docs/check.md for the record fields.
"""

from __future__ import annotations

from radproof.scan.discover import ScanItem, Skipped, discover
from radproof.scan.engine import ScanSummary, previews_dir, run_dask, run_local, scan_paths, shutdown_pools
from radproof.scan.results import ResultLog, latest_by_path, read_records
from radproof.scan.work import ItemResult, Processor

__all__ = [
    "ItemResult",
    "Processor",
    "ResultLog",
    "ScanItem",
    "ScanSummary",
    "Skipped",
    "discover",
    "latest_by_path",
    "previews_dir",
    "read_records",
    "run_dask",
    "run_local",
    "scan_paths",
    "shutdown_pools",
]
