"""SimpleBaseline heatmap head (Xiao et al., ECCV 2018): deconvs up to 1/4 resolution, 1x1 conv to K.

The graph ends at the heatmaps (N, K, H, W); the runtime finds each peak (and refines it)
outside the graph, so the exported model has one output, "heatmaps".
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..backbones import ShuffleNetV2
from ..pose import PoseModel
from ..registry import register_model
from .common import KeypointMapTrunk

OUTPUTS = ("heatmaps",)


class HeatmapHead(nn.Module):
    """`len(deconv_channels)` x (ConvTranspose 4x4 s2 + BN + ReLU) -> 1x1 conv to K heatmaps."""

    def __init__(self, in_channels: int, num_keypoints: int, *,
                 deconv_channels: Sequence[int] = (256, 256, 256)) -> None:
        super().__init__()
        self.trunk = KeypointMapTrunk(in_channels, deconv_channels=deconv_channels, final="conv",
                                      out_channels=num_keypoints)

    def forward(self, x: torch.Tensor, sigma_x: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"heatmaps": self.trunk(x)}


def _heatmap(*, num_keypoints: int, input_size: tuple[int, int],
             deconv_channels: Sequence[int] = (256, 256, 256)) -> PoseModel:
    backbone = ShuffleNetV2("x1.0", out_features=("conv5",), input_size=input_size)
    head = HeatmapHead(backbone.channels["conv5"], num_keypoints, deconv_channels=deconv_channels)
    return PoseModel(backbone, head, features="conv5", input_size=input_size, output_names=OUTPUTS)


@register_model(
    input_size=256, head="heatmap", output_names=OUTPUTS,
    summary="ShuffleNetV2 x1.0 conv5 -> 3 x (deconv 4x4 s2, 256, BN, ReLU) -> 1x1 conv to K, 64x64 heatmaps")
def heatmap(*, num_keypoints: int, input_size: tuple[int, int], **options) -> PoseModel:
    """SimpleBaseline on ShuffleNetV2 x1.0 at 256x256. Option: deconv_channels."""
    return _heatmap(num_keypoints=num_keypoints, input_size=input_size, **options)


@register_model(
    input_size=128, head="heatmap", output_names=OUTPUTS,
    summary="the heatmap model at 128x128 input: 4x4 conv5 map -> 32x32 heatmaps (not in table A)")
def heatmap_128(*, num_keypoints: int, input_size: tuple[int, int], **options) -> PoseModel:
    """SimpleBaseline on ShuffleNetV2 x1.0 at 128x128. Option: deconv_channels."""
    return _heatmap(num_keypoints=num_keypoints, input_size=input_size, **options)
