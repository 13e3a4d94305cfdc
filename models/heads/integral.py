"""Integral regression (Sun et al., ECCV 2018) and its DSNT-style deconv variant (Nibali et al., 2018).

Per-keypoint logit maps -> spatial softmax -> expected (x, y) over the cell-centre grid
(soft-argmax, see edgepose.models.ops). Differentiable, no decoding outside the graph.
"ipr" puts a 1x1 conv straight on the 8x8 conv5 map; "dsnt_deconv" first upsamples with the
deconv pair [256, K] to 32x32. Both carry RLE's sigma branch on the conv5 map (the
write-up's "optional sigma branch"); without it, scores are the softmax peaks.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..backbones import ShuffleNetV2
from ..ops import SoftArgmax2d
from ..pose import PoseModel, feature_size
from ..registry import register_model
from .common import KeypointMapTrunk, SigmaBranch, check_sigma_input

OUTPUTS = ("coords", "scores")


class IntegralHead(nn.Module):
    """KeypointMapTrunk to K logit maps -> SoftArgmax2d -> coords (N, K, 2), scores (N, K).

    feature_size     (H, W) of the input map (fixed: the soft-argmax grids are constants).
    deconv_channels  deconv + BN + ReLU layers before the last layer.
    final            "conv" (1x1 conv to K) or "deconv" (plain deconv to K), see KeypointMapTrunk.
    sigma_channels   channels of the sigma branch's map; None: scores = softmax peak.
    """

    def __init__(self, in_channels: int, num_keypoints: int, feature_size: tuple[int, int], *,
                 deconv_channels: Sequence[int] = (), final: str = "conv",
                 sigma_channels: int | None = None) -> None:
        super().__init__()
        self.trunk = KeypointMapTrunk(in_channels, deconv_channels=deconv_channels, final=final,
                                      out_channels=num_keypoints)
        h, w = self.trunk.output_size(*feature_size)
        self.soft_argmax = SoftArgmax2d(num_keypoints, h, w)
        self.sigma = SigmaBranch(sigma_channels, num_keypoints) if sigma_channels else None

    def forward(self, x: torch.Tensor, sigma_x: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        check_sigma_input(self, sigma_x)
        logits = self.trunk(x)
        coords, peak = self.soft_argmax(logits)
        out = {"coords": coords}
        if self.sigma is not None:
            sigma, out["scores"] = self.sigma(sigma_x)
        else:
            sigma, out["scores"] = None, peak
        if self.training:
            out["logits"] = logits
            if sigma is not None:
                out["sigma"] = sigma
        return out


def _integral(*, num_keypoints: int, input_size: tuple[int, int], deconv_channels: Sequence[int],
              final: str, sigma: bool = True) -> PoseModel:
    backbone = ShuffleNetV2("x1.0", out_features=("conv5",), input_size=input_size)
    ch = backbone.channels["conv5"]
    head = IntegralHead(ch, num_keypoints, feature_size(input_size, 32), deconv_channels=deconv_channels,
                        final=final, sigma_channels=ch if sigma else None)
    return PoseModel(backbone, head, features="conv5", sigma_features="conv5" if sigma else None,
                     input_size=input_size, output_names=OUTPUTS)


@register_model(
    input_size=256, head="integral", output_names=OUTPUTS,
    summary="ShuffleNetV2 x1.0 conv5 -> 1x1 conv to K on the 8x8 map -> soft-argmax; sigma branch")
def ipr(*, num_keypoints: int, input_size: tuple[int, int], sigma: bool = True) -> PoseModel:
    """Integral pose regression on the 8x8 conv5 map. Option: sigma (False: scores = softmax peak)."""
    return _integral(num_keypoints=num_keypoints, input_size=input_size, deconv_channels=(),
                     final="conv", sigma=sigma)


@register_model(
    input_size=256, head="integral", output_names=OUTPUTS,
    summary="ShuffleNetV2 x1.0 conv5 -> deconv(256)+BN+ReLU -> deconv(K) to 32x32 -> soft-argmax; sigma branch")
def dsnt_deconv(*, num_keypoints: int, input_size: tuple[int, int], sigma: bool = True) -> PoseModel:
    """Soft-argmax on 32x32 maps from the deconv pair [256, K]. Option: sigma."""
    return _integral(num_keypoints=num_keypoints, input_size=input_size, deconv_channels=(256,),
                     final="deconv", sigma=sigma)
