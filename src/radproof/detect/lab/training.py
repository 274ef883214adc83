"""Rebuilding the shipped detector: reference statistics, calibration and (optionally) the network.

The cue layer needs no deep-learning framework: its reference comes from the real images of the
manifest and its calibration from all of them. The network is trained by :mod:`radproof.detect.lab.train`
(torch, the ``train`` extra) or taken from an existing ONNX file.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from radproof.detect.lab.adapt import Rows, scale_json, write_detector
from radproof.detect.lab.evaluate import fit
from radproof.detect.lab.features import measure_items_at, measure_processed, restrict
from radproof.detect.lab.manifest import read_manifest
from radproof.detect.model import OnnxModel
from radproof.detect.normalize import SMALL_WORK_SIZE, WORK_SIZE
from radproof.errors import InputError

MODEL_FILE = "detector.onnx"


def train_detector(
    manifest: Path,
    output: Path,
    *,
    cnn: bool = False,
    model_file: Path | None = None,
    pairs: Path | None = None,
    taef2: Path | None = None,
    epochs: int = 160,
    autoencoder_steps: int = 1500,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Write ``output/detector.json`` (and ``detector.onnx`` with a network); return a summary."""
    say = progress or (lambda _m: None)
    items = read_manifest(manifest)
    output.mkdir(parents=True, exist_ok=True)
    onnx_path = output / MODEL_FILE
    if cnn:
        from radproof.detect.lab.train.network import train_network

        say("training the network")
        train_network(
            items,
            onnx_path,
            pairs=pairs,
            taef2=taef2,
            epochs=epochs,
            device=device,
            ae_steps=autoencoder_steps,
            progress=say,
        )
    elif model_file is not None:
        if not model_file.is_file():
            raise InputError(f"{model_file}: no such model file")
        if model_file.resolve() != onnx_path.resolve():
            shutil.copyfile(model_file, onnx_path)
    model = OnnxModel(onnx_path) if (cnn or model_file is not None) else None
    # Main size: the images that can be brought to it by at most 4/3 (the detector judges only the
    # ones that need no up-sampling there). Thumbnails: every image, shrunk.
    sizes = (WORK_SIZE, SMALL_WORK_SIZE)
    forced = (None, SMALL_WORK_SIZE)
    say(f"measuring {len(items)} images at {' and '.join(f'{s} px' for s in sizes)}")
    tables = measure_items_at(items, forced, None, model, reference=True)
    say("measuring real images after hospital-style processing")
    processed_tables = measure_processed(items, model, work_sizes=forced, reference=True)
    scales: dict[int, dict[str, Any]] = {}
    rows: dict[int, Rows] = {}
    for size, table, processed in zip(sizes, tables, processed_tables, strict=True):
        table = restrict(table, table.work_sizes() == size)
        processed = restrict(processed, processed.work_sizes() == size)
        rows[size] = Rows(table, processed)
        fitted = fit(
            table,
            np.ones(len(table.items), dtype=bool),
            f"{int((table.labels == 0).sum())} real radiographs of {manifest.name} at {size} px"
            f" (+{len(processed.items)} processed copies)",
            processed,
            work_size=size,
        )
        scales[size] = scale_json(fitted, table)
    table, processed = rows[WORK_SIZE].table, rows[WORK_SIZE].processed
    provenance = {
        "command": f"radproof train {manifest.name} -o {output.name}"
        + (" --cnn" if cnn else "")
        + (f" --model-file {MODEL_FILE}" if model_file is not None else ""),
        "n_images": len(table.items),
        "n_real": int((table.labels == 0).sum()),
        "n_synthetic": int((table.labels == 1).sum()),
        "skipped": len(table.failed),
        "processed_real_copies": len(processed.items),
    }
    # The rows beside detector.json are what `radproof adapt` refits from.
    config = write_detector(output, scales, rows, model_file=MODEL_FILE, provenance=provenance)
    if not cnn and model_file is None and onnx_path.exists():
        onnx_path.unlink()
    return {
        "output": str(output),
        "images": len(table.items),
        "skipped": len(table.failed),
        "calibration": config["calibration"],
        "thumbnail_calibration": scales[SMALL_WORK_SIZE]["calibration"],
        "model": config["model"] is not None,
    }
