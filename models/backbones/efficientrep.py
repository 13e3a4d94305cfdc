"""EfficientRep, the YOLOv6 backbone, built from RepVGG blocks (Ding et al., CVPR 2021).

Training form of a RepVGG block: ReLU(BN(conv3x3(x)) + BN(conv1x1(x)) + BN(x)) (the
identity branch only when shapes allow). All three branches are linear, so after training
they fold into one 3x3 conv with bias: `switch_to_deploy()` does that, and the exported
inference graph is a plain stack of 3x3 convs + ReLU.

EfficientRep (YOLOv6 v1/v2, `yolov6n.py`): base channels [64, 128, 256, 512, 1024], base
repeats [1, 6, 12, 18, 6]; the "n" model scales width by 0.25 and depth by 0.33, giving
channels [16, 32, 64, 128, 256] and repeats [1, 2, 4, 6, 2]. Layout: stem RepVGG s2, then
four ERBlocks (RepVGG s2 + RepBlock of n blocks), the last one followed by SimSPPF.
Strides: stem 2, erblock2 4, erblock3 8, erblock4 16, erblock5 32.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..layers import ConvBNAct, init_weights

FEATURES = ("erblock2", "erblock3", "erblock4", "erblock5")
STRIDES = {"erblock2": 4, "erblock3": 8, "erblock4": 16, "erblock5": 32}
VARIANTS = {"n": (0.33, 0.25), "t": (0.33, 0.375), "s": (0.33, 0.5)}  # (depth, width) multipliers
BASE_CHANNELS = (64, 128, 256, 512, 1024)
BASE_REPEATS = (1, 6, 12, 18, 6)


def _fuse_conv_bn(kernel: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode BN that follows a bias-free conv into the conv's kernel and a bias."""
    std = (bn.running_var + bn.eps).sqrt()
    scale = bn.weight / std
    return kernel * scale.reshape(-1, 1, 1, 1), bn.bias - bn.running_mean * scale


class RepVGGBlock(nn.Module):
    """3x3+BN, 1x1+BN and (if in == out and stride 1) identity-BN branches, summed, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.rbr_dense = ConvBNAct(in_channels, out_channels, 3, stride, act=False)
        self.rbr_1x1 = ConvBNAct(in_channels, out_channels, 1, stride, act=False)
        self.rbr_identity = (nn.BatchNorm2d(in_channels)
                             if in_channels == out_channels and stride == 1 else None)
        self.rbr_reparam: nn.Conv2d | None = None
        self.act = nn.ReLU(inplace=True)

    @property
    def deployed(self) -> bool:
        return self.rbr_reparam is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rbr_reparam is not None:
            return self.act(self.rbr_reparam(x))
        y = self.rbr_dense(x) + self.rbr_1x1(x)
        if self.rbr_identity is not None:
            y = y + self.rbr_identity(x)
        return self.act(y)

    def equivalent_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The single 3x3 kernel and bias equal to the three branches (BN in eval mode)."""
        k3, b3 = _fuse_conv_bn(self.rbr_dense[0].weight, self.rbr_dense[1])
        k1, b1 = _fuse_conv_bn(self.rbr_1x1[0].weight, self.rbr_1x1[1])
        kernel = k3 + nn.functional.pad(k1, [1, 1, 1, 1])
        bias = b3 + b1
        if self.rbr_identity is not None:
            ident = torch.zeros_like(k3)
            idx = torch.arange(self.in_channels)
            ident[idx, idx, 1, 1] = 1.0
            ki, bi = _fuse_conv_bn(ident, self.rbr_identity)
            kernel, bias = kernel + ki, bias + bi
        return kernel, bias

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Replace the branches by one 3x3 conv (idempotent). Uses the BN running statistics."""
        if self.rbr_reparam is not None:
            return
        kernel, bias = self.equivalent_kernel_bias()
        conv = nn.Conv2d(self.in_channels, self.out_channels, 3, self.stride, 1, bias=True)
        conv.weight.copy_(kernel)
        conv.bias.copy_(bias)
        conv.to(device=kernel.device, dtype=kernel.dtype)
        self.rbr_reparam = conv
        del self.rbr_dense, self.rbr_1x1, self.rbr_identity
        self.rbr_identity = None

    reparameterize = switch_to_deploy


class RepBlock(nn.Sequential):
    """n RepVGG blocks; the first changes channels."""

    def __init__(self, in_channels: int, out_channels: int, n: int) -> None:
        blocks = [RepVGGBlock(in_channels, out_channels)]
        blocks += [RepVGGBlock(out_channels, out_channels) for _ in range(n - 1)]
        super().__init__(*blocks)


class SimSPPF(nn.Module):
    """YOLOv6's simplified SPPF: 1x1 conv, three chained 5x5 max-pools, concat, 1x1 conv (ReLU)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5) -> None:
        super().__init__()
        hidden = in_channels // 2
        self.cv1 = ConvBNAct(in_channels, hidden, 1)
        self.m = nn.MaxPool2d(kernel_size, 1, kernel_size // 2)
        self.cv2 = ConvBNAct(hidden * 4, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), dim=1))


def _scaled(variant: str) -> tuple[list[int], list[int]]:
    depth, width = VARIANTS[variant]
    channels = [math.ceil(c * width / 8) * 8 for c in BASE_CHANNELS]
    repeats = [max(round(n * depth), 1) if n > 1 else n for n in BASE_REPEATS]
    return channels, repeats


class EfficientRep(nn.Module):
    """EfficientRep backbone returning a dict of the requested maps (names in FEATURES).

    Call `switch_to_deploy()` (after training / loading weights, in eval mode) to fuse every
    RepVGG block into a single 3x3 conv for inference and export.
    """

    def __init__(self, variant: str = "n", *, out_features: Sequence[str] = ("erblock5",)) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown EfficientRep variant {variant!r}; use one of {sorted(VARIANTS)}")
        out_features = tuple(out_features)
        bad = [f for f in out_features if f not in FEATURES]
        if bad or not out_features:
            raise ValueError(f"out_features {out_features!r} must be a non-empty subset of {FEATURES}")
        self.variant = variant
        self.out_features = out_features
        ch, reps = _scaled(variant)
        self.channels = dict(zip(FEATURES, ch[1:]))
        self.stem = RepVGGBlock(3, ch[0], 2)
        blocks = []
        for i in range(1, 5):
            layers: list[nn.Module] = [RepVGGBlock(ch[i - 1], ch[i], 2), RepBlock(ch[i], ch[i], reps[i])]
            if i == 4:
                layers.append(SimSPPF(ch[4], ch[4], 5))
            blocks.append(nn.Sequential(*layers))
        depth = max(FEATURES.index(f) for f in out_features)
        self.blocks = nn.ModuleList(blocks[: depth + 1])
        init_weights(self)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.stem(x)
        feats = {}
        for name, block in zip(FEATURES, self.blocks):
            x = block(x)
            feats[name] = x
        return {name: feats[name] for name in self.out_features}

    def switch_to_deploy(self) -> "EfficientRep":
        for m in self.modules():
            if isinstance(m, RepVGGBlock):
                m.switch_to_deploy()
        return self

    reparameterize = switch_to_deploy
