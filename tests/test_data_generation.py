"""data_generation.py: the samples a perfect teacher gives on two boxes, the view pool's economy, resuming, bad
input."""
import numpy as np
import pytest
import torch

import data_generation
import utils.decoder.generation as decoder_data
from models.label_teacher import LabelTeacher
from utils.decoder.clicks import farthest_point_sampling
from utils.decoder.generation import GenerationSettings, generate_decoder_data
from utils.decoder.samples import (
    KIND_NEGATIVE,
    KIND_POSITIVE,
    KIND_SINGLE,
    Samples,
    load_decoder_samples,
    pack_masks,
    unpack_masks,
)
from utils.errors import run_cli
from utils.geometry.camera import Cameras, ndc_to_pixel
from utils.geometry.mesh_files import load_mesh
from utils.geometry.raster import rasterize
from utils.geometry.shapes import save_shape, two_boxes

ALL_KINDS = (KIND_SINGLE, KIND_POSITIVE, KIND_NEGATIVE)


@pytest.fixture(scope="module")
def boxes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("boxes")
    labels = two_boxes(subdivisions=3)[2]
    save_shape(two_boxes(subdivisions=3), folder, "boxes")
    mesh = load_mesh(folder / "boxes.obj")
    return folder, mesh, torch.from_numpy(labels)


class CountingTeacher(LabelTeacher):
    """The label teacher, counting its calls, optionally 'killed' at its n-th image encoding."""

    def __init__(self, labels, die_after=None):
        super().__init__(labels, "label boxes")
        self.encodings, self.die_after = 0, die_after

    def encode(self, view):
        self.encodings += 1
        if self.die_after is not None and self.encodings > self.die_after:
            raise KeyboardInterrupt
        return super().encode(view)


SMALL = GenerationSettings(percentage=0.03, n_views=12, view_pool=60, views_per_shard=10)


@pytest.fixture(scope="module")
def generated(boxes, tmp_path_factory):
    folder, mesh, labels = boxes
    root = str(tmp_path_factory.mktemp("generated"))
    teacher = CountingTeacher(labels)
    counters = generate_decoder_data(mesh, teacher, root, SMALL, ALL_KINDS, progress=False)
    return root, counters, teacher


def part_pixels(mesh, labels, samples, i, part):
    camera = Cameras(samples.elev[i:i + 1], samples.azim[i:i + 1], SMALL.radius)
    face_ids = rasterize(mesh, camera, SMALL.res).pix_to_face[0]
    return (face_ids >= 0) & (labels[face_ids.clamp_min(0)] == part)


def vertex_part(mesh, vertex):
    return int(mesh.vertices[vertex, 0] > 0)  # box 0 at −X, box 1 at +X


def test_single_click_masks_are_the_clicked_boxs_visible_pixels(boxes, generated):
    _, mesh, labels = boxes
    samples = load_decoder_samples(generated[0], [KIND_SINGLE])
    assert len(samples) > 100
    masks = samples.unpacked_masks()
    assert torch.equal(samples.vertices[:, 0], samples.vertices[:, 1])  # (v, v), as the original
    for i in range(0, len(samples), max(1, len(samples) // 25)):
        vertex = int(samples.vertices[i, 0])
        assert torch.equal(masks[i], part_pixels(mesh, labels, samples, i, vertex_part(mesh, vertex)))


def test_the_click_is_the_vertexs_pixel(boxes, generated):
    _, mesh, _ = boxes
    samples = load_decoder_samples(generated[0])
    for i in range(0, len(samples), max(1, len(samples) // 40)):
        camera = Cameras(samples.elev[i:i + 1], samples.azim[i:i + 1], SMALL.radius)
        ndc, _ = camera.project(mesh.vertices[samples.vertices[i]])
        expected = torch.floor(ndc_to_pixel(ndc[0], SMALL.res) + 0.5)  # (2, 2) (x, y) of both clicks
        assert torch.equal(samples.points[i], expected)


def test_a_second_positive_click_on_the_other_box_gives_their_union(boxes, generated):
    _, mesh, labels = boxes
    samples = load_decoder_samples(generated[0], [KIND_POSITIVE])
    other = [i for i in range(len(samples)) if vertex_part(mesh, int(samples.vertices[i, 0]))
             != vertex_part(mesh, int(samples.vertices[i, 1]))]
    assert len(other) > 20
    assert (samples.signs == 1).all()
    masks = samples.unpacked_masks()
    for i in other[:: max(1, len(other) // 20)]:
        union = part_pixels(mesh, labels, samples, i, 0) | part_pixels(mesh, labels, samples, i, 1)
        assert torch.equal(masks[i], union)


def test_a_negative_click_shrinks_the_mask(boxes, generated):
    samples = load_decoder_samples(generated[0])
    negative = samples.select((samples.kind == KIND_NEGATIVE).nonzero(as_tuple=True)[0])
    assert len(negative) > 20 and (negative.signs[:, 1] == -1).all() and (negative.signs[:, 0] == 1).all()
    single = samples.select((samples.kind == KIND_SINGLE).nonzero(as_tuple=True)[0])
    area = {(int(v), int(view)): int(m.sum()) for v, view, m in
            zip(single.vertices[:, 0], single.view, single.unpacked_masks())}
    for v, view, mask in zip(negative.vertices[:, 0], negative.view, negative.unpacked_masks()):
        assert int(mask.sum()) < area[(int(v), int(view))]


@pytest.mark.parametrize("option, kind", [("negative_outside", KIND_NEGATIVE), ("positive_inside", KIND_POSITIVE)])
def test_other_side_clicks_are_added_and_keep_the_first_clicks_box(boxes, generated, tmp_path, option, kind):
    """--negative_outside: negatives on the other box; --positive_inside: positives on the clicked box; the mask is
    the first click's box either way, and the other kinds' samples are untouched."""
    from dataclasses import replace

    _, mesh, labels = boxes
    root = str(tmp_path / option)
    generate_decoder_data(mesh, LabelTeacher(labels, "label boxes"), root, replace(SMALL, **{option: True}),
                          ALL_KINDS, progress=False)
    plain, extended = load_decoder_samples(generated[0]), load_decoder_samples(root)
    for other in set(ALL_KINDS) - {kind}:  # the other kinds are the same samples
        a, b = (s.select((s.kind == other).nonzero(as_tuple=True)[0]) for s in (plain, extended))
        assert samples_equal(a, b)
    second = extended.select((extended.kind == kind).nonzero(as_tuple=True)[0])

    def clicked_boxes(i):  # the box under each click's pixel
        camera = Cameras(second.elev[i:i + 1], second.azim[i:i + 1], SMALL.radius)
        face_ids = rasterize(mesh, camera, SMALL.res).pix_to_face[0]
        return [int(labels[face_ids[y, x]]) for x, y in second.points[i].long().tolist()]

    boxes_clicked = [clicked_boxes(i) for i in range(len(second))]
    # the original's rules: negatives on the first click's box, positives on the other; the option adds the rest
    added = [i for i, (first, other) in enumerate(boxes_clicked) if (first == other) == (kind == KIND_POSITIVE)]
    assert len(added) > 20 and len(second) >= int((plain.kind == kind).sum()) + len(added)
    masks = second.unpacked_masks()
    for i in added[:: max(1, len(added) // 20)]:  # the first click's box, as without the second click
        assert torch.equal(masks[i], part_pixels(mesh, labels, second, i, boxes_clicked[i][0]))


def test_a_folder_made_before_a_setting_existed_counts_as_made_with_its_default(boxes, generated, tmp_path):
    import json
    import shutil
    from dataclasses import replace

    from utils.errors import InputError

    _, mesh, labels = boxes
    root = tmp_path / "older"
    shutil.copytree(generated[0], root)
    manifest = json.loads((root / "manifest.json").read_text())
    del manifest["negative_outside"]  # as written before the option existed
    (root / "manifest.json").write_text(json.dumps(manifest))
    counters = generate_decoder_data(mesh, LabelTeacher(labels, "label boxes"), str(root), SMALL, ALL_KINDS,
                                     progress=False)
    assert counters.image_encodings == 0 and not any(counters.samples)  # reused as it is
    with pytest.raises(InputError, match="negative_outside"):
        generate_decoder_data(mesh, LabelTeacher(labels, "label boxes"), str(root),
                              replace(SMALL, negative_outside=True), ALL_KINDS, progress=False)


def test_image_encodings_never_exceed_the_pool_however_many_clicks(boxes, tmp_path):
    _, mesh, labels = boxes
    for percentage in (0.02, 0.15):
        teacher = CountingTeacher(labels)
        settings = GenerationSettings(percentage=percentage, n_views=10, view_pool=30)
        counters = generate_decoder_data(mesh, teacher, str(tmp_path / str(percentage)), settings, ALL_KINDS,
                                         progress=False)
        assert teacher.encodings == counters.image_encodings <= 30
        assert counters.samples[KIND_SINGLE] > (100 if percentage > 0.1 else 5)


class RefiningTeacher(LabelTeacher):
    """The label teacher posing as a segmenter whose prompts cost: refinement chains run their full length."""

    uses_mask_input = True
    free_prompts = False


@pytest.mark.parametrize("second_clicks, refinement_steps", [(5, 6), (1, 1), (2, 3)])
def test_second_clicks_and_refinement_steps_bound_the_prompts(boxes, tmp_path, second_clicks, refinement_steps):
    _, mesh, labels = boxes
    settings = GenerationSettings(percentage=0.03, n_views=4, view_pool=20, second_clicks=second_clicks,
                                  refinement_steps=refinement_steps)
    counters = generate_decoder_data(mesh, RefiningTeacher(labels, "label boxes"), str(tmp_path), settings, ALL_KINDS,
                                     progress=False)
    pairs = counters.samples[KIND_SINGLE]  # one single-click prompt and sample per (first click, view)
    chains, rest = divmod(counters.prompts - pairs, refinement_steps)  # each candidate: a chain of that many prompts
    assert rest == 0 and 0 < chains <= 2 * second_clicks * pairs
    samples = load_decoder_samples(str(tmp_path))
    for kind in (KIND_POSITIVE, KIND_NEGATIVE):
        chosen = samples.kind == kind
        keys = torch.stack([samples.view[chosen], samples.vertices[chosen, 0].long()], dim=1)
        per_pair = torch.unique(keys, dim=0, return_counts=True)[1]
        assert len(per_pair) and per_pair.max() <= second_clicks
    if second_clicks == 5:  # the original's rules: on two boxes some pairs have more than one candidate of a kind
        assert chains > 2 * pairs


def test_per_click_views_encode_every_view_of_every_vertex(boxes, tmp_path):
    _, mesh, labels = boxes
    teacher = CountingTeacher(labels)
    settings = GenerationSettings(percentage=0.01, n_views=5, view_pool=0)
    counters = generate_decoder_data(mesh, teacher, str(tmp_path), settings, [KIND_SINGLE], progress=False)
    samples = load_decoder_samples(str(tmp_path))
    fps = farthest_point_sampling(mesh.vertices, round(0.01 * mesh.num_vertices))
    assert len(samples) == counters.image_encodings == teacher.encodings == 5 * len(fps)
    assert set(samples.vertices[:, 0].tolist()) == set(fps.tolist())
    assert (samples.unpacked_masks().flatten(1).sum(dim=1) > 0).all()  # the clicked part is always seen


def samples_equal(a: Samples, b: Samples) -> bool:
    return all(torch.equal(getattr(a, name), getattr(b, name)) for name in
               ("vertices", "signs", "kind", "view", "elev", "azim", "points", "masks", "score"))


def test_a_killed_run_resumes_to_the_same_data_and_stages_add_up(boxes, generated, tmp_path):
    _, mesh, labels = boxes
    reference = load_decoder_samples(generated[0])
    killed = str(tmp_path / "killed")
    with pytest.raises(KeyboardInterrupt):
        generate_decoder_data(mesh, CountingTeacher(labels, die_after=25), killed, SMALL, ALL_KINDS, progress=False)
    assert 0 < len(decoder_data.DecoderData(killed).shards()) < 6
    generate_decoder_data(mesh, CountingTeacher(labels), killed, SMALL, ALL_KINDS, progress=False)
    assert samples_equal(reference, load_decoder_samples(killed))
    staged = str(tmp_path / "staged")
    generate_decoder_data(mesh, CountingTeacher(labels), staged, SMALL, [KIND_SINGLE], progress=False)
    generate_decoder_data(mesh, CountingTeacher(labels), staged, SMALL, [KIND_POSITIVE, KIND_NEGATIVE],
                          progress=False)
    for kinds in ([KIND_SINGLE], [KIND_POSITIVE], [KIND_NEGATIVE]):
        assert samples_equal(load_decoder_samples(generated[0], kinds), load_decoder_samples(staged, kinds))


def test_the_seed_decides_the_data(boxes, generated, tmp_path):
    _, mesh, labels = boxes
    generate_decoder_data(mesh, CountingTeacher(labels), str(tmp_path / "again"), SMALL, ALL_KINDS, progress=False)
    assert samples_equal(load_decoder_samples(generated[0]), load_decoder_samples(str(tmp_path / "again")))
    other = GenerationSettings(**{**SMALL.__dict__, "seed": 1})
    generate_decoder_data(mesh, CountingTeacher(labels), str(tmp_path / "other"), other, ALL_KINDS, progress=False)
    assert not torch.equal(load_decoder_samples(generated[0]).elev, load_decoder_samples(str(tmp_path / "other")).elev)


def test_farthest_point_sampling_on_a_line():
    points = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [10, 0, 0], [5, 0, 0]])
    assert farthest_point_sampling(points, 3).tolist() == [0, 3, 4]
    assert farthest_point_sampling(points, 2, start=3).tolist() == [3, 0]


def test_mask_packing_round_trips_and_matches_numpy():
    masks = torch.rand(3, 13, 13) > 0.5
    packed = pack_masks(masks)
    assert packed.shape == (3, (169 + 7) // 8)
    assert np.array_equal(packed.numpy(), np.packbits(masks.reshape(3, -1).numpy(), axis=1))
    assert torch.equal(unpack_masks(packed, 13), masks)


def cli_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: data_generation.main(argv))
    return exit_info.value.code, capsys.readouterr().err.strip().splitlines()


def test_bad_inputs_give_one_line_errors(boxes, capsys, tmp_path):
    folder = boxes[0]
    base = ["--obj_path", str(folder / "boxes.obj"), "--decoder_data_dir", str(tmp_path / "d")]
    label = ["--teacher", "label", "--labels", str(folder / "boxes.seg")]
    cases = {
        "--percentage must be in (0, 1]": [base + label + ["--percentage", "0"], base + ["--percentage", "1.5"]],
        "--n_views must be >= 1": [base + label + ["--n_views", "0"]],
        "needs --labels": [base + ["--teacher", "label"]],
        "label file not found": [base + ["--teacher", "label", "--labels", str(folder / "missing.seg")]],
        "nothing to do": [base + label + ["--single_click", "0"]],
    }
    for expected, argvs in cases.items():
        for argv in argvs:
            code, lines = cli_errors(argv, capsys)
            assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines


def test_a_folder_made_with_other_settings_is_refused_unless_overwritten(boxes, capsys, tmp_path):
    folder = boxes[0]
    argv = ["--obj_path", str(folder / "boxes.obj"), "--decoder_data_dir", str(tmp_path / "d"), "--teacher", "label",
            "--labels", str(folder / "boxes.seg"), "--view_pool", "8", "--n_views", "3"]
    data_generation.main(argv)
    code, lines = cli_errors(argv[:-1] + ["4"], capsys)
    assert code == 2 and "n_views" in lines[-1] and "--overwrite 1" in lines[-1]
    data_generation.main(argv[:-1] + ["4", "--overwrite", "1"])
    import json

    assert json.loads((tmp_path / "d" / "manifest.json").read_text())["n_views"] == 4
    assert len(load_decoder_samples(str(tmp_path / "d"))) > 0
