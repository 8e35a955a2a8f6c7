"""Small procedural meshes with known part labels, for tests, examples and sanity checks.

Each function returns (vertices (N, 3) float64, faces (F, 3) int64, face_labels (F,) int64); outward-facing
triangles (counter-clockwise seen from outside).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
import trimesh

Shape = Tuple[np.ndarray, np.ndarray, np.ndarray]


def save_shape(shape: Shape, folder, name: str, extension: str = ".obj") -> Tuple[str, str]:
    """Write a shape as ``folder/name<extension>`` (vertex and face order kept) and its per-face labels as
    ``folder/name.seg`` (one integer per line, the PSB/COSEG format); returns both paths."""
    import os

    vertices, faces, labels = shape
    mesh_path = os.path.join(str(folder), name + extension)
    labels_path = os.path.join(str(folder), name + ".seg")
    trimesh.Trimesh(vertices, faces, process=False).export(mesh_path)
    np.savetxt(labels_path, labels, fmt="%d")
    return mesh_path, labels_path


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


# ----------------------------------------------------------------------------------------------------------------
# The procedural hammer (meshes/hammer.obj): one watertight surface from a signed distance field
# ----------------------------------------------------------------------------------------------------------------
HAMMER_PARTS = ("handle", "head", "striking face", "claw")


def _capsule(points: np.ndarray, a, b, radius) -> np.ndarray:
    """Signed distance to a capsule from a to b; ``radius`` may vary linearly from a to b (a pair)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    direction = b - a
    t = np.clip(((points - a) @ direction) / (direction @ direction), 0.0, 1.0)
    nearest = a + t[:, None] * direction
    r0, r1 = radius if isinstance(radius, tuple) else (radius, radius)
    return np.linalg.norm(points - nearest, axis=1) - (r0 + t * (r1 - r0))


def _rounded_box(points: np.ndarray, centre, half, rounding) -> np.ndarray:
    q = np.abs(points - np.asarray(centre)) - (np.asarray(half) - rounding)
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    return outside + np.minimum(q.max(axis=1), 0.0) - rounding


def _hammer_parts(points: np.ndarray) -> np.ndarray:
    """(P, 4) signed distances of points to the hammer's parts (HAMMER_PARTS order), in centimetres."""
    handle = _rounded_box(points, (0.0, -4.0, 0.0), (1.3, 13.0, 0.9), 0.8)
    head = _rounded_box(points, (0.5, 10.5, 0.0), (5.5, 1.8, 1.4), 0.5)
    face = _capsule(points, (5.6, 10.5, 0.0), (8.2, 10.5, 0.0), 2.0)
    face = np.maximum(face, np.abs(points[:, 0] - 6.9) - 1.3)  # a flat-ended cylinder
    angles = np.linspace(0.0, 0.9, 7)  # the claw curves down and back from the head's −X end
    arc = np.stack([-4.5 - 7.0 * np.sin(angles), 10.5 - 7.0 * (1 - np.cos(angles))], axis=1)
    prongs = []
    for z in (-0.75, 0.75):
        segments = [_capsule(points, (*arc[i], z * (0.3 + 0.7 * i / 6)), (*arc[i + 1], z * (0.3 + 0.7 * (i + 1) / 6)),
                             (1.2 - 0.12 * i, 1.2 - 0.12 * (i + 1))) for i in range(len(arc) - 1)]
        prongs.append(np.min(segments, axis=0))
    claw = np.minimum(*prongs)
    return np.stack([handle, head, face, claw], axis=1)


def hammer(voxel: float = 0.32) -> Shape:
    """A claw hammer (handle, head, striking face, claw) as one connected watertight triangle mesh.

    The union of the parts' signed distance fields is meshed by marching cubes on a grid of ``voxel`` cm (0.32 gives
    about 4,800 vertices); each face is labelled with the part nearest to its centroid. Deterministic.
    """
    from skimage.measure import marching_cubes

    low, high = np.array([-13.0, -18.5, -3.0]), np.array([9.5, 13.5, 3.0])
    axes = [np.arange(lo, hi + voxel, voxel) for lo, hi in zip(low, high)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    field = _hammer_parts(grid).min(axis=1).reshape(*(len(a) for a in axes))
    vertices, faces, _, _ = marching_cubes(field, level=0.0, spacing=(voxel,) * 3)
    mesh = trimesh.Trimesh(vertices + low, faces.astype(np.int64), process=False)  # already facing outwards
    labels = np.argmin(_hammer_parts(mesh.triangles_center), axis=1).astype(np.int64)
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64), labels
