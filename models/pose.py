"""`PoseModel`: a backbone and a head, wired by feature-map name."""
from __future__ import annotations

import torch
from torch import nn


class PoseModel(nn.Module):
    """backbone(x) -> dict of maps; head(maps[features], maps[sigma_features]) -> dict of outputs.

    In eval mode the output dict holds exactly the inference outputs, in the order of
    `output_names` ("coords" then "scores", or "heatmaps"); the legacy ONNX exporter flattens
    a dict in that order, so `torch.onnx.export(..., output_names=model.output_names)` names
    them right. In training mode heads add training-only entries (sigma, logits).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, *, features: str,
                 sigma_features: str | None = None, input_size: tuple[int, int],
                 output_names: tuple[str, ...]) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.features = features
        self.sigma_features = sigma_features
        self.input_size = tuple(input_size)  # (width, height)
        self.output_names = tuple(output_names)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        maps = self.backbone(x)
        sigma_map = maps[self.sigma_features] if self.sigma_features else None
        return self.head(maps[self.features], sigma_map)

    def switch_to_deploy(self) -> "PoseModel":
        """Fold re-parameterisable blocks (RepVGG) into single convs and ShuffleNetV2's channel
        shuffles into conv weights; same outputs, a faster graph.

        Call after loading weights, in eval mode, before export. Idempotent.
        """
        for m in list(self.modules()):
            if m is not self and callable(getattr(m, "switch_to_deploy", None)):
                m.switch_to_deploy()
        return self

    reparameterize = switch_to_deploy


def feature_size(input_size: tuple[int, int], stride: int) -> tuple[int, int]:
    """(H, W) of a backbone map at `stride` for an input of (width, height) divisible by it."""
    w, h = input_size
    if w % stride or h % stride:
        raise ValueError(f"input size {w}x{h} must be a multiple of the backbone stride {stride}")
    return h // stride, w // stride
