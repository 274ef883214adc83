"""Training the learned detector: a small fully convolutional network on aligned pairs.

Recipe (chosen so that the network cannot learn dataset identity):

- inputs are only normalized images (:mod:`radproof.detect.normalize`), never files;
- negatives are the REAL training images, positives their reconstructions by several decoders:
  taef2 (a published autoencoder) and small autoencoders trained here on the same real images, each
  with another up-sampling (:mod:`radproof.detect.lab.train.autoencoders`). A pair shares its content and
  differs by the decoder's trace; both members are cropped and augmented identically (JPEG 60-100,
  resize 0.5-1.4, blur, noise, windowing/gamma, flips);
- one more decoder family is kept out of training: its reconstructions of the hold-out reals choose
  the epoch that is exported, a stand-in for a generator the network has never seen;
- no development fake (ldm-iuxray, roentgen-v2, ddpm-lunggen) is used for training or for that
  choice: they are kept for the evaluation of unseen generators;
- real images in the 30 % evaluation hold-out of :mod:`radproof.detect.lab.manifest` are left out.

Images are re-encoded by the detector's own :func:`radproof.detect.normalize.reencode`, so training
and inference share one normalization. Beyond radproof's own requirements this needs only torch:
``python -m radproof.detect.lab.train.network PAIRS.npz TAEF2_DIR OUT.onnx --device cuda``.
"""

from __future__ import annotations

import argparse
import io
import itertools
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image, ImageFilter
from torch import nn

from radproof.detect.lab.train.autoencoders import DECODERS, SmallAutoencoder, reconstruct_with, train_autoencoder
from radproof.detect.lab.train.taef2 import GrayTaef2
from radproof.detect.normalize import reencode

PATCH = 128

# The shipped recipe (docs/detector.md): positives from these decoder families, the epoch chosen on
# the validation family's reconstructions of the hold-out reals, evaluated every EVAL_EVERY epochs.
TRAIN_DECODERS = ("taef2", "nearest8", "transposed4", "shuffle8")
VALIDATION_DECODER = "bilinear4"
EPOCHS = 160
EVAL_EVERY = 5
AE_STEPS = 1500


class PatchNet(nn.Module):
    """~78 k parameters; (N, 1, H, W) in 0..1 -> (N, 1, H/4, W/4) patch logits."""

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, padding=1, stride=2), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1, stride=2), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 1, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Work on the high-pass part: subtract a 3 x 3 local mean so brightness cannot matter.
        local = nn.functional.avg_pool2d(nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        out: torch.Tensor = self.body((x - local) * 16.0)
        return out


def decode_all(blob: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64]) -> list[npt.NDArray[np.float32]]:
    out = []
    for a, b in itertools.pairwise(offsets):
        with Image.open(io.BytesIO(blob[a:b].tobytes())) as im:
            out.append(np.asarray(im.convert("L"), dtype=np.float32) / np.float32(255.0))
    return out


def _augment_pair(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], rng: np.random.Generator
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The same random crop and processing applied to both members of a pair."""
    scale = float(rng.uniform(0.5, 1.4)) if rng.random() < 0.5 else 1.0
    side = min(a.shape[0], round(PATCH / scale))
    y, x = (int(rng.integers(0, a.shape[0] - side + 1)), int(rng.integers(0, a.shape[1] - side + 1)))
    flip = rng.random() < 0.5
    blur = float(rng.uniform(0.3, 1.0)) if rng.random() < 0.25 else 0.0
    noise = float(rng.uniform(0.5, 3.0)) / 255.0 if rng.random() < 0.3 else 0.0
    gamma = float(np.exp(rng.uniform(-0.4, 0.4))) if rng.random() < 0.5 else 1.0
    lo, hi = (float(rng.uniform(0.0, 0.15)), float(rng.uniform(0.85, 1.0))) if rng.random() < 0.3 else (0.0, 1.0)
    quality = int(rng.integers(60, 101)) if rng.random() < 0.7 else 0
    seed = int(rng.integers(0, 2**31))
    out = []
    for img in (a, b):
        p = img[y : y + side, x : x + side]
        if flip:
            p = p[:, ::-1]
        pil = Image.fromarray(np.ascontiguousarray(p), mode="F")
        if side != PATCH:
            pil = pil.resize((PATCH, PATCH), Image.Resampling.BICUBIC)
        p = np.asarray(pil, dtype=np.float32)
        if blur:
            q8 = Image.fromarray(np.clip(np.rint(p * 255), 0, 255).astype(np.uint8))
            p = np.asarray(q8.filter(ImageFilter.GaussianBlur(blur)), dtype=np.float32) / 255.0
        if noise:
            p = p + np.random.default_rng(seed).normal(0.0, noise, p.shape).astype(np.float32)
        p = np.clip((p - lo) / (hi - lo), 0.0, 1.0) ** gamma
        p = reencode(p.astype(np.float32), quality) if quality else reencode(p.astype(np.float32))
        out.append(p)
    return out[0], out[1]


def auc(pos: npt.NDArray[np.float64], neg: npt.NDArray[np.float64]) -> float:
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(order.size)
    ranks[order] = np.arange(1, order.size + 1)
    return float((ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def image_logits(net: PatchNet, images: list[npt.NDArray[np.float32]], device: str) -> npt.NDArray[np.float64]:
    net.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), 64):
            batch = torch.from_numpy(np.stack(images[start : start + 64]))[:, None].to(device)
            out.append(net(batch).mean(dim=(1, 2, 3)).cpu().numpy())
    net.train()
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def fit(
    reals: list[npt.NDArray[np.float32]],
    families: dict[str, list[npt.NDArray[np.float32]]],
    *,
    epochs: int,
    device: str,
    batch_pairs: int = 64,
    seed: int = 0,
    say: Callable[[str], None] = print,
    evaluate: Callable[[PatchNet], tuple[float, str]] | None = None,
    eval_every: int = 25,
    max_seconds: float = 0.0,
) -> PatchNet:
    """Train on aligned pairs; every batch holds both members of each pair.

    ``families`` maps a decoder name to the reconstructions of ``reals`` by that decoder; each pair
    takes one family at random. With ``evaluate`` (returning a validation score and a log line), the
    weights of the epoch with the best validation score are returned, else those of the last epoch.
    ``max_seconds`` (when positive) ends training early, after an evaluation, once it has elapsed.
    """
    started = time.time()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    names = sorted(families)
    net = PatchNet().to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = max(1, epochs * (len(reals) // batch_pairs))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    loss_fn = nn.BCEWithLogitsLoss()
    step = 0
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=8)
    for epoch in range(epochs):
        order = rng.permutation(len(reals))
        t0, total = time.time(), 0.0
        for start in range(0, len(order) - batch_pairs + 1, batch_pairs):
            idx = order[start : start + batch_pairs]
            seeds = rng.integers(0, 2**31, idx.size)
            chosen = rng.integers(0, len(names), idx.size)
            pairs = list(
                pool.map(
                    lambda a: _augment_pair(reals[a[0]], families[names[a[2]]][a[0]], np.random.default_rng(a[1])),
                    zip(idx, seeds, chosen, strict=True),
                )
            )
            x = torch.from_numpy(np.stack([p[0] for p in pairs] + [p[1] for p in pairs]))[:, None].to(device)
            y = torch.cat([torch.zeros(idx.size), torch.ones(idx.size)]).to(device)
            logits = net(x).mean(dim=(1, 2, 3))
            loss = loss_fn(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step < steps:
                sched.step()
            step += 1
            total += float(loss.detach()) * idx.size
        msg = f"epoch {epoch + 1}/{epochs}: loss {total / max(1, len(order)):.4f} ({time.time() - t0:.0f} s)"
        if evaluate is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs):
            score, line = evaluate(net)
            msg += " " + line
            if best is None or score > best[0]:
                best = (score, epoch + 1, {k: v.detach().clone() for k, v in net.state_dict().items()})
        say(msg)
        if max_seconds > 0 and time.time() - started > max_seconds and (epoch + 1) % eval_every == 0:
            say(f"time budget of {max_seconds:.0f} s reached after epoch {epoch + 1}")
            break
    if best is not None and not math.isnan(best[0]):
        net.load_state_dict(best[2])
        say(f"kept epoch {best[1]} (validation AUC {best[0]:.3f})")
    return net


def export_onnx(net: PatchNet, path: Path) -> None:
    """Export with dynamic height and width (opset 17)."""
    net = net.cpu().eval()
    dummy = torch.zeros(1, 1, 256, 256)
    kwargs: dict[str, Any] = {
        "input_names": ["image"],
        "output_names": ["patch_logits"],
        "dynamic_axes": {"image": {0: "n", 2: "h", 3: "w"}, "patch_logits": {0: "n", 2: "ph", 3: "pw"}},
        "opset_version": 17,
    }
    try:
        torch.onnx.export(net, (dummy,), str(path), dynamo=False, **kwargs)
    except TypeError:  # older torch without the dynamo switch
        torch.onnx.export(net, (dummy,), str(path), **kwargs)


def train_network(
    items: Sequence[Any],
    output: Path,
    *,
    pairs: Path | None,
    taef2: Path | None,
    epochs: int,
    device: str,
    ae_steps: int = AE_STEPS,
    progress: Callable[[str], None] = print,
) -> None:
    """Prepare the pairs file when none is given, then train and export (the ``radproof train --cnn`` path)."""
    if taef2 is None:
        raise FileNotFoundError("--taef2 FOLDER (with taef2_encoder.pth and taef2_decoder.pth) is required")
    options = ["--device", device, "--epochs", str(epochs), "--ae-steps", str(ae_steps)]
    if pairs is not None:
        main([str(pairs), str(taef2), str(output), *options], say=progress)
        return
    import tempfile

    from radproof.detect.lab.train.data import prepare

    with tempfile.TemporaryDirectory(prefix="radproof-pairs-") as tmp:
        prepared = Path(tmp) / "pairs.npz"
        progress("preparing the training pairs")
        prepare(items, prepared, progress)
        main([str(prepared), str(taef2), str(output), *options], say=progress)


def _autoencoder(
    name: str, train: list[npt.NDArray[np.float32]], args: argparse.Namespace, say: Callable[[str], None]
) -> nn.Module:
    """Train one small autoencoder, or load it from ``--cache`` when it was trained with the same settings."""
    levels, how = DECODERS[name]
    cached = args.cache / f"{name}-{args.ae_steps}-{args.seed}-{len(train)}.pt" if args.cache else None
    if cached is not None and cached.is_file():
        ae = SmallAutoencoder(levels, how)
        ae.load_state_dict(torch.load(cached, map_location="cpu", weights_only=True))
        return ae.to(args.device).eval()
    t0 = time.time()
    ae = train_autoencoder(name, train, device=args.device, steps=args.ae_steps, seed=args.seed, say=say)
    say(f"  autoencoder {name} trained in {time.time() - t0:.0f} s")
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".part")
        torch.save(ae.state_dict(), partial)
        partial.replace(cached)
    return ae


def main(argv: list[str] | None = None, say: Callable[[str], None] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("pairs", type=Path, help="npz from radproof.detect.lab.train.data.prepare")
    ap.add_argument("taef2", type=Path)
    ap.add_argument("output", type=Path)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument(
        "--decoders",
        default=",".join(TRAIN_DECODERS),
        help="comma-separated decoder families whose reconstructions are the positives: taef2 and/or "
        + ", ".join(DECODERS),
    )
    ap.add_argument(
        "--validate",
        default=VALIDATION_DECODER,
        help="a decoder family kept out of training; its reconstructions of the hold-out reals choose the epoch",
    )
    ap.add_argument("--ae-steps", type=int, default=AE_STEPS, help="training steps of each small autoencoder")
    ap.add_argument("--eval-every", type=int, default=EVAL_EVERY)
    ap.add_argument("--max-seconds", type=float, default=0.0, help="stop training after this long (0: no limit)")
    ap.add_argument("--cache", type=Path, help="folder to keep trained small autoencoders in and reuse them from")
    ap.add_argument(
        "--autoencoders-only", action="store_true", help="train (and cache) the small autoencoders, then stop"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="use only this many training images (smoke test)")
    args = ap.parse_args(argv)
    report = say or (lambda m: print(m, flush=True))
    wanted = [d for d in args.decoders.split(",") if d]
    if not wanted:
        ap.error("--decoders names no decoder family")
    for name in [*wanted, *([args.validate] if args.validate else [])]:
        if name != "taef2" and name not in DECODERS:
            ap.error(f"unknown decoder family {name!r}")
    if args.validate in wanted:
        ap.error("the validation family must be kept out of --decoders")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    torch.backends.cudnn.benchmark = args.device.startswith("cuda")
    data = np.load(args.pairs, allow_pickle=False)
    train = decode_all(data["train_blob"], data["train_offsets"])
    if args.limit:
        train = train[: args.limit]
    evals: dict[str, list[npt.NDArray[np.float32]]] = {}
    if "eval_blob" in data:
        images = decode_all(data["eval_blob"], data["eval_offsets"])
        groups = data["eval_groups"].tolist()
        for g, img in zip(groups, images, strict=True):
            evals.setdefault(g, []).append(img)
        if args.limit:
            evals = {g: imgs[: args.limit] for g, imgs in evals.items()}
    held = evals.get("real-holdout", [])
    t0 = time.time()
    families: dict[str, list[npt.NDArray[np.float32]]] = {}
    for name in sorted({*wanted, *([args.validate] if args.validate else [])}):
        # The small autoencoders learn from the training reals only, never the hold-out.
        ae = GrayTaef2(args.taef2).to(args.device) if name == "taef2" else _autoencoder(name, train, args, report)
        # Re-encoded like the normalization does, as the real member of each pair is.
        recon_train = [reencode(r) for r in reconstruct_with(ae, train, args.device)]
        recon_held = [reencode(r) for r in reconstruct_with(ae, held, args.device)]
        if name in wanted:
            families[name] = recon_train
        evals[f"{name}-holdout"] = recon_held
    if args.autoencoders_only:
        report(f"autoencoders ready ({time.time() - t0:.0f} s)")
        return 0
    reals = [reencode(r) for r in train]  # the same last step as the reconstructions
    report(f"{len(reals)} real images, decoder families {', '.join(sorted(families))} ({time.time() - t0:.0f} s)")

    def evaluate(net: PatchNet) -> tuple[float, str]:
        if not held:
            return float("nan"), ""
        neg = image_logits(net, held, args.device)
        aucs = {
            g: auc(image_logits(net, imgs, args.device), neg)
            for g, imgs in sorted(evals.items())
            if g != "real-holdout"
        }
        score = aucs.get(f"{args.validate}-holdout", float("nan")) if args.validate else float("nan")
        return score, "| " + ", ".join(f"{g} AUC {a:.3f}" for g, a in aucs.items())

    net = fit(
        reals,
        families,
        epochs=args.epochs,
        device=args.device,
        seed=args.seed,
        say=report,
        evaluate=evaluate,
        eval_every=args.eval_every,
        max_seconds=args.max_seconds,
    )
    export_onnx(net, args.output)
    report(f"wrote {args.output} ({args.output.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
