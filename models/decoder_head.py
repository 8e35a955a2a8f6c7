"""The decoder head, as the original's: [features, attention output] → probability of being in the segment.

Linear 512→512, ReLU, LayerNorm(512), Linear 512→256, ReLU, LayerNorm(256), (depth − 1) × [Linear 256→256, ReLU,
LayerNorm(256)], Linear 256→2, softmax; channel 1 = "in segment". One module list ``mlp`` in the original's order
(47 modules at depth 14), so the original's ``model_state_dict`` loads.
"""
from __future__ import annotations

import torch
from torch import nn


class DecoderHead(nn.Module):
    """(…, 512) → (…, 2) probabilities (softmax); ``depth`` = number of 256-wide hidden layers (original 14)."""

    def __init__(self, depth: int = 14, in_features: int = 512) -> None:
        super().__init__()
        widths = [512] + [256] * depth
        layers = []
        previous = in_features
        for width in widths:
            layers += [nn.Linear(previous, width), nn.ReLU(), nn.LayerNorm([width])]
            previous = width
        layers += [nn.Linear(previous, 2), nn.Softmax(dim=-1)]
        self.mlp = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.mlp:
            x = layer(x)
        return x
