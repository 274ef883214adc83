"""Inference of the shipped learned model (a small fully convolutional network) with onnxruntime.

The network sees only the normalized image (:mod:`radproof.detect.normalize`) and returns a map of
patch logits (positive = looks like a decoder reconstruction). Its mean is the image logit; the map
feeds the heatmap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radproof.errors import ConfigError


class OnnxModel:
    """A loaded ONNX detector network (one session, single-threaded, reusable for many images)."""

    def __init__(self, path: Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - onnxruntime is a core dependency
            raise ConfigError("onnxruntime is not installed; reinstall radproof") from exc
        if not path.is_file():
            raise ConfigError(f"detector model {path} not found")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session: Any = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self.path = path

    def logit_map(self, pixels: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Patch logits for one normalized image (2-D float32 in 0..1)."""
        batch = np.ascontiguousarray(pixels[None, None], dtype=np.float32)
        out = self._session.run(None, {self._input: batch})[0]
        result: npt.NDArray[np.float32] = np.asarray(out, dtype=np.float32).reshape(out.shape[-2:])
        return result

    def logit(self, pixels: npt.NDArray[np.float32]) -> tuple[float, npt.NDArray[np.float32]]:
        """(image logit, patch logit map)."""
        m = self.logit_map(pixels)
        return float(m.mean()), m
