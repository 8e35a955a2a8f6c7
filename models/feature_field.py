"""The Mesh Feature Field, as the original's: normalised vertex positions → 256-d features distilled from a 2D teacher.

Module list, in the original's order (so its ``encoder_checkpoint.pth`` loads): Fourier features, Linear 515→256,
ReLU, LayerNorm(256), depth × [Linear 256→256, ReLU, LayerNorm(256)], Linear 256→n_classes, Tanh. The one change:
the Fourier matrix B is a buffer (state-dict key ``mlp.0.B``), so a checkpoint alone reproduces the features; the
original kept it outside the state dict and relied on the seed.
"""
from __future__ import annotations

import math

import torch
from torch import nn

FOURIER_KEY = "mlp.0.B"


class FourierFeatures(nn.Module):
    """Gaussian Fourier features: x (N, d) → [x, sin(2π x B), cos(2π x B)] (N, d + 2·m).

    B is (d, m) with entries N(0, σ²), its d rows sorted by L2 norm (ascending), drawn from torch's global
    generator when the module is built — as the original does right after seeding.
    """

    def __init__(self, in_features: int = 3, mapping_size: int = 256, sigma: float = 5.0) -> None:
        super().__init__()
        matrix = torch.randn(in_features, mapping_size) * sigma
        matrix = matrix[matrix.norm(dim=1).argsort(stable=True)]
        self.register_buffer("B", matrix)

    @property
    def out_features(self) -> int:
        return self.B.shape[0] + 2 * self.B.shape[1]

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        projected = (2 * math.pi) * (points @ self.B)
        return torch.cat([points, torch.sin(projected), torch.cos(projected)], dim=-1)


class MeshFeatureField(nn.Module):
    """φ: (N, 3) normalised xyz → (N, n_classes) features in (−1, 1).

    Args:
        depth: number of hidden 256→256 blocks after the first layer (original default 4).
        width: hidden width, also the Fourier mapping size (256).
        n_classes: output channels, = the teacher's embedding channels (256 for SAM).
        positional_encoding: use Fourier features (else the first layer is Linear 3→width).
        sigma: Fourier scale (5.0).
    """

    def __init__(self, depth: int = 4, width: int = 256, n_classes: int = 256, positional_encoding: bool = True,
                 sigma: float = 5.0) -> None:
        super().__init__()
        layers = []
        if positional_encoding:
            fourier = FourierFeatures(3, width, sigma)
            layers += [fourier, nn.Linear(fourier.out_features, width)]
        else:
            layers += [nn.Linear(3, width)]
        layers += [nn.ReLU(), nn.LayerNorm([width])]
        for _ in range(depth):
            layers += [nn.Linear(width, width), nn.ReLU(), nn.LayerNorm([width])]
        layers += [nn.Linear(width, n_classes), nn.Tanh()]
        self.mlp = nn.ModuleList(layers)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        x = points
        for layer in self.mlp:
            x = layer(x)
        return x

    @torch.no_grad()
    def features(self, points: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
        """(N, n_classes) float32 features of all points, without gradients, in chunks (bounded memory)."""
        return torch.cat([self(points[start:start + chunk]) for start in range(0, len(points), chunk)])
