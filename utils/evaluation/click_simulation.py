"""Simulated user clicks and the quality measures of evaluate.py (IoU after k clicks, number of clicks to a target IoU).

A target is a set of faces (a ground-truth segment). The first click goes to the target's vertex farthest
(geodesically, along mesh edges) from the target's border; each next click to the vertex farthest from the border of
the largest (by area) error region of the current prediction — positive in a missed region, negative in a wrongly
included one. Clicks go to inner vertices only (all faces around them in the region): a vertex on the border
between the region and the rest belongs to both sides, and clicking it says nothing. Error regions without an inner
vertex (strips one face wide along the target's border) are skipped; when only those are left, the simulation
stops. Predictions are per face (a face is in when the mean of its vertices' probabilities is > 0.5) and IoU is
area-weighted over faces.

That is the ``center`` simulator (evaluate.py ``--clicks center``, the default). People do not click the centre of
an error (the RClicks study); the ``random`` simulator (``--clicks random``, as Point-SAM evaluates) draws each click
uniformly over the area of the same region instead — the target for the first click, the largest error region with
an inner vertex for the next — among its inner vertices not clicked yet, each weighted by the area around it in the
region (a third of each of its faces), from a generator seeded per (seed, target, method), so that a rerun clicks
the same vertices.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

import numpy as np
from scipy.sparse.csgraph import connected_components

from utils.geometry.mesh_graph import MeshGeometry, face_prediction, geodesic_distances  # noqa: F401 (re-exported)

NOC_CAP = 20  # clicks at most per target
SIMULATORS = ("center", "random")

#: where in a region a click goes: (region (F,) bool, geometry, vertices clicked so far) → an inner vertex or None
ClickPlacer = Callable[[np.ndarray, MeshGeometry, Sequence[int]], Optional[int]]


def area_iou(prediction: np.ndarray, target: np.ndarray, areas: np.ndarray) -> float:
    """Area-weighted IoU of two (F,) bool face sets (1 when both are empty)."""
    union = areas[prediction | target].sum()
    return float(areas[prediction & target].sum() / union) if union > 0 else 1.0


def _inner_vertices(region: np.ndarray, geometry: MeshGeometry, exclude: Sequence[int]):
    """(inner, border): bool (N,) masks of the region's inner vertices not in ``exclude`` and of its border."""
    inside = np.zeros(geometry.num_vertices, dtype=bool)
    inside[geometry.faces[region].ravel()] = True
    outside = np.zeros(geometry.num_vertices, dtype=bool)
    outside[geometry.faces[~region].ravel()] = True
    inner = inside & ~outside
    inner[np.asarray(exclude, dtype=np.int64)] = False
    return inner, inside & outside


def inner_vertex(region: np.ndarray, geometry: MeshGeometry, exclude: Sequence[int] = ()) -> Optional[int]:
    """The inner vertex of a face region farthest (along edges) from the region's border; None if it has none.

    The border is every vertex of the region that also belongs to a face outside it; the other vertices of the region
    are inner: all faces around them are in the region, so a click there means the region and nothing else (a click
    on a border vertex is as much a click on the other side). Vertices in ``exclude`` (clicked already: a second click
    there would tell the segmenter nothing new) do not count. A region that is a whole connected piece of the mesh has
    no border; its first vertex is taken.
    """
    inner, border = _inner_vertices(region, geometry, exclude)
    candidates = np.nonzero(inner)[0]
    if len(candidates) == 0:
        return None
    border = np.nonzero(border)[0]
    if len(border) == 0:
        return int(candidates[0])
    distance = geodesic_distances(geometry.graph, border)[candidates]
    return int(candidates[np.argmax(distance)])


class RandomInnerVertex:
    """The ``random`` simulator's placer: an inner vertex of the region not clicked yet, drawn with probability
    proportional to the area around it (a third of each of its faces: all of them lie in the region), i.e. uniformly
    over the region's surface; None if the region has none.

    Args:
        generator: numpy generator the draws come from (seed it per target and method for reproducible clicks).
    """

    def __init__(self, generator: np.random.Generator) -> None:
        self.generator = generator

    def __call__(self, region: np.ndarray, geometry: MeshGeometry, exclude: Sequence[int] = ()) -> Optional[int]:
        inner, _ = _inner_vertices(region, geometry, exclude)
        candidates = np.nonzero(inner)[0]
        if len(candidates) == 0:
            return None
        weights = np.asarray(geometry.vertex_faces[candidates] @ geometry.areas).ravel()
        return int(self.generator.choice(candidates, p=weights / weights.sum()))


def first_click(target: np.ndarray, geometry: MeshGeometry, place: ClickPlacer = inner_vertex) -> int:
    """The first click on a target: the placer's inner vertex (default: the one farthest from its border; a target
    without inner vertices, a strip one face wide: the vertex whose surrounding area lies most in it)."""
    vertex = place(target, geometry, ())
    if vertex is not None:
        return vertex
    around = geometry.vertex_faces
    share = (around @ (geometry.areas * target)) / np.maximum(around @ geometry.areas, 1e-30)
    return int(np.argmax(share))


def next_click(prediction: np.ndarray, target: np.ndarray, geometry: MeshGeometry,
               clicked: Sequence[int] = (), place: ClickPlacer = inner_vertex) -> Optional[Tuple[int, bool]]:
    """(vertex, positive) of the next click: the placer's inner vertex (default: the one farthest from the border,
    :func:`inner_vertex`) of the largest error region (connected faces, by area) that has an inner vertex not clicked
    yet — positive in a missed region, negative in a wrongly included one. None when no error region has one (no
    error left, or only strips along the target's border that no vertex click can single out)."""
    regions = []  # (area, faces, positive)
    for errors, positive in ((target & ~prediction, True), (prediction & ~target, False)):
        faces = np.nonzero(errors)[0]
        if len(faces) == 0:
            continue
        _, component = connected_components(geometry.face_adjacency[faces][:, faces], directed=False)
        areas = np.bincount(component, weights=geometry.areas[faces])
        regions += [(float(area), faces[component == index], positive) for index, area in enumerate(areas)]
    for _, faces, positive in sorted(regions, key=lambda r: -r[0]):
        if len(faces) < 2:  # one face has no inner vertex
            continue
        region = np.zeros(len(target), dtype=bool)
        region[faces] = True
        vertex = place(region, geometry, clicked)
        if vertex is not None:
            return vertex, positive
    return None


def number_of_clicks(ious, threshold: float, cap: int = NOC_CAP) -> int:
    """NoC@threshold: the first click count whose IoU reaches ``threshold`` (``cap`` if none does)."""
    for clicks, iou in enumerate(ious, start=1):
        if iou >= threshold:
            return clicks
    return cap
