"""Detection of AI-generated radiographs.

>>> from radproof.detect import detect_file
>>> result = detect_file("chest.png")
>>> result.verdict, result.synthetic_probability
('real', 0.08)

What judging an image needs: :mod:`~radproof.detect.normalize` (one normalization for every input,
training included), :mod:`~radproof.detect.cues` (physics and forensic cues),
:mod:`~radproof.detect.reference` (their distributions on real radiographs),
:mod:`~radproof.detect.model` (the learned network, ONNX), :mod:`~radproof.detect.fusion`
(calibration, verdict, evidence), :mod:`~radproof.detect.hints` (metadata and C2PA, reported apart)
and :mod:`~radproof.detect.explain` (the heatmap).

How the detector is made and measured (evaluation folds, perturbations, fitting, training, site
adaptation, studies) lives apart in :mod:`radproof.detect.lab`, which inference never imports.
"""

from __future__ import annotations

from pathlib import Path

from radproof.detect.detector import Detection, Detector, default_detector
from radproof.detect.fusion import DetectorVerdict
from radproof.detect.hints import Hint, HintSeverity
from radproof.imaging.radiograph import Radiograph

__all__ = ["Detection", "Detector", "DetectorVerdict", "Hint", "HintSeverity", "detect", "detect_file"]


def detect(
    radiograph: Radiograph, *, data: bytes | None = None, detector: Detector | None = None, path: str | None = None
) -> Detection:
    """Detect whether one radiograph is AI-generated (the shipped detector unless one is given).

    ``data``: the file's bytes, when available, so that C2PA and embedded-text hints can be read;
    ``path``: the file's name, for the result and for a format the name contradicts.
    """
    return (detector or default_detector()).detect(radiograph, data=data, path=path)


def detect_file(path: str | Path, *, detector: Detector | None = None) -> Detection:
    """Load a DICOM, PNG, JPEG or TIFF file and detect whether it is AI-generated."""
    return (detector or default_detector()).detect_file(path)
