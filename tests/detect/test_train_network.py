"""The network's training recipe: decoder families, checkpoint choice by validation, argument checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the train extra (torch) is not installed")

from radproof.detect.lab.train import network  # noqa: E402
from radproof.detect.lab.train.autoencoders import (  # noqa: E402
    DECODERS,
    SmallAutoencoder,
    reconstruct_with,
    train_autoencoder,
)


def _images(n: int, side: int = 128, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    out = []
    for _ in range(n):
        base = 0.5 + 0.3 * np.sin(2 * np.pi * (xx * rng.uniform(1, 3) + yy * rng.uniform(1, 3)))
        out.append(np.clip(base + rng.normal(0, 0.03, base.shape), 0, 1).astype(np.float32))
    return out


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_every_decoder_family_reconstructs_at_the_input_size(name: str) -> None:
    levels, how = DECODERS[name]
    ae = SmallAutoencoder(levels, how, width=8)
    x = torch.rand(2, 1, 64, 64)
    assert ae(x).shape == x.shape


def test_a_small_autoencoder_learns_to_reconstruct() -> None:
    images = _images(6, side=64)
    untrained = SmallAutoencoder(*DECODERS["transposed4"]).eval()
    first = reconstruct_with(untrained, images, "cpu")
    before = np.mean([np.abs(r - i).mean() for r, i in zip(first, images, strict=True)])
    trained = train_autoencoder("transposed4", images, device="cpu", steps=60, batch=4, patch=64, say=lambda _m: None)
    recs = reconstruct_with(trained, images, "cpu")
    after = np.mean([np.abs(r - i).mean() for r, i in zip(recs, images, strict=True)])
    assert all(r.shape == i.shape and r.min() >= 0 and r.max() <= 1 for r, i in zip(recs, images, strict=True))
    assert after < 0.5 * before


def test_fit_keeps_the_epoch_with_the_best_validation_score() -> None:
    reals = _images(8)
    fakes = {"blurred": [np.clip(r * 0.9 + 0.05, 0, 1).astype(np.float32) for r in reals]}
    scores = iter([0.2, 0.9, 0.5])
    snapshots: list[dict[str, torch.Tensor]] = []

    def evaluate(net: network.PatchNet) -> tuple[float, str]:
        snapshots.append({k: v.detach().clone() for k, v in net.state_dict().items()})
        return next(scores), ""

    net = network.fit(
        reals, fakes, epochs=3, device="cpu", batch_pairs=4, say=lambda _m: None, evaluate=evaluate, eval_every=1
    )
    kept = net.state_dict()
    assert all(torch.equal(kept[k], snapshots[1][k]) for k in kept)
    assert not all(torch.equal(kept[k], snapshots[2][k]) for k in kept)


def test_fit_stops_at_its_time_budget() -> None:
    reals = _images(8)
    fakes = {"blurred": [r * 0.5 for r in reals]}
    calls: list[int] = []

    def evaluate(net: network.PatchNet) -> tuple[float, str]:
        calls.append(1)
        return float(len(calls)), ""

    lines: list[str] = []
    network.fit(
        reals,
        fakes,
        epochs=50,
        device="cpu",
        batch_pairs=4,
        say=lines.append,
        evaluate=evaluate,
        eval_every=1,
        max_seconds=1e-6,
    )
    assert len(calls) == 1
    assert any("time budget" in line for line in lines)


@pytest.mark.parametrize(
    "args",
    [
        ["--decoders", "taef2,nearest8", "--validate", "nearest8"],
        ["--decoders", "taef2,fancy"],
        ["--decoders", "taef2", "--validate", "fancy"],
        ["--decoders", ","],
    ],
)
def test_bad_decoder_choices_are_refused_before_any_work(tmp_path: Path, args: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        network.main([str(tmp_path / "missing.npz"), str(tmp_path), str(tmp_path / "out.onnx"), *args])
    assert exc.value.code == 2
