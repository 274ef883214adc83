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
from radproof.detect.fusion import Calibration, DetectorVerdict, evidence_items, model_evidence
from radproof.detect.hints import Hint, HintSeverity, collect_hints
from radproof.detect.model import OnnxModel
from radproof.detect.normalize import (
    SMALL_WORK_SIZE,
    WORK_SIZE,
    Normalized,
    clears_as_real,
    normalize,
    normalize_array,
    reencode,
)
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
    """The detector's answer for one image (``to_dict()`` is the JSON contract of ``radproof detect``).

    ``verdict`` given as text is checked and converted to a :class:`DetectorVerdict`.
    """

    path: str | None
    synthetic_probability: float
    verdict: DetectorVerdict
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
        # The square may reach past the frame where its border was mirrored: keep the overlap.
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + size, rows), min(left + size, cols)
        full[y0:y1, x0:x1] = self.square_heatmap[y0 - top : y1 - top, x0 - left : x1 - left]
        return full

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", DetectorVerdict(self.verdict))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "synthetic_probability": round(self.synthetic_probability, 4),
            "verdict": self.verdict.value,
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


@dataclass(frozen=True)
class Scale:
    """What judging images at one working size needs: the real reference and the calibration
    measured at that size, and where real radiographs' network logits fall at that size."""

    reference: Reference
    calibration: Calibration
    model_real_logits: tuple[float, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Scale:
        return cls(
            Reference.from_json(data["reference"]),
            Calibration.from_json(data["calibration"]),
            tuple(float(v) for v in data.get("real_logit_quantiles", ())),
        )


class Detector:
    """Reference statistics, calibration and (optionally) the learned model, loaded once.

    ``reference``, ``calibration`` and ``model_real_logits`` are those of the main working size;
    ``thumbnail`` holds the same for small inputs (:data:`~radproof.detect.normalize.SMALL_WORK_SIZE`),
    or None when the detector was built without it (small inputs are then answered "uncertain").
    """

    def __init__(
        self,
        reference: Reference,
        calibration: Calibration,
        model: OnnxModel | None = None,
        model_real_logits: tuple[float, ...] = (),
        thumbnail: Scale | None = None,
    ) -> None:
        self.reference = reference
        self.calibration = calibration
        self.model = model
        self.model_real_logits = model_real_logits
        self.thumbnail = thumbnail
        self._main = Scale(reference, calibration, model_real_logits)

    def scale(self, work_size: int) -> Scale | None:
        """The reference and calibration for images normalized to ``work_size``, if this detector has them."""
        if work_size == WORK_SIZE:
            return self._main
        if work_size == SMALL_WORK_SIZE:
            return self.thumbnail
        return None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], folder: Path | None) -> Detector:
        try:
            main = Scale(Reference.from_json(config["reference"]), Calibration.from_json(config["calibration"]))
            thumbnail = Scale.from_json(config["thumbnail"]) if config.get("thumbnail") else None
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"detector configuration is invalid ({exc})") from None
        model = None
        real_logits: tuple[float, ...] = ()
        spec = config.get("model")
        uses_model = main.calibration.uses_model or (thumbnail is not None and thumbnail.calibration.uses_model)
        if spec and folder is not None and uses_model:
            model = OnnxModel(folder / str(spec["file"]))
            real_logits = tuple(float(v) for v in spec.get("real_logit_quantiles", ()))
        return cls(main.reference, main.calibration, model, real_logits, thumbnail)

    @classmethod
    def load(cls, folder: str | Path | None = None) -> Detector:
        """The detector in ``folder`` (detector.json [+ detector.onnx]), by default the shipped one."""
        base = detector_folder(folder)
        return cls.from_config(read_config(base), base)

    # -- pixel layer -----------------------------------------------------------------------------

    def score_pixels(self, pixels: npt.NDArray[np.float32]) -> PixelScore:
        """Cues, model and calibrated probability for one normalized image (at either working size)."""
        scale = self.scale(int(pixels.shape[0]))
        if scale is None:
            raise ConfigError(f"this detector has no reference for {pixels.shape[0]} px images")
        values = cue_functions.measure(pixels)
        atyp = scale.reference.atypicality(values)
        logit, logit_map = (None, None) if self.model is None else self.model.logit(pixels)
        prob = scale.calibration.probability(atyp, logit)
        return PixelScore(values, atyp, logit, logit_map, prob)

    # -- one image -------------------------------------------------------------------------------

    def detect(self, image: Radiograph, *, data: bytes | None = None, path: str | None = None) -> Detection:
        """Detect whether one radiograph is AI-generated.

        ``data`` (the file's bytes) enables the C2PA and embedded-text hints.
        """
        label = path if path is not None else (str(image.path) if image.path is not None else None)
        hints = collect_hints(image, data, label)
        norm = normalize(image)
        problems = list(norm.problems)
        scale = self.scale(norm.work_size)
        if scale is None and not problems:
            h, w = norm.original_shape
            problems.append(f"the image is small ({h} x {w}) and this detector has no reference for thumbnails")
        if problems or scale is None:
            hints += [Hint("unreliable_input", HintSeverity.INFO, p) for p in problems]
            verdict = _decisive(hints) or DetectorVerdict.UNCERTAIN
            return Detection(label, UNCERTAIN_PROBABILITY, verdict, (), tuple(hints), None, norm.pixels)
        if norm.work_size != WORK_SIZE:
            h, w = norm.original_shape
            mirrored = " (its missing border mirrored, not interpolated)" if min(h, w) < norm.work_size else ""
            hints.append(
                Hint(
                    "thumbnail",
                    HintSeverity.INFO,
                    f"the image is small ({h} x {w}); it was judged at {norm.work_size} px{mirrored} against "
                    f"real radiographs shrunk to that size, which carries less evidence than a full-size image "
                    f"(a thumbnail is never called real, at best uncertain)",
                )
            )
        score = self.score_pixels(norm.pixels)
        verdict = _cleared_only_at_full_size(scale.calibration.verdict(score.probability), norm.work_size)
        # Stability: the verdict must survive one more ordinary re-compression.
        probe = _stability_probe(norm)
        probe_scale = None if probe is None or probe.problems else self.scale(probe.work_size)
        again, again_verdict = score, verdict
        if probe is not None and probe_scale is not None:
            again = self.score_pixels(probe.pixels)
            again_verdict = _cleared_only_at_full_size(
                probe_scale.calibration.verdict(again.probability), probe.work_size
            )
        if again_verdict != verdict and verdict != DetectorVerdict.UNCERTAIN:
            hints.append(
                Hint(
                    "unstable_verdict",
                    HintSeverity.INFO,
                    f"the pixel verdict changes after JPEG re-compression ({score.probability:.2f} -> "
                    f"{again.probability:.2f}); reported as uncertain",
                )
            )
            verdict = DetectorVerdict.UNCERTAIN
        decisive = _decisive(hints)
        if decisive:
            verdict = decisive
        evidence = evidence_items(score.values, scale.reference)
        if score.model_logit is not None:
            share = scale.calibration.model_share(score.atypicality, score.model_logit)
            for item in evidence:
                item["weight"] = round(float(item["weight"]) * (1.0 - share), 4)
            evidence.append(model_evidence(score.model_logit, scale.model_real_logits, share))
            evidence.sort(key=lambda e: -float(e["weight"]))
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


def _decisive(hints: list[Hint]) -> DetectorVerdict | None:
    decisive = any(h.severity is HintSeverity.DECISIVE for h in hints)
    return DetectorVerdict.SYNTHETIC if decisive else None


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


def detector_folder(folder: str | Path | None = None) -> Path:
    """The detector folder ``folder`` names; None: the shipped one (package data)."""
    return Path(str(resources.files("radproof.detect") / MODEL_DIR)) if folder is None else Path(folder)


def read_config(folder: Path) -> dict[str, Any]:
    """The parsed ``detector.json`` of a detector folder, or a :class:`ConfigError` saying why not."""
    path = folder / CONFIG_NAME
    try:
        config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"detector configuration {path} not found (run `radproof train`)") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"detector configuration {path} cannot be read ({exc})") from None
    return config


@lru_cache(maxsize=1)
def default_detector() -> Detector:
    """The shipped detector, loaded once per process."""
    return Detector.load()


@lru_cache(maxsize=4)
def detector_from(folder: str | None) -> Detector:
    """The detector in ``folder`` (None: the shipped one), loaded once per process."""
    return default_detector() if folder is None else Detector.load(folder)


def _cleared_only_at_full_size(verdict: DetectorVerdict, work_size: int) -> DetectorVerdict:
    """``real`` becomes ``uncertain`` where the working size cannot vouch for an image."""
    if verdict == DetectorVerdict.REAL and not clears_as_real(work_size):
        return DetectorVerdict.UNCERTAIN
    return verdict
