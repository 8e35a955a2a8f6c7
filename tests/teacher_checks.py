"""Views and checks shared by the teacher tests (a helper module, not a test file): what every teacher must do with a
render, whatever package it comes from."""
import pytest
import torch

from models.teacher import TeacherView


def blank_view(size: int = 224) -> TeacherView:
    """A white (size, size) view showing no face."""
    return TeacherView(torch.full((size, size, 3), 255, dtype=torch.uint8), torch.full((size, size), -1))


def corner_view() -> TeacherView:
    """A white 224² view with a red patch at the top right and a blue one at the bottom left."""
    view = blank_view()
    view.image[10:60, 150:210] = torch.tensor([255, 0, 0], dtype=torch.uint8)  # red, top right
    view.image[170:220, 5:60] = torch.tensor([0, 0, 255], dtype=torch.uint8)  # blue, bottom left
    return view


def assert_upright_rgb(pixels: torch.Tensor, tolerance: float) -> None:
    """``pixels``: (3, 1024, 1024) 0–255, the model's input for :func:`corner_view` with its normalisation undone:
    red still at the top right, blue at the bottom left, white between (not mirrored, not BGR)."""
    scale = 1024 / 224
    top_right = pixels[:, int(20 * scale):int(50 * scale), int(160 * scale):int(200 * scale)].mean(dim=(1, 2))
    bottom_left = pixels[:, int(180 * scale):int(210 * scale), int(15 * scale):int(50 * scale)].mean(dim=(1, 2))
    assert top_right.tolist() == pytest.approx([255, 0, 0], abs=tolerance)
    assert bottom_left.tolist() == pytest.approx([0, 0, 255], abs=tolerance)
    assert pixels[:, 500, 500].tolist() == pytest.approx([255, 255, 255], abs=tolerance)
