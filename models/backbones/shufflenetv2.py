"""ShuffleNetV2 (Ma et al., ECCV 2018) feature extractor, without the classifier.

Layout as in the paper / torchvision: conv1 3x3 s2 (24) -> maxpool s2 -> stage2 (4 units)
-> stage3 (8) -> stage4 (4) -> conv5 1x1 (1024, or 2048 for x2.0). Strides: stage2 8,
stage3 16, stage4 32, conv5 32. The pose models take the stage-4 map (e.g. 464-d for x1.0)
and/or the conv5 map; `out_features` says which, and only what is needed is computed.

`switch_to_deploy()` removes the channel shuffles from the graph (`fold_channel_shuffles`): the
same outputs, no Reshape-Transpose-Reshape per unit. That is 4-7% faster in FP32 (MNN and ONNX
Runtime, measured here) and is what lets ONNX Runtime's INT8 path run ShuffleNet at speed: its
channels-last int8 kernels cannot move their layout Transposes through the 5-D shuffle, so every
unit paid three uint8 Transposes (47 on deeppose, a quarter of the INT8 time).
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
        # Set by fold_channel_shuffles: the unit then splits its input into `pieces`, feeds piece
        # `branch_piece` to branch2 and concatenates pieces `keep` before branch2's output; no shuffle.
        self.pieces: list[int] | None = None
        self.branch_piece = 0
        self.keep: list[int] = []
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
        if self.pieces is not None:  # folded: the channel order lives in the weights
            if self.stride == 2:
                return torch.cat((self.branch1(x), self.branch2(x)), dim=1)
            parts = torch.split(x, self.pieces, dim=1)
            return torch.cat([parts[i] for i in self.keep] + [self.branch2(parts[self.branch_piece])], dim=1)
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
            order = getattr(self, f"{name}_order", None)
            if order is not None:  # folded: back to the channel order the heads were built for
                x = x.index_select(1, order)
            feats[name] = x
        if self.conv5 is not None:
            feats["conv5"] = self.conv5(x)
        return {name: feats[name] for name in self.out_features}

    @property
    def shuffles_folded(self) -> bool:
        return hasattr(self, FOLDED_MARK)

    def switch_to_deploy(self) -> "ShuffleNetV2":
        """Fold the channel shuffles into the conv weights (eval mode, after loading weights). Idempotent."""
        if not self.shuffles_folded:
            fold_channel_shuffles(self)
        return self


# A buffer whose presence in a state dict says its weights were saved from a folded backbone.
FOLDED_MARK = "shuffles_folded_mark"


def fold_channel_shuffles(net: ShuffleNetV2) -> None:
    """Replace every channel shuffle by bookkeeping: exact in float, in place.

    A unit's output in the original is shuffle(cat(A, B)): logical channel 2j is A[j] and 2j+1
    is B[j]. Instead, the tensor is kept in a "physical" order (`phys[k]` = the logical channel
    stored at position k) that each layer reading it absorbs into its weights: input columns of
    1x1 convs, channels of depthwise convs (with their BN), and conv5. Each unit orders what it
    writes so that the channels the next unit's branch reads (logical [C/2, C)) form one
    contiguous block; a stride-1 unit then becomes Split -> branch2 -> Concat with no data
    movement. A feature map a head reads gets one channel Gather back to the logical order.
    """
    phys: list[int] | None = None  # None: logical order
    for si, stage in enumerate(net.stages):
        units = list(stage)
        for ui, unit in enumerate(units):
            channels, half = unit.out_channels, unit.out_channels // 2
            # logical output ids the next unit's branch2 reads (a next stage's stride-2 unit reads all: no constraint)
            wanted = set(range(half, channels)) if ui + 1 < len(units) else set()
            out_b = sorted(range(half), key=lambda j: (2 * j + 1 not in wanted, j))  # B (branch2): wanted first
            if unit.stride == 2:
                out_a = sorted(range(half), key=lambda j: (2 * j in wanted, j))  # A (branch1): wanted last
                order = phys if phys is not None else list(range(unit.branch2[0][0].in_channels))
                _permute_channels(unit.branch1[0], order)   # depthwise: channel k now reads logical order[k]
                _permute_inputs(unit.branch1[1], order)
                _permute_inputs(unit.branch2[0], order)
                _permute_channels(unit.branch1[1], out_a, outputs_only=True)
                _permute_channels(unit.branch2[2], out_b, outputs_only=True)
                phys = [2 * j for j in out_a] + [2 * j + 1 for j in out_b]
                unit.pieces = []  # folded, stride 2: plain concatenation
                continue
            assert phys is not None  # a stage starts with a stride-2 unit
            # Input positions: "x2" = logical >= half (branch2 input); else passthrough x1[i] -> output 2i.
            kinds = ["x2" if i >= half else ("next" if 2 * i in wanted else "out") for i in phys]
            runs = _runs(kinds)
            branch = [k for k, (kind, _, _) in enumerate(runs) if kind == "x2"]
            assert len(branch) == 1, runs  # the previous unit made the branch input contiguous
            _, length, start = runs[branch[0]]
            _permute_inputs(unit.branch2[0], [phys[k] - half for k in range(start, start + length)])
            _permute_channels(unit.branch2[2], out_b, outputs_only=True)
            keep = ([k for k, r in enumerate(runs) if r[0] == "out"] + [k for k, r in enumerate(runs) if r[0] == "next"])
            unit.pieces, unit.branch_piece, unit.keep = [r[1] for r in runs], branch[0], keep
            phys = [2 * phys[i] for k in keep for i in range(runs[k][2], runs[k][2] + runs[k][1])] + \
                   [2 * j + 1 for j in out_b]
        if FEATURES[si] in net.out_features:  # else the next stage's stride-2 unit absorbs `phys`
            inverse = sorted(range(len(phys)), key=lambda k: phys[k])  # logical i sits at position inverse[i]
            net.register_buffer(f"{FEATURES[si]}_order", torch.tensor(inverse, dtype=torch.long))
            phys = None
    if net.conv5 is not None and phys is not None:
        _permute_inputs(net.conv5, phys)
    net.register_buffer(FOLDED_MARK, torch.ones(()))


def _runs(kinds: list[str]) -> list[tuple[str, int, int]]:
    """Maximal runs of equal kinds: (kind, length, start)."""
    runs, start = [], 0
    for k in range(1, len(kinds) + 1):
        if k == len(kinds) or kinds[k] != kinds[start]:
            runs.append((kinds[start], k - start, start))
            start = k
    return runs


@torch.no_grad()
def _permute_inputs(block: ConvBNAct, order: Sequence[int]) -> None:
    """A dense conv that now receives, at input position k, the channel it used to get at order[k]."""
    conv = block[0]
    if conv.groups != 1:
        raise ValueError("only dense convs can absorb an input permutation")
    conv.weight.copy_(conv.weight[:, torch.as_tensor(list(order))].clone())


@torch.no_grad()
def _permute_channels(block: ConvBNAct, order: Sequence[int], *, outputs_only: bool = False) -> None:
    """Output channel k becomes the old output channel order[k] (conv, bias and BN). For a depthwise
    conv this also moves its input channel, which is how it absorbs an input permutation."""
    conv, idx = block[0], torch.as_tensor(list(order))
    if not outputs_only and conv.groups != conv.out_channels:
        raise ValueError("only a depthwise conv moves its inputs with its outputs")
    conv.weight.copy_(conv.weight[idx].clone())
    if conv.bias is not None:
        conv.bias.copy_(conv.bias[idx].clone())
    bn = block[1]
    for name in ("weight", "bias", "running_mean", "running_var"):
        t = getattr(bn, name)
        t.copy_(t[idx].clone())
