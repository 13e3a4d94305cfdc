"""Pieces several heads share: the deconv trunk that makes per-keypoint maps, and RLE's sigma branch."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..layers import DeconvBNReLU, init_weights

FINALS = ("conv", "deconv", None)


class KeypointMapTrunk(nn.Module):
    """Deconv layers (4x4 s2 + BN + ReLU, each doubling H and W), then an optional last layer.

    final="conv"    1x1 conv (with bias) to `out_channels` (SimpleBaseline; SimDR-norm's "1x1 conv after deconv").
    final="deconv"  a plain ConvTranspose 4x4 s2 (with bias, no BN/ReLU) to `out_channels`: the
                    "[256, K]" deconv pair of DSNT / SimDR, whose last layer gives the K logit maps.
    final=None      stop after the deconvs (TokenPose takes these as features).
    """

    def __init__(self, in_channels: int, *, deconv_channels: Sequence[int] = (), final: str | None = "conv",
                 out_channels: int | None = None) -> None:
        super().__init__()
        if final not in FINALS:
            raise ValueError(f"final must be one of {FINALS}, got {final!r}")
        if final is not None and not out_channels:
            raise ValueError(f"final={final!r} needs out_channels")
        layers: list[nn.Module] = []
        ch = in_channels
        for c in deconv_channels:
            layers.append(DeconvBNReLU(ch, c))
            ch = c
        self.deconvs = nn.Sequential(*layers)
        self.upsample = 2 ** len(deconv_channels)
        if final == "conv":
            self.final: nn.Module = nn.Conv2d(ch, out_channels, 1)
            ch = out_channels
        elif final == "deconv":
            self.final = nn.ConvTranspose2d(ch, out_channels, 4, 2, 1)
            ch = out_channels
            self.upsample *= 2
        else:
            self.final = nn.Identity()
        self.out_channels = ch
        init_weights(self)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(H, W) of the output for an input map of (height, width)."""
        return height * self.upsample, width * self.upsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.deconvs(x))


class SigmaBranch(nn.Module):
    """RLE's uncertainty branch: global average pool -> FC to K x 2 -> sigmoid.

    The sigma is the scale of the learned residual density; a confident keypoint has a small
    sigma, so the score exported with it is 1 - mean over (x, y) of sigma.
    """

    def __init__(self, in_channels: int, num_keypoints: int) -> None:
        super().__init__()
        self.num_keypoints = num_keypoints
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_keypoints * 2)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns sigma (N, K, 2) and scores (N, K)."""
        return self.from_pooled(self.pool(x).flatten(1))

    def from_pooled(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same from already pooled features (N, C), when the head pools that map anyway."""
        sigma = torch.sigmoid(self.fc(pooled)).reshape(-1, self.num_keypoints, 2)
        return sigma, 1.0 - sigma.mean(dim=-1)


def check_sigma_input(head: nn.Module, sigma_features: torch.Tensor | None) -> torch.Tensor | None:
    """The sigma branch needs its feature map; fail clearly if the model wiring forgot it."""
    if getattr(head, "sigma", None) is not None and sigma_features is None:
        raise ValueError(f"{type(head).__name__} has a sigma branch but got no sigma feature map")
    return sigma_features
