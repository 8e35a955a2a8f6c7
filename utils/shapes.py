"""Small procedural meshes with known part labels, for tests, examples and sanity checks.

Each function returns (vertices (N, 3) float64, faces (F, 3) int64, face_labels (F,) int64); outward-facing
triangles (counter-clockwise seen from outside).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
import trimesh

Shape = Tuple[np.ndarray, np.ndarray, np.ndarray]


def _combine(parts: Sequence[trimesh.Trimesh]) -> Shape:
    vertices, faces, labels, offset = [], [], [], 0
    for label, part in enumerate(parts):
        vertices.append(np.asarray(part.vertices, dtype=np.float64))
        faces.append(np.asarray(part.faces, dtype=np.int64) + offset)
        labels.append(np.full(len(part.faces), label, dtype=np.int64))
        offset += len(part.vertices)
    return np.concatenate(vertices), np.concatenate(faces), np.concatenate(labels)


def two_boxes(gap: float = 0.4, size: float = 1.0, subdivisions: int = 0) -> Shape:
    """Two equal cubes side by side along X (label 0 at −X, label 1 at +X), ``gap`` apart."""
    parts = []
    for side in (-1, 1):
        box = trimesh.creation.box(extents=(size, size, size))
        for _ in range(subdivisions):
            box = box.subdivide()
        box.apply_translation((side * (size + gap) / 2, 0, 0))
        parts.append(box)
    return _combine(parts)


def two_spheres(gap: float = 0.3, radius: float = 1.0, subdivisions: int = 2) -> Shape:
    """Two icospheres side by side along X (label 0 at −X, label 1 at +X)."""
    parts = []
    for side in (-1, 1):
        sphere = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
        sphere.apply_translation((side * (radius + gap / 2), 0, 0))
        parts.append(sphere)
    return _combine(parts)


def cut_sphere(subdivisions: int = 3, height: float = 0.0) -> Shape:
    """One connected icosphere; faces whose centroid lies above y = ``height`` have label 1, the others 0."""
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    labels = (sphere.triangles_center[:, 1] > height).astype(np.int64)
    return np.asarray(sphere.vertices, dtype=np.float64), np.asarray(sphere.faces, dtype=np.int64), labels
