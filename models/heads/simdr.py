"""SimDR / SimCC (Li et al., ECCV 2022): keypoint position as two 1-D classifications.

Each keypoint's map (H x W) is flattened and a linear layer maps it to L_x + L_y logits;
a softmax over each axis and the expectation over the bin centres give x and y in [0, 1].
L is the input size times SimDR's split ratio k = 2 (the paper's default): 512 bins at 256
input (the write-up's "2 x 512"), 640 at 320.

The "normalised" variant (simdr_norm and later rows) replaces the shared linear layer by
two cosine-normalised ones (x and y) scaled by beta = 15, after a 1x1 conv that follows
the deconvs, with dropout before them in training (p = 0.1: the write-up gives no value).
All rows carry RLE's sigma branch; the final model takes it from conv5 (1024-d) while
localising from the stage-4 map (464-d).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..backbones import EfficientRep, ShuffleNetV2
from ..ops import CosineLinear, Expectation1d
from ..pose import PoseModel, feature_size
from ..registry import register_model
from .common import KeypointMapTrunk, SigmaBranch, check_sigma_input

OUTPUTS = ("coords", "scores")
SPLIT_RATIO = 2


class SimDRHead(nn.Module):
    """KeypointMapTrunk to K maps -> flatten -> x/y logits -> softmax -> expectation.

    feature_size     (H, W) of the input map.
    bins             (L_x, L_y).
    normalised       cosine-normalised x and y classifiers (beta, dropout) instead of one Linear to L_x + L_y.
    sigma_channels   channels of the sigma branch's map; None: scores = min(peak_x, peak_y).
    """

    def __init__(self, in_channels: int, num_keypoints: int, feature_size: tuple[int, int], *,
                 bins: tuple[int, int], deconv_channels: Sequence[int] = (256,), final: str = "deconv",
                 normalised: bool = False, beta: float = 15.0, dropout: float = 0.1,
                 sigma_channels: int | None = None) -> None:
        super().__init__()
        self.num_keypoints = num_keypoints
        self.trunk = KeypointMapTrunk(in_channels, deconv_channels=deconv_channels, final=final,
                                      out_channels=num_keypoints)
        h, w = self.trunk.output_size(*feature_size)
        self.map_size = h * w
        self.bins = tuple(int(b) for b in bins)
        lx, ly = self.bins
        self.normalised = normalised
        if normalised:
            self.dropout = nn.Dropout(dropout)
            self.cls_x: nn.Module = CosineLinear(self.map_size, lx, beta=beta)
            self.cls_y: nn.Module = CosineLinear(self.map_size, ly, beta=beta)
        else:
            self.cls = nn.Linear(self.map_size, lx + ly)
            nn.init.trunc_normal_(self.cls.weight, std=0.02)
            nn.init.zeros_(self.cls.bias)
        self.expect_x = Expectation1d(lx)
        self.expect_y = Expectation1d(ly)
        self.sigma = SigmaBranch(sigma_channels, num_keypoints) if sigma_channels else None

    def logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 1-D logits (N, K, L_x), (N, K, L_y)."""
        maps = self.trunk(x).reshape(-1, self.num_keypoints, self.map_size)
        if self.normalised:
            maps = self.dropout(maps)
            return self.cls_x(maps), self.cls_y(maps)
        both = self.cls(maps)
        return both[..., : self.bins[0]], both[..., self.bins[0]:]

    def forward(self, x: torch.Tensor, sigma_x: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        check_sigma_input(self, sigma_x)
        lx, ly = self.logits(x)
        px, peak_x = self.expect_x(lx)
        py, peak_y = self.expect_y(ly)
        out = {"coords": torch.stack((px, py), dim=-1)}
        sigma = None
        if self.sigma is not None:
            sigma, out["scores"] = self.sigma(sigma_x)
        else:
            out["scores"] = torch.minimum(peak_x, peak_y)
        if self.training:
            out["simdr_x"], out["simdr_y"] = lx, ly
            if sigma is not None:
                out["sigma"] = sigma
        return out


def simdr_bins(input_size: tuple[int, int]) -> tuple[int, int]:
    return input_size[0] * SPLIT_RATIO, input_size[1] * SPLIT_RATIO


def _shufflenet_simdr(*, num_keypoints: int, input_size: tuple[int, int], features: str,
                      deconv_channels: Sequence[int], final: str, normalised: bool,
                      **options) -> PoseModel:
    sigma_map = "conv5"
    backbone = ShuffleNetV2("x1.0", out_features=tuple(dict.fromkeys((features, sigma_map))),
                            input_size=input_size)
    head = SimDRHead(backbone.channels[features], num_keypoints, feature_size(input_size, 32),
                     bins=simdr_bins(input_size), deconv_channels=deconv_channels, final=final,
                     normalised=normalised, sigma_channels=backbone.channels[sigma_map], **options)
    return PoseModel(backbone, head, features=features, sigma_features=sigma_map,
                     input_size=input_size, output_names=OUTPUTS)


@register_model(
    input_size=256, head="simdr", output_names=OUTPUTS,
    summary="ShuffleNetV2 x1.0 conv5 -> deconv(256) -> deconv(K) to 32x32 -> flatten (1024) -> "
            "Linear to 2x512 -> split x/y -> softmax -> expectation; sigma branch")
def simdr(*, num_keypoints: int, input_size: tuple[int, int]) -> PoseModel:
    """SimDR with one shared linear classifier on 32x32 maps."""
    return _shufflenet_simdr(num_keypoints=num_keypoints, input_size=input_size, features="conv5",
                             deconv_channels=(256,), final="deconv", normalised=False)


@register_model(
    input_size=256, head="simdr", output_names=OUTPUTS,
    summary="simdr + deconv(K)+BN+ReLU then 1x1 conv + cosine-normalised x/y linear layers (beta=15, "
            "dropout in training); sigma branch")
def simdr_norm(*, num_keypoints: int, input_size: tuple[int, int], **options) -> PoseModel:
    """SimDR with the 1x1 conv and cosine-normalised classifiers. Options: beta, dropout."""
    return _shufflenet_simdr(num_keypoints=num_keypoints, input_size=input_size, features="conv5",
                             deconv_channels=(256, num_keypoints), final="conv", normalised=True, **options)


@register_model(
    input_size=320, head="simdr", output_names=OUTPUTS,
    summary="simdr_norm at 320x320: conv5 (1024-d) 10x10 -> 40x40 maps -> 2x640 bins")
def simdr_320_1024d(*, num_keypoints: int, input_size: tuple[int, int], **options) -> PoseModel:
    """simdr_norm at 320 input, localising from the 1024-d conv5 map. Options: beta, dropout."""
    return simdr_norm(num_keypoints=num_keypoints, input_size=input_size, **options)


@register_model(
    input_size=320, head="simdr", output_names=OUTPUTS,
    summary="final: ShuffleNetV2 x1.0 stage-4 (464-d) 10x10 -> deconv(256) -> 1x1 conv to K (20x20) -> "
            "cosine x/y (2x640 bins); conv5 (1024-d) only for the sigma branch")
def simdr_320(*, num_keypoints: int, input_size: tuple[int, int], **options) -> PoseModel:
    """The final model of the lineage. Options: beta, dropout."""
    return _shufflenet_simdr(num_keypoints=num_keypoints, input_size=input_size, features="stage4",
                             deconv_channels=(256,), final="conv", normalised=True, **options)


@register_model(
    input_size=320, head="simdr", output_names=OUTPUTS,
    summary="the final head on YOLOv6-n EfficientRep (RepVGG, re-parameterised for inference): "
            "erblock5 (256-d, stride 32) for localisation and the sigma branch")
def efficientrep_n_320(*, num_keypoints: int, input_size: tuple[int, int], **options) -> PoseModel:
    """simdr_320's head on EfficientRep-n. EfficientRep has no separate wide conv5, so both branches
    read the stride-32 map after SimSPPF. Call `switch_to_deploy()` (or create_model(..., deploy=True))
    before export. Options: beta, dropout."""
    backbone = EfficientRep("n", out_features=("erblock5",))
    ch = backbone.channels["erblock5"]
    head = SimDRHead(ch, num_keypoints, feature_size(input_size, 32), bins=simdr_bins(input_size),
                     deconv_channels=(256,), final="conv", normalised=True, sigma_channels=ch, **options)
    return PoseModel(backbone, head, features="erblock5", sigma_features="erblock5",
                     input_size=input_size, output_names=OUTPUTS)
