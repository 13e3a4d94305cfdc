"""ShuffleNetV2 (Ma et al., ECCV 2018) feature extractor, without the classifier.

Layout as in the paper / torchvision: conv1 3x3 s2 (24) -> maxpool s2 -> stage2 (4 units)
-> stage3 (8) -> stage4 (4) -> conv5 1x1 (1024, or 2048 for x2.0). Strides: stage2 8,
stage3 16, stage4 32, conv5 32. The pose models take the stage-4 map (e.g. 464-d for x1.0)
and/or the conv5 map; `out_features` says which, and only what is needed is computed.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..layers import ConvBNAct, channel_shuffle, init_weights

# Output channels of conv1, stage2, stage3, stage4, conv5 for each width multiplier.
STAGE_CHANNELS: dict[str, tuple[int, int, int, int, int]] = {
    "x0.5": (24, 48, 96, 192, 1024),
    "x1.0": (24, 116, 232, 464, 1024),
    "x1.5": (24, 176, 352, 704, 1024),
    "x2.0": (24, 244, 488, 976, 2048),
}
STAGE_REPEATS = (4, 8, 4)
FEATURES = ("stage2", "stage3", "stage4", "conv5")
STRIDES = {"stage2": 8, "stage3": 16, "stage4": 32, "conv5": 32}


class InvertedResidual(nn.Module):
    """A ShuffleNetV2 unit. Stride 1: split channels in half, transform one half. Stride 2: two branches."""

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 out_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.out_size = out_size  # (H, W) of the output if known: constant reshapes in the export
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if out_channels % 2:
            raise ValueError(f"out_channels must be even, got {out_channels}")
        branch = out_channels // 2
        if stride == 1 and in_channels != out_channels:
            raise ValueError("a stride-1 unit needs in_channels == out_channels")
        self.stride = stride
        self.split = branch  # channel index where a stride-1 unit splits its input
        if stride == 2:
            self.branch1 = nn.Sequential(
                ConvBNAct(in_channels, in_channels, 3, 2, groups=in_channels, act=False),
                ConvBNAct(in_channels, branch, 1),
            )
        else:
            self.branch1 = nn.Identity()
        branch2_in = in_channels if stride == 2 else branch
        self.branch2 = nn.Sequential(
            ConvBNAct(branch2_in, branch, 1),
            ConvBNAct(branch, branch, 3, stride, groups=branch, act=False),
            ConvBNAct(branch, branch, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            # Static channel slices (constants in the graph), not chunk() on a traced shape.
            x1, x2 = x[:, : self.split], x[:, self.split:]
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2, channels=self.out_channels, size=self.out_size)


class ShuffleNetV2(nn.Module):
    """ShuffleNetV2 backbone returning a dict of the requested feature maps.

    width         "x0.5", "x1.0", "x1.5" or "x2.0" (channel configs in STAGE_CHANNELS).
    out_features  names from FEATURES; layers after the deepest requested one are not built.
    input_size    (width, height) the model will always see, if fixed: the channel shuffles then
                  export with constant shapes (no Shape ops); other sizes fail in the reshape.
                  None: any input size (a multiple of 32), with shape ops in the export.
    """

    def __init__(self, width: str = "x1.0", *, out_features: Sequence[str] = ("conv5",),
                 input_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        if width not in STAGE_CHANNELS:
            raise ValueError(f"unknown ShuffleNetV2 width {width!r}; use one of {sorted(STAGE_CHANNELS)}")
        out_features = tuple(out_features)
        bad = [f for f in out_features if f not in FEATURES]
        if bad or not out_features:
            raise ValueError(f"out_features {out_features!r} must be a non-empty subset of {FEATURES}")
        self.width = width
        self.out_features = out_features
        channels = STAGE_CHANNELS[width]
        self.channels = dict(zip(FEATURES, channels[1:]))
        depth = max(FEATURES.index(f) for f in out_features)

        self.conv1 = ConvBNAct(3, channels[0], 3, 2)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_ch = channels[0]
        stages = []
        if input_size is not None and (input_size[0] % 32 or input_size[1] % 32):
            raise ValueError(f"input_size {tuple(input_size)} must be a multiple of 32 in both axes")
        self.input_size = tuple(input_size) if input_size is not None else None
        for i, (repeats, out_ch) in enumerate(zip(STAGE_REPEATS[: min(depth + 1, 3)], channels[1:4])):
            stride = 8 * 2 ** i
            size = (input_size[1] // stride, input_size[0] // stride) if input_size is not None else None
            units = [InvertedResidual(in_ch, out_ch, 2, size)]
            units += [InvertedResidual(out_ch, out_ch, 1, size) for _ in range(repeats - 1)]
            stages.append(nn.Sequential(*units))
            in_ch = out_ch
        self.stages = nn.ModuleList(stages)
        self.conv5 = ConvBNAct(channels[3], channels[4], 1) if depth == 3 else None
        init_weights(self)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats: dict[str, torch.Tensor] = {}
        x = self.maxpool(self.conv1(x))
        for name, stage in zip(FEATURES, self.stages):
            x = stage(x)
            feats[name] = x
        if self.conv5 is not None:
            feats["conv5"] = self.conv5(x)
        return {name: feats[name] for name in self.out_features}
