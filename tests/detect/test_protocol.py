"""The evaluation protocol on synthetic cue tables: folds see only their training part, and the
site-adaptation table measures what adding a source's own images buys."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radproof.detect.cues import CUES
from radproof.detect.lab.evaluate import leave_one_set_out, site_adaptation
from radproof.detect.lab.features import FeatureTable
from radproof.detect.lab.manifest import Item


def _table() -> FeatureTable:
    """Two ordinary real sources, one whose processing shifts every cue, and two generators."""
    rng = np.random.default_rng(0)
    names = list(CUES)
    items: list[Item] = []
    rows = []
    groups = [("hospital-a", 0, 0.0, 200), ("hospital-b", 0, 0.0, 200), ("odd-site", 0, 2.2, 120)]
    groups += [("gen-1", 1, 4.0, 150), ("gen-2", 1, -4.0, 150)]
    for source, label, shift, n in groups:
        for k in range(n):
            items.append(Item(Path(f"{source}-{k}.png"), label, source, source if label else "real", "chest"))
            rows.append(rng.normal(shift, 1.0, len(names)))
    return FeatureTable(items, names, np.array(rows))


def test_an_unusual_source_is_flagged_when_unseen_and_passes_once_adapted() -> None:
    table = _table()
    loso = {r["fold"]: r["specificity"] for r in leave_one_set_out(table)}
    assert loso["real set=odd-site"] < 0.8 and loso["real set=hospital-a"] > 0.9

    rows = {r["fold"]: r for r in site_adaptation(table)}
    odd = rows["real set=odd-site"]
    assert odd["n_adapt"] + odd["n_test"] == 120 and 40 < odd["n_adapt"] < 80
    assert odd["specificity_unadapted"] < 0.8 and odd["specificity_adapted"] >= 0.9
    # The generator on the far side of every real source stays caught; the one on the odd site's
    # side loses some, since adding the site widens the reference towards it.
    assert odd["by_generator"]["gen-2"]["adapted"] == 1.0
    assert odd["by_generator"]["gen-1"]["adapted"] >= 0.6 and odd["sensitivity_adapted"] >= 0.8
    assert set(odd["by_generator"]) == {"gen-1", "gen-2"}


def test_site_adaptation_can_add_only_a_few_images_and_limit_sets() -> None:
    table = _table()
    few = site_adaptation(table, max_adapt=5, sets=["odd-site"])
    assert [r["fold"] for r in few] == ["real set=odd-site"]
    assert few[0]["n_adapt"] == 5
    none = site_adaptation(table, max_adapt=0, sets=["odd-site"])[0]
    assert none["specificity_adapted"] == none["specificity_unadapted"]


def test_rows_without_a_fit_for_their_size_count_as_uncertain_not_synthetic() -> None:
    from dataclasses import replace

    from radproof.detect.lab.evaluate import fit
    from radproof.detect.lab.metrics import metrics

    table = _table()
    fitted = fit(table, np.ones(len(table.items), dtype=bool), "all")
    sizes = np.full(len(table.items), 256)
    sizes[::2] = 128  # as if every second image were a thumbnail, with no thumbnail fit
    mixed = replace(table, sizes=sizes)
    p, t = fitted.scores(mixed), fitted.thresholds(mixed)
    assert np.all(p[::2] == 0.5) and np.all(np.isinf(t[::2])) and np.all(np.isfinite(t[1::2]))
    flagged = metrics(mixed.labels, p, t, ci=False)
    assert flagged["sensitivity"] <= 0.5 + 1e-9  # the abstaining half of the fakes is not counted as caught


def test_rows_kept_for_the_reference_are_fitted_on_but_never_tested() -> None:
    """Images under the main size are judged as thumbnails: at the main size they shape the fit
    (up-sampled), but no fold tests them there."""
    from dataclasses import replace

    from radproof.detect.lab.evaluate import leave_one_generator_out

    table = _table()
    shorts = np.full(len(table.items), 1024)
    odd = np.array([i.set == "odd-site" for i in table.items])
    gen2 = np.array([i.generator == "gen-2" for i in table.items])
    shorts[odd], shorts[gen2] = 224, 226
    marked = replace(table, short_sides=shorts, sizes=np.full(len(table.items), 256))
    assert np.array_equal(marked.reference_only(), odd | gen2)
    assert not marked.routed()[odd | gen2].any() and marked.routed()[~(odd | gen2)].all()

    assert "real set=odd-site" not in {r["fold"] for r in leave_one_set_out(marked)}
    plain = {r["fold"]: r for r in leave_one_generator_out(table)}
    folds = {r["fold"]: r for r in leave_one_generator_out(marked)}
    assert set(folds) == {"generator=gen-1"}
    # The same fit (the odd site's rows still in it), tested without the odd site's hold-out.
    assert folds["generator=gen-1"]["threshold"] == plain["generator=gen-1"]["threshold"]
    assert 0 < folds["generator=gen-1"]["n_real"] < plain["generator=gen-1"]["n_real"]
    assert folds["generator=gen-1"]["n_synthetic"] == plain["generator=gen-1"]["n_synthetic"]
    assert all(r["fold"] != "real set=odd-site" for r in site_adaptation(marked, max_adapt=5))


def test_as_judged_tables_test_every_image_at_the_size_it_is_judged_at() -> None:
    """The headline tables judge the small images as thumbnails, with the fold's thumbnail fit."""
    from dataclasses import replace

    from radproof.detect.lab.evaluate import (
        judged_rows,
        leave_one_generator_out_as_judged,
        leave_one_generator_out_fits,
        leave_one_set_out_as_judged,
    )

    table = _table()
    shorts = np.full(len(table.items), 1024)
    small_ones = np.array([i.set in ("odd-site", "gen-2") for i in table.items])
    shorts[small_ones] = 224
    main = replace(table, short_sides=shorts, sizes=np.full(len(table.items), 256))
    rng = np.random.default_rng(1)
    thumbs = replace(main, values=main.values + rng.normal(0, 0.1, main.values.shape), sizes=np.full(len(shorts), 128))
    judged = judged_rows(main, thumbs)
    assert len(judged.items) == len(table.items)
    # A main table measured for the reference holds its smallest images at the thumbnail size too:
    # each image still counts once.
    tiny = np.array([i.set == "gen-2" for i in table.items])
    mixed = replace(main, sizes=np.where(tiny, 128, 256), short_sides=np.where(tiny, 150, shorts))
    assert len(judged_rows(mixed, replace(thumbs, short_sides=mixed.short_sides)).items) == len(table.items)
    assert (judged.work_sizes() == 128).sum() == small_ones.sum()

    folds = leave_one_generator_out_fits(main, None, thumbs, None)
    rows = {r["fold"]: r for r in leave_one_generator_out_as_judged(folds, judged)}
    assert set(rows) == {"generator=gen-1", "generator=gen-2"}
    assert rows["generator=gen-2"]["n_synthetic"] == 150 and rows["generator=gen-2"]["auc"] > 0.95
    sets = {r["fold"]: r for r in leave_one_set_out_as_judged(main, None, thumbs, None)}
    assert sets["real set=odd-site"]["n_real"] == 120 and sets["real set=hospital-a"]["specificity"] > 0.9


def test_the_forgers_view_perturbs_the_fakes_only() -> None:
    from radproof.detect.lab.evaluate import _forged, _Judged
    from radproof.detect.lab.manifest import in_holdout

    reals = [Item(Path(f"real-{k}.png"), 0, "a", "", "chest") for k in range(200)]
    reals = [i for i in reals if in_holdout(i)]
    fakes = [Item(Path(f"fake-{k}.png"), 1, "g", "g", "chest") for k in range(20)]
    items = [*reals, *fakes]
    n, m = len(reals), len(fakes)

    def judged(fake_p: float) -> _Judged:
        p = np.concatenate([np.linspace(0.0, 0.3, n), np.full(m, fake_p)])
        return _Judged(items, p, np.full(n + m, 0.5), np.full(n + m, 0.1), 0.0)

    clean = judged(0.9)
    assert _forged(clean, clean, "g") == {"auc": 1.0, "caught": 1.0, "called_real": 0.0}
    # A perturbation that hides the fakes among the clean reals; the perturbed reals do not count.
    hidden = judged(0.05)
    hidden.p[:n] = 1.0
    forged = _forged(clean, hidden, "g")
    assert forged["caught"] == 0.0 and forged["called_real"] == 1.0
    assert 0.1 < forged["auc"] < 0.3  # 0.05 sits among the lowest sixth of the clean reals (0 .. 0.3)
