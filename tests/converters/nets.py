"""Small stand-ins for zoo models: the same layer types, a fraction of the width, for fast tests.

TinyShuffleDeepPose has what makes ShuffleNetV2-DeepPose hard to convert: a strided two-branch
unit, channel split + concat + channel shuffle (a view/transpose that must keep the batch
dynamic), BatchNorm to fold, global pooling and an FC head reshaped to (N, K, 2) in [0, 1].
TinyHeatmap ends in ConvTranspose layers and (N, K, H, W) heatmaps.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from edgepose.presets import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401 (re-exported for the tests)
from edgepose.spec import ModelSpec


def channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def conv_bn(cin: int, cout: int, k: int, s: int, *, groups: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ShuffleUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(conv_bn(cin, cin, 3, stride, groups=cin, relu=False),
                                         conv_bn(cin, half, 1, 1))
        inner = cin if stride > 1 else half
        self.branch2 = nn.Sequential(conv_bn(inner, half, 1, 1), conv_bn(half, half, 3, stride, groups=half, relu=False),
                                     conv_bn(half, half, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            out = torch.cat((a, self.branch2(b)), 1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), 1)
        return channel_shuffle(out)


class TinyBackbone(nn.Module):
    def __init__(self, width: int = 24) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 16, 3, 2), nn.MaxPool2d(3, 2, 1))
        self.stage2 = nn.Sequential(ShuffleUnit(16, width * 2, 2), ShuffleUnit(width * 2, width * 2, 1))
        self.stage3 = nn.Sequential(ShuffleUnit(width * 2, width * 4, 2), ShuffleUnit(width * 4, width * 4, 1))
        self.conv5 = conv_bn(width * 4, 128, 1, 1)
        self.out_channels = 128

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv5(self.stage3(self.stage2(self.stem(x))))


class TinyShuffleDeepPose(nn.Module):
    """ShuffleNetV2-ish backbone -> global average pool -> FC to K x 2 -> sigmoid (normalised x, y)."""

    def __init__(self, num_keypoints: int = 16) -> None:
        super().__init__()
        self.k = num_keypoints
        self.backbone = TinyBackbone()
        self.fc = nn.Linear(self.backbone.out_channels, num_keypoints * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone(x).mean((2, 3))
        return torch.sigmoid(self.fc(f)).view(-1, self.k, 2)


class TinyHeatmap(nn.Module):
    """The same backbone -> 2 x (ConvTranspose 4x4 s2, BN, ReLU) -> 1x1 conv to K heatmaps."""

    def __init__(self, num_keypoints: int = 16) -> None:
        super().__init__()
        self.backbone = TinyBackbone()
        c = self.backbone.out_channels
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(c, 32, 4, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(32, 32, 4, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True))
        self.final = nn.Conv2d(32, num_keypoints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.deconv(self.backbone(x)))


def randomize_bn(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give BatchNorm non-trivial statistics, as a trained model has, so folding them is tested."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return module.eval()


def deeppose_spec(size: tuple[int, int] = (96, 128), k: int = 16) -> ModelSpec:
    return ModelSpec(name="tiny_deeppose", input_size=size, head="regression", num_keypoints=k,
                     mean=IMAGENET_MEAN, std=IMAGENET_STD, outputs={"coords": "coords"})


def heatmap_spec(size: tuple[int, int] = (96, 128), k: int = 16) -> ModelSpec:
    return ModelSpec(name="tiny_heatmap", input_size=size, head="heatmap", num_keypoints=k,
                     mean=IMAGENET_MEAN, std=IMAGENET_STD, outputs={"heatmaps": "heatmaps"})


def tiny_deeppose(seed: int = 0) -> TinyShuffleDeepPose:
    torch.manual_seed(seed)
    return randomize_bn(TinyShuffleDeepPose(), seed)


def tiny_heatmap(seed: int = 0) -> TinyHeatmap:
    torch.manual_seed(seed)
    return randomize_bn(TinyHeatmap(), seed)
