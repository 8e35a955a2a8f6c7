"""Interactive attention, as the original's: every vertex attends to the clicks.

Queries come from all vertices, keys and values from the clicked vertices' features through separate maps for
positive and negative clicks; softmax over the clicks of (Q Kᵀ / √256). Single head, one layer, no positional terms:
the output is invariant to the order of the clicks and a duplicated click equals the single click.
State-dict keys are the original's: ``W_Q``, ``W_Kp``, ``W_Kn``, ``W_Vp``, ``W_Vn`` (Linear 256→256 each, always
present; a map switched off with ``use_attention_* 0`` is the identity).
"""
from __future__ import annotations

import math

import torch
from torch import nn


class InteractiveAttention(nn.Module):
    """Y = softmax_clicks(Q Kᵀ / scale) V for every vertex.

    Args:
        dim: feature channels (256).
        use_q, use_k, use_v: learnable query / key / value maps (else identity), ``--use_attention_q/k/v``.
        residual: add the input to each map's output, ``--redsidual_attention``.
        scale: divide the logits by √dim (= 16), ``--scale_attention``.
    """

    def __init__(self, dim: int = 256, use_q: bool = True, use_k: bool = True, use_v: bool = True,
                 residual: bool = False, scale: bool = True) -> None:
        super().__init__()
        self.W_Q = nn.Linear(dim, dim)
        self.W_Kp = nn.Linear(dim, dim)
        self.W_Kn = nn.Linear(dim, dim)
        self.W_Vp = nn.Linear(dim, dim)
        self.W_Vn = nn.Linear(dim, dim)
        self.use_q, self.use_k, self.use_v = use_q, use_k, use_v
        self.residual = residual
        self.temperature = math.sqrt(dim) if scale else 1.0

    def _map(self, layer: nn.Linear, used: bool, x: torch.Tensor) -> torch.Tensor:
        if not used:
            return x
        return layer(x) + x if self.residual else layer(x)

    def queries(self, features: torch.Tensor) -> torch.Tensor:
        """(…, N, d) vertex features → (…, N, d) queries (click-independent: computed once per mesh)."""
        return self._map(self.W_Q, self.use_q, features)

    def keys_values(self, click_features: torch.Tensor, positive: torch.Tensor):
        """Keys and values of clicks: features (B, C, d), positive (B, C) bool → (B, C, d) each."""
        sign = positive.unsqueeze(-1)
        keys = torch.where(sign, self._map(self.W_Kp, self.use_k, click_features),
                           self._map(self.W_Kn, self.use_k, click_features))
        values = torch.where(sign, self._map(self.W_Vp, self.use_v, click_features),
                             self._map(self.W_Vn, self.use_v, click_features))
        return keys, values

    def attend(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """queries (B, N, d), keys and values (B, C, d) → (B, N, d)."""
        weights = torch.softmax(queries @ keys.transpose(-1, -2) / self.temperature, dim=-1)  # (B, N, C)
        return weights @ values

    def forward(self, features: torch.Tensor, click_vertices: torch.Tensor, click_positive: torch.Tensor
                ) -> torch.Tensor:
        """
        Args:
            features: (N, d) per-vertex features (shared by the batch).
            click_vertices: (B, C) int64 clicked vertex ids.
            click_positive: (B, C) bool, True for positive clicks.
        Returns:
            (B, N, d) the attention output Y of every vertex for each click set.
        """
        keys, values = self.keys_values(features[click_vertices], click_positive)
        queries = self.queries(features).unsqueeze(0).expand(click_vertices.shape[0], -1, -1)
        return self.attend(queries, keys, values)
