"""The decoder at inference: a mesh's features + any clicks → per-vertex probabilities (as SAM's SamPredictor: load
once, then answer clicks cheaply).

What does not depend on the clicks is computed once when the predictor is made: the queries W_Q·F of all vertices and
the feature half of the head's first layer, W₁[:, :256]·F + b₁ (the first layer sees [F, Y], so
W₁·[F, Y] = W₁_F·F + W₁_Y·Y). A click set then costs the keys and values of its clicks, the attention, W₁_Y·Y and
the rest of the head — about 1.1 M multiply-adds per vertex instead of 1.3 M — run over the vertices in chunks of
INFERENCE_CHUNK (the same values; on a CPU the temporaries then stay in cache and nothing else costs more than the
matrix products).
"""
from __future__ import annotations

import torch

from models.decoder_head import DecoderHead
from models.interactive_attention import InteractiveAttention

INFERENCE_CHUNK = 2048  # vertices per pass through the head (on a CPU, small temporaries are much faster)


class DecoderPredictor:
    """Per-vertex segment probabilities of one mesh for click sets.

    Args:
        attention, head: trained modules (moved to ``features``' device, set to eval mode).
        features: (N, 256) per-vertex features (``pred_f.pth``).
    """

    def __init__(self, attention: InteractiveAttention, head: DecoderHead, features: torch.Tensor) -> None:
        self.features = features.detach().float()
        device = self.features.device
        self.attention = attention.to(device).eval()
        self.head = head.to(device).eval()
        first = self.head.mlp[0]
        dim = self.features.shape[1]
        self.first_weight_attention = first.weight[:, dim:].detach()  # (512, 256) acting on Y
        with torch.inference_mode():
            self.queries = self.attention.queries(self.features)  # (N, 256)
            self.first_feature_half = torch.addmm(first.bias, self.features, first.weight[:, :dim].T)  # (N, 512)

    @property
    def num_vertices(self) -> int:
        return self.features.shape[0]

    @torch.inference_mode()
    def predict(self, vertices: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        """(C,) clicked vertices and (C,) bool positive → (N,) float32 probability of each vertex being in the segment.

        Uses the cached click-independent parts (see the module docstring).
        """
        device = self.features.device
        vertices, positive = vertices.to(device), positive.to(device)
        keys, values = self.attention.keys_values(self.features[vertices].unsqueeze(0), positive.unsqueeze(0))
        probability = torch.empty(self.num_vertices, device=device)
        for start in range(0, self.num_vertices, INFERENCE_CHUNK):  # rows in chunks: temporaries stay in cache
            rows = slice(start, start + INFERENCE_CHUNK)
            attended = self.attention.attend(self.queries[rows].unsqueeze(0), keys, values)[0]  # (n, 256)
            hidden = torch.addmm(self.first_feature_half[rows], attended, self.first_weight_attention.T)
            for layer in self.head.mlp[1:]:
                hidden = layer(hidden)
            probability[rows] = hidden[:, 1]
        return probability

    @torch.inference_mode()
    def predict_plain(self, vertices: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        """The same as :meth:`predict`, straight through the modules (the reference the fast path is checked on)."""
        device = self.features.device
        attended = self.attention(self.features, vertices.to(device).unsqueeze(0), positive.to(device).unsqueeze(0))
        return self.head(torch.cat([self.features, attended[0]], dim=-1))[:, 1].contiguous()
