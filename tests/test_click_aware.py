"""The click-aware decoder (models/click_aware.py) on a synthetic hammer with known parts.

A stand-in decoder reproduces the original's failure at part borders: each vertex is read as the part its features
say, and near a border the features of one part blend into its neighbour's, so there they read as the neighbour.
The stand-in answers like a perfect decoder given such features — in are the vertices read as a part that a
positive click reads as, and no negative click does. The tests check that the original's answer fails there (so the
case is the real one) and that the click-aware edits do what the click means.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.click_aware import ClickAwarePredictor
from utils.evaluation.click_simulation import area_iou, first_click, next_click
from utils.geometry.mesh_graph import MeshGeometry, geodesic_distances
from utils.geometry.shapes import HAMMER_PARTS, hammer

HANDLE, HEAD = HAMMER_PARTS.index("handle"), HAMMER_PARTS.index("head")


class BlendedDecoder:
    """A DecoderPredictor stand-in: per-vertex readings (the part its features look like) instead of features."""

    def __init__(self, reading: np.ndarray) -> None:
        self.reading = reading
        self.features = torch.zeros(len(reading), 1)

    @property
    def num_vertices(self) -> int:
        return len(self.reading)

    def predict(self, vertices: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        read = self.reading[vertices.numpy()]
        wanted = set(read[positive.numpy()].tolist()) - set(read[~positive.numpy()].tolist())
        return torch.from_numpy(np.isin(self.reading, sorted(wanted)).astype(np.float32))


@pytest.fixture(scope="module")
def hammer_mesh():
    vertices, faces, labels = hammer(voxel=0.5)  # 1,856 vertices; parts meet at concave creases
    geometry = MeshGeometry.build(vertices, faces)
    vertex_labels = np.array([np.bincount(labels[geometry.vertex_faces[v].indices], minlength=4).argmax()
                              for v in range(len(vertices))])
    return geometry, labels, vertex_labels


def blended_reading(geometry, vertex_labels, part, neighbour, width):
    """Vertex readings: each vertex its own part, except ``part``'s vertices within ``width`` (along edges) of
    ``neighbour``, which read as ``neighbour``."""
    on_neighbour = np.nonzero(vertex_labels == neighbour)[0]
    near = geodesic_distances(geometry.graph, on_neighbour) <= width
    reading = vertex_labels.copy()
    reading[(vertex_labels == part) & near] = neighbour
    return reading


def share_in(segment, faces_of_part, areas):
    return float(areas[segment & faces_of_part].sum() / areas[faces_of_part].sum())


def test_a_negative_click_on_a_spilled_neighbour_removes_it_and_keeps_the_clicked_part(hammer_mesh):
    geometry, labels, vertex_labels = hammer_mesh
    head = labels == HEAD
    # the handle's vertices next to the head read as head: the first click's segment spills into the handle
    reading = blended_reading(geometry, vertex_labels, HANDLE, HEAD, width=1.5)
    decoder = BlendedDecoder(reading)
    click_aware = ClickAwarePredictor(decoder, geometry)
    first = first_click(head, geometry)
    segment = click_aware.segment([first], [True])
    spilled = segment & (labels == HANDLE)
    assert spilled.any() and share_in(segment, head, geometry.areas) > 0.99
    vertex, positive = next_click(segment, head, geometry, [first])
    assert not positive and vertex_labels[vertex] == HANDLE and reading[vertex] == HEAD  # on the spill, reads as head
    plain = decoder.predict(torch.tensor([first, vertex]), torch.tensor([True, False])).numpy()
    assert not (plain[geometry.faces].mean(axis=1) > 0.5).any()  # the original empties the segment
    after = click_aware.segment([first, vertex], [True, False])
    assert share_in(after, head, geometry.areas) > 0.99  # the clicked part stays
    assert (after & (labels == HANDLE)).sum() < 0.2 * spilled.sum()  # the spill is gone
    assert area_iou(after, head, geometry.areas) > area_iou(segment, head, geometry.areas)


def test_a_positive_click_inside_a_missed_region_adds_it_without_the_neighbour(hammer_mesh):
    geometry, labels, vertex_labels = hammer_mesh
    head, handle = labels == HEAD, labels == HANDLE
    # the head's vertices next to the handle read as handle: the first click misses that strip of the head
    reading = blended_reading(geometry, vertex_labels, HEAD, HANDLE, width=1.5)
    decoder = BlendedDecoder(reading)
    click_aware = ClickAwarePredictor(decoder, geometry)
    first = first_click(head, geometry)
    segment = click_aware.segment([first], [True])
    missed = head & ~segment
    assert missed.any() and not (segment & handle).any()
    vertex, positive = next_click(segment, head, geometry, [first])
    assert positive and vertex_labels[vertex] == HEAD and reading[vertex] == HANDLE  # in the miss, reads as handle
    plain = decoder.predict(torch.tensor([first, vertex]), torch.tensor([True, True])).numpy()
    assert share_in(plain[geometry.faces].mean(axis=1) > 0.5, handle, geometry.areas) > 0.9  # the original spills
    after = click_aware.segment([first, vertex], [True, True])
    assert share_in(after, handle, geometry.areas) < 0.05  # the neighbour stays out
    assert (missed & after).sum() > 0.8 * missed.sum()  # the missed strip is in
    assert area_iou(after, head, geometry.areas) > area_iou(segment, head, geometry.areas) + 0.02


def test_edits_are_sequential_cached_and_the_first_click_is_the_decoder_s(hammer_mesh):
    geometry, labels, vertex_labels = hammer_mesh
    reading = blended_reading(geometry, vertex_labels, HANDLE, HEAD, width=1.5)
    decoder = BlendedDecoder(reading)
    head = labels == HEAD
    first = first_click(head, geometry)
    plain = decoder.predict(torch.tensor([first]), torch.tensor([True])).numpy()
    expected = plain[geometry.faces].mean(axis=1) > 0.5
    expected[geometry.faces_around([first])] = True
    warm = ClickAwarePredictor(decoder, geometry)
    assert np.array_equal(warm.segment([first], [True]), expected)
    second = next_click(expected, head, geometry, [first])[0]
    clicks, signs = [first, second, first + 1], [True, False, False]
    steps = [warm.segment(clicks[:k], signs[:k]) for k in (1, 2, 3)]  # one click at a time, from kept prefixes
    cold = ClickAwarePredictor(decoder, geometry).segment(clicks, signs)  # all at once
    assert np.array_equal(steps[-1], cold)  # the same sequence of edits: the same faces
    assert not cold[geometry.faces_around([first + 1])].any()  # every click's faces take its sign
    coverage = warm.predict(torch.tensor(clicks), torch.tensor(signs)).numpy()
    assert coverage.shape == (geometry.num_vertices,) and coverage.dtype == np.float32
    assert np.all((coverage >= 0) & (coverage <= 1))
    inner = np.asarray(geometry.vertex_faces @ cold.astype(float)).ravel() == np.asarray(
        geometry.vertex_faces.sum(axis=1)).ravel()
    assert np.all(coverage[inner] == 1) and np.all(coverage[geometry.faces[cold].ravel()] > 0)
    with pytest.raises(ValueError):
        warm.segment([], [])


def test_a_click_on_a_vertex_of_no_face_changes_nothing_else():
    """A stray vertex (no face uses it) can be clicked; the segment of the faces stays as the clicks before made it."""
    from utils.geometry.shapes import two_boxes

    vertices, faces, labels = two_boxes()
    vertices = np.vstack([vertices, [[5.0, 5.0, 5.0]]])  # vertex 16: in no face
    geometry = MeshGeometry.build(vertices, faces)
    vertex_labels = np.full(len(vertices), 2)  # the stray vertex reads as a part of its own
    vertex_labels[faces.ravel()] = np.repeat(labels, 3)  # each box's vertices as their box
    click_aware = ClickAwarePredictor(BlendedDecoder(vertex_labels), geometry)
    first = click_aware.segment([0], [True])
    assert np.array_equal(first, labels == vertex_labels[0])
    for sign in (True, False):
        assert np.array_equal(click_aware.segment([0, 16], [True, sign]), first)
