"""What a scan looks at: local files and folders (:mod:`radproof.imaging.folders`) or DICOMweb servers."""

from __future__ import annotations

from radproof.imaging.folders import DICOMWEB_PREFIXES, ScanItem, Skipped, discover, image_paths, is_dicomweb

__all__ = ["DICOMWEB_PREFIXES", "ScanItem", "Skipped", "discover", "image_paths", "is_dicomweb"]
