"""The mesh as a graph: geodesic distances along edges, and the random-walk segmentation baseline.

* :func:`edge_graph` — the vertex adjacency with edge lengths (scipy sparse, symmetric).
* :func:`geodesic_distances` — shortest paths along edges from a set of vertices (Dijkstra, scipy.sparse.csgraph).
* :func:`face_adjacency_graph`, :func:`vertex_face_incidence` — which faces share an edge, which vertices are corners
  of which faces.
* :func:`dihedral_weights`, :func:`random_walk_segmentation` — Lai, Hu, Martin, Rosin, "Fast mesh segmentation using
  random walks" (2008): on the faces' adjacency graph, weights from dihedral angles (concave creases are hard to
  cross), foreground and background seed faces, one sparse solve for the probability that a random walk from each
  face first reaches a foreground seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np
import scipy.sparse as sparse
import trimesh
from scipy.sparse.csgraph import dijkstra
from scipy.sparse.linalg import spsolve

#: convex creases count this much less than concave ones (Lai et al. 2008)
CONVEX_FACTOR = 0.2


def _unique_edges(faces: np.ndarray) -> np.ndarray:
    """(E, 2) sorted vertex pairs of the mesh's edges."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(edges, axis=1), axis=0)


def edge_graph(vertices: np.ndarray, faces: np.ndarray) -> sparse.csr_matrix:
    """(N, N) symmetric sparse matrix of edge lengths (0 = no edge)."""
    edges = _unique_edges(faces)
    lengths = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1)
    lengths = np.maximum(lengths, 1e-12)  # coincident vertices stay connected
    n = len(vertices)
    graph = sparse.coo_matrix((lengths, (edges[:, 0], edges[:, 1])), shape=(n, n))
    return (graph + graph.T).tocsr()


def geodesic_distances(graph: sparse.csr_matrix, sources: Sequence[int]) -> np.ndarray:
    """(N,) shortest distance along edges from the nearest of ``sources`` (inf where unreachable)."""
    if len(sources) == 0:
        return np.full(graph.shape[0], np.inf)
    return dijkstra(graph, directed=False, indices=np.asarray(sources), min_only=True)


def face_prediction(vertex_probability: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) bool: the mean of a face's three vertex probabilities is > 0.5."""
    return vertex_probability[faces].mean(axis=1) > 0.5


def face_adjacency_graph(vertices: np.ndarray, faces: np.ndarray) -> sparse.csr_matrix:
    """(F, F) symmetric sparse matrix, 1 between faces that share an edge (trimesh's face adjacency)."""
    pairs = trimesh.Trimesh(vertices, faces, process=False).face_adjacency
    count = len(faces)
    adjacency = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(count, count))
    return (adjacency + adjacency.T).tocsr()


def vertex_face_incidence(faces: np.ndarray, num_vertices: int) -> sparse.csr_matrix:
    """(N, F) sparse matrix, 1 where a vertex is a corner of a face."""
    corners = np.asarray(faces).reshape(-1)
    return sparse.csr_matrix((np.ones(len(corners)), (corners, np.repeat(np.arange(len(faces)), 3))),
                             shape=(num_vertices, len(faces)))


def dihedral_weights(vertices: np.ndarray, faces: np.ndarray) -> sparse.csr_matrix:
    """(F, F) symmetric weights between adjacent faces for the random walk (Lai et al. 2008, on the dual graph).

    Two faces sharing an edge at dihedral angle θ between their normals are d = η (1 − cos θ) apart, η = CONVEX_FACTOR
    on convex edges and 1 on concave ones, and weighted w = exp(−d / d̄) with d̄ the mean d over all adjacent pairs:
    a walk crosses flat regions freely and concave creases (where parts meet) rarely. Adjacency, angles and
    convexity come from trimesh.
    """
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    pairs = mesh.face_adjacency
    count = len(faces)
    if len(pairs) == 0:
        return sparse.csr_matrix((count, count))
    distance = np.where(mesh.face_adjacency_convex, CONVEX_FACTOR, 1.0) * (1.0 - np.cos(mesh.face_adjacency_angles))
    weight = np.exp(-distance / max(float(distance.mean()), 1e-12))
    weights = sparse.coo_matrix((weight, (pairs[:, 0], pairs[:, 1])), shape=(count, count))
    return (weights + weights.T).tocsr()


def random_walk_segmentation(weights: sparse.csr_matrix, foreground: Sequence[int],
                             background: Sequence[int]) -> np.ndarray:
    """(K,) probability that a random walk from each node (a face, with dihedral_weights) reaches a foreground seed
    before a background seed.

    Solves the Dirichlet problem L_uu x_u = −L_us x_s on the unseeded vertices (one sparse solve); seeds keep 1
    (foreground) or 0 (background; a vertex given as both counts as foreground). Vertices not connected to any seed
    get 0.
    """
    n = weights.shape[0]
    values = np.zeros(n)
    seeded = np.zeros(n, dtype=bool)
    seeded[list(background)] = True
    seeded[list(foreground)] = True
    values[list(foreground)] = 1.0
    if seeded.all():
        return values
    degree = np.asarray(weights.sum(axis=1)).ravel()
    laplacian = (sparse.diags(degree) - weights).tocsr()
    free = np.nonzero(~seeded)[0]
    fixed = np.nonzero(seeded)[0]
    system = laplacian[free][:, free]
    right = -laplacian[free][:, fixed] @ values[fixed]
    # vertices cut off from every seed make the system singular: tie them to 0 with a tiny leak
    system = system + sparse.identity(len(free)) * 1e-9
    values[free] = np.clip(spsolve(system.tocsc(), right), 0.0, 1.0)
    return values


@dataclass
class MeshGeometry:
    """The graphs of a mesh that click simulation, the random walk and the click-aware decoder need, computed once.

    Attributes:
        faces: (F, 3) int vertex ids; areas: (F,) face areas; graph: (N, N) edge-length graph;
        face_adjacency: (F, F) sparse, 1 between faces sharing an edge; vertex_faces: (N, F) sparse, 1 where a
        vertex is a corner of a face; crease_weights (on first use): (F, F) random-walk weights, dihedral_weights.
    """

    faces: np.ndarray
    areas: np.ndarray
    graph: sparse.csr_matrix
    face_adjacency: sparse.csr_matrix
    vertex_faces: sparse.csr_matrix
    vertices: np.ndarray

    @classmethod
    def build(cls, vertices: np.ndarray, faces: np.ndarray) -> "MeshGeometry":
        """From (N, 3) float vertices and (F, 3) int faces."""
        vertices, faces = np.asarray(vertices, dtype=np.float64), np.asarray(faces)
        areas = np.asarray(trimesh.Trimesh(vertices, faces, process=False).area_faces)
        return cls(faces, areas, edge_graph(vertices, faces), face_adjacency_graph(vertices, faces),
                   vertex_face_incidence(faces, len(vertices)), vertices)

    @property
    def num_vertices(self) -> int:
        return self.graph.shape[0]

    @cached_property
    def crease_weights(self) -> sparse.csr_matrix:
        return dihedral_weights(self.vertices, self.faces)

    def faces_around(self, vertices: Sequence[int]) -> np.ndarray:
        """Sorted ids of the faces that have one of ``vertices`` as a corner."""
        if len(vertices) == 0:
            return np.zeros(0, dtype=np.int64)
        return np.unique(self.vertex_faces[np.asarray(vertices, dtype=np.int64)].indices)

    def vertex_coverage(self, segment: np.ndarray) -> np.ndarray:
        """(N,) float32: the share of the area around each vertex that lies in ``segment`` ((F,) bool faces); 0 for a
        vertex of no face."""
        inside = self.vertex_faces @ (self.areas * segment)
        around = self.vertex_faces @ self.areas
        return np.where(around > 0, inside / np.maximum(around, 1e-300), 0.0).astype(np.float32)
