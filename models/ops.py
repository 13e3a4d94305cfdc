"""The decoding maths inside the graphs: soft-argmax, 1-D expectations, cosine-normalised linear.

Coordinate convention (every coordinate output of edgepose.models): normalised to the
network input, x then y, such that pixel_x = x_norm * input_width (and likewise y). A map or
1-D distribution with W cells covers the input evenly, so cell i stands for the interval
[i / W, (i + 1) / W) and its centre, used as the expectation grid, is (i + 0.5) / W. A
perfectly peaked distribution in cell i therefore decodes to the centre of that cell.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def cell_centres(n: int) -> torch.Tensor:
    """(i + 0.5) / n for i in 0..n-1: the normalised centres of n equal cells covering [0, 1]."""
    return (torch.arange(n, dtype=torch.float32) + 0.5) / n


def expectation_1d(prob: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Expected position under a distribution over the last axis: sum_i prob[..., i] * grid[i]."""
    return (prob * grid).sum(dim=-1)


class SoftArgmax2d(nn.Module):
    """Spatial softmax over each (H, W) map and the expected (x, y) = integral regression / DSNT.

    Input logits (N, K, H, W) with K, H, W fixed at construction (the reshapes then use constant
    shapes with -1 for the batch). Returns coords (N, K, 2) in [0, 1] (cell-centre grid, see
    the module docstring) and the peak probability (N, K) of each softmax, a natural confidence.
    """

    def __init__(self, channels: int, height: int, width: int, *, beta: float = 1.0) -> None:
        super().__init__()
        self.channels, self.height, self.width = int(channels), int(height), int(width)
        self.beta = float(beta)
        self.register_buffer("grid_x", cell_centres(self.width), persistent=False)
        self.register_buffer("grid_y", cell_centres(self.height), persistent=False)

    def forward(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.channels
        flat = logits.reshape(-1, k, self.height * self.width)
        if self.beta != 1.0:
            flat = flat * self.beta
        prob = F.softmax(flat, dim=-1)
        peak = prob.amax(dim=-1)
        prob = prob.reshape(-1, k, self.height, self.width)
        x = expectation_1d(prob.sum(dim=2), self.grid_x)   # marginal over rows -> (N, K, W)
        y = expectation_1d(prob.sum(dim=3), self.grid_y)   # marginal over columns -> (N, K, H)
        return torch.stack((x, y), dim=-1), peak


class Expectation1d(nn.Module):
    """Softmax over the last axis of (N, K, L) logits, then the expectation over L cell centres.

    Returns the normalised position (N, K) and the peak probability (N, K).
    """

    def __init__(self, bins: int) -> None:
        super().__init__()
        self.bins = int(bins)
        self.register_buffer("grid", cell_centres(self.bins), persistent=False)

    def forward(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        prob = F.softmax(logits, dim=-1)
        return expectation_1d(prob, self.grid), prob.amax(dim=-1)


class CosineLinear(nn.Module):
    """beta * cos(angle(x, w_j)) for every output j: a linear layer on L2-normalised input and rows.

    Why: SimDR's "normalised" classifier. The logits no longer depend on the input's scale,
    only its direction, and beta (15 in the write-up) sets how sharp the softmax can get.
    No bias (it would break the scale invariance).
    """

    def __init__(self, in_features: int, out_features: int, *, beta: float = 15.0, eps: float = 1e-12) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.beta, self.eps = float(beta), float(eps)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.trunc_normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(x, dim=-1, eps=self.eps)
        w = F.normalize(self.weight, dim=-1, eps=self.eps)
        return F.linear(x, w) * self.beta

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, beta={self.beta}"
