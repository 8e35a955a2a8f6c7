"""Clicks: farthest-point sampling of click vertices, click lists as (vertex, sign), keyed random generators."""
from __future__ import annotations

import hashlib
from typing import Tuple

import torch


def farthest_point_sampling(points: torch.Tensor, count: int, start: int = 0) -> torch.Tensor:
    """The original's FPS (reference §8.1): greedy farthest points by squared Euclidean distance, from ``start``.

    Args:
        points: (N, 3) positions.
        count: number of points to pick (≤ N).
    Returns:
        (count,) int64 indices, the first being ``start``; ties go to the lowest index.
    """
    points = points.detach().double()
    count = min(int(count), points.shape[0])
    chosen = torch.empty(count, dtype=torch.int64)
    if count == 0:
        return chosen
    nearest = torch.full((points.shape[0],), float("inf"), dtype=torch.float64, device=points.device)
    current = int(start)
    for i in range(count):
        chosen[i] = current
        nearest = torch.minimum(nearest, ((points - points[current]) ** 2).sum(dim=1))
        current = int(torch.argmax(nearest))
    return chosen


def keyed_generator(seed: int, *keys: object) -> torch.Generator:
    """A CPU generator seeded by ``seed`` and ``keys``: the same draws whatever else ran before (resumable, order-free)."""
    digest = hashlib.sha256(repr((int(seed),) + tuple(keys)).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def click_suffix(vertices: Tuple[int, ...], signs: Tuple[int, ...]) -> str:
    """The original's output-name suffix for clicks, e.g. ``v5141_v-10795``; a negative click on vertex 0 is
    ``vn0`` (the original could not express it)."""
    parts = []
    for vertex, sign in zip(vertices, signs):
        parts.append(f"v{vertex}" if sign > 0 else (f"v-{vertex}" if vertex != 0 else "vn0"))
    return "_".join(parts)
