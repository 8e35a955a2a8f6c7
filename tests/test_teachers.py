"""Teachers: the real SAM code path (tiny random SAM) and the label teacher, against hand-worked answers."""
import os

import numpy as np
import pytest
import torch
from teacher_checks import assert_upright_rgb, blank_view, corner_view

from models.label_teacher import CODE_NORM, LabelTeacher, MaskImperfection, label_code, pool_to_embedding_grid
from models.sam_hq_teacher import SamHqTeacher, build_sam_hq
from models.sam_teacher import DOWNLOAD_URL, SamTeacher, build_tiny_sam, load_sam
from models.teacher import TeacherView
from utils.encoder.views import ViewSettings, render_teacher_view
from utils.errors import InputError
from utils.geometry.camera import Cameras
from utils.geometry.mesh import mesh_from_arrays
from utils.geometry.shapes import two_boxes
from utils.io import load_torch

SAM_MEAN = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
SAM_STD = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)


@pytest.fixture(scope="module", params=["sam", "sam_hq"])
def tiny_teacher(request):
    """segment-anything's tiny SAM, and HQ-SAM's light vit_tiny (random weights): the same guards for both."""
    if request.param == "sam":
        return SamTeacher(build_tiny_sam(seed=0), "sam tiny")
    torch.manual_seed(0)
    return SamHqTeacher(build_sam_hq("sam_hq_vit_tiny"), "sam_hq_vit_tiny (random weights)")


def test_sam_encodes_the_render_upright_in_rgb(tiny_teacher):
    view = corner_view()
    seen = {}
    hook = tiny_teacher.predictor.model.image_encoder.register_forward_pre_hook(
        lambda module, inputs: seen.update(x=inputs[0].detach().clone()))
    try:
        encoded = tiny_teacher.encode(view)
    finally:
        hook.remove()
    assert encoded.embedding.shape == (1, 256, 64, 64)
    assert_upright_rgb(seen["x"][0] * SAM_STD + SAM_MEAN, tolerance=1.0)  # (3, 1024, 1024) back to 0-255


def test_a_click_reaches_sams_prompt_encoder_at_its_pixel_in_the_1024_frame(tiny_teacher):
    encoded = tiny_teacher.encode(blank_view())
    seen = {}
    prompt_encoder = tiny_teacher.predictor.model.prompt_encoder
    hook = prompt_encoder.register_forward_hook(lambda module, args, kwargs, out: seen.update(kwargs),
                                                with_kwargs=True)
    try:
        points = torch.tensor([[[30.0, 100.0], [200.0, 12.0]]])  # x = column, y = row
        tiny_teacher.predict(encoded, points, torch.tensor([[1, 0]]))
    finally:
        hook.remove()
    coords, labels = seen["points"]
    expected = torch.tensor([[30.0, 100.0], [200.0, 12.0]]) * (1024 / 224)
    assert torch.allclose(coords[0].cpu(), expected, rtol=1e-6)
    assert labels.tolist() == [[1, 0]]


def test_masks_come_back_indexed_like_the_view(tiny_teacher, monkeypatch):
    """A mask that SAM puts in the top-right quarter of its frame is the view's top-right quarter."""
    encoded = tiny_teacher.encode(blank_view())

    def top_right_logits(*args, **kwargs):
        batch = kwargs["sparse_prompt_embeddings"].shape[0]
        logits = torch.full((batch, 3, 256, 256), -10.0)
        logits[:, :, :128, 128:] = 10.0
        return logits, torch.full((batch, 3), 0.5)

    monkeypatch.setattr(tiny_teacher.predictor.model.mask_decoder, "forward", top_right_logits)
    prediction = tiny_teacher.predict(encoded, torch.tensor([[[100.0, 100.0]]]), torch.tensor([[1]]))
    mask = prediction.masks[0, 0]
    assert mask.shape == (224, 224)
    assert mask[:100, 124:].all() and not mask[124:, :].any() and not mask[:, :100].any()
    assert prediction.low_res_logits.shape == (1, 3, 256, 256)


def test_prompts_are_batched_with_mask_input(tiny_teacher):
    encoded = tiny_teacher.encode(blank_view())
    points = torch.tensor([[[10.0, 10.0], [50.0, 60.0]]] * 4)
    labels = torch.tensor([[1, 1], [1, 0], [1, 1], [1, 0]])
    first = tiny_teacher.predict(encoded, points, labels)
    assert first.masks.shape == (4, 3, 224, 224) and first.masks.dtype == torch.bool
    assert first.scores.shape == (4, 3)
    again = tiny_teacher.predict(encoded, points, labels, mask_input=first.low_res_logits[:, :1])
    assert again.masks.shape == (4, 3, 224, 224)


def test_tiny_sam_is_seeded():
    a, b, c = build_tiny_sam(1), build_tiny_sam(1), build_tiny_sam(2)
    weights = lambda sam: torch.cat([p.flatten() for p in sam.parameters()])  # noqa: E731
    assert torch.equal(weights(a), weights(b)) and not torch.equal(weights(a), weights(c))


def test_missing_checkpoint_names_the_expected_path_and_the_download(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as error:
        SamTeacher.build("vit_b")
    message = str(error.value)
    assert os.path.join("SAM_repo", "model_checkpoints", "sam_vit_b_01ec64.pth") in message
    assert DOWNLOAD_URL + "sam_vit_b_01ec64.pth" in message and "\n" not in message


def test_checkpoint_of_the_wrong_shape_is_a_one_line_error(tmp_path):
    path = tmp_path / "sam_vit_b_01ec64.pth"
    torch.save(build_tiny_sam().state_dict(), path)
    with pytest.raises(InputError, match="does not fit SAM vit_b") as error:
        load_sam("vit_b", str(path))
    assert "\n" not in str(error.value)


class Payload:
    """Any pickled object other than tensors and plain containers (a stand-in for code in a checkpoint)."""


def test_checkpoints_that_would_run_code_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weights": torch.zeros(2), "payload": Payload()}, path)
    with pytest.raises(InputError, match="could not read"):
        load_torch(path)


# --- label teacher ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def boxes_view():
    vertices, faces, labels = two_boxes(gap=0.4)
    mesh = mesh_from_arrays(vertices, faces)
    view, _ = render_teacher_view(mesh, Cameras.from_degrees(0, 90), ViewSettings())  # camera on +Z: −X left
    return view, LabelTeacher(torch.from_numpy(labels + 3))  # labels 3 (−X box) and 4 (+X box)


def part_pixels(view, teacher, label):
    ids = view.face_ids
    return (ids >= 0) & (teacher.face_labels[ids.clamp_min(0)] == label)


def test_a_click_selects_the_visible_pixels_of_its_part(boxes_view):
    view, teacher = boxes_view
    left, right = part_pixels(view, teacher, 3), part_pixels(view, teacher, 4)
    assert left.sum() > 1000 and right.sum() > 1000
    assert left.nonzero()[:, 1].float().mean() < right.nonzero()[:, 1].float().mean()
    encoded = teacher.encode(view)
    centre = lambda mask: mask.nonzero().float().mean(dim=0).flip(0)  # (x, y) of a part  # noqa: E731
    points = torch.stack([
        torch.stack([centre(left), centre(left)]),  # one positive click (as the original's (v, v))
        torch.stack([centre(left), centre(right)]),  # second positive click: union
        torch.stack([centre(left), centre(right)]),  # positive + negative on the other part
        torch.stack([centre(left), centre(left) + torch.tensor([0.0, 25.0])]),  # both on one part: split
        torch.stack([torch.tensor([2.0, 2.0])] * 2),  # background
    ])
    labels = torch.tensor([[1, 1], [1, 1], [1, 0], [1, 0], [1, 1]])
    prediction = teacher.predict(encoded, points, labels)
    masks = prediction.masks[:, 0]
    assert torch.equal(masks[0], left)
    assert torch.equal(masks[1], left | right)
    assert torch.equal(masks[2], left)
    rows, columns = torch.meshgrid(torch.arange(224.0), torch.arange(224.0), indexing="ij")
    (px, py), (nx, ny) = points[3].tolist()
    nearer = (rows - py) ** 2 + (columns - px) ** 2 <= (rows - ny) ** 2 + (columns - nx) ** 2
    assert torch.equal(masks[3], left & nearer) and 0 < masks[3].sum() < left.sum()
    assert not masks[4].any()
    assert prediction.scores[:, 0].tolist() == [1, 1, 1, 1, 0]
    assert torch.equal(prediction.masks[:, 1], masks) and torch.equal(prediction.masks[:, 2], masks)
    low = prediction.low_res_logits[0, 0]
    assert (low[left[::7, ::7].repeat_interleave(8, 0).repeat_interleave(8, 1)[:256, :256]] > 0).float().mean() > 0.9


def test_with_split_parts_off_a_negative_click_on_the_positive_part_is_ignored(boxes_view):
    view, teacher = boxes_view
    whole = LabelTeacher(teacher.face_labels, "boxes", split_parts=False)
    assert whole.description != teacher.description  # data made with either rule are not mixed
    left, right = part_pixels(view, teacher, 3), part_pixels(view, teacher, 4)
    centre = lambda mask: mask.nonzero().float().mean(dim=0).flip(0)  # noqa: E731
    points = torch.stack([torch.stack([centre(left), centre(left) + torch.tensor([0.0, 25.0])]),
                          torch.stack([centre(left), centre(right)])])
    masks = whole.predict(whole.encode(view), points, torch.tensor([[1, 0], [1, 0]])).masks[:, 0]
    assert torch.equal(masks[0], left) and torch.equal(masks[1], left)


def stripes():
    """(64, 96) label image: stripes 0 | 1 | 2 of 32 columns each, background (3) in the top 8 rows."""
    image = (torch.arange(96) // 32).expand(64, 96).clone()
    image[:8] = 3
    return image


def grown(mask, pixels):
    return torch.nn.functional.max_pool2d(mask[None, None].float(), 2 * pixels + 1, 1, pixels)[0, 0] > 0


CLICK = (torch.tensor([[40.0, 30.0]]), torch.tensor([1]))  # (x, y) on stripe 1


def test_an_imperfect_merge_takes_one_neighbouring_part_too():
    image = stripes()
    middle = image == 1
    for key in range(10):
        mask = MaskImperfection(merge=1.0, piece=0.0, border=0).spoil(middle, image, bytes([key]), *CLICK)
        assert torch.equal(mask, middle | (image == 0)) or torch.equal(mask, middle | (image == 2))


def test_an_imperfect_piece_keeps_the_pixels_near_the_click():
    image = stripes()
    middle = image == 1
    mask = MaskImperfection(merge=0.0, piece=1.0, border=0).spoil(middle, image, b"view", *CLICK)
    assert mask[30, 40] and 0 < mask.sum() < 0.8 * middle.sum() and not (mask & ~middle).any()
    rows, columns = torch.nonzero(mask, as_tuple=True)
    far = ((rows.float() - 30) ** 2 + (columns.float() - 40) ** 2).sqrt().max()
    inside = torch.nonzero(middle & ~mask, as_tuple=True)  # what was dropped lies farther from the click
    assert (((inside[0].float() - 30) ** 2 + (inside[1].float() - 40) ** 2).sqrt() > far - 1e-4).all()


def test_an_imperfect_border_moves_by_at_most_the_set_pixels_and_draws_repeat():
    image = stripes()
    middle = image == 1
    spoiled = MaskImperfection(merge=0.0, piece=0.0, border=3)
    masks = [spoiled.spoil(middle, image, bytes([key]), *CLICK) for key in range(40)]
    for mask in masks:
        assert (mask <= grown(middle, 3)).all() and (~grown(~middle, 3) <= mask).all()
    assert len({int(mask.sum()) for mask in masks}) > 3  # grown and shrunk by various amounts, view by view
    assert all(torch.equal(spoiled.spoil(middle, image, bytes([key]), *CLICK), masks[key]) for key in range(40))


def test_the_imperfect_label_teacher_spoils_about_its_share_of_answers_independently_per_view():
    image = stripes()
    teacher = LabelTeacher(torch.tensor([0, 1, 2]), "stripes", imperfection=MaskImperfection(seed=3, border=0))
    assert "imperfect masks" in teacher.description  # never mixed with a perfect teacher's data
    merged = pieces = 0
    for key in range(300):
        mask = teacher.imperfection.spoil(image == 1, image, key.to_bytes(2, "little"), *CLICK)
        merged += bool((mask & (image != 1)).any())
        pieces += bool(mask.sum() < (image == 1).sum())
    # 300 views at 20 % each: ± 0.07 is about three standard errors
    assert abs(merged / 300 - 0.2) < 0.07 and abs(pieces / 300 - 0.2) < 0.07


def test_label_embedding_is_each_cells_share_of_the_label_codes():
    teacher = LabelTeacher(torch.tensor([5, 9]))
    face_ids = torch.zeros(224, 224, dtype=torch.int64)  # face 0 (label 5) everywhere ...
    face_ids[:, 5:] = 1  # ... but columns ≥ 5 show face 1 (label 9)
    embedding = teacher.encode(TeacherView(torch.zeros(224, 224, 3, dtype=torch.uint8), face_ids)).embedding[0]
    code5, code9 = label_code(5), label_code(9)
    # cells are 3.5 pixels wide: cell 0 = [0, 3.5) all label 5; cell 1 = [3.5, 7): 1.5 px of 5, 2 px of 9
    assert torch.allclose(embedding[:, 10, 0], code5, atol=1e-6)
    assert torch.allclose(embedding[:, 10, 1], (1.5 * code5 + 2 * code9) / 3.5, atol=1e-6)
    assert torch.allclose(embedding[:, 10, 2], code9, atol=1e-6)


def test_label_codes_are_fixed_directions_of_a_set_norm():
    assert torch.equal(label_code(7), label_code(7))
    assert label_code(7).norm().item() == pytest.approx(CODE_NORM, rel=1e-5)
    assert abs(torch.dot(label_code(1), label_code(2)).item()) < 0.3 * CODE_NORM ** 2


def test_pooling_to_the_embedding_grid_for_a_resolution_that_divides_evenly():
    maps = torch.arange(256 * 256, dtype=torch.float32).view(1, 256, 256)
    pooled = pool_to_embedding_grid(maps)
    assert pooled.shape == (1, 64, 64)
    assert pooled[0, 0, 0].item() == pytest.approx(maps[0, :4, :4].mean().item())


def test_label_teacher_refuses_a_view_of_another_mesh():
    teacher = LabelTeacher(torch.tensor([0, 1]))
    view = TeacherView(torch.zeros(8, 8, 3, dtype=torch.uint8), torch.full((8, 8), 5))
    with pytest.raises(ValueError, match="face 5"):
        teacher.encode(view)


def test_two_boxes_shape_is_labelled_by_side():
    vertices, faces, labels = two_boxes()
    centroid_x = vertices[faces].mean(axis=1)[:, 0]
    assert np.array_equal(labels, (centroid_x > 0).astype(int))


def test_an_official_style_checkpoint_is_found_and_loaded(tmp_path, monkeypatch):
    """vit_b's real architecture with a state dict saved under the official name in the repository's
    SAM_repo/model_checkpoints/ (here a stand-in repository root), found from any working directory."""
    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    reference = sam_model_registry["vit_b"]()
    folder = tmp_path / "SAM_repo" / "model_checkpoints"
    folder.mkdir(parents=True)
    torch.save(reference.state_dict(), folder / "sam_vit_b_01ec64.pth")
    monkeypatch.setattr("utils.paths.REPO_ROOT", str(tmp_path))
    monkeypatch.chdir(folder)  # the working directory does not matter
    teacher = SamTeacher.build("vit_b")
    assert "sam_vit_b_01ec64.pth" in teacher.description
    loaded = teacher.predictor.model.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in reference.state_dict().items())
