"""Held-out architectures nobody here wrote, rebuilt in plain torch (torchvision does not import beside
the CPU torch here), with random weights and *realistic* BatchNorm statistics.

Realistic statistics matter: BatchNorm folds into the convolution weights, and a trained net's
running variances (set here by running the net in training mode over random images, as calibration
would) give the folded weights the spread that makes MNN's FP16 weight truncation add up over depth
(issue 17: efficientnet_b0 fell to cosine 0.996 under truncation).

  efficientnet_b0_style   EfficientNet-B0's exact layout: MBConv (expand 1/6, depthwise 3x3/5x5,
                          squeeze-excitation, SiLU), 16 blocks, 1280-channel head, classifier
  mobilenet_v3_small_style MobileNetV3-Small: hard-swish/hard-sigmoid, SE, 11 bnecks, 1024 hidden FC
  convnext_style          ConvNeXt blocks: depthwise 7x7, channels-last LayerNorm, GELU MLP,
                          layer scale, patchify stem and downsampling layers
  attention_style         a ViT-style encoder: patch embedding, class token, position embedding,
                          multi-head self-attention (explicit matmuls), LayerNorm, GELU MLP
"""
from __future__ import annotations


import torch
import torch.nn as nn
import torch.nn.functional as F


def _div(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class ConvBNAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: type | None = nn.SiLU):
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeeze: int, act: type = nn.SiLU, gate: type = nn.Sigmoid):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.act, self.gate = act(), gate()

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, s: int, expand: int):
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(cin, mid, 1))
        layers += [ConvBNAct(mid, mid, k, s, groups=mid), SqueezeExcite(mid, max(1, cin // 4)),
                   ConvBNAct(mid, cout, 1, act=None)]
        self.block = nn.Sequential(*layers)
        self.residual = s == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class EfficientNetB0Style(nn.Module):
    # (expand, channels, repeats, stride, kernel): EfficientNet-B0's table
    CONFIG = [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3), (6, 112, 3, 1, 5),
              (6, 192, 4, 2, 5), (6, 320, 1, 1, 3)]

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = [ConvBNAct(3, 32, 3, 2)]
        cin = 32
        for expand, cout, repeats, stride, k in self.CONFIG:
            for i in range(repeats):
                layers.append(MBConv(cin, cout, k, stride if i == 0 else 1, expand))
                cin = cout
        layers.append(ConvBNAct(cin, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(1280, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


class InvertedResidualV3(nn.Module):
    def __init__(self, cin: int, k: int, exp: int, cout: int, se: bool, act: type, s: int):
        super().__init__()
        layers: list[nn.Module] = []
        if exp != cin:
            layers.append(ConvBNAct(cin, exp, 1, act=act))
        layers.append(ConvBNAct(exp, exp, k, s, groups=exp, act=act))
        if se:
            layers.append(SqueezeExcite(exp, _div(exp // 4), act=nn.ReLU, gate=nn.Hardsigmoid))
        layers.append(ConvBNAct(exp, cout, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = s == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class MobileNetV3SmallStyle(nn.Module):
    RE, HS = nn.ReLU, nn.Hardswish
    # (kernel, expanded, out, SE, activation, stride): MobileNetV3-Small's table
    CONFIG = [(3, 16, 16, True, RE, 2), (3, 72, 24, False, RE, 2), (3, 88, 24, False, RE, 1),
              (5, 96, 40, True, HS, 2), (5, 240, 40, True, HS, 1), (5, 240, 40, True, HS, 1),
              (5, 120, 48, True, HS, 1), (5, 144, 48, True, HS, 1), (5, 288, 96, True, HS, 2),
              (5, 576, 96, True, HS, 1), (5, 576, 96, True, HS, 1)]

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = [ConvBNAct(3, 16, 3, 2, act=nn.Hardswish)]
        cin = 16
        for k, exp, cout, se, act, s in self.CONFIG:
            layers.append(InvertedResidualV3(cin, k, exp, cout, se, act, s))
            cin = cout
        layers.append(ConvBNAct(cin, 576, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(576, 1024), nn.Hardswish(), nn.Dropout(0.2),
                                        nn.Linear(1024, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over channels of an NCHW tensor, as ConvNeXt writes it (permute, norm, permute)."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1, self.pw2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 0.5))

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(F.gelu(self.pw1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtStyle(nn.Module):
    def __init__(self, dims=(24, 48, 96, 192), depths=(1, 1, 2, 1), num_classes: int = 100):
        super().__init__()
        stages: list[nn.Module] = [nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0], eps=1e-6)]
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            if i:
                stages += [LayerNorm2d(dims[i - 1], eps=1e-6), nn.Conv2d(dims[i - 1], dim, 2, 2)]
            stages += [ConvNeXtBlock(dim) for _ in range(depth)]
        self.features = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)

    def forward(self, x):
        return self.head(self.norm(self.features(x).mean((2, 3))))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv, self.proj = nn.Linear(dim, dim * 3), nn.Linear(dim, dim)

    def forward(self, x):
        n, t, c = x.shape
        qkv = self.qkv(x).reshape(-1, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(-1, t, c))


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 2), nn.GELU(), nn.Linear(dim * 2, dim))

    def forward(self, x):
        x = x + self.attn(self.n1(x))
        return x + self.mlp(self.n2(x))


class AttentionStyle(nn.Module):
    """ViT-like: 8x8 patches of a 64x64 image, 64 tokens + class token, 2 encoder blocks."""

    def __init__(self, dim: int = 64, depth: int = 2, heads: int = 4, size: int = 64, patch: int = 8,
                 num_classes: int = 100):
        super().__init__()
        self.embed = nn.Conv2d(3, dim, patch, patch)
        tokens = (size // patch) ** 2
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(dim, heads) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, num_classes)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], 1) + self.pos
        return self.head(self.norm(self.blocks(t))[:, 0])


@torch.no_grad()
def realistic(model: nn.Module, input_shape, *, seed: int = 0, batches: int = 4,
              calibration: str = "normal") -> nn.Module:
    """Random weights, then trained-looking normalisation: BatchNorm running statistics measured by
    running the net in training mode on random images (cumulative average), random affine
    parameters around 1 / 0 for every norm layer. Returns the model in eval mode.

    `calibration` is the distribution of the calibration images, and must be what the net is then fed:
    "normal" (standard normal, the parity check's inputs for a model without a card) or "uniform"
    ([-1, 1]). Fed standard normal images after a uniform calibration, EfficientNet-B0-style outputs
    reach 3e3 and torch and ONNX Runtime differ by 2.6e-3 (an out-of-distribution net). How much MNN's
    FP16 truncation costs depends on the calibration too: cosine 0.9976 (uniform) vs 0.99998 (normal)
    for EfficientNet-B0-style; rounding gives 0.99999+ on both."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                m.bias.normal_(0.0, 0.05, generator=g)
        if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)) and m.weight is not None:
            m.weight.uniform_(0.5, 1.5, generator=g)
            m.bias.normal_(0.0, 0.1, generator=g)
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    for _ in range(batches):
        if calibration == "normal":  # what the parity check feeds a model without a card
            model(torch.randn(tuple(input_shape), generator=g))
        else:  # "uniform": images in [-1, 1]
            model(torch.rand(tuple(input_shape), generator=g) * 2.0 - 1.0)
    return model.eval()


HELDOUT = {
    # name: (constructor, input shape). Input sizes kept small for CI; depth (what matters for
    # FP16 drift) is the real architecture's.
    "efficientnet_b0_style": (EfficientNetB0Style, (1, 3, 128, 128)),
    "mobilenet_v3_small_style": (MobileNetV3SmallStyle, (1, 3, 128, 128)),
    "convnext_style": (ConvNeXtStyle, (1, 3, 64, 64)),
    "attention_style": (AttentionStyle, (1, 3, 64, 64)),
}


def heldout(name: str, *, seed: int = 0, calibration: str = "normal") -> tuple[nn.Module, tuple[int, ...]]:
    ctor, shape = HELDOUT[name]
    return realistic(ctor(), (8, *shape[1:]), seed=seed, calibration=calibration), shape


__all__ = ["HELDOUT", "heldout", "realistic"]
