"""The rasterizer and what is computed from fragments, against analytic answers and an independent ray caster."""
import math

import numpy as np
import pytest
import torch
import trimesh

import utils.geometry.raster as raster
from utils.geometry.camera import Cameras
from utils.geometry.mesh import mesh_from_arrays
from utils.geometry.raster import interpolate, rasterize, vertex_pixels, visible_vertices
from utils.geometry.render import render_lit_grey, render_rgb

TAN30 = math.tan(math.pi / 6)
FRONT = Cameras.from_degrees(0, 0)  # camera at (2, 0, 0) looking at −X; image right = −Z, image up = +Y


def make_mesh(vertices, faces):
    return mesh_from_arrays(np.asarray(vertices, dtype=np.float64), np.asarray(faces), normalize=False)


def icosphere(subdivisions):
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    return make_mesh(sphere.vertices, sphere.faces), sphere


def front_pixel(point, res):
    """Independent projection for the FRONT camera: world (x, y, z) → continuous (column, row)."""
    x, y, z = point
    depth = 2.0 - x
    ndc_x, ndc_y = -z / (depth * TAN30), y / (depth * TAN30)
    return (ndc_x + 1) * res / 2 - 0.5, (1 - ndc_y) * res / 2 - 0.5


def pixel_rays(cameras, view, res):
    """World-space unit directions (res·res, 3) through the pixel centres (row-major) and the camera centre."""
    origins, directions = cameras[view].pixel_rays(res)
    return directions[0].double().numpy(), origins[0].double().numpy()


# a triangle in the plane x = 0.2, wound so that its normal points at the FRONT camera (+X)
TRIANGLE = [[0.2, -0.3, 0.4], [0.2, -0.2, -0.45], [0.2, 0.5, 0.1]]


def triangle_mesh(points=TRIANGLE):
    normal = np.cross(np.subtract(points[1], points[0]), np.subtract(points[2], points[0]))
    assert normal[0] > 0
    return make_mesh(points, [[0, 1, 2]])


def test_triangle_facing_the_camera_covers_the_pixels_its_projection_covers():
    res = 64
    fragments = rasterize(triangle_mesh(), FRONT, res)
    corners = np.array([front_pixel(p, res) for p in TRIANGLE])  # (3, 2) column, row
    cols, rows = np.meshgrid(np.arange(res), np.arange(res))
    p = np.stack([cols, rows], axis=-1).astype(np.float64)

    def edge(a, b):
        return (b[0] - a[0]) * (p[..., 1] - a[1]) - (b[1] - a[1]) * (p[..., 0] - a[0])

    e = np.stack([edge(corners[1], corners[2]), edge(corners[2], corners[0]), edge(corners[0], corners[1])])
    e *= np.sign(e.sum(axis=0, keepdims=True))
    inside = (e >= 0).all(axis=0)
    clear = np.abs(e).min(axis=0) > 1e-3 * np.abs(e).max()  # leave out pixel centres on an edge
    covered = fragments.pix_to_face[0].numpy() == 0
    assert inside.sum() > 300
    assert np.array_equal(covered[clear], inside[clear])
    assert (fragments.pix_to_face[0][~torch.from_numpy(covered)] == -1).all()


def test_triangle_facing_away_is_culled_unless_culling_is_off():
    mesh = make_mesh(TRIANGLE, [[0, 2, 1]])
    assert not rasterize(mesh, FRONT, 32).coverage.any()
    assert rasterize(mesh, FRONT, 32, cull_backfaces=False).coverage.sum() > 50


def test_barycentrics_sum_to_one_and_reproduce_the_3d_hit_point():
    res = 48
    mesh = triangle_mesh()
    cameras = Cameras.from_degrees([0, 25], [0, -30])
    fragments = rasterize(mesh, cameras, res)
    corners = torch.tensor(TRIANGLE, dtype=torch.float64)
    normal = torch.linalg.cross(corners[1] - corners[0], corners[2] - corners[0])
    for view in range(2):
        covered = fragments.coverage[view].reshape(-1)
        assert covered.sum() > 100
        bary = fragments.bary_coords[view].reshape(-1, 3)[covered].double()
        assert torch.allclose(bary.sum(dim=1), torch.ones(len(bary), dtype=torch.float64), atol=1e-5)
        assert (bary >= 0).all()
        hit = bary @ corners
        # the exact intersection of each pixel ray with the triangle's plane
        directions, eye = pixel_rays(cameras, view, res)
        directions = torch.from_numpy(directions)[covered]
        eye = torch.from_numpy(eye)
        t = ((corners[0] - eye) @ normal) / (directions @ normal)
        expected = eye + t.unsqueeze(1) * directions
        assert torch.allclose(hit, expected, atol=2e-5)
        depth = (expected - eye) @ (-cameras.rotations()[view, 2].double())
        assert torch.allclose(fragments.zbuf[view].reshape(-1)[covered].double(), depth, atol=2e-5)
    assert (fragments.bary_coords[~fragments.coverage] == 0).all()
    assert (fragments.zbuf[~fragments.coverage] == -1).all()


def test_a_cube_shows_only_its_front_faces():
    box = trimesh.creation.box(extents=(1, 1, 1))
    mesh = make_mesh(box.vertices, box.faces)
    fragments = rasterize(mesh, FRONT, 64)
    seen = fragments.pix_to_face[fragments.coverage].unique()
    normals = torch.tensor(box.face_normals, dtype=torch.float32)
    assert len(seen) == 2 and (normals[seen, 0] > 0.99).all()  # the two triangles of the +X side
    # any view: every pixel shows a face whose normal points towards the camera
    cameras = Cameras.from_degrees([35, -50], [20, 140])
    fragments = rasterize(mesh, cameras, 64)
    eye = cameras.positions()
    centroids = torch.tensor(box.triangles_center, dtype=torch.float32)
    for view in range(2):
        faces = fragments.pix_to_face[view][fragments.coverage[view]]
        facing = ((eye[view] - centroids[faces]) * normals[faces]).sum(dim=1)
        assert (facing > 0).all() and len(faces.unique()) >= 4


@pytest.mark.parametrize("near_first", [True, False])
def test_of_two_stacked_planes_the_nearer_wins(near_first):
    square = lambda x, s: [[x, -s, s], [x, -s, -s], [x, s, -s], [x, s, s]]  # noqa: E731 — normal +X
    near, far = square(0.3, 0.4), square(-0.3, 0.4)
    quads = [[0, 1, 2], [0, 2, 3]]
    if near_first:
        vertices, faces, near_faces = near + far, quads + [[i + 4 for i in q] for q in quads], {0, 1}
    else:
        vertices, faces, near_faces = far + near, quads + [[i + 4 for i in q] for q in quads], {2, 3}
    fragments = rasterize(make_mesh(vertices, faces), FRONT, 40)
    seen = set(fragments.pix_to_face[fragments.coverage].tolist())
    assert seen == near_faces
    assert torch.allclose(fragments.zbuf[fragments.coverage], torch.tensor(1.7), atol=1e-5)


def test_no_cracks_along_an_edge_through_pixel_centres():
    """A square split along its diagonal, which runs exactly through pixel centres: all of them stay covered."""
    res = 33
    half = (res - 1) / res * 2 * TAN30  # seen from the FRONT camera at depth 2, corners on pixel centres 0 and 32
    # bottom-left, top-left, top-right, bottom-right (image right = −Z)
    corners = [[0, -half, half], [0, half, half], [0, half, -half], [0, -half, -half]]
    for faces, anti_diagonal in (([[0, 2, 1], [0, 3, 2]], True), ([[1, 0, 3], [1, 3, 2]], False)):
        fragments = rasterize(make_mesh(corners, faces), FRONT, res, cull_backfaces=False)
        image = fragments.pix_to_face[0]
        diagonal = image.flip(1).diagonal() if anti_diagonal else image.diagonal()
        assert (diagonal[1:-1] >= 0).all()
        assert fragments.coverage[0, 1:-1, 1:-1].all()


def test_agrees_with_trimesh_ray_casting_on_an_icosphere():
    mesh, sphere = icosphere(4)
    assert "embree" in type(sphere.ray).__module__, "embreex should back trimesh's ray casting"
    cameras = Cameras.from_degrees([10, -60, 75], [30, 200, 300])
    res = 96
    fragments = rasterize(mesh, cameras, res)
    for view in range(len(cameras)):
        directions, eye = pixel_rays(cameras, view, res)
        expected = sphere.ray.intersects_first(np.repeat(eye[None], len(directions), 0), directions)
        ours = fragments.pix_to_face[view].reshape(-1).numpy()
        covered = (expected >= 0) | (ours >= 0)
        assert covered.sum() > 0.5 * res * res * math.pi / 4
        assert (expected[covered] == ours[covered]).mean() >= 0.99


def test_batched_views_equal_single_views_and_repeat_bit_for_bit():
    mesh, _ = icosphere(3)
    cameras = Cameras.from_degrees([10, -40, 80, 17, -3], [0, 120, 250, 61, 300])
    together = rasterize(mesh, cameras, 50)
    again = rasterize(mesh, cameras, 50)
    seen = visible_vertices(together, mesh, cameras)
    for view in range(len(cameras)):  # a view's fragments do not depend on the other views of the call
        alone = rasterize(mesh, cameras[view], 50)
        assert torch.equal(alone.pix_to_face, together.pix_to_face[view:view + 1])
        assert torch.equal(alone.bary_coords, together.bary_coords[view:view + 1])
        assert torch.equal(alone.zbuf, together.zbuf[view:view + 1])
        assert torch.equal(visible_vertices(alone, mesh, cameras[view]), seen[view:view + 1])
    assert torch.equal(together.pix_to_face, again.pix_to_face)
    assert torch.equal(together.bary_coords, again.bary_coords) and torch.equal(together.zbuf, again.zbuf)


def test_memory_chunking_gives_the_same_fragments(monkeypatch):
    mesh, _ = icosphere(3)
    cameras = Cameras.from_degrees([10, -40, 80], [0, 120, 250])
    reference = rasterize(mesh, cameras, 64)
    monkeypatch.setattr(raster, "MAX_CANDIDATES", 7)
    monkeypatch.setattr(raster, "MAX_VIEW_FACES", 1000)  # one view per set-up chunk
    chunked = rasterize(mesh, cameras, 64)
    assert torch.equal(reference.pix_to_face, chunked.pix_to_face)
    assert torch.equal(reference.bary_coords, chunked.bary_coords)


def test_a_mesh_out_of_sight_gives_empty_fragments():
    behind = make_mesh([[3.0, -0.1, 0.1], [3.0, 0.1, 0.1], [3.0, 0.0, -0.1]], [[0, 1, 2]])
    for mesh in (behind, make_mesh([[0, 5, 5], [0, 6, 5], [0, 5, 6]], [[0, 2, 1]])):
        fragments = rasterize(mesh, FRONT, 16, cull_backfaces=False)
        assert fragments.pix_to_face.shape == (1, 16, 16) and not fragments.coverage.any()


def test_interpolate_is_differentiable_in_the_values():
    mesh, _ = icosphere(1)
    cameras = Cameras.from_degrees([20, -10], [40, 190])
    fragments = rasterize(mesh, cameras, 12)
    values = torch.randn(mesh.num_vertices, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: interpolate(fragments, mesh.faces, v), (values,))
    per_view = torch.randn(2, mesh.num_vertices, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: interpolate(fragments, mesh.faces, v, background=0.5), (per_view,))


def test_interpolating_positions_gives_the_hit_points_and_background_elsewhere():
    mesh, _ = icosphere(3)
    cameras = Cameras.from_degrees([15], [70])
    fragments = rasterize(mesh, cameras, 40)
    image = interpolate(fragments, mesh.faces, mesh.vertices, background=torch.tensor([9.0, 9.0, 9.0]))
    covered = fragments.coverage[0]
    assert (image[0][~covered] == 9).all()
    points = image[0][covered]
    depth = ((points - cameras.positions()[0]) @ -cameras.rotations()[0, 2])
    assert torch.allclose(depth, fragments.zbuf[0][covered], atol=1e-5)
    assert (points.norm(dim=1) > 0.98).all()  # on the sphere (chords of a subdivided icosahedron)
    # per-view values pick the view's own set
    per_view = torch.stack([torch.zeros(mesh.num_vertices, 1), torch.ones(mesh.num_vertices, 1)])
    both = interpolate(rasterize(mesh, Cameras.from_degrees([0, 0], [0, 90]), 8), mesh.faces, per_view)
    assert (both[0] == 0).all() and both[1].max() == pytest.approx(1.0)


def test_vertex_pixels_and_visibility_on_stacked_planes():
    res = 64
    # a small square in front (x = 0.3) and a 5×5 grid behind it (x = −0.3), both facing +X
    near = [[0.3, -0.15, 0.15], [0.3, -0.15, -0.15], [0.3, 0.15, -0.15], [0.3, 0.15, 0.15]]
    grid = [[-0.3, y, z] for y in np.linspace(-0.6, 0.6, 5) for z in np.linspace(0.6, -0.6, 5)]
    faces = [[0, 1, 2], [0, 2, 3]]
    for r in range(4):
        for c in range(4):
            a = 4 + r * 5 + c
            faces += [[a, a + 6, a + 5], [a, a + 1, a + 6]]
    mesh = make_mesh(near + grid, faces)
    assert (mesh.face_normals()[:, 0] > 0.99).all()
    pixels, inside = vertex_pixels(mesh.vertices, FRONT, res)
    for v in (0, 4 + 12, 4 + 24):
        column, row = front_pixel(mesh.vertices[v].tolist(), res)
        assert pixels[0, v].tolist() == [math.floor(row + 0.5), math.floor(column + 0.5)]
    assert inside.all()
    visible = visible_vertices(rasterize(mesh, FRONT, res), mesh, FRONT)[0]
    assert visible[:4].all()  # the front square
    assert not visible[4 + 12]  # centre of the back grid, behind the square
    assert visible[4 + 6] and visible[4 + 18]  # inner back vertices beside the square's shadow
    seen_from_behind = Cameras.from_degrees(0, 180)
    assert not visible_vertices(rasterize(mesh, seen_from_behind, res), mesh, seen_from_behind).any()


def test_visible_vertices_of_a_sphere_are_those_in_front_of_its_tangent_cone():
    mesh, _ = icosphere(4)
    fragments = rasterize(mesh, FRONT, 224)
    visible = visible_vertices(fragments, mesh, FRONT)[0]
    x = mesh.vertices[:, 0]
    # from (2, 0, 0) the unit sphere's horizon is the circle x = 1/2
    assert visible[x > 0.56].all()
    assert not visible[x < 0.44].any()


def test_lit_grey_render_values_and_orientation():
    res = 32
    fragments = rasterize(triangle_mesh(), FRONT, res)
    image = render_lit_grey(triangle_mesh(), FRONT, fragments)
    assert image.dtype == torch.uint8 and image.shape == (1, res, res, 3)
    # camera-space normal (0, 0, 1): L = 0.28209 + 0.48860, colour = 2/3 · L
    expected = round(255 * (2 / 3) * (0.28209 + 0.48860))
    assert (image[0][fragments.coverage[0]] == expected).all()
    assert (image[0][~fragments.coverage[0]] == 255).all()


def test_render_is_upright_and_not_mirrored():
    """A triangle above and to the camera's right (−Z seen from +X) appears in the top-right of the image."""
    res = 32
    top_right = [[0.0, 0.5, -0.3], [0.0, 0.8, -0.8], [0.0, 0.3, -0.8]]
    mesh = make_mesh(top_right, [[0, 1, 2]] if np.cross(np.subtract(top_right[1], top_right[0]),
                                                        np.subtract(top_right[2], top_right[0]))[0] > 0
                     else [[0, 2, 1]])
    image = render_lit_grey(mesh, FRONT, rasterize(mesh, FRONT, res))[0]
    dark = (image[..., 0] < 255).nonzero()
    assert len(dark) > 5
    assert (dark[:, 0] < res // 2).all() and (dark[:, 1] >= res // 2).all()


def test_rgb_render_lighting_varies_with_the_normal_and_vertex_colours_clamp():
    mesh, _ = icosphere(2)
    fragments = rasterize(mesh, FRONT, 64)
    lit = render_rgb(mesh, FRONT, fragments)
    # the brightest face: 2/3 · 1.128 ≈ 0.752
    assert lit[fragments.coverage].max() <= 0.76 and lit[fragments.coverage].min() < 0.5
    red = torch.tensor([[255.0, 0.0, 0.0]]).expand(mesh.num_vertices, 3)
    unlit = render_rgb(mesh, FRONT, fragments, vertex_colors=red, lighting=False)
    covered = int(fragments.coverage.sum())
    assert torch.equal(unlit[fragments.coverage], torch.tensor([[1.0, 0.0, 0.0]]).expand(covered, 3))


def test_editing_the_mesh_in_place_is_seen_by_the_next_rasterization():
    """The rasterizer keeps per-mesh tables between calls; an in-place edit must not be served stale tables."""
    mesh = triangle_mesh()
    assert rasterize(mesh, FRONT, 32).coverage.any()
    mesh.faces[:] = mesh.faces[:, [0, 2, 1]]  # now facing away: culled
    assert not rasterize(mesh, FRONT, 32).coverage.any()
    mesh.faces[:] = mesh.faces[:, [0, 2, 1]]
    before = rasterize(mesh, FRONT, 32).coverage.sum()
    mesh.vertices[:, 1:] *= 0.5  # a quarter of the area
    after = rasterize(mesh, FRONT, 32).coverage.sum()
    assert after < 0.35 * before


@pytest.mark.cuda
def test_cuda_gives_the_fragments_of_the_cpu():
    mesh, _ = icosphere(4)
    cameras = Cameras.from_degrees([10, -40, 80], [0, 120, 250])
    cpu = rasterize(mesh, cameras, 128)
    gpu = rasterize(mesh.to("cuda"), cameras, 128)
    assert gpu.pix_to_face.is_cuda
    same = (gpu.pix_to_face.cpu() == cpu.pix_to_face).float().mean()
    assert same > 0.999  # float rounding may differ on GPU at the odd shared edge
    agree = gpu.pix_to_face.cpu() == cpu.pix_to_face
    assert torch.allclose(gpu.bary_coords.cpu()[agree], cpu.bary_coords[agree], atol=1e-4)
    image = interpolate(gpu, mesh.faces.cuda(), mesh.vertices.cuda())
    assert image.is_cuda and visible_vertices(gpu, mesh.to("cuda"), cameras).is_cuda

