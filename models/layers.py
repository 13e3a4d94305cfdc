"""Small building blocks shared by the backbones and heads.

Everything here is written to trace into a plain ONNX graph (opset 17, legacy TorchScript
exporter) with a dynamic batch: reshapes use -1 for the batch or shape ops recorded at trace
time, never a batch size read into a Python int.
"""
from __future__ import annotations

import torch
from torch import nn


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) + BatchNorm + optional ReLU: the unit every CNN here is made of."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 *, groups: int = 1, act: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2,
                      groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
        self.has_act = act
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # ReLU gain only where a ReLU follows: keeps the activations' second moment constant.
        nn.init.kaiming_normal_(self[0].weight, mode="fan_in", nonlinearity="relu" if self.has_act else "linear")


class DeconvBNReLU(nn.Sequential):
    """SimpleBaseline's upsampling unit: ConvTranspose 4x4, stride 2, padding 1 (exactly x2) + BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, output_padding=0, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def channel_shuffle(x: torch.Tensor, groups: int, *, channels: int,
                    size: tuple[int, int] | None = None) -> torch.Tensor:
    """ShuffleNet's channel shuffle of (N, channels, H, W): output channel i*groups + j is group j's channel i.

    The batch is always -1 in the reshapes, so an ONNX export runs at any batch size; a
    `view(b, ...)` with b read from `x.size()` can bake the traced batch into the graph
    (and `unflatten(1, (g, -1))` does: its exported shape arithmetic loses the symbolic batch).
    With `size=(H, W)` known up front the Reshape shapes are constants and the graph has no
    shape ops at all; without it H and W are read from the tensor (traced as Shape/Gather).
    """
    h, w = size if size is not None else (x.shape[2], x.shape[3])
    x = x.reshape(-1, groups, channels // groups, h, w).transpose(1, 2)
    return x.reshape(-1, channels, h, w)


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, input_shape: tuple[int, ...], *, seed: int = 0) -> None:
    """Set every BN's running statistics from one training-mode pass of Gaussian noise.

    Why: a randomly initialised network in eval mode (running mean 0, var 1) lets activations
    drift by orders of magnitude over 50 layers, and its outputs then barely depend on the
    input. After this pass each BN normalises its (noise-driven) input to zero mean and unit
    variance, so an untrained model behaves like a trained one numerically: outputs vary with
    the input, and parity tests and benchmarks of random-init models mean something. Weights
    loaded afterwards overwrite these statistics. The global RNG is left untouched.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    momenta = [m.momentum for m in bns]
    was_training = model.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batch
    model.train()
    try:
        gen = torch.Generator().manual_seed(seed)
        model(torch.randn(input_shape, generator=gen))
    finally:
        for m, momentum in zip(bns, momenta):
            m.momentum = momentum
        model.train(was_training)


def init_weights(module: nn.Module) -> None:
    """He-normal convs (ReLU gain), unit BN/LayerNorm, small truncated-normal Linear layers.

    ConvBNAct convs get the gain of what follows them (see ConvBNAct.reset_parameters).
    Heads re-initialise their last layers afterwards. See `calibrate_batchnorm` for the BN
    statistics of an untrained model.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in module.modules():
        if isinstance(m, ConvBNAct):
            m.reset_parameters()
