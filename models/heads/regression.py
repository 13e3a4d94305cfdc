"""DeepPose-style direct regression (Toshev & Szegedy 2014), as used by RLE (Li et al., ICCV 2021).

Global average pool -> FC to K x 2 normalised coordinates, no sigmoid. RLE trains the same
graph with a residual log-likelihood (a normalising flow on the error, training only) and
adds the sigma branch; "RLE" and "RLE*" therefore share this inference graph.
"""
from __future__ import annotations

import torch
from torch import nn

from ..backbones import ShuffleNetV2
from ..pose import PoseModel
from ..registry import register_model
from .common import SigmaBranch, check_sigma_input

OUTPUTS = ("coords", "scores")


class RegressionHead(nn.Module):
    """pool -> FC -> coords (N, K, 2); with `sigma_channels`, RLE's sigma branch -> scores (N, K).

    The FC is initialised with bias 0.5 and small weights, so an untrained model predicts
    near the image centre, inside [0, 1]; there is no sigmoid, so a trained model may
    (rarely) step outside [0, 1] for keypoints outside the crop.
    """

    def __init__(self, in_channels: int, num_keypoints: int, *, sigma_channels: int | None = None) -> None:
        super().__init__()
        self.num_keypoints = num_keypoints
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_keypoints * 2)
        nn.init.normal_(self.fc.weight, std=0.005)
        nn.init.constant_(self.fc.bias, 0.5)
        self.sigma = SigmaBranch(sigma_channels, num_keypoints) if sigma_channels else None

    def forward(self, x: torch.Tensor, sigma_x: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        check_sigma_input(self, sigma_x)
        pooled = self.pool(x).flatten(1)
        out = {"coords": self.fc(pooled).reshape(-1, self.num_keypoints, 2)}
        if self.sigma is not None:
            # The same map for both branches (plain RLE): pool it once.
            sigma, scores = (self.sigma.from_pooled(pooled) if sigma_x is x else self.sigma(sigma_x))
            out["scores"] = scores
            if self.training:
                out["sigma"] = sigma
        return out


def _deeppose(width: str, *, num_keypoints: int, input_size: tuple[int, int], sigma: bool = True) -> PoseModel:
    backbone = ShuffleNetV2(width, out_features=("conv5",), input_size=input_size)
    ch = backbone.channels["conv5"]
    head = RegressionHead(ch, num_keypoints, sigma_channels=ch if sigma else None)
    return PoseModel(backbone, head, features="conv5", sigma_features="conv5" if sigma else None,
                     input_size=input_size, output_names=OUTPUTS if sigma else OUTPUTS[:1])


@register_model(
    input_size=256, head="regression", output_names=OUTPUTS,
    summary="ShuffleNetV2 x1.0 conv5 (1024-d) -> global avg pool -> FC to Kx2 (DeepPose / RLE), "
            "sigma branch for scores")
def deeppose(*, num_keypoints: int, input_size: tuple[int, int]) -> PoseModel:
    """DeepPose / RLE on ShuffleNetV2 x1.0."""
    return _deeppose("x1.0", num_keypoints=num_keypoints, input_size=input_size)


@register_model(
    input_size=256, head="regression", output_names=OUTPUTS,
    summary="ShuffleNetV2 x2.0 conv5 (2048-d) -> global avg pool -> FC to Kx2, sigma branch for scores")
def deeppose_x2(*, num_keypoints: int, input_size: tuple[int, int]) -> PoseModel:
    """DeepPose / RLE on ShuffleNetV2 x2.0 (twice the width)."""
    return _deeppose("x2.0", num_keypoints=num_keypoints, input_size=input_size)
