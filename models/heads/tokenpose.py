"""TokenPose (Li et al., ICCV 2021) with a SimDR output, on ShuffleNetV2 x1.0 features.

K learnable keypoint tokens and the patch tokens of a feature map (with fixed 2-D sine
position embeddings, as TokenPose) go through pre-norm transformer layers; each keypoint
token is then classified into SimDR's x and y bins (Linear(dim, L) per axis, L = 2 x input).

Choices the write-up leaves open, taken from TokenPose-T/S scaled down only in depth (the
rows give the depth): token width 192, 8 heads, MLP ratio 3 (hidden 576), GELU, no dropout
in inference. Features: the conv5 map (1024-d, 8x8 at 256) as for the other 256-input rows.
"direct": patches 2x2 of that map (16 tokens). "deconv": first the lineage's deconv pair
[256, K] (each deconv + BN + ReLU) to a 32x32 map, then patches 8x8 (again 16 tokens).
No sigma branch: scores are min(peak_x, peak_y) of the two softmaxes.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..backbones import ShuffleNetV2
from ..layers import init_weights
from ..ops import Expectation1d
from ..pose import PoseModel, feature_size
from ..registry import register_model
from .common import KeypointMapTrunk
from .simdr import simdr_bins

OUTPUTS = ("coords", "scores")


def sine_position_embedding(height: int, width: int, dim: int, *, temperature: float = 10000.0) -> torch.Tensor:
    """TokenPose's fixed 2-D sine embedding, (1, height * width, dim): half the channels for y, half for x."""
    if dim % 4:
        raise ValueError(f"dim must be a multiple of 4 for a 2-D sine embedding, got {dim}")
    half = dim // 2
    scale = 2 * math.pi
    y = torch.arange(1, height + 1, dtype=torch.float32) / (height + 1e-6) * scale
    x = torch.arange(1, width + 1, dtype=torch.float32) / (width + 1e-6) * scale
    dim_t = temperature ** (2 * (torch.arange(half) // 2).float() / half)

    def encode(v: torch.Tensor) -> torch.Tensor:
        p = v[:, None] / dim_t                                       # (n, half)
        return torch.stack((p[:, 0::2].sin(), p[:, 1::2].cos()), dim=2).flatten(1)

    pos_y = encode(y)[:, None, :].expand(height, width, half)
    pos_x = encode(x)[None, :, :].expand(height, width, half)
    return torch.cat((pos_y, pos_x), dim=2).reshape(1, height * width, dim)


class Attention(nn.Module):
    """Multi-head self-attention over a fixed number of tokens (static reshapes, batch as -1)."""

    def __init__(self, dim: int, heads: int, tokens: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.dim, self.heads, self.tokens = dim, heads, tokens
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qkv = self.qkv(x).reshape(-1, self.tokens, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                               # (N, heads, T, head_dim)
        attn = torch.softmax((q * self.scale) @ k.transpose(-2, -1), dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(-1, self.tokens, self.dim)
        return self.proj(out)


class TransformerLayer(nn.Module):
    """Pre-norm layer: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, tokens: int, mlp_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, tokens)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(mlp_dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TokenPoseHead(nn.Module):
    """Optional deconvs -> patch embedding -> [K keypoint tokens | patch tokens] -> transformer -> SimDR.

    feature_size     (H, W) of the input map; after the deconvs it must be divisible by patch_size.
    patch_size       (ph, pw) of a patch in the (upsampled) map.
    deconv_channels  deconv + BN + ReLU layers run first (empty for "direct").
    """

    def __init__(self, in_channels: int, num_keypoints: int, feature_size: tuple[int, int], *,
                 patch_size: tuple[int, int], depth: int, bins: tuple[int, int],
                 deconv_channels: Sequence[int] = (), dim: int = 192, heads: int = 8,
                 mlp_ratio: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_keypoints = num_keypoints
        self.trunk = KeypointMapTrunk(in_channels, deconv_channels=deconv_channels, final=None)
        h, w = self.trunk.output_size(*feature_size)
        ph, pw = patch_size
        if h % ph or w % pw:
            raise ValueError(f"a {h}x{w} map does not split into {ph}x{pw} patches")
        gh, gw = h // ph, w // pw
        self.num_patches = gh * gw
        self.dim = dim
        # A conv with kernel = stride = patch is the Linear on flattened patches, exported as one Conv.
        self.patch_embed = nn.Conv2d(self.trunk.out_channels, dim, (ph, pw), (ph, pw))
        self.register_buffer("pos_embed", sine_position_embedding(gh, gw, dim), persistent=False)
        self.keypoint_tokens = nn.Parameter(torch.zeros(1, num_keypoints, dim))
        tokens = num_keypoints + self.num_patches
        self.layers = nn.Sequential(*[TransformerLayer(dim, heads, tokens, dim * mlp_ratio, dropout)
                                      for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.cls_x = nn.Linear(dim, bins[0])
        self.cls_y = nn.Linear(dim, bins[1])
        self.expect_x = Expectation1d(bins[0])
        self.expect_y = Expectation1d(bins[1])
        init_weights(self.patch_embed)
        init_weights(self.layers)
        init_weights(self.norm)
        nn.init.trunc_normal_(self.keypoint_tokens, std=0.02)
        for cls in (self.cls_x, self.cls_y):
            nn.init.normal_(cls.weight, std=0.1)
            nn.init.zeros_(cls.bias)

    def forward(self, x: torch.Tensor, sigma_x: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        patches = self.patch_embed(self.trunk(x))                       # (N, dim, gh, gw)
        patches = patches.reshape(-1, self.dim, self.num_patches).transpose(1, 2) + self.pos_embed
        # Batch taken from the conv map (its batch dim stays symbolic in the export; that of the
        # reshaped patches was folded to the traced size).
        keypoints = self.keypoint_tokens.expand(x.shape[0], -1, -1)
        tokens = self.layers(torch.cat((keypoints, patches), dim=1))
        kp = self.norm(tokens[:, : self.num_keypoints])
        lx, ly = self.cls_x(kp), self.cls_y(kp)
        px, peak_x = self.expect_x(lx)
        py, peak_y = self.expect_y(ly)
        out = {"coords": torch.stack((px, py), dim=-1), "scores": torch.minimum(peak_x, peak_y)}
        if self.training:
            out["simdr_x"], out["simdr_y"] = lx, ly
        return out


def _tokenpose(*, num_keypoints: int, input_size: tuple[int, int], patch_size: tuple[int, int],
               depth: int, deconv: bool, **options) -> PoseModel:
    backbone = ShuffleNetV2("x1.0", out_features=("conv5",), input_size=input_size)
    head = TokenPoseHead(backbone.channels["conv5"], num_keypoints, feature_size(input_size, 32),
                         patch_size=patch_size, depth=depth, bins=simdr_bins(input_size),
                         deconv_channels=(256, num_keypoints) if deconv else (), **options)
    return PoseModel(backbone, head, features="conv5", input_size=input_size, output_names=OUTPUTS)


@register_model(
    input_size=256, head="simdr", output_names=OUTPUTS,
    summary="ShuffleNetV2 x1.0 conv5 8x8 -> TokenPose (patch 2x2, 16 tokens, depth 4, dim 192) -> SimDR x/y")
def tokenpose_direct(*, num_keypoints: int, input_size: tuple[int, int], **options) -> PoseModel:
    """TokenPose straight on the backbone map. Options: dim, heads, mlp_ratio, dropout."""
    return _tokenpose(num_keypoints=num_keypoints, input_size=input_size, patch_size=(2, 2), depth=4,
                      deconv=False, **options)


@register_model(
    input_size=256, head="simdr", output_names=OUTPUTS,
    summary="conv5 -> deconv(256) -> deconv(K) to 32x32 -> TokenPose (patch 8x8, 16 tokens, 4 layers) -> SimDR")
def tokenpose_deconv4(*, num_keypoints: int, input_size: tuple[int, int], **options) -> PoseModel:
    """Deconvs first, then a 4-layer TokenPose on 8x8 patches. Options: dim, heads, mlp_ratio, dropout."""
    return _tokenpose(num_keypoints=num_keypoints, input_size=input_size, patch_size=(8, 8), depth=4,
                      deconv=True, **options)


@register_model(
    input_size=256, head="simdr", output_names=OUTPUTS,
    summary="as tokenpose_deconv4 with 3 transformer layers")
def tokenpose_deconv3(*, num_keypoints: int, input_size: tuple[int, int], **options) -> PoseModel:
    """Deconvs first, then a 3-layer TokenPose on 8x8 patches. Options: dim, heads, mlp_ratio, dropout."""
    return _tokenpose(num_keypoints=num_keypoints, input_size=input_size, patch_size=(8, 8), depth=3,
                      deconv=True, **options)
