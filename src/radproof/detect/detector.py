"""The detector: normalization -> cues + learned model -> calibrated probability, verdict, evidence.

Hints (metadata, C2PA) are collected beside the pixel score and never change it; only a decisive
hint (a C2PA manifest declaring AI generation) changes the verdict, and it says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radproof.detect import cues as cue_functions
from radproof.detect.fusion import Calibration, evidence_items, model_evidence
from radproof.detect.hints import Hint, collect_hints
from radproof.detect.model import OnnxModel
from radproof.detect.normalize import Normalized, normalize, normalize_array, reencode
from radproof.detect.reference import Reference
from radproof.errors import ConfigError, InputError
from radproof.fileio import read_input_bytes
from radproof.imaging import load_bytes
from radproof.imaging.radiograph import Radiograph

#: Folder of the shipped detector files (detector.json, detector.onnx).
MODEL_DIR = "models"
CONFIG_NAME = "detector.json"
UNCERTAIN_PROBABILITY = 0.5
#: JPEG quality of the stability probe (an ordinary re-save of the whole image).
STABILITY_QUALITY = 75


@dataclass(frozen=True)
class Detection:
    """The detector's answer for one image (``to_dict()`` is the JSON contract of ``radproof detect``)."""

    path: str | None
    synthetic_probability: float
    verdict: str
    evidence: tuple[dict[str, Any], ...]
    hints: tuple[Hint, ...]
    square_heatmap: npt.NDArray[np.float32] | None = field(default=None, repr=False, compare=False)
    normalized: npt.NDArray[np.float32] | None = field(default=None, repr=False, compare=False)
    placement: tuple[int, int, int, int] | None = field(default=None, repr=False, compare=False)

    @property
    def heatmap(self) -> npt.NDArray[np.float32] | None:
        """Where the evidence sits, 0..1, over the whole frame at the working scale (same aspect ratio
        as the image; zero outside the analysed centre square), or None for unusable inputs."""
        if self.square_heatmap is None:
            return None
        if self.placement is None:
            return self.square_heatmap
        top, left, rows, cols = self.placement
        full = np.zeros((rows, cols), dtype=np.float32)
        size = self.square_heatmap.shape[0]
        full[top : top + size, left : left + size] = self.square_heatmap
        return full

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "synthetic_probability": round(self.synthetic_probability, 4),
            "verdict": self.verdict,
            "evidence": [dict(e) for e in self.evidence],
            "hints": [h.to_dict() for h in self.hints],
        }


@dataclass(frozen=True)
class PixelScore:
    """Everything measured on the normalized pixels of one image."""

    values: dict[str, float]
    atypicality: float
    model_logit: float | None
    model_map: npt.NDArray[np.float32] | None
    probability: float


class Detector:
    """Reference statistics, calibration and (optionally) the learned model, loaded once."""

    def __init__(
        self,
        reference: Reference,
        calibration: Calibration,
        model: OnnxModel | None = None,
        model_real_logits: tuple[float, ...] = (),
    ) -> None:
        self.reference = reference
        self.calibration = calibration
        self.model = model
        self.model_real_logits = model_real_logits

    @classmethod
    def from_config(cls, config: Mapping[str, Any], folder: Path | None) -> Detector:
        try:
            reference = Reference.from_json(config["reference"])
            calibration = Calibration.from_json(config["calibration"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"detector configuration is invalid ({exc})") from None
        model = None
        real_logits: tuple[float, ...] = ()
        spec = config.get("model")
        if spec and folder is not None and calibration.coef[1] > 0:
            model = OnnxModel(folder / str(spec["file"]))
            real_logits = tuple(float(v) for v in spec.get("real_logit_quantiles", ()))
        return cls(reference, calibration, model, real_logits)

    @classmethod
    def load(cls, folder: str | Path | None = None) -> Detector:
        """The detector in ``folder`` (detector.json [+ detector.onnx]), by default the shipped one."""
        base = Path(str(resources.files("radproof.detect") / MODEL_DIR)) if folder is None else Path(folder)
        path = base / CONFIG_NAME
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"detector configuration {path} not found (run `radproof train`)") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"detector configuration {path} cannot be read ({exc})") from None
        return cls.from_config(config, base)

    # -- pixel layer -----------------------------------------------------------------------------

    def score_pixels(self, pixels: npt.NDArray[np.float32]) -> PixelScore:
        """Cues, model and calibrated probability for one normalized image."""
        values = cue_functions.measure(pixels)
        atyp = self.reference.atypicality(values)
        logit, logit_map = (None, None) if self.model is None else self.model.logit(pixels)
        prob = self.calibration.probability(atyp, logit)
        return PixelScore(values, atyp, logit, logit_map, prob)

    # -- one image -------------------------------------------------------------------------------

    def detect(self, image: Radiograph, *, data: bytes | None = None, path: str | None = None) -> Detection:
        """Detect whether one radiograph is AI-generated.

        ``data`` (the file's bytes) enables the C2PA and embedded-text hints.
        """
        label = path if path is not None else (str(image.path) if image.path is not None else None)
        hints = collect_hints(image, data)
        norm = normalize(image)
        if norm.problems:
            hints += [Hint("unreliable_input", "info", p) for p in norm.problems]
            verdict = _decisive(hints) or "uncertain"
            return Detection(label, UNCERTAIN_PROBABILITY, verdict, (), tuple(hints), None, norm.pixels)
        score = self.score_pixels(norm.pixels)
        verdict = self.calibration.verdict(score.probability)
        # Stability: the verdict must survive one more ordinary re-compression.
        probe = _stability_probe(norm)
        again = self.score_pixels(probe.pixels) if probe is not None and not probe.problems else score
        if self.calibration.verdict(again.probability) != verdict and verdict != "uncertain":
            hints.append(
                Hint(
                    "unstable_verdict",
                    "info",
                    f"the pixel verdict changes after JPEG re-compression ({score.probability:.2f} -> "
                    f"{again.probability:.2f}); reported as uncertain",
                )
            )
            verdict = "uncertain"
        decisive = _decisive(hints)
        if decisive:
            verdict = decisive
        evidence = evidence_items(score.values, self.reference)
        if score.model_logit is not None:
            evidence.append(model_evidence(score.model_logit, self.model_real_logits))
        return Detection(
            path=label,
            synthetic_probability=score.probability,
            verdict=verdict,
            evidence=tuple(evidence),
            hints=tuple(hints),
            square_heatmap=_heatmap(norm, score),
            normalized=norm.pixels,
            placement=norm.placement,
        )

    def detect_file(self, path: str | Path) -> Detection:
        """Load and detect one file (DICOM, PNG, JPEG, TIFF)."""
        data = read_input_bytes(path)
        image = load_bytes(data, name=str(path), frame=None)
        return self.detect(image, data=data, path=str(path))

    def detect_files(self, paths: Iterable[str | Path]) -> Iterator[Detection | InputError]:
        """Detect many files one after another (one model session; memory bounded by one image).

        Yields a :class:`Detection` per file, or the :class:`InputError` that file raised.
        """
        for p in paths:
            try:
                yield self.detect_file(p)
            except InputError as exc:
                yield exc


def _stability_probe(norm: Normalized) -> Normalized | None:
    """The image after an ordinary web-size JPEG re-save (quality 75), normalized again."""
    if norm.preview is None:
        return None
    return normalize_array(reencode(norm.preview, STABILITY_QUALITY))


def _decisive(hints: list[Hint]) -> str | None:
    return "synthetic" if any(h.severity == "decisive" for h in hints) else None


def _heatmap(norm: Normalized, score: PixelScore) -> npt.NDArray[np.float32]:
    """0..1 map over the analysed square: model patch logits when present, else local grain deviation."""
    size = norm.pixels.shape[0]
    if score.model_map is not None:
        m = 1.0 / (1.0 + np.exp(-score.model_map.astype(np.float64)))
    else:
        m = cue_functions.noise_map(norm.pixels).astype(np.float64)
        top = float(m.max())
        m = m / top if top > 0 else m
    from PIL import Image

    big = np.asarray(Image.fromarray(m.astype(np.float32), mode="F").resize((size, size), Image.Resampling.BILINEAR))
    out: npt.NDArray[np.float32] = np.clip(big, 0.0, 1.0).astype(np.float32)
    return out


@lru_cache(maxsize=1)
def default_detector() -> Detector:
    """The shipped detector, loaded once per process."""
    return Detector.load()
