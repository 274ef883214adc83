"""Small autoencoders trained on real radiographs, to give the network more than one decoder trace.

A detector trained on one decoder's reconstructions (taef2) learns that decoder's fingerprint and
drifts away from other generators the longer it trains. Generators differ mostly in how their last
stages up-sample (nearest-neighbour + convolution, transposed convolution, pixel shuffle, bilinear)
and by how much (4x or 8x). Each :class:`SmallAutoencoder` here is one such combination, trained for
a few minutes on the real training images only, so that its reconstructions keep the content of a
real radiograph and differ from it by the decoder's trace. One family can be held out of training
and used to choose the checkpoint: a stand-in for "a generator the network has never seen".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

#: name -> (down-sampling factor as a power of two, up-sampling operator)
DECODERS: dict[str, tuple[int, str]] = {
    "nearest8": (3, "nearest"),
    "transposed4": (2, "transposed"),
    "shuffle8": (3, "shuffle"),
    "bilinear4": (2, "bilinear"),
}


def _block(n: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(n, n, 3, padding=1), nn.GroupNorm(8, n), nn.SiLU(), nn.Conv2d(n, n, 3, padding=1))


class _Res(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.body = _block(n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.body(x)
        return out


def _up(n: int, how: str) -> nn.Module:
    if how == "nearest":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(n, n, 3, padding=1))
    if how == "bilinear":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), nn.Conv2d(n, n, 3, padding=1)
        )
    if how == "transposed":
        return nn.ConvTranspose2d(n, n, 4, stride=2, padding=1)
    if how == "shuffle":
        return nn.Sequential(nn.Conv2d(n, 4 * n, 3, padding=1), nn.PixelShuffle(2))
    raise ValueError(f"unknown up-sampling {how!r}")


class SmallAutoencoder(nn.Module):
    """(N, 1, H, W) in 0..1 -> reconstruction; H and W multiples of ``2 ** levels``."""

    def __init__(self, levels: int, how: str, width: int = 48, latent: int = 4) -> None:
        super().__init__()
        w = width
        enc: list[nn.Module] = [nn.Conv2d(1, w, 3, padding=1), _Res(w)]
        for _ in range(levels):
            enc += [nn.Conv2d(w, w, 3, padding=1, stride=2), _Res(w)]
        enc += [nn.Conv2d(w, latent, 1)]
        dec: list[nn.Module] = [nn.Conv2d(latent, w, 3, padding=1), _Res(w)]
        for _ in range(levels):
            dec += [_up(w, how), nn.SiLU(), _Res(w)]
        dec += [nn.Conv2d(w, 1, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.decoder(self.encoder(x))
        return out


def _detail_loss(out: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """L1 on pixels plus L1 on horizontal and vertical differences, so that detail is not averaged away."""
    loss = (out - ref).abs().mean()
    for dim in (2, 3):
        loss = loss + 2.0 * (out.diff(dim=dim) - ref.diff(dim=dim)).abs().mean()
    return loss


def train_autoencoder(
    name: str,
    images: Sequence[npt.NDArray[np.float32]],
    *,
    device: str,
    steps: int = 1500,
    batch: int = 32,
    patch: int = 128,
    seed: int = 0,
    say: Callable[[str], None] = print,
) -> SmallAutoencoder:
    """Train one decoder family on real images (random crops and flips)."""
    levels, how = DECODERS[name]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    ae = SmallAutoencoder(levels, how).to(device)
    opt = torch.optim.AdamW(ae.parameters(), lr=1e-3, weight_decay=1e-5)
    stack = torch.from_numpy(np.stack(images))[:, None].to(device)
    n, _, h, w = stack.shape
    t0 = time.time()
    for step in range(steps):
        lr = 1e-3 * 0.5 * (1 + math.cos(math.pi * step / steps))
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.from_numpy(rng.integers(0, n, batch)).to(device)
        y, x = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
        crop = stack[idx, :, y : y + patch, x : x + patch]
        if rng.random() < 0.5:
            crop = crop.flip(3)
        loss = _detail_loss(ae(crop), crop)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % max(1, steps // 4) == 0:
            say(f"  autoencoder {name}: step {step + 1}/{steps}, loss {loss.item():.4f} ({time.time() - t0:.0f} s)")
    return ae.eval()


@torch.no_grad()
def reconstruct_with(
    ae: nn.Module, images: Sequence[npt.NDArray[np.float32]], device: str
) -> list[npt.NDArray[np.float32]]:
    """Reconstructions in 0..1 (not yet re-encoded)."""
    out: list[npt.NDArray[np.float32]] = []
    for start in range(0, len(images), 32):
        batch = torch.from_numpy(np.stack(images[start : start + 32]))[:, None].to(device)
        rec = ae(batch).clamp(0, 1)[:, 0].float().cpu().numpy()
        out += list(rec.astype(np.float32))
    return out
