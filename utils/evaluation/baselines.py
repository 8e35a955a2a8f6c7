"""Baselines evaluate.py gives the same clicks as iSeg: geometric segmenters that need no training."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from utils.geometry.mesh_graph import MeshGeometry, geodesic_distances, random_walk_segmentation


class RandomWalkSegmenter:
    """Random-walk segmentation (Lai et al. 2008) from the same clicks.

    Seeds are faces: a clicked vertex seeds every face around it (positive clicks foreground, negative ones
    background). While there is no negative click, the vertex geodesically farthest from the positive clicks seeds
    the background: a random walk needs both kinds of seeds, and that vertex is the least likely to be meant.
    A face is in when its probability of reaching a foreground seed first is > 0.5.
    """

    def __init__(self, geometry: MeshGeometry) -> None:
        self.weights = geometry.crease_weights
        self.geometry = geometry

    def background_seed(self, positive_vertices: Sequence[int]) -> int:
        """The vertex farthest along edges from the positive clicks (one they cannot reach, if there is one)."""
        return int(np.argmax(geodesic_distances(self.geometry.graph, list(positive_vertices))))

    def __call__(self, vertices: Sequence[int], positive: Sequence[bool]) -> np.ndarray:
        foreground = [v for v, p in zip(vertices, positive) if p]
        background = [v for v, p in zip(vertices, positive) if not p]
        if not background:
            background = [self.background_seed(foreground)]
        faces_around = self.geometry.faces_around
        probability = random_walk_segmentation(self.weights, faces_around(foreground), faces_around(background))
        return probability > 0.5
