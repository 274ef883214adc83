"""A tiny FLUX.2 autoencoder (taef2) written to match the published state-dict names.

Used only to make aligned training pairs: a real radiograph and its own reconstruction share their
content and differ only by the decoder's fingerprint.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def _conv(n_in: int, n_out: int, **kwargs: object) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)  # type: ignore[arg-type]


class _Clamp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = torch.tanh(x / 3) * 3
        return out


class _Block(nn.Module):
    def __init__(self, n: int, midblock: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(n, n), nn.ReLU(), _conv(n, n), nn.ReLU(), _conv(n, n))
        self.skip = nn.Identity()
        self.fuse = nn.ReLU()
        self.pool: nn.Module | None = None
        if midblock:
            self.pool = nn.Sequential(
                nn.Conv2d(n, 4 * n, 1, bias=False),
                nn.GroupNorm(4, 4 * n),
                nn.ReLU(),
                nn.Conv2d(4 * n, n, 1, bias=False),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        out: torch.Tensor = self.fuse(self.conv(x) + self.skip(x))
        return out


def encoder(latent: int = 32) -> nn.Sequential:
    return nn.Sequential(
        _conv(3, 64), _Block(64),
        _conv(64, 64, stride=2, bias=False), _Block(64), _Block(64), _Block(64),
        _conv(64, 64, stride=2, bias=False), _Block(64), _Block(64), _Block(64),
        _conv(64, 64, stride=2, bias=False), _Block(64, True), _Block(64, True), _Block(64, True),
        _conv(64, latent),
    )  # fmt: skip


def decoder(latent: int = 32) -> nn.Sequential:
    return nn.Sequential(
        _Clamp(), _conv(latent, 64), nn.ReLU(),
        _Block(64, True), _Block(64, True), _Block(64, True), nn.Upsample(scale_factor=2), _conv(64, 64, bias=False),
        _Block(64), _Block(64), _Block(64), nn.Upsample(scale_factor=2), _conv(64, 64, bias=False),
        _Block(64), _Block(64), _Block(64), nn.Upsample(scale_factor=2), _conv(64, 64, bias=False),
        _Block(64), _conv(64, 3),
    )  # fmt: skip


class Taef2(nn.Module):
    """Encoder + decoder; ``forward`` reconstructs images in 0..1 (N, 3, H, W), H and W multiples of 8."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.encoder = encoder()
        self.decoder = decoder()
        for part, name in ((self.encoder, "taef2_encoder.pth"), (self.decoder, "taef2_decoder.pth")):
            state = torch.load(folder / name, map_location="cpu", weights_only=True)
            part.load_state_dict({k: v.float() for k, v in state.items()})
        self.eval()

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.decoder(self.encoder(x)).clamp(0, 1)
        return out


class GrayTaef2(nn.Module):
    """taef2 on one-channel images (N, 1, H, W): the grey value fed to all three channels, the three
    outputs averaged."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.rgb = Taef2(folder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.rgb(x.repeat(1, 3, 1, 1)).mean(dim=1, keepdim=True)
        return out
