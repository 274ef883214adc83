"""Commissioning the detector at a site: add a hospital's own real radiographs to the reference.

Every hospital processes its images in its own way (detector, vendor look-up tables, contrast
equalization, export resizing and compression), and a reference built from other sources can
mistake an unfamiliar chain for generation. Measured on the development data, leaving a real set
out and then adding half of its images (the other half tested) raises its specificity, e.g. for
CLAHE-processed knee images and web-sourced knee radiographs with implants (docs/detector.md).

:func:`adapt_detector` refits the detector on the rows it was trained on (stored beside it, see
:func:`save_rows`) plus the site's images, all of them real: the network is unchanged, the
reference and calibration of both working sizes are refitted, and the new detector folder records
where it came from. Only cue values, network logits, labels, source names and hashed keys are
stored: no pixels, no file names.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radproof.detect.detector import CONFIG_NAME, detector_folder, read_config
from radproof.detect.lab.evaluate import Fitted, fit
from radproof.detect.lab.features import FeatureTable, concat_tables, measure_items_at, restrict
from radproof.detect.lab.manifest import Item
from radproof.detect.model import OnnxModel
from radproof.detect.normalize import SMALL_WORK_SIZE, WORK_SIZE
from radproof.errors import ConfigError, InputError
from radproof.fileio import atomic_write_bytes

#: File beside detector.json holding the cue rows the detector was fitted on.
ROWS_FILE = "detector-rows.npz"
#: Fewest usable site images accepted (fewer say little about a site's processing).
MIN_SITE_IMAGES = 20
SIZES = (WORK_SIZE, SMALL_WORK_SIZE)


@dataclass(frozen=True)
class Rows:
    """The rows one working size was fitted on: the table and the processed copies of its reals."""

    table: FeatureTable
    processed: FeatureTable


def _arrays(table: FeatureTable, prefix: str) -> dict[str, npt.NDArray[Any]]:
    return {
        f"{prefix}values": table.values,
        f"{prefix}logits": table.logits if table.logits is not None else np.zeros(0),
        f"{prefix}labels": table.labels,
        f"{prefix}sets": np.array([i.set for i in table.items], dtype=str),
        f"{prefix}keys": np.array([row_key(i.path.name) for i in table.items], dtype=str),
    }


def row_key(name: str) -> str:
    """A key that links a processed copy to its original without keeping the file name (which, at
    a hospital, may hold a patient's name)."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def save_rows(path: Path, rows: dict[int, Rows]) -> None:
    """Write the fitted rows of every working size (cue values, logits, labels, source names)."""
    arrays: dict[str, npt.NDArray[Any]] = {}
    for size, r in rows.items():
        arrays |= _arrays(r.table, f"s{size}_")
        arrays |= _arrays(r.processed, f"s{size}_processed_")
        arrays["names"] = np.array(r.table.names, dtype=str)
    buf = io.BytesIO()
    np.savez_compressed(buf, allow_pickle=False, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _table(data: Any, prefix: str, names: list[str], size: int) -> FeatureTable:
    labels = data[f"{prefix}labels"]
    sets, keys = data[f"{prefix}sets"].tolist(), data[f"{prefix}keys"].tolist()
    items = [
        Item(path=Path(k), label=int(y), set=s, generator="real" if y == 0 else "synthetic", body_part="")
        for k, y, s in zip(keys, labels.tolist(), sets, strict=True)
    ]
    logits = data[f"{prefix}logits"]
    return FeatureTable(
        items=items,
        names=names,
        values=np.asarray(data[f"{prefix}values"], dtype=np.float64).reshape(len(items), len(names)),
        logits=np.asarray(logits, dtype=np.float64) if logits.size or not items else None,
        sizes=np.full(len(items), size, dtype=np.int_),
    )


def load_rows(path: Path) -> dict[int, Rows]:
    """The rows :func:`save_rows` wrote."""
    try:
        with np.load(path, allow_pickle=False) as data:
            names = data["names"].tolist()
            return {
                size: Rows(
                    _table(data, f"s{size}_", names, size),
                    _table(data, f"s{size}_processed_", names, size),
                )
                for size in SIZES
                if f"s{size}_values" in data
            }
    except FileNotFoundError:
        raise ConfigError(
            f"{path} not found: this detector was built without its training rows (rebuild it with `radproof train`)"
        ) from None
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{path} cannot be read ({exc})") from None


def scale_json(fitted: Fitted, table: FeatureTable) -> dict[str, Any]:
    """One working size's part of detector.json: reference, calibration and, with a network, where
    the real images' logits fall (for the evidence sentence)."""
    out: dict[str, Any] = {
        "work_size": fitted.work_size,
        "reference": fitted.reference.to_json(),
        "calibration": fitted.calibration.to_json(),
    }
    if table.logits is not None:
        real = table.logits[table.labels == 0]
        out["real_logit_quantiles"] = [float(v) for v in np.percentile(real, np.arange(0, 101))]
    return out


def write_detector(
    output: Path,
    scales: dict[int, dict[str, Any]],
    rows: dict[int, Rows],
    *,
    model_file: str | None,
    provenance: dict[str, Any],
) -> dict[str, Any]:
    """Write ``output/detector.json`` (both working sizes) and the rows beside it; return the config."""
    main = scales[WORK_SIZE]
    model = None
    if model_file is not None and "real_logit_quantiles" in main:
        model = {"file": model_file, "real_logit_quantiles": main["real_logit_quantiles"]}
    config = {
        "version": 1,
        "reference": main["reference"],
        "calibration": main["calibration"],
        "thumbnail": scales[SMALL_WORK_SIZE],
        "model": model,
        "provenance": provenance,
    }
    output.mkdir(parents=True, exist_ok=True)
    save_rows(output / ROWS_FILE, rows)
    atomic_write_bytes(output / CONFIG_NAME, json.dumps(config, indent=1).encode("utf-8"))
    return config


def _site_items(paths: Sequence[Path], site: str) -> list[Item]:
    from radproof.imaging.folders import image_paths

    return [Item(path=p, label=0, set=site, generator="real", body_part="") for p in image_paths(paths)]


def _rates(fitted: Fitted, table: FeatureTable, mask: npt.NDArray[np.bool_]) -> float:
    """Share of the selected rows at or over the synthetic threshold."""
    if not mask.any():
        return float("nan")
    return float(np.mean(fitted.scores(table, mask) >= fitted.calibration.threshold_synthetic))


def _two_fold(table: FeatureTable, processed: FeatureTable, is_site: npt.NDArray[np.bool_], size: int) -> float | None:
    """Share of the site's images judged synthetic by a detector adapted on the OTHER half of them.

    An honest estimate of what the adapted detector will do with the site's next images (the
    in-sample figure is optimistic). None with fewer than ``2 * MIN_SITE_IMAGES`` images.
    """
    if int(is_site.sum()) < 2 * MIN_SITE_IMAGES:
        return None
    halves = np.array([int(hashlib.sha256(i.path.name.encode()).digest()[0]) % 2 for i in table.items])
    flagged = 0
    for half in (0, 1):
        held = is_site & (halves == half)
        fitted = fit(table, ~held, "two-fold check", processed, work_size=size)
        flagged += int(np.sum(fitted.scores(table, held) >= fitted.calibration.threshold_synthetic))
    return flagged / int(is_site.sum())


def adapt_detector(
    paths: Sequence[Path],
    output: Path,
    *,
    base: Path | None = None,
    site: str = "site",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Refit the detector in ``base`` (default: the shipped one) with the real images under ``paths``.

    Writes ``output/detector.json``, the network (unchanged) and the rows (the base's plus the
    site's, so a site can be adapted again later). Returns a summary: images used and skipped; at
    the working size most of the site's images are judged at (``judged_at``), for the site's images
    judged there and the development fakes, the share flagged synthetic before and after (on
    images the fit has seen: a guide); and ``site_flagged_unseen``, the share of the site's images
    flagged by a detector adapted on the other half of them (two-fold; the estimate for the site's
    next images; None under 40 images).
    """
    base_dir = detector_folder(base)
    config = read_config(base_dir)
    rows = load_rows(base_dir / ROWS_FILE)
    if set(rows) != set(SIZES) or not config.get("thumbnail"):
        raise ConfigError(f"{base_dir}: the detector lacks a working size; rebuild it with `radproof train`")
    spec = config.get("model")
    model = OnnxModel(base_dir / str(spec["file"])) if spec else None
    if (model is None) != (rows[WORK_SIZE].table.logits is None):
        raise ConfigError(f"{base_dir}: the stored rows and the network do not match")
    items = _site_items(paths, site)
    if site in {i.set for i in rows[WORK_SIZE].table.items}:
        raise InputError(f"the detector already holds a source named {site!r}; choose another --name")
    # As `radproof train` does: images from REFERENCE_SIDE up join the main reference.
    site_tables = measure_items_at(items, (None, SMALL_WORK_SIZE), None, model, progress, reference=True)
    site_tables = [restrict(t, t.work_sizes() == size) for t, size in zip(site_tables, SIZES, strict=True)]
    main_site = site_tables[0]
    if len(main_site.items) < MIN_SITE_IMAGES:
        raise InputError(
            f"{len(main_site.items)} usable site images at full size (of {len(items)} found); "
            f"at least {MIN_SITE_IMAGES} real radiographs of the site are needed"
        )
    # The summary speaks of the size most of the site's images are judged at.
    judged = [t.routed() for t in site_tables]
    summary_size = WORK_SIZE if judged[0].sum() >= judged[1].sum() else SMALL_WORK_SIZE
    scales: dict[int, dict[str, Any]] = {}
    new_rows: dict[int, Rows] = {}
    summary: dict[str, Any] = {"site": site, "images": len(items), "skipped": main_site.failed}
    for size, site_table, site_judged in zip(SIZES, site_tables, judged, strict=True):
        old = rows[size]
        table = concat_tables([old.table, site_table])
        every = np.ones(len(table.items), dtype=bool)
        description = (
            f"{int((table.labels == 0).sum())} real radiographs at {size} px, {len(site_table.items)} of them "
            f"from {site} (+{len(old.processed.items)} processed copies)"
        )
        after = fit(table, every, description, old.processed, work_size=size)
        if size == summary_size:
            before = fit(old.table, np.ones(len(old.table.items), dtype=bool), "base", old.processed, work_size=size)
            is_site = np.concatenate([np.zeros(len(old.table.items), dtype=bool), site_judged])
            summary |= {
                "used": len(main_site.items),
                "judged_at": size,
                "site_flagged_before": _rates(before, site_table, site_judged),
                "site_flagged_after": _rates(after, table, is_site),
                "development_fakes_flagged_before": _rates(before, old.table, old.table.labels == 1),
                "development_fakes_flagged_after": _rates(after, table, table.labels == 1),
                "site_flagged_unseen": _two_fold(table, old.processed, is_site, size),
            }
        scales[size] = scale_json(after, table)
        new_rows[size] = Rows(table, old.processed)
    provenance = dict(config.get("provenance", {}))
    provenance["adapted"] = [*provenance.get("adapted", []), {"site": site, "images": summary["used"]}]
    model_file = None if spec is None else str(spec["file"])
    write_detector(output, scales, new_rows, model_file=model_file, provenance=provenance)
    if model_file is not None and output.resolve() != base_dir.resolve():
        shutil.copyfile(base_dir / model_file, output / model_file)
    summary["output"] = str(output)
    summary["skipped"] = [{"path": str(i.path), "reason": r} for i, r in summary["skipped"]]
    return summary
