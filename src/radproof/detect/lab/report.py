"""``radproof evaluate``: run the protocol on a manifest and render the tables (JSON or Markdown)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from radproof.detect.detector import Detector
from radproof.detect.lab.evaluate import (
    Fitted,
    judged_rows,
    leave_one_generator_out,
    leave_one_generator_out_as_judged,
    leave_one_generator_out_fits,
    leave_one_set_out,
    leave_one_set_out_as_judged,
    metadata_only_auc,
    per_group,
    perturbation_suite,
    site_adaptation,
)
from radproof.detect.lab.features import measure_items_at, measure_processed
from radproof.detect.lab.manifest import in_holdout, read_manifest, subsample
from radproof.detect.lab.metrics import metrics
from radproof.detect.normalize import REFERENCE_SIDE, SMALL_SIDE, SMALL_WORK_SIZE, WORK_SIZE


def run_evaluation(
    manifest: Path,
    *,
    detector_dir: Path | None = None,
    per_set: int = 40,
    protocol: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every table of docs/detector.md for ``manifest`` (see :mod:`radproof.detect.lab.evaluate`)."""
    say = progress or (lambda _m: None)
    items = read_manifest(manifest)
    detector = Detector.load(detector_dir)
    say(f"measuring {len(items)} images")

    def count(k: int, n: int) -> None:
        if k and k % 250 == 0:
            say(f"  {k}/{n}")

    # The thumbnail protocol needs every image shrunk too: measured in the same pass (one load each).
    # The protocol refits the detector, so its main table holds what `radproof train` fits on.
    sizes = (None, SMALL_WORK_SIZE) if protocol else (None,)
    table, *small_tables = measure_items_at(items, sizes, None, detector.model, count, reference=protocol)
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
        processed, small_processed = measure_processed(
            items, detector.model, progress=count, work_sizes=(None, SMALL_WORK_SIZE), reference=True
        )
        say("leave-one-generator-out")
        folds = leave_one_generator_out_fits(table, processed, small_tables[0], small_processed)
        # Headline tables: every held-out image judged at the size the detector picks for it.
        judged = judged_rows(table, small_tables[0])
        out["leave_one_generator_out"] = leave_one_generator_out_as_judged(folds, judged)
        say("leave-one-set-out")
        out["leave_one_set_out"] = leave_one_set_out_as_judged(table, processed, small_tables[0], small_processed)
        out["main_size"] = {
            "work_size": WORK_SIZE,
            "leave_one_generator_out": leave_one_generator_out(table, processed),
            "leave_one_set_out": leave_one_set_out(table, processed),
        }
        say("site adaptation")
        out["site_adaptation"] = site_adaptation(table, processed)
        say(f"the same protocol with every image as a {SMALL_WORK_SIZE} px thumbnail")
        out["thumbnail"] = {
            "work_size": SMALL_WORK_SIZE,
            "leave_one_generator_out": leave_one_generator_out(
                small_tables[0], small_processed, work_size=SMALL_WORK_SIZE
            ),
            "leave_one_set_out": leave_one_set_out(small_tables[0], small_processed, work_size=SMALL_WORK_SIZE),
        }
    thumbnail = detector.thumbnail
    shipped = Fitted(
        detector.reference,
        detector.calibration,
        None if thumbnail is None else Fitted(thumbnail.reference, thumbnail.calibration, work_size=SMALL_WORK_SIZE),
    )
    # Each image as the detector judges it: at the main size, or as a thumbnail.
    judged = judged_rows(table, small_tables[0] if small_tables else None)
    p = shipped.scores(judged)
    t = shipped.thresholds(judged)
    out["shipped"] = {
        "threshold": detector.calibration.threshold_synthetic,
        "note": "the shipped detector was fitted on this data when it is the development manifest (in-sample)",
        "overall": metrics(judged.labels, p, t, real_threshold=shipped.real_thresholds(judged)),
        "per_generator": per_group(judged, p, t, "generator"),
        "per_set": per_group(judged, p, t, "set"),
        "per_body_part": per_group(judged, p, t, "body_part"),
    }
    if per_set > 0:
        say("perturbation suite")
        # Real images from the protocol's hold-out only, so that the leave-one-generator-out folds
        # judge images outside their training part too.
        sample = subsample([i for i in table.items if i.label == 1 or in_holdout(i)], per_set)
        out["perturbations"] = {
            "images": len(sample),
            "rows": perturbation_suite(sample, shipped, detector.model, unseen=folds if protocol else None),
        }
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
        "# Detector evaluation\n\n"
        f"Generated by `radproof evaluate {Path(results['manifest']).name} --markdown OUT.md` "
        "(see docs/detector.md for the protocol and what the numbers mean).\n",
        f"Manifest: `{Path(results['manifest']).name}`, {results['images']} images, "
        f"{len(results['unusable'])} unusable (reported as uncertain), learned model: {results['model']}.\n",
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
        "real_uncertain",
        "synthetic_called_real",
        "ece",
        "threshold",
    ]
    set_cols = ["fold", "n_real", "specificity", "uncertain_or_synthetic", "median_probability", "threshold"]
    if "leave_one_generator_out" in results:
        parts.append(
            f"Every held-out image is judged as the detector judges it: at {WORK_SIZE} px, or as a "
            f"{SMALL_WORK_SIZE} px thumbnail when its short side is under {SMALL_SIDE} px, each at its "
            "size's threshold (the threshold column is the main size's). Each fold is fitted at both "
            f"sizes; from {REFERENCE_SIDE} px up an image also takes part in the {WORK_SIZE} px fit.\n"
        )
        parts.append("### Leave-one-generator-out (held-out generator vs 30 % held-out real images)\n")
        parts.append(_table(results["leave_one_generator_out"], metric_cols))
        parts.append("### Leave-one-set-out (specificity on a real set never seen in fitting)\n")
        parts.append(_table(results["leave_one_set_out"], set_cols))
    if "main_size" in results:
        main = results["main_size"]
        parts.append(
            f"### Full-size images only: the same two tables with the images judged at {main['work_size']} px\n"
        )
        parts.append(_table(main["leave_one_generator_out"], metric_cols))
        parts.append(_table(main["leave_one_set_out"], set_cols))
    if "site_adaptation" in results:
        parts.append(
            "### Site adaptation (`radproof adapt`, full-size images): a real set left out, then half of it added; "
            "specificity on its other half, sensitivity on a held-out generator (mean over generators)\n"
        )
        parts.append(
            _table(
                results["site_adaptation"],
                [
                    "fold",
                    "n_adapt",
                    "n_test",
                    "specificity_unadapted",
                    "specificity_adapted",
                    "sensitivity_unadapted",
                    "sensitivity_adapted",
                ],
            )
        )
    if "thumbnail" in results:
        small = results["thumbnail"]
        parts.append(
            f"### Thumbnails: the same protocol with every image shrunk to {small['work_size']} px "
            f"(the reference and calibration used for inputs under {SMALL_SIDE} px; here every image "
            "is tested at that size)\n"
        )
        parts.append(_table(small["leave_one_generator_out"], metric_cols))
        parts.append(_table(small["leave_one_set_out"], set_cols))
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
        if pert["rows"] and "unseen_generator_auc" in pert["rows"][0]:
            generators = sorted(pert["rows"][0]["unseen_generator_auc"])
            parts.append(
                "The same perturbations judged by each leave-one-generator-out fold on the generator it "
                "did not see (against the held-out real images of the sample): AUC (drop from clean)\n"
            )
            unseen = [
                {
                    "perturbation": r["perturbation"],
                    **{
                        g: f"{_fmt(r['unseen_generator_auc'][g])} ({_fmt(r['unseen_generator_auc_drop'][g])})"
                        for g in generators
                    },
                    "largest_drop": r["largest_unseen_generator_drop"],
                }
                for r in pert["rows"]
            ]
            parts.append(_table(unseen, ["perturbation", *generators, "largest_drop"]))
            parts.append(
                "A forger's view: only the generated images are perturbed, the real ones stay as they "
                "were; each fold judges the generator it did not see. AUC against the clean real images, "
                "share still called synthetic, share called real\n"
            )
            forged = [
                {
                    "perturbation": r["perturbation"],
                    **{
                        g: " / ".join(_fmt(r["forged"][g][k]) for k in ("auc", "caught", "called_real"))
                        for g in generators
                        if g in r["forged"]
                    },
                }
                for r in pert["rows"]
            ]
            parts.append(_table(forged, ["perturbation", *generators]))
    return "\n".join(parts)


def mean_of(rows: Sequence[dict[str, Any]], key: str) -> float:
    vals = [float(r[key]) for r in rows if key in r and not math.isnan(float(r[key]))]
    return float(np.mean(vals)) if vals else float("nan")
