"""The original's camera convention and view samplers (encoder front views, decoder-data views, test grid), checked
against hand-worked values."""
import math

import pytest
import torch

from utils.geometry.camera import (
    Cameras,
    grid_views,
    ndc_to_pixel,
    pixel_centres_ndc,
    sample_front_views,
    sample_uniform_views,
)

TAN30 = math.tan(math.pi / 6)


def project(cameras, point):
    ndc, depth = cameras.project(torch.tensor([point], dtype=torch.float32))
    return ndc[0, 0].tolist(), float(depth[0, 0])


def test_point_on_plus_x_projects_to_image_centre_at_elev0_azim0():
    ndc, depth = project(Cameras.from_degrees(0, 0), [1.0, 0.0, 0.0])
    assert ndc == pytest.approx([0.0, 0.0], abs=1e-6)
    assert depth == pytest.approx(1.0)  # camera at (2, 0, 0)


def test_camera_positions_follow_elev_azim_formula():
    cameras = Cameras.from_degrees([0, 0, 90, 30], [0, 90, 0, 45])
    r = 2.0
    c30, s30, c45 = math.cos(math.radians(30)), 0.5, math.cos(math.radians(45))
    expected = [[r, 0, 0], [0, 0, r], [0, r, 0], [r * c30 * c45, r * s30, r * c30 * c45]]
    assert torch.allclose(cameras.positions(), torch.tensor(expected), atol=1e-6)


def test_plus_y_is_up_in_the_image_and_row_zero_is_the_top():
    cameras = Cameras.from_degrees(0, 0)
    ndc, _ = project(cameras, [0.0, 0.5, 0.0])
    assert ndc[1] > 0.2
    column, row = ndc_to_pixel(torch.tensor(ndc), 224).tolist()
    assert row < 112 - 20  # upper half of the image


def test_image_right_is_minus_z_seen_from_plus_x():
    """kaolin's look-at: x_cam = up × z_cam; from +X looking at the origin, −Z is on the right (not mirrored)."""
    ndc, _ = project(Cameras.from_degrees(0, 0), [0.0, 0.0, -0.5])
    assert ndc[0] > 0.2 and abs(ndc[1]) < 1e-6


def test_vertical_field_of_view_is_60_degrees():
    # a point at depth 1 and height tan(30°) lies on the top edge of the image
    ndc, depth = project(Cameras.from_degrees(0, 0), [1.0, TAN30, 0.0])
    assert depth == pytest.approx(1.0)
    assert ndc[1] == pytest.approx(1.0, abs=1e-6)


def test_unit_sphere_fills_the_frustum_at_radius_2():
    # the tangent from the camera to the unit sphere makes 30° with the viewing axis
    cameras = Cameras.from_degrees(0, 0)
    tangent = [0.5, math.sqrt(3) / 2, 0.0]  # point of the unit sphere whose tangent passes through (2, 0, 0)
    ndc, _ = project(cameras, tangent)
    assert ndc[1] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("elev,azim", [(0, 0), (30, 45), (-80, 200), (89.9, 10), (90, 10), (-90, 123), (135, 30)])
def test_rotations_are_proper_and_look_at_the_origin(elev, azim):
    cameras = Cameras.from_degrees(elev, azim)
    rotation = cameras.rotations()[0].double()
    assert torch.isfinite(rotation).all()
    assert torch.allclose(rotation @ rotation.T, torch.eye(3, dtype=torch.float64), atol=1e-5)
    assert torch.linalg.det(rotation) == pytest.approx(1.0, abs=1e-5)
    ndc, depth = cameras.project(torch.zeros(1, 3))
    assert torch.allclose(ndc, torch.zeros(1, 1, 2), atol=1e-5) and depth.item() == pytest.approx(2.0, abs=1e-5)


def test_pole_view_continues_the_nearby_views():
    near = Cameras.from_degrees(89.99, 37).rotations()[0]
    at_pole = Cameras.from_degrees(90, 37).rotations()[0]
    assert torch.allclose(near, at_pole, atol=1e-3)


def test_pixel_centres_match_ndc_to_pixel():
    res = 7
    x, y = pixel_centres_ndc(res)
    assert x[0] == pytest.approx(-1 + 1 / res) and y[0] == pytest.approx(1 - 1 / res)
    points = torch.stack([x, y], dim=-1)
    assert torch.allclose(ndc_to_pixel(points, res), torch.arange(res).float().unsqueeze(1).expand(res, 2), atol=1e-5)


def test_front_views_follow_the_originals_draw_order():
    generator = torch.Generator().manual_seed(0)
    views = sample_front_views(3, 4.0, generator)
    replay = torch.Generator().manual_seed(0)
    for i in range(3):
        torch.rand(1, generator=replay)
        torch.rand(1, generator=replay)
        elev = torch.randn(1, generator=replay) * math.pi / 4
        azim = torch.randn(1, generator=replay) * 2 * math.pi / 4
        assert views.elev[i].item() == pytest.approx(elev.item())
        assert views.azim[i].item() == pytest.approx(azim.item())


def test_front_views_have_the_originals_spread():
    views = sample_front_views(4000, 4.0, torch.Generator().manual_seed(1))
    assert math.degrees(views.elev.std().item()) == pytest.approx(45, rel=0.06)
    assert math.degrees(views.azim.std().item()) == pytest.approx(90, rel=0.06)
    assert abs(math.degrees(views.elev.mean().item())) < 4


def test_uniform_views_cover_their_ranges_and_are_seeded():
    views = sample_uniform_views(2000, torch.Generator().manual_seed(3))
    assert views.elev.min() >= -math.pi / 2 and views.elev.max() <= math.pi / 2
    assert views.azim.min() >= 0 and views.azim.max() < 2 * math.pi
    assert views.elev.min() < -1.4 and views.azim.max() > 6.1
    again = sample_uniform_views(2000, torch.Generator().manual_seed(3))
    assert torch.equal(views.elev, again.elev) and torch.equal(views.azim, again.azim)


def test_grid_views_are_the_5x6_test_grid_row_major():
    views = grid_views()
    assert len(views) == 30
    degrees = torch.stack([torch.rad2deg(views.elev), torch.rad2deg(views.azim)], dim=1)
    assert degrees[0].tolist() == pytest.approx([-60, 0], abs=1e-4)
    assert degrees[5].tolist() == pytest.approx([-60, 300], abs=1e-4)
    assert degrees[6].tolist() == pytest.approx([-30, 0], abs=1e-4)
    assert degrees[29].tolist() == pytest.approx([60, 300], abs=1e-4)


def test_bad_camera_arguments():
    with pytest.raises(ValueError):
        Cameras(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError):
        sample_front_views(3, 0.0)


def test_pixel_rays_pass_through_the_pixel_centres():
    cameras = Cameras.from_degrees([25, -60], [40, 210])
    res = 9
    origins, directions = cameras.pixel_rays(res)
    assert directions.shape == (2, res * res, 3)
    assert torch.allclose(directions.norm(dim=-1), torch.ones(2, res * res), atol=1e-6)
    points = origins[:, None, :] + 1.5 * directions  # some point along each ray
    for view in range(2):
        ndc, _ = cameras[view].project(points[view])
        pixel = ndc_to_pixel(ndc[0], res)
        expected = torch.stack(torch.meshgrid(torch.arange(res), torch.arange(res), indexing="ij"), -1).reshape(-1, 2)
        assert torch.allclose(pixel.flip(-1), expected.float(), atol=1e-4)  # (row, column) = (i, j)
