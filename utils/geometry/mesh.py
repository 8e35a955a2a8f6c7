"""Triangle meshes as the pipeline sees them: validated, normalised to the unit ball, the transform kept.

Vertex order is the file's (see utils/geometry/mesh_files.py): a user's clicks are vertex indices of the file.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np
import torch
from numpy.typing import ArrayLike

from utils.errors import InputError

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Mesh:
    """A triangle mesh normalised to the unit ball: ``vertices = (original - centre) / scale``.

    Attributes:
        vertices: (N, 3) float32 normalised positions, in the file's vertex order.
        faces: (F, 3) int64 vertex indices of the triangles.
        centre: (3,) float64 normalisation centre, in file coordinates (kept on the CPU).
        scale: normalisation scale, in file units.
        path: the file the mesh was read from, if any.
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    centre: torch.Tensor
    scale: float
    path: Optional[str] = None

    @property
    def num_vertices(self) -> int:
        return self.vertices.shape[0]

    @property
    def num_faces(self) -> int:
        return self.faces.shape[0]

    @property
    def device(self) -> torch.device:
        return self.vertices.device

    def to(self, device: Union[str, torch.device]) -> Mesh:
        """A new Mesh with vertices and faces on ``device``; ``centre`` stays as it is."""
        return Mesh(self.vertices.to(device), self.faces.to(device), self.centre, self.scale, self.path)

    def to_original(self, points: torch.Tensor) -> torch.Tensor:
        """(..., 3) normalised coordinates → (..., 3) float32 file coordinates on the device of ``points``."""
        centre = self.centre.to(device=points.device, dtype=torch.float64)
        return (points.to(torch.float64) * self.scale + centre).to(torch.float32)

    def original_vertices(self) -> torch.Tensor:
        """(N, 3) float32 vertex positions in file coordinates."""
        return self.to_original(self.vertices)

    def face_normals(self) -> torch.Tensor:
        """(F, 3) float32 unit normals (right-hand rule on each face's vertex order); zero for zero-area faces."""
        cross = self._face_cross()
        length = cross.norm(dim=1, keepdim=True)
        return cross / torch.where(length > 0, length, torch.ones_like(length))

    def face_areas(self) -> torch.Tensor:
        """(F,) float32 triangle areas in normalised units (times ``scale ** 2`` for file units)."""
        return 0.5 * self._face_cross().norm(dim=1)

    def _face_cross(self) -> torch.Tensor:
        """(F, 3) float32 cross products (v1 - v0) × (v2 - v0)."""
        v0, v1, v2 = self.vertices[self.faces].float().unbind(dim=1)
        return torch.linalg.cross(v1 - v0, v2 - v0)


def normalize_vertices(vertices: np.ndarray) -> Tuple[np.ndarray, np.ndarray, float]:
    """The original iSeg's normalisation: centre = mean vertex, scale = largest distance from it (float64 inside).

    Args:
        vertices: (N, 3) finite positions.

    Returns:
        (N, 3) float32 ``(vertices - centre) / scale``, (3,) float64 centre, scale.

    Raises:
        InputError: all vertices coincide (scale 0).
    """
    points = np.asarray(vertices, dtype=np.float64)
    centre = points.mean(axis=0)
    scale = float(np.linalg.norm(points - centre, axis=1).max())
    if scale == 0:
        raise InputError(f"all {len(points)} vertices coincide, so it cannot be normalised")
    return ((points - centre) / scale).astype(np.float32), centre, scale


def mesh_from_arrays(
    vertices: ArrayLike, faces: ArrayLike, path: Optional[PathLike] = None, normalize: bool = True
) -> Mesh:
    """Validate and build a Mesh (normalised with :func:`normalize_vertices`, else centre 0 and scale 1).

    Args:
        vertices: (N, 3) positions (numpy array, CPU tensor or nested lists).
        faces: (F, 3) integer vertex indices; zero-area faces are allowed, faces repeating an index are not.
        path: the file the arrays come from, named in error messages.

    Raises:
        InputError: no vertices or faces, wrong shapes, non-finite coordinates, out-of-range or repeated indices,
            coinciding vertices; the message names ``path`` and the first offending vertex or face.
    """
    try:
        points = _checked_vertices(vertices)
        triangles = _checked_faces(faces, len(points))
        if normalize:
            points32, centre, scale = normalize_vertices(points)
        else:
            points32, centre, scale = points.astype(np.float32), np.zeros(3), 1.0
    except InputError as err:
        raise InputError(f"invalid mesh {path}: {err}" if path is not None else f"invalid mesh: {err}") from None
    return Mesh(
        vertices=torch.from_numpy(points32),
        faces=torch.from_numpy(triangles),
        centre=torch.from_numpy(centre),
        scale=scale,
        path=None if path is None else str(path),
    )


#: the largest coordinate accepted: float32 outputs of it, and sums over a few billion vertices, stay finite
FLOAT32_COORDINATE_LIMIT = 1e37


def _checked_vertices(vertices: ArrayLike) -> np.ndarray:
    """(N, 3) float64 copy of ``vertices``, or InputError."""
    try:
        points = np.array(vertices, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("vertices are not an (N, 3) array of numbers") from None
    if points.size == 0:
        raise InputError("no vertices")
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(f"vertices must be an (N, 3) array, got shape {points.shape}")
    bad = np.flatnonzero(~np.isfinite(points).all(axis=1))
    if len(bad):
        raise InputError(f"vertex {bad[0]} has a non-finite coordinate {tuple(points[bad[0]].tolist())}")
    # outputs in file coordinates are float32: larger coordinates would come back as inf
    huge = np.flatnonzero((np.abs(points) > FLOAT32_COORDINATE_LIMIT).any(axis=1))
    if len(huge):
        raise InputError(f"vertex {huge[0]} has a coordinate beyond ±{FLOAT32_COORDINATE_LIMIT:.0e} "
                         f"{tuple(points[huge[0]].tolist())}, too large for float32 outputs: rescale the mesh")
    return points


def _checked_faces(faces: ArrayLike, num_vertices: int) -> np.ndarray:
    """(F, 3) int64 copy of ``faces``, or InputError."""
    try:
        array = np.array(faces)
    except ValueError:
        raise InputError("faces are not an (F, 3) array of vertex indices") from None
    if array.size == 0:
        raise InputError("no faces")
    if array.ndim != 2 or array.shape[1] != 3:
        raise InputError(f"faces must be an (F, 3) array of triangles, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"face indices must be integers, got {array.dtype}")
    triangles = array.astype(np.int64)
    outside = (triangles < 0) | (triangles >= num_vertices)
    bad = np.flatnonzero(outside.any(axis=1))
    if len(bad):
        face = triangles[bad[0]]
        raise InputError(
            f"face {bad[0]} {tuple(face.tolist())} refers to vertex {face[outside[bad[0]]][0]}, "
            f"but the vertex indices run from 0 to {num_vertices - 1}"
        )
    repeated = (triangles[:, 0] == triangles[:, 1]) | (triangles[:, 1] == triangles[:, 2])
    bad = np.flatnonzero(repeated | (triangles[:, 2] == triangles[:, 0]))
    if len(bad):
        raise InputError(f"face {bad[0]} {tuple(triangles[bad[0]].tolist())} repeats a vertex index")
    return triangles


def mesh_signature(mesh: Mesh) -> str:
    """A short hash of the normalised vertices and faces: data made for another mesh is recognised."""
    digest = hashlib.sha1(mesh.vertices.detach().cpu().numpy().tobytes())
    digest.update(mesh.faces.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]
