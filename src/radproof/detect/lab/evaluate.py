"""Evaluation of the detector on a labelled manifest (:mod:`~radproof.detect.lab.manifest`): fits,
protocol folds and the perturbation suite, on the rows of :mod:`~radproof.detect.lab.features`.

Thresholds are always fixed on the training part of a fold before its test part is scored.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from radproof.detect.fusion import Calibration, features, fit_calibration
from radproof.detect.lab.features import (
    FeatureTable,
    concat_tables,
    measure_items,
    restrict,
)
from radproof.detect.lab.manifest import Item, in_holdout
from radproof.detect.lab.metrics import auc, metrics
from radproof.detect.lab.perturbations import PERTURBATIONS
from radproof.detect.model import OnnxModel
from radproof.detect.normalize import WORK_SIZE, clears_as_real
from radproof.detect.reference import Reference, build_reference

FloatArray = npt.NDArray[np.float64]
#: Widen cue scales by the spread between real sources (see reference.CueReference.deviation).
BETWEEN_SETS = False  # measured: widening by the between-set spread did not help leave-one-set-out
#: Give every real source the same weight in the calibration and its threshold.
EQUAL_SOURCES = False  # measured: specificity on unseen sources up, sensitivity on unseen generators down


# -- scoring --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fitted:
    """Reference + calibration fitted on one training part (and, optionally, the same at the
    thumbnail working size)."""

    reference: Reference
    calibration: Calibration
    thumbnail: Fitted | None = None
    work_size: int = WORK_SIZE

    def at(self, work_size: int) -> Fitted | None:
        """The fit that judges images normalized to ``work_size`` (None: the detector abstains)."""
        if work_size == self.work_size:
            return self
        return self.thumbnail if self.thumbnail is not None and self.thumbnail.work_size == work_size else None

    def scores(self, table: FeatureTable, mask: npt.NDArray[np.bool_] | None = None) -> FloatArray:
        """Calibrated probability of every (selected) row, each at its own working size; 0.5 where
        this fit has no reference for that size (the detector answers "uncertain")."""
        rows = table.rows(mask)
        logits = table.logits if table.logits is not None else None
        idx = np.flatnonzero(mask) if mask is not None else np.arange(len(rows))
        sizes = table.work_sizes()
        out = np.full(len(rows), 0.5)
        for k, (r, i) in enumerate(zip(rows, idx, strict=True)):
            fit = self.at(int(sizes[i]))
            if fit is not None:
                logit = None if logits is None else float(logits[i])
                out[k] = fit.calibration.probability(fit.reference.atypicality(r), logit)
        return out

    def thresholds(self, table: FeatureTable) -> FloatArray:
        """The synthetic threshold that applies to each row (its working size's; infinite where
        this fit has no reference for that size: an "uncertain" answer never counts as synthetic)."""
        return np.array([np.inf if f is None else f.calibration.threshold_synthetic for f in self._fits(table)])

    def real_thresholds(self, table: FeatureTable) -> FloatArray:
        """The real threshold that applies to each row (below it: "real"; minus infinity where this
        fit has no reference for that size, since such a row is never called real)."""
        return np.array([-np.inf if f is None else f.real_threshold for f in self._fits(table)])

    @property
    def real_threshold(self) -> float:
        """Below it the verdict is "real"; minus infinity at a size that never clears an image
        (:func:`~radproof.detect.normalize.clears_as_real`)."""
        return self.calibration.threshold_real if clears_as_real(self.work_size) else -np.inf

    def _fits(self, table: FeatureTable) -> list[Fitted | None]:
        return [self.at(int(s)) for s in table.work_sizes()]


def fit(
    table: FeatureTable,
    train: npt.NDArray[np.bool_],
    description: str,
    processed: FeatureTable | None = None,
    *,
    work_size: int = WORK_SIZE,
) -> Fitted:
    """Reference from the training reals, calibration from the training reals and fakes.

    ``processed`` holds cue values of real images after hospital-style processing
    (:data:`PROCESSINGS`); the rows whose original is a training real join the real side of both
    the reference and the calibration, so a processing chain never seen in the data is less
    likely to pass for generation. Only rows measured at ``work_size`` are used (cue values at
    different working sizes are not comparable).
    """
    train = train & (table.work_sizes() == work_size)
    if processed is not None:
        processed = restrict(processed, processed.work_sizes() == work_size)
    labels = table.labels
    real_mask = train & (labels == 0)
    real_rows = table.rows(real_mask)
    groups = [i.set for i, m in zip(table.items, real_mask, strict=True) if m]
    rows = table.rows(train)
    sources = [i.set for i, m in zip(table.items, train, strict=True) if m]
    y = labels[train]
    logits: FloatArray | None = table.logits[train] if table.logits is not None else None
    if processed is not None and processed.items:
        training_reals = {i.path for i, m in zip(table.items, real_mask, strict=True) if m}
        extra = np.array([i.path in training_reals for i in processed.items])
        real_rows += processed.rows(extra)
        groups += [i.set for i, m in zip(processed.items, extra, strict=True) if m]
        rows += processed.rows(extra)
        sources += [i.set for i, m in zip(processed.items, extra, strict=True) if m]
        y = np.concatenate([y, np.zeros(int(extra.sum()), dtype=y.dtype)])
        if logits is not None:
            if processed.logits is None:
                raise ValueError("the processed copies were measured without the model the table used")
            logits = np.concatenate([logits, processed.logits[extra]])
    reference = build_reference(real_rows, table.names, description, groups if BETWEEN_SETS else None)
    x = np.array(
        [features(reference.atypicality(r), None if logits is None else float(logits[i])) for i, r in enumerate(rows)]
    )
    calibration = fit_calibration(x, y, use_model=logits is not None, groups=sources if EQUAL_SOURCES else None)
    return Fitted(reference, calibration, work_size=work_size)


# -- protocol -------------------------------------------------------------------------------------


def leave_one_generator_out(
    table: FeatureTable, processed: FeatureTable | None = None, *, work_size: int = WORK_SIZE
) -> list[dict[str, Any]]:
    """For each generator: fit on the other generators and 70 % of the reals, test on it and the other 30 %.

    Only rows at ``work_size`` take part (run it on a table measured at that size); rows kept for
    the reference only (:meth:`FeatureTable.reference_only`) are fitted on, never tested, and a
    generator without other rows is left out (its images are judged at another size).
    """
    table = restrict(table, table.work_sizes() == work_size)
    labels = table.labels
    testable = ~table.reference_only()
    results = []
    for g in _generators(table):
        train = _logo_training(table, g)
        test = ~train & testable
        if not np.any(test & (labels == 1)):
            continue
        fitted = fit(table, train, f"fold without {g}", processed, work_size=work_size)
        p = fitted.scores(table, test)
        cal = fitted.calibration
        m = metrics(labels[test], p, cal.threshold_synthetic, real_threshold=fitted.real_threshold)
        results.append({"fold": f"generator={g}", **m, "threshold": cal.threshold_synthetic})
    return results


def _generators(table: FeatureTable) -> list[str]:
    return sorted({i.generator for i in table.items if i.label == 1})


def _in_logo_test(item: Item, generator: str) -> bool:
    """Whether ``item`` is tested (not fitted) in the leave-one-generator-out fold without ``generator``:
    that generator's images and the 30 % real hold-out."""
    return item.generator == generator if item.label == 1 else in_holdout(item)


def _logo_training(table: FeatureTable, generator: str) -> npt.NDArray[np.bool_]:
    """The training rows of the leave-one-generator-out fold without ``generator``."""
    return np.array([not _in_logo_test(i, generator) for i in table.items])


def leave_one_generator_out_fits(
    table: FeatureTable,
    processed: FeatureTable | None,
    small: FeatureTable,
    small_processed: FeatureTable | None,
) -> dict[str, Fitted]:
    """Each leave-one-generator-out fold as a whole detector: fitted at the working size on ``table``
    and at the thumbnail size on ``small`` (every image measured at that size), so that it judges a
    perturbed image at whichever size the detector would pick for it."""
    return {g: _fit_both_sizes(table, processed, small, small_processed, _in_logo_test, g) for g in _generators(table)}


def _fit_both_sizes(
    table: FeatureTable,
    processed: FeatureTable | None,
    small: FeatureTable,
    small_processed: FeatureTable | None,
    held_out: Callable[[Item, str], bool],
    key: str,
) -> Fitted:
    """The fold without ``key`` (the items ``held_out(item, key)`` selects), fitted at the working
    size on ``table`` and at the thumbnail size on ``small``."""
    size = int(small.work_sizes()[0]) if small.items else WORK_SIZE

    def training(t: FeatureTable) -> npt.NDArray[np.bool_]:
        return np.array([not held_out(i, key) for i in t.items], dtype=bool)

    full = fit(table, training(table), f"fold without {key}", processed)
    thumb = fit(small, training(small), f"fold without {key}", small_processed, work_size=size)
    return replace(full, thumbnail=thumb)


def judged_rows(table: FeatureTable, small: FeatureTable | None = None) -> FeatureTable:
    """Every image once, at the working size the detector judges it at: the routed rows of
    ``table`` and, when ``small`` (every image measured as a thumbnail) is given, the thumbnails
    from it and only the main-size rows from ``table``."""
    if small is None:
        return restrict(table, table.routed())
    main = restrict(table, table.routed() & (table.work_sizes() == WORK_SIZE))
    return concat_tables([main, restrict(small, small.routed())])


def leave_one_generator_out_as_judged(folds: Mapping[str, Fitted], judged: FeatureTable) -> list[dict[str, Any]]:
    """The leave-one-generator-out table with every held-out image judged as the detector would
    judge it: at the main size, or as a thumbnail under ``SMALL_SIDE``, each at its size's threshold.

    ``folds`` come from :func:`leave_one_generator_out_fits`, ``judged`` from :func:`judged_rows`.
    """
    labels = judged.labels
    results = []
    for g, fold in folds.items():
        test = np.array([_in_logo_test(i, g) for i in judged.items], dtype=bool)
        if not np.any(test & (labels == 1)):
            continue
        p = fold.scores(judged, test)
        m = metrics(labels[test], p, fold.thresholds(judged)[test], real_threshold=fold.real_thresholds(judged)[test])
        results.append({"fold": f"generator={g}", **m, "threshold": fold.calibration.threshold_synthetic})
    return results


def _of_real_set(item: Item, source: str) -> bool:
    return item.label == 0 and item.set == source


def _real_of(table: FeatureTable, source: str) -> npt.NDArray[np.bool_]:
    return np.array([_of_real_set(i, source) for i in table.items], dtype=bool)


def leave_one_set_out_as_judged(
    table: FeatureTable,
    processed: FeatureTable | None,
    small: FeatureTable,
    small_processed: FeatureTable | None,
) -> list[dict[str, Any]]:
    """The leave-one-set-out table with each real set fitted out at both working sizes and its
    images judged at the size the detector picks for each (the threshold column is the main size's)."""
    judged = judged_rows(table, small)
    results = []
    for s in sorted({i.set for i in judged.items if i.label == 0}):
        fold = _fit_both_sizes(table, processed, small, small_processed, _of_real_set, s)
        is_s = _real_of(judged, s)
        p = fold.scores(judged, is_s)
        results.append(
            {
                "fold": f"real set={s}",
                "n_real": int(is_s.sum()),
                "specificity": float(np.mean(p < fold.thresholds(judged)[is_s])),
                "uncertain_or_synthetic": float(np.mean(p >= fold.real_thresholds(judged)[is_s])),
                "median_probability": float(np.median(p)),
                "threshold": fold.calibration.threshold_synthetic,
            }
        )
    return results


def leave_one_set_out(
    table: FeatureTable, processed: FeatureTable | None = None, *, work_size: int = WORK_SIZE
) -> list[dict[str, Any]]:
    """For each real set: fit without it (all fakes kept for calibration), report specificity on it."""
    table = restrict(table, table.work_sizes() == work_size)
    testable = ~table.reference_only()
    sets = sorted({i.set for i, t in zip(table.items, testable, strict=True) if i.label == 0 and t})
    results = []
    for s in sets:
        is_s = _real_of(table, s)
        fitted = fit(table, ~is_s, f"fold without {s}", processed, work_size=work_size)
        is_s &= testable
        p = fitted.scores(table, is_s)
        t = fitted.calibration.threshold_synthetic
        results.append(
            {
                "fold": f"real set={s}",
                "n_real": int(is_s.sum()),
                "specificity": float(np.mean(p < t)),
                "uncertain_or_synthetic": float(np.mean(p >= fitted.real_threshold)),
                "median_probability": float(np.median(p)),
                "threshold": t,
            }
        )
    return results


def _site_half(item: Item) -> bool:
    """A fixed half of a source's images, used to adapt the detector to that source."""
    return hashlib.sha256(("site:" + item.path.name).encode()).digest()[0] < 128


#: Fewest images a real set needs to take part in the site-adaptation table (half adapt, half test).
SITE_MIN_IMAGES = 40


def site_adaptation(
    table: FeatureTable,
    processed: FeatureTable | None = None,
    *,
    work_size: int = WORK_SIZE,
    max_adapt: int | None = None,
    sets: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """What commissioning at a new site (``radproof adapt``) buys, and what it costs.

    For each real set with at least :data:`SITE_MIN_IMAGES` images and each generator: fit without
    the set, without the generator and without the 30 % real hold-out (unadapted), and again with
    a fixed half of the set added (adapted). Specificity is measured on the set's other half,
    sensitivity on the held-out generator, both at the fold's own threshold; the table gives the
    mean over the generators (``sensitivity_*`` per generator in ``by_generator``).
    ``max_adapt`` adds only the first images of that half (in a fixed hash order), to see how many a
    site needs; ``sets`` limits the table to those real sets.
    """
    table = restrict(table, table.work_sizes() == work_size)
    testable = ~table.reference_only()
    real_test = np.array([i.label == 0 and in_holdout(i) for i in table.items])
    gens = sorted({i.generator for i, t in zip(table.items, testable, strict=True) if i.label == 1 and t})
    results = []
    for s in sorted({i.set for i in table.items if i.label == 0}):
        is_s = _real_of(table, s)
        # A site's images judged at another size never join this size's reference in `radproof adapt`.
        if (is_s & testable).sum() < SITE_MIN_IMAGES or (sets is not None and s not in sets):
            continue
        adapt = is_s & testable & np.array([_site_half(i) for i in table.items])
        test = is_s & testable & ~adapt
        if max_adapt is not None:
            names = {int(k): table.items[k].path.name for k in np.flatnonzero(adapt)}
            order = sorted(names, key=lambda k: hashlib.sha256(names[k].encode()).digest())
            adapt = np.zeros_like(adapt)
            adapt[order[:max_adapt]] = True
        # As `radproof adapt` does: the site's images join as they are, without processed copies.
        others = None if processed is None else restrict(processed, np.array([i.set != s for i in processed.items]))
        spec: dict[str, list[float]] = {"unadapted": [], "adapted": []}
        sens: dict[str, list[float]] = {"unadapted": [], "adapted": []}
        for g in gens:
            is_g = np.array([i.label == 1 and i.generator == g for i in table.items])
            base = ~is_g & ~real_test & ~is_s
            for mode, train in (("unadapted", base), ("adapted", base | adapt)):
                fitted = fit(table, train, f"fold without {s} and {g} ({mode})", others, work_size=work_size)
                t = fitted.calibration.threshold_synthetic
                spec[mode].append(float(np.mean(fitted.scores(table, test) < t)))
                sens[mode].append(float(np.mean(fitted.scores(table, is_g & testable) >= t)))
        results.append(
            {
                "fold": f"real set={s}",
                "n_adapt": int(adapt.sum()),
                "n_test": int(test.sum()),
                "specificity_unadapted": float(np.mean(spec["unadapted"])),
                "specificity_adapted": float(np.mean(spec["adapted"])),
                "sensitivity_unadapted": float(np.mean(sens["unadapted"])),
                "sensitivity_adapted": float(np.mean(sens["adapted"])),
                "by_generator": {
                    g: {"unadapted": su, "adapted": sa}
                    for g, su, sa in zip(gens, sens["unadapted"], sens["adapted"], strict=True)
                },
            }
        )
    return results


def per_group(table: FeatureTable, p: FloatArray, threshold: float | FloatArray, key: str) -> list[dict[str, Any]]:
    """Per set / generator / body part: detection rate (fakes) or specificity (reals) at ``threshold``
    (one, or one per row)."""
    threshold = np.broadcast_to(np.asarray(threshold, dtype=np.float64), p.shape)
    groups: dict[str, list[int]] = {}
    for k, item in enumerate(table.items):
        groups.setdefault(str(getattr(item, key)), []).append(k)
    out = []
    for name, idx in sorted(groups.items()):
        sel = np.array(idx)
        labels = table.labels[sel]
        flagged = p[sel] >= threshold[sel]
        out.append(
            {
                key: name,
                "n": int(sel.size),
                "label": "synthetic" if labels.mean() > 0.5 else "real" if labels.mean() < 0.5 else "mixed",
                "flagged_synthetic": float(flagged.mean()),
                "median_probability": float(np.median(p[sel])),
            }
        )
    return out


def metadata_only_auc(items: Sequence[Item], normalized_view: bool) -> float:
    """Cross-validated AUC of a metadata-only classifier (size, format, bit depth).

    With ``normalized_view`` the classifier gets the same metadata of what the pixel layer sees (the
    normalized image), which is identical for every input, so it must be at chance (0.5).
    """

    rows = []
    for item in items:
        if normalized_view:
            rows.append([float(WORK_SIZE), float(WORK_SIZE), 8.0, 1.0, 0.0])
            continue
        try:
            with warnings.catch_warnings():  # corrupt EXIF blocks in some files
                warnings.simplefilter("ignore")
                im = Image.open(item.path)
            with im:
                w, h = im.size
                fmt = im.format or ""
        except Exception:
            w, h, fmt = 0, 0, "DICOM"
        rows.append([np.log1p(w), np.log1p(h), float(fmt == "PNG"), float(fmt == "JPEG"), float(fmt == "DICOM")])
    x = np.array(rows)
    y = np.array([i.label for i in items])
    # Two-fold cross-validated nearest-centroid score on standardized features.
    rng = np.random.default_rng(0)
    fold = rng.integers(0, 2, len(items))
    s = np.zeros(len(items))
    for f in (0, 1):
        tr, te = fold != f, fold == f
        mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-9
        z = (x - mu) / sd
        c1, c0 = z[tr & (y == 1)].mean(0), z[tr & (y == 0)].mean(0)
        s[te] = np.linalg.norm(z[te] - c0, axis=1) - np.linalg.norm(z[te] - c1, axis=1)
    return auc(y, s)


@dataclass(frozen=True)
class _Judged:
    """A detector's answers on a table, unusable images included (probability 0.5, never a
    confident verdict either way)."""

    items: list[Item]
    p: FloatArray
    threshold: FloatArray
    real_threshold: FloatArray
    unusable: float

    @property
    def labels(self) -> npt.NDArray[np.int_]:
        return np.array([i.label for i in self.items], dtype=np.int_)


def _judge(fitted: Fitted, table: FeatureTable) -> _Judged:
    n_failed = len(table.failed)
    items = [*table.items, *(i for i, _ in table.failed)]
    return _Judged(
        items=items,
        p=np.concatenate([fitted.scores(table), np.full(n_failed, 0.5)]),
        threshold=np.concatenate([fitted.thresholds(table), np.full(n_failed, np.inf)]),
        real_threshold=np.concatenate([fitted.real_thresholds(table), np.full(n_failed, -np.inf)]),
        unusable=n_failed / max(1, len(items)),
    )


def _forged(clean: _Judged, perturbed: _Judged, generator: str) -> dict[str, float]:
    """A forger's view of one perturbation: only the generator's images are perturbed, the real
    images stay as they were. The AUC of the perturbed fakes against the clean real images of the
    fold's test part, and the shares of perturbed fakes still called synthetic and called real."""
    fake = np.array([i.generator == generator for i in perturbed.items])
    real = np.array([i.label == 0 and _in_logo_test(i, generator) for i in clean.items])
    y = np.concatenate([np.zeros(int(real.sum()), dtype=np.int_), np.ones(int(fake.sum()), dtype=np.int_)])
    p = np.concatenate([clean.p[real], perturbed.p[fake]])
    return {
        "auc": auc(y, p),
        "caught": float(np.mean(perturbed.p[fake] >= perturbed.threshold[fake])),
        "called_real": float(np.mean(perturbed.p[fake] < perturbed.real_threshold[fake])),
    }


def _auc_per_generator(items: Sequence[Item], p: FloatArray) -> dict[str, float]:
    """AUC of each generator's images against all real images."""
    labels = np.array([i.label for i in items], dtype=np.int_)
    generators = np.array([i.generator for i in items])
    real = labels == 0
    return {
        g: auc(labels[real | (generators == g)], p[real | (generators == g)])
        for g in sorted(set(generators[~real].tolist()))
    }


def perturbation_suite(
    items: Sequence[Item],
    fitted: Fitted,
    model: OnnxModel | None,
    names: Iterable[str] | None = None,
    *,
    unseen: Mapping[str, Fitted] | None = None,
) -> list[dict[str, Any]]:
    """AUC on clean images and under each perturbation, with the drop, for the given detector.

    Each image is judged at the working size the detector picks for it (a 256 px image halved to
    128 px is judged as a thumbnail). Images the perturbation makes unusable count with the
    detector's answer for them, probability 0.5 ("uncertain"); ``unusable`` says how many.

    ``unseen`` maps each generator to a detector fitted without it (the leave-one-generator-out
    folds of :func:`leave_one_generator_out_fits`). Each row then also gives, per generator, the
    AUC of that fold on the generator's images against the real images outside its training part
    (``unseen_generator_auc``), and the drop from the clean images (``unseen_generator_auc_drop``):
    the robustness of the detector on generators it has not seen, which the pooled AUC of a
    detector fitted on these very images cannot show. ``forged`` gives, per generator, what a forger
    who applies the perturbation to the fakes alone achieves against that fold (:func:`_forged`).
    """
    rows: list[dict[str, Any]] = []
    base = float("nan")
    base_unseen: dict[str, float] = {}
    clean_by_fold: dict[str, _Judged] = {}
    for name in [None, *(names or PERTURBATIONS)]:
        table = measure_items(items, name, model)
        judged = _judge(fitted, table)
        a = auc(judged.labels, judged.p)
        if name is None:
            base = a
        row: dict[str, Any] = {
            "perturbation": name or "none",
            "auc": a,
            "auc_drop": base - a,
            "balanced_accuracy": metrics(judged.labels, judged.p, judged.threshold, ci=False)["balanced_accuracy"],
            "unusable": judged.unusable,
        }
        if unseen:
            by: dict[str, float] = {}
            forged: dict[str, dict[str, float]] = {}
            for g, fold in unseen.items():
                judged_g = _judge(fold, table)
                if name is None:
                    clean_by_fold[g] = judged_g
                test = [k for k, i in enumerate(judged_g.items) if _in_logo_test(i, g)]
                by |= _auc_per_generator([judged_g.items[k] for k in test], judged_g.p[test])
                if any(i.generator == g for i in judged_g.items):
                    forged[g] = _forged(clean_by_fold[g], judged_g, g)
            if name is None:
                base_unseen = by
            drops = {g: base_unseen[g] - value for g, value in by.items() if g in base_unseen}
            row |= {
                "unseen_generator_auc": by,
                "unseen_generator_auc_drop": drops,
                "largest_unseen_generator_drop": max(drops.values(), default=float("nan")),
                "forged": forged,
            }
        rows.append(row)
    return rows
