"""Clicks: farthest-point sampling of the vertices clicked in training data, click lists as (vertex, sign), and
the clicks' suffix of output file names."""
from __future__ import annotations

from typing import Tuple

import torch


def farthest_point_sampling(points: torch.Tensor, count: int, start: int = 0) -> torch.Tensor:
    """The original's farthest-point sampling: greedy farthest points by squared Euclidean distance, from ``start``.

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


MAX_SUFFIX = 150  # characters: with the longest prefix (colored_mesh_with_clicks_) and .ply, far below 255


def click_suffix(vertices: Tuple[int, ...], signs: Tuple[int, ...]) -> str:
    """The original's output-name suffix for clicks, e.g. ``v5141_v-10795``; a negative click on vertex 0 is
    ``vn0`` (the original could not express it). Beyond MAX_SUFFIX characters (dozens of clicks, which a file name
    cannot hold: most file systems stop at 255 bytes) the first clicks are kept, then how many more and a digest of
    them all: ``v1_v2_…_v40_and260more_3f9c0a1b2d4e``, different for every click list."""
    import hashlib

    parts = []
    for vertex, sign in zip(vertices, signs):
        parts.append(f"v{vertex}" if sign > 0 else (f"v-{vertex}" if vertex != 0 else "vn0"))
    whole = "_".join(parts)
    if len(whole) <= MAX_SUFFIX:
        return whole
    digest = hashlib.sha1(whole.encode()).hexdigest()[:12]
    kept: list = []
    while len("_".join(kept + [parts[len(kept)]])) <= MAX_SUFFIX - 40:
        kept.append(parts[len(kept)])
    return f"{'_'.join(kept)}_and{len(parts) - len(kept)}more_{digest}"


def parse_click(token: str) -> Tuple[int, bool]:
    """One click of ``--select_vertices``: ``5141`` or ``p5141`` positive, ``-10795`` or ``n10795`` negative.

    ``n0`` (or ``-0``) is a negative click on vertex 0, which the original could not express (−0 = 0).
    Returns (vertex, positive); a malformed token is an InputError.
    """
    from utils.errors import InputError

    text = str(token).strip().lower()
    positive = not (text.startswith("-") or text.startswith("n"))
    digits = text.lstrip("+-pn")
    if not (digits.isascii() and digits.isdigit()) or len(text) - len(digits) > 1:
        raise InputError(f"bad click {token!r}: use a vertex index (5141), a negative one (-10795), or p<i> / n<i>")
    return int(digits), positive


def parse_clicks(tokens, num_vertices: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """``--select_vertices`` tokens → (C,) int64 vertices and (C,) bool positive; checks the range.

    Raises:
        InputError: no clicks, a malformed token, or a vertex outside 0 … num_vertices − 1.
    """
    from utils.errors import InputError

    if not tokens:
        raise InputError("no clicks: give at least one vertex to --select_vertices")
    parsed = [parse_click(token) for token in tokens]
    for vertex, _ in parsed:
        if vertex >= num_vertices:
            raise InputError(f"click on vertex {vertex}, but the mesh has {num_vertices} vertices "
                             f"(0 … {num_vertices - 1})")
    return (torch.tensor([v for v, _ in parsed], dtype=torch.int64),
            torch.tensor([p for _, p in parsed], dtype=torch.bool))
