"""Simulated clicks land where a careful user would click, and the measures count what they should."""
import numpy as np

from utils.evaluation.click_simulation import (
    MeshGeometry,
    RandomInnerVertex,
    area_iou,
    face_prediction,
    first_click,
    next_click,
    number_of_clicks,
)
from utils.geometry.shapes import cut_sphere


def sphere():
    vertices, faces, labels = cut_sphere(subdivisions=3)
    return vertices, faces, labels == 1, MeshGeometry.build(vertices, faces)


def test_the_first_click_is_the_targets_deepest_vertex():
    vertices, faces, upper, geometry = sphere()
    click = first_click(upper, geometry)
    assert vertices[click, 1] > 0.95  # the top of the upper cap is farthest from the cut at y = 0


def test_next_click_goes_to_the_largest_error_region_with_the_right_sign():
    vertices, faces, upper, geometry = sphere()
    centres = vertices[faces].mean(axis=1)
    # predicted: the upper cap minus a region near +X, plus a small region below near −Z
    prediction = upper & ~((centres[:, 0] > 0.5) & (centres[:, 1] > 0.2))
    prediction |= (centres[:, 2] < -0.9) & (centres[:, 1] < 0)
    vertex, positive = next_click(prediction, upper, geometry)
    assert positive and vertices[vertex, 0] > 0.5 and vertices[vertex, 1] > 0.2  # inside the missed region
    vertex, positive = next_click(upper & ~((centres[:, 2] < -0.9) & (centres[:, 1] > 0)) | (centres[:, 1] < -0.5),
                                  upper, geometry)
    assert not positive and vertices[vertex, 1] < -0.5  # the wrongly included bottom cap is the larger error
    assert next_click(upper, upper, geometry) is None


def test_face_prediction_iou_and_noc():
    faces = np.array([[0, 1, 2], [1, 2, 3]])
    assert face_prediction(np.array([0.9, 0.6, 0.3, 0.0]), faces).tolist() == [True, False]  # means 0.6, 0.3
    areas = np.array([1.0, 3.0])
    assert area_iou(np.array([True, False]), np.array([True, True]), areas) == 0.25
    assert number_of_clicks([0.5, 0.82, 0.9], 0.8) == 2 and number_of_clicks([0.5, 0.6], 0.9, cap=20) == 20


def test_clicks_go_to_inner_vertices_and_border_strips_are_skipped():
    vertices, faces, labels = cut_sphere(subdivisions=3)
    geometry = MeshGeometry.build(vertices, faces)
    upper = labels == 1
    # the faces of the lower half touching the cut: a strip one face wide along the target's border
    on_cut = np.zeros(len(vertices), dtype=bool)
    on_cut[faces[upper].ravel()] = True
    strip = ~upper & on_cut[faces].any(axis=1)
    assert next_click(upper | strip, upper, geometry) is None  # only the strip is wrong: nothing to click
    centres = vertices[faces].mean(axis=1)
    bottom = centres[:, 1] < -0.8
    vertex, positive = next_click(upper | strip | bottom, upper, geometry)  # the smaller bottom cap is clickable
    assert not positive and vertices[vertex, 1] < -0.8
    around = faces[np.any(faces == vertex, axis=1)]
    assert bottom[np.any(faces == vertex, axis=1)].all() and len(around) >= 3  # all faces around it are wrong
    again, _ = next_click(upper | strip | bottom, upper, geometry, clicked=[vertex])
    assert again != vertex


def test_random_clicks_land_inside_the_region_spread_by_area_and_repeat_with_their_seed():
    vertices, faces, upper, geometry = sphere()
    centres = vertices[faces].mean(axis=1)
    place = RandomInnerVertex(np.random.default_rng(7))
    draws = [first_click(upper, geometry, place) for _ in range(400)]
    inner = np.ones(len(vertices), dtype=bool)
    inner[faces[~upper].ravel()] = False  # vertices with a face outside the cap
    assert inner[draws].all()  # only inner vertices of the target
    # uniform over the area: about as many clicks above y = 0.5 as the cap's area there predicts (not only the top)
    high = vertices[draws, 1] > 0.5
    share = geometry.areas[upper & (centres[:, 1] > 0.5)].sum() / geometry.areas[upper].sum()
    assert abs(high.mean() - share) < 0.1 and 0.2 < high.mean() < 0.8  # 400 draws: ± 0.05 is 2 standard errors
    again = RandomInnerVertex(np.random.default_rng(7))
    assert [first_click(upper, geometry, again) for _ in range(400)] == draws
    missed = upper & ~((centres[:, 0] > 0.5) & (centres[:, 1] > 0.2))
    for _ in range(20):  # a correction goes into the missed region, positive, never on a clicked vertex
        vertex, positive = next_click(missed, upper, geometry, clicked=draws[:1], place=place)
        assert positive and vertices[vertex, 0] > 0.45 and vertex != draws[0]
