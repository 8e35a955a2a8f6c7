"""Geodesic distances and the random-walk baseline on meshes with known answers."""
import numpy as np

from utils.geometry.mesh_graph import dihedral_weights, edge_graph, geodesic_distances, random_walk_segmentation
from utils.geometry.shapes import two_boxes


def test_geodesic_distances_follow_the_edges():
    # a strip of 4 unit squares along X: vertices (i, 0) and (i, 1), i = 0..4
    vertices = np.array([[i, j, 0.0] for i in range(5) for j in range(2)])
    faces = np.array([[2 * i, 2 * i + 2, 2 * i + 1] for i in range(4)] + [[2 * i + 1, 2 * i + 2, 2 * i + 3]
                                                                           for i in range(4)])
    distance = geodesic_distances(edge_graph(vertices, faces), [0])
    assert np.isclose(distance[8], 4.0)  # along the bottom edge
    assert np.isclose(geodesic_distances(edge_graph(vertices, faces), [8])[0], 4.0)
    assert np.isclose(geodesic_distances(edge_graph(vertices, faces), [0, 8])[4], 2.0)  # the nearer source counts
    assert np.isclose(distance[1], 1.0) and distance[0] == 0


def test_random_walk_separates_two_boxes_and_respects_seeds():
    vertices, faces, labels = two_boxes(subdivisions=2)
    weights = dihedral_weights(vertices, faces)
    left, right = np.nonzero(labels == 0)[0], np.nonzero(labels == 1)[0]
    probability = random_walk_segmentation(weights, [left[0]], [right[0]])
    assert probability[left[0]] == 1 and probability[right[0]] == 0
    assert (probability[left] > 0.99).all() and (probability[right] < 0.01).all()


def folded_strip(fold: bool):
    """A strip 1 wide and 4 long, in steps of 0.25, folded at its middle by 90° (a concave crease) or flat."""
    steps = np.arange(0, 4.0001, 0.25)
    vertices, index = [], {}
    for i, t in enumerate(steps):
        for j, y in enumerate((0.0, 0.5, 1.0)):
            point = (t - 2.0, y, 0.0) if (t <= 2 or not fold) else (0.0, y, t - 2.0)
            index[i, j] = len(vertices)
            vertices.append(point)
    faces = []
    for i in range(len(steps) - 1):
        for j in range(2):
            a, b, c, d = index[i, j], index[i + 1, j], index[i, j + 1], index[i + 1, j + 1]
            faces += [[a, b, c], [b, d, c]]  # normal +Z on the floor, −X on the wall: the fold is concave
    return np.array(vertices), np.array(faces)


def test_random_walk_stops_at_a_concave_crease():
    probabilities = []
    for fold in (False, True):
        vertices, faces = folded_strip(fold)
        centres = vertices[faces].mean(axis=1)
        along = np.where(centres[:, 2] > 1e-9, 2.0 + centres[:, 2], centres[:, 0] + 2.0)  # position along the strip
        start, end = int(np.argmin(along)), int(np.argmax(along))
        probability = random_walk_segmentation(dihedral_weights(vertices, faces), [start], [end])
        near = lambda t: probability[np.abs(along - t) < 0.13].mean()  # noqa: E731
        probabilities.append((near(1.875), near(2.125)))
    (flat_before, flat_after), (fold_before, fold_after) = probabilities
    assert abs(flat_before - flat_after) < 0.1  # no crease: a gentle slope
    assert fold_before - fold_after > 0.5  # the walk stops at the crease
