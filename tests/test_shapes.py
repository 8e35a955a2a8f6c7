"""Procedural meshes: the hammer is one watertight surface with its four parts where a hammer has them."""
import numpy as np
import trimesh

from utils.geometry.shapes import HAMMER_PARTS, cut_sphere, hammer, two_boxes, two_spheres


def test_the_hammer_is_one_watertight_surface_with_four_parts_in_place():
    vertices, faces, labels = hammer()
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0  # closed, facing outwards
    assert len(mesh.split(only_watertight=False)) == 1
    assert 3000 <= len(vertices) <= 5400  # pred_f.pth + decoder checkpoint stay under 12 MB
    assert set(labels.tolist()) == set(range(len(HAMMER_PARTS)))
    centres = mesh.triangles_center
    handle, head, face, claw = (centres[labels == part].mean(axis=0) for part in range(4))
    assert handle[1] < head[1] - 8  # the handle hangs below the head
    assert face[0] > head[0] + 4 and claw[0] < head[0] - 4  # striking face at +X, claw at −X
    again = hammer()
    assert np.array_equal(vertices, again[0]) and np.array_equal(faces, again[1])


def test_the_test_shapes_are_labelled_by_part():
    for vertices, faces, labels in (two_boxes(), two_spheres(), cut_sphere()):
        assert len(labels) == len(faces) and set(labels.tolist()) == {0, 1}
        assert trimesh.Trimesh(vertices, faces, process=False).is_winding_consistent
