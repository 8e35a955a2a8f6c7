"""Simulated user clicks and the quality measures of evaluate.py (DESIGN "Quality, measured").

A target is a set of faces (a ground-truth segment). The first click goes to the target's vertex farthest
(geodesically, along mesh edges) from the target's border; each next click to the vertex farthest from the border of
the largest (by area) error region of the current prediction — positive in a missed region, negative in a wrongly
included one. Predictions are per face (a face is in when the mean of its vertices' probabilities is > 0.5) and IoU
is area-weighted over faces.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import scipy.sparse as sparse
from scipy.sparse.csgraph import connected_components

from utils.mesh_graph import geodesic_distances

NOC_CAP = 20  # clicks at most per target


@dataclass
class MeshGeometry:
    """What click simulation needs of a mesh, computed once.

    Attributes:
        faces: (F, 3) int vertex ids; areas: (F,) face areas; graph: (N, N) edge-length graph;
        face_adjacency: (F, F) sparse, 1 between faces sharing an edge.
    """

    faces: np.ndarray
    areas: np.ndarray
    graph: sparse.csr_matrix
    face_adjacency: sparse.csr_matrix

    @classmethod
    def build(cls, vertices: np.ndarray, faces: np.ndarray) -> "MeshGeometry":
        import trimesh

        from utils.mesh_graph import edge_graph

        mesh = trimesh.Trimesh(vertices, faces, process=False)
        pairs = mesh.face_adjacency
        count = len(faces)
        adjacency = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(count, count))
        return cls(np.asarray(faces), np.asarray(mesh.area_faces), edge_graph(vertices, faces),
                   (adjacency + adjacency.T).tocsr())

    @property
    def num_vertices(self) -> int:
        return self.graph.shape[0]


def face_prediction(vertex_probability: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) bool: the mean of a face's three vertex probabilities is > 0.5."""
    return vertex_probability[faces].mean(axis=1) > 0.5


def area_iou(prediction: np.ndarray, target: np.ndarray, areas: np.ndarray) -> float:
    """Area-weighted IoU of two (F,) bool face sets (1 when both are empty)."""
    union = areas[prediction | target].sum()
    return float(areas[prediction & target].sum() / union) if union > 0 else 1.0


def deepest_vertex(region: np.ndarray, geometry: MeshGeometry) -> int:
    """The vertex of a face region farthest (along edges) from the region's border.

    The border is every vertex that also belongs to a face outside the region; a region that is the whole mesh has
    no border, and then its first vertex is returned.
    """
    inside = np.zeros(geometry.num_vertices, dtype=bool)
    inside[geometry.faces[region].ravel()] = True
    outside = np.zeros(geometry.num_vertices, dtype=bool)
    outside[geometry.faces[~region].ravel()] = True
    border = np.nonzero(inside & outside)[0]
    candidates = np.nonzero(inside)[0]
    if len(border) == 0:
        return int(candidates[0])
    distance = geodesic_distances(geometry.graph, border)
    return int(candidates[np.argmax(distance[candidates])])


def first_click(target: np.ndarray, geometry: MeshGeometry) -> int:
    """The first click on a target: its vertex farthest from its border."""
    return deepest_vertex(target, geometry)


def next_click(prediction: np.ndarray, target: np.ndarray, geometry: MeshGeometry) -> Optional[Tuple[int, bool]]:
    """(vertex, positive) of the next click, in the largest error region; None when there is no error."""
    best: Optional[Tuple[float, np.ndarray, bool]] = None
    for errors, positive in ((target & ~prediction, True), (prediction & ~target, False)):
        faces = np.nonzero(errors)[0]
        if len(faces) == 0:
            continue
        _, component = connected_components(geometry.face_adjacency[faces][:, faces], directed=False)
        areas = np.bincount(component, weights=geometry.areas[faces])
        largest = int(np.argmax(areas))
        if best is None or areas[largest] > best[0]:
            region = np.zeros(len(target), dtype=bool)
            region[faces[component == largest]] = True
            best = (float(areas[largest]), region, positive)
    if best is None:
        return None
    return deepest_vertex(best[1], geometry), best[2]


def number_of_clicks(ious, threshold: float, cap: int = NOC_CAP) -> int:
    """NoC@threshold: the first click count whose IoU reaches ``threshold`` (``cap`` if none does)."""
    for clicks, iou in enumerate(ious, start=1):
        if iou >= threshold:
            return clicks
    return cap
