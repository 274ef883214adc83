"""``radproof evaluate``: run the protocol on a manifest and render the tables (JSON or Markdown)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from radproof.detect.detector import Detector
from radproof.detect.evaluate import (
    Fitted,
    leave_one_generator_out,
    leave_one_set_out,
    measure_items,
    measure_processed,
    metadata_only_auc,
    metrics,
    per_group,
    perturbation_suite,
    read_manifest,
    subsample,
)


def run_evaluation(
    manifest: Path,
    *,
    detector_dir: Path | None = None,
    per_set: int = 40,
    protocol: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every table of docs/detector.md for ``manifest`` (see :mod:`radproof.detect.evaluate`)."""
    say = progress or (lambda _m: None)
    items = read_manifest(manifest)
    detector = Detector.load(detector_dir)
    say(f"measuring {len(items)} images")
    table = measure_items(
        items, None, detector.model, progress=lambda k, n: say(f"  {k}/{n}") if k and k % 250 == 0 else None
    )
    out: dict[str, Any] = {
        "manifest": str(manifest),
        "images": len(items),
        "unusable": [{"path": str(i.path), "reason": r} for i, r in table.failed],
        "model": detector.model is not None,
        "metadata_only_auc": {
            "raw_files": metadata_only_auc(table.items, normalized_view=False),
            "normalized_pixel_track": metadata_only_auc(table.items, normalized_view=True),
        },
    }
    if protocol:
        say("hospital-style processing of the real images")
        processed = measure_processed(
            items, detector.model, progress=lambda k, n: say(f"  {k}/{n}") if k and k % 250 == 0 else None
        )
        say("leave-one-generator-out")
        out["leave_one_generator_out"] = leave_one_generator_out(table, processed)
        say("leave-one-set-out")
        out["leave_one_set_out"] = leave_one_set_out(table, processed)
    shipped = Fitted(detector.reference, detector.calibration)
    p = shipped.scores(table)
    t = detector.calibration.threshold_synthetic
    out["shipped"] = {
        "threshold": t,
        "note": "the shipped detector was fitted on this data when it is the development manifest (in-sample)",
        "overall": metrics(table.labels, p, t),
        "per_generator": per_group(table, p, t, "generator"),
        "per_set": per_group(table, p, t, "set"),
        "per_body_part": per_group(table, p, t, "body_part"),
    }
    if per_set > 0:
        say("perturbation suite")
        sample = subsample(table.items, per_set)
        out["perturbations"] = {"images": len(sample), "rows": perturbation_suite(sample, shipped, detector.model)}
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)\n"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def render_markdown(results: dict[str, Any]) -> str:
    """The evaluation as Markdown tables."""
    parts = [
        f"Manifest: `{Path(results['manifest']).name}`, {results['images']} images, "
        f"{len(results['unusable'])} unusable (reported as uncertain), learned model: {results['model']}.\n"
    ]
    meta = results["metadata_only_auc"]
    parts.append(
        f"Metadata-only classifier (size, format): AUC {meta['raw_files']:.3f} on the raw files, "
        f"{meta['normalized_pixel_track']:.3f} on what the pixel layer sees.\n"
    )
    metric_cols = [
        "fold",
        "n_real",
        "n_synthetic",
        "auc",
        "auc_ci_low",
        "auc_ci_high",
        "balanced_accuracy",
        "specificity",
        "sensitivity",
        "tpr_at_1pct_fpr",
        "tpr_at_5pct_fpr",
        "ece",
        "threshold",
    ]
    if "leave_one_generator_out" in results:
        parts.append("### Leave-one-generator-out (held-out generator vs 30 % held-out real images)\n")
        parts.append(_table(results["leave_one_generator_out"], metric_cols))
        parts.append("### Leave-one-set-out (specificity on a real set never seen in fitting)\n")
        parts.append(
            _table(
                results["leave_one_set_out"],
                ["fold", "n_real", "specificity", "uncertain_or_synthetic", "median_probability", "threshold"],
            )
        )
    shipped = results["shipped"]
    parts.append("### Shipped detector on this manifest (in-sample for the development data)\n")
    parts.append(_table([{"fold": "all", **shipped["overall"], "threshold": shipped["threshold"]}], metric_cols))
    for key, title in (("per_generator", "generator"), ("per_set", "set"), ("per_body_part", "body_part")):
        parts.append(f"Per {title}:\n\n")
        parts.append(_table(shipped[key], [title, "label", "n", "flagged_synthetic", "median_probability"]))
    if "perturbations" in results:
        pert = results["perturbations"]
        parts.append(f"### Perturbation suite ({pert['images']} images, shipped detector)\n")
        parts.append(_table(pert["rows"], ["perturbation", "auc", "auc_drop", "balanced_accuracy", "unusable"]))
    return "\n".join(parts)


def mean_of(rows: Sequence[dict[str, Any]], key: str) -> float:
    vals = [float(r[key]) for r in rows if key in r and not math.isnan(float(r[key]))]
    return float(np.mean(vals)) if vals else float("nan")
