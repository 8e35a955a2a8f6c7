"""evaluate.py's parts on small synthetic labelled meshes: dataset layouts, targets, click simulation, bookkeeping,
the random-walk segmenter, the human ceiling, and a whole run (no ../shared/data)."""
import dataclasses
import json
import os

import numpy as np
import pytest

from utils.errors import InputError
from utils.evaluation.baselines import RandomWalkSegmenter
from utils.evaluation.click_simulation import MeshGeometry, area_iou, first_click
from utils.evaluation.datasets import find_collection, psb_category
from utils.evaluation.protocol import human_ceiling, ious_per_click, segment_targets, simulate_clicks
from utils.evaluation.report import curve_metrics, summary_markdown
from utils.geometry.shapes import cut_sphere, two_boxes


def write_off(path, vertices, faces):
    with open(path, "w") as handle:
        handle.write(f"OFF\n{len(vertices)} {len(faces)} 0\n")
        handle.writelines(f"{x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in vertices)
        handle.writelines(f"3 {a} {b} {c}\n" for a, b, c in faces)


def write_seg(path, labels):
    with open(path, "w") as handle:
        handle.writelines(f"{int(v)}\n" for v in labels)


def make_psb(root, annotators=3):
    """A PSB-layout folder: mesh 1 (two boxes) with ``annotators`` labellings, the first the boxes themselves."""
    vertices, faces, labels = two_boxes(subdivisions=1)
    os.makedirs(root / "off")
    os.makedirs(root / "seg" / "1")
    write_off(root / "off" / "1.off", vertices, faces)
    for k in range(annotators):
        # annotator 1 joins everything, annotator k ≥ 2 agrees with annotator 0
        write_seg(root / "seg" / "1" / f"1_{k}.seg", labels if k != 1 else np.zeros_like(labels))
    return vertices, faces, labels


def make_coseg(root):
    vertices, faces, labels = two_boxes(subdivisions=1)
    os.makedirs(root / "shapes")
    os.makedirs(root / "gt")
    write_off(root / "shapes" / "7.off", vertices, faces)
    write_seg(root / "gt" / "7.seg", labels + 1)  # COSEG counts from 1
    write_off(root / "shapes" / "8.off", vertices, faces)  # no labels: not listed
    return labels


def test_both_dataset_layouts_are_detected(tmp_path):
    make_psb(tmp_path / "psb", annotators=12)
    psb = find_collection(str(tmp_path / "psb"))
    assert psb.layout == "psb" and [m.mesh_id for m in psb.meshes] == ["1"]
    assert psb.meshes[0].category == "Human" and psb_category("101") == "Chair" and psb_category("381") == "Fourleg"
    assert [os.path.basename(p) for p in psb.meshes[0].annotations][:3] == ["1_0.seg", "1_1.seg", "1_2.seg"]
    assert os.path.basename(psb.meshes[0].annotation(10)) == "1_10.seg"  # numeric, not text, order
    labels = make_coseg(tmp_path / "chairs")
    coseg = find_collection(str(tmp_path / "chairs"))
    assert coseg.layout == "coseg" and coseg.name == "chairs" and [m.mesh_id for m in coseg.meshes] == ["7"]
    from utils.geometry.mesh_files import load_face_labels

    assert (load_face_labels(coseg.meshes[0].annotation(0), len(labels)) == labels + 1).all()
    with pytest.raises(InputError, match="annotator"):
        coseg.meshes[0].annotation(1)
    with pytest.raises(InputError, match="no mesh 99"):
        coseg.select(["99"])


def test_bad_data_folders_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        find_collection(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="neither"):
        find_collection(str(tmp_path / "empty"))
    (tmp_path / "bare" / "off").mkdir(parents=True)
    (tmp_path / "bare" / "seg").mkdir()
    with pytest.raises(InputError, match="no mesh with labels"):
        find_collection(str(tmp_path / "bare"))


def test_targets_are_the_segments_of_at_least_two_percent_of_the_area():
    areas = np.array([0.5, 0.3, 0.19, 0.01])
    assert segment_targets(np.array([3, 1, 2, 0]), areas) == [1, 2, 3]  # label 0 covers 1 %
    assert segment_targets(np.array([3, 1, 2, 0]), areas, min_share=0.25) == [1, 3]


def test_simulated_clicks_start_inside_the_target_and_follow_the_errors():
    vertices, faces, labels = cut_sphere(subdivisions=3)
    geometry = MeshGeometry.build(vertices, faces)
    upper = labels == 1
    seen = []

    def wrong_then_right(clicked, positive):
        seen.append((list(clicked), list(positive)))
        # first answer: the whole sphere (a false region below), then the exact target
        return np.ones(len(faces), dtype=bool) if len(clicked) == 1 else upper

    clicks = simulate_clicks(wrong_then_right, upper, geometry)
    first = clicks[0].vertex
    assert upper[np.any(faces == first, axis=1)].all()  # every face around the first click is in the target
    assert [c.positive for c in clicks] == [True, False]  # then a negative click in the wrongly included half
    assert vertices[clicks[1].vertex, 1] < -0.5  # deep in the lower half
    assert np.isclose(clicks[0].iou, area_iou(np.ones(len(faces), bool), upper, geometry.areas))
    assert clicks[1].iou == 1.0 and len(clicks) == 2  # exact: the simulation stops
    assert seen[1] == ([first, clicks[1].vertex], [True, False])

    never = simulate_clicks(lambda c, p: np.zeros(len(faces), dtype=bool), upper, geometry, cap=5)
    assert len(never) == 5 and all(c.positive and c.iou == 0 for c in never)
    assert len({c.vertex for c in never}) == 5  # a vertex is not clicked twice


def test_iou_and_noc_bookkeeping_on_hand_made_curves():
    early = ious_per_click([{"iou": 0.5}, {"iou": 1.0}], cap=20)
    assert early.shape == (20,) and early[0] == 0.5 and (early[1:] == 1.0).all()  # an exact answer carries on
    curves = np.array([ious_per_click([{"iou": v} for v in row]) for row in
                       ([0.5, 0.82, 0.86, 0.91] + [0.95] * 16, [0.7] * 20)])
    metrics = curve_metrics(curves)
    assert metrics["iou@1"] == pytest.approx(0.6) and metrics["iou@3"] == pytest.approx(0.78)
    assert metrics["iou@10"] == pytest.approx(0.825)
    assert metrics["noc@80"] == pytest.approx((2 + 20) / 2) and metrics["noc@90"] == pytest.approx((4 + 20) / 2)
    assert metrics["capped@85"] == 0.5


def test_random_walk_segmenter_finds_the_clicked_box():
    vertices, faces, labels = two_boxes(subdivisions=2)
    geometry = MeshGeometry.build(vertices, faces)
    segmenter = RandomWalkSegmenter(geometry)
    for part in (0, 1):
        clicks = simulate_clicks(segmenter, labels == part, geometry, cap=3)
        assert clicks[0].iou > 0.95
    # the automatic background seed is on the other box, far from the click
    click = int(faces[labels == 0][0][0])
    assert labels[np.any(faces == segmenter.background_seed([click]), axis=1)].min() == 1


def test_human_ceiling_is_the_best_matching_segment_of_each_other_annotator():
    areas = np.ones(4)
    target = np.array([True, True, False, False])
    same = np.array([0, 0, 1, 1])
    finer = np.array([0, 1, 2, 2])  # best: one face of two → 0.5
    assert human_ceiling(target, [same, finer], areas) == pytest.approx(0.75)
    assert human_ceiling(target, [], areas) is None  # written null: a missing value


def test_evaluate_writes_results_summary_and_plot_and_reuses_them(tmp_path, capsys):
    import evaluate

    make_psb(tmp_path / "psb", annotators=3)
    out = tmp_path / "out"
    arguments = ["--data", str(tmp_path / "psb"), "--out", str(out), "--methods", "random_walk", "--device", "cpu"]
    evaluate.main(arguments)
    results = json.loads((out / "results.json").read_text())
    mesh = results["meshes"][0]
    assert results["settings"]["layout"] == "psb" and mesh["mesh_id"] == "1" and mesh["category"] == "Human"
    assert [t["label"] for t in mesh["targets"]] == [0, 1]
    for target in mesh["targets"]:
        assert target["clicks"]["random_walk"][0]["iou"] > 0.95 and target["clicks"]["random_walk"][0]["positive"]
        assert target["human_ceiling"] == pytest.approx((0.5 + 1.0) / 2, abs=0.01)  # annotators 1 and 2
    summary = (out / "summary.md").read_text()
    assert "with a perfect 2D segmenter" in summary and "random walk" in summary and "Human ceiling" in summary
    assert (out / "iou_vs_clicks.png").stat().st_size > 0
    (record,) = (out / "meshes").iterdir()
    before = record.stat().st_mtime_ns
    evaluate.main(arguments)  # rerun: the mesh's record is reused, not recomputed
    assert record.stat().st_mtime_ns == before
    assert summary_markdown(results["meshes"], results["settings"]) == (out / "summary.md").read_text()


class PartDecoder:
    """A DecoderPredictor stand-in that knows the parts: in are the parts positive clicks are on and no negative one."""

    def __init__(self, vertex_labels):
        import torch

        self.vertex_labels = vertex_labels
        self.features = torch.zeros(len(vertex_labels), 1)

    @property
    def num_vertices(self):
        return len(self.vertex_labels)

    def predict(self, vertices, positive):
        import torch

        on = self.vertex_labels[vertices.numpy()]
        wanted = set(on[positive.numpy()].tolist()) - set(on[~positive.numpy()].tolist())
        return torch.from_numpy(np.isin(self.vertex_labels, sorted(wanted)).astype(np.float32))


def test_evaluate_click_aware_adds_its_method_beside_the_others_on_the_same_training(tmp_path, monkeypatch):
    import evaluate
    import utils.evaluation.run as run

    vertices, faces, labels = make_psb(tmp_path / "psb", annotators=1)
    vertex_labels = np.zeros(len(vertices), dtype=np.int64)
    vertex_labels[faces.ravel()] = np.repeat(labels, 3)  # each box's vertices carry its label
    trained = []
    monkeypatch.setattr(run, "train_mesh", lambda *a, **k: trained.append(1) or PartDecoder(vertex_labels))
    out = tmp_path / "out"
    arguments = ["--data", str(tmp_path / "psb"), "--out", str(out), "--device", "cpu"]
    evaluate.main(arguments)
    (path,) = (out / "meshes").iterdir()
    before = json.loads(path.read_text())
    assert all(set(t["clicks"]) == {"iseg", "random_walk"} for t in before["targets"])
    evaluate.main(arguments + ["--click_aware", "1"])  # adds only the click-aware decoder's clicks
    after = json.loads(path.read_text())
    assert len(trained) == 2  # the stages are reused through train_mesh (here: the stand-in) each time
    for old, new in zip(before["targets"], after["targets"]):
        assert set(new["clicks"]) == {"iseg", "random_walk", "iseg_click_aware"}
        assert new["clicks"]["iseg"] == old["clicks"]["iseg"] and new["clicks"]["random_walk"] == old["clicks"][
            "random_walk"]
        assert new["clicks"]["iseg_click_aware"][0]["iou"] > 0.99  # a box is found with one click
    summary = (out / "summary.md").read_text()
    assert "| iSeg click-aware |" in summary and "Mean IoU of iSeg click-aware minus the random walk's" in summary
    assert "simulation_iseg_click_aware" in after["timings"] and "simulation_iseg" in after["timings"]
    evaluate.main(arguments + ["--click_aware", "1"])  # nothing left to add: the record is kept as it is
    assert len(trained) == 2 and json.loads(path.read_text()) == after


def test_evaluate_reports_bad_arguments_in_one_line(tmp_path, capsys):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "evaluate.py", "--data", str(tmp_path / "nowhere"), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith("error: data folder not found")
    assert "Traceback" not in done.stderr


def test_evaluate_options_change_the_profile_the_run_name_and_the_summary(tmp_path):
    import evaluate
    from utils.evaluation.run import EvaluationRun, EvaluationSettings
    from utils.pipeline.budgets import BUDGETS

    make_psb(tmp_path / "psb", annotators=1)
    common = ["--data", str(tmp_path / "psb"), "--out", str(tmp_path / "out"), "--device", "cpu"]
    parsed = evaluate.parse_args(common)
    plain = EvaluationRun(EvaluationSettings(data=parsed.data, out=parsed.out, device=parsed.device))
    varied = EvaluationRun(EvaluationSettings(data=parsed.data, out=parsed.out, device="cpu", negative_outside=True,
                                              positive_inside=True, decoder_samples=77, decoder_pixels=0))
    assert not plain.profile.positive_inside and plain.profile == BUDGETS["quick"]
    assert varied.profile.positive_inside and varied.profile.negative_outside
    assert (varied.profile.decoder_samples, varied.profile.decoder_pixels) == (77, 0)
    assert varied.run_tag != plain.run_tag  # separate work folders and records
    summary = summary_markdown([], varied.settings)
    assert all(f"`{option}`" in summary for option in ("--positive_inside 1", "--decoder_samples 77",
                                                         "--decoder_pixels 0"))
    assert "--decoder_samples" not in summary_markdown([], plain.settings)
    bounded = EvaluationRun(EvaluationSettings(data=parsed.data, out=parsed.out, device="cpu", segmenter_rules=True))
    assert plain.free_prompts and not bounded.free_prompts and bounded.run_tag != plain.run_tag
    assert "segmenter" in bounded.settings["budget"] and "segmenter" not in plain.settings["budget"]
    assert "`--segmenter_rules 1`" in summary_markdown([], bounded.settings)
    randomly = EvaluationRun(EvaluationSettings(data=parsed.data, out=parsed.out, device="cpu", clicks="random"))
    entry = plain.entries[0]
    assert randomly.run_tag == plain.run_tag  # the same training serves both simulators ...
    assert randomly.record_path(entry) != plain.record_path(entry)  # ... whose records are kept apart
    assert "`--clicks random`" in summary_markdown([], randomly.settings)
    assert evaluate.parse_args(common + ["--clicks", "random"]).clicks == "random"
    imperfect = EvaluationRun(EvaluationSettings(data=parsed.data, out=parsed.out, device="cpu", imperfect_masks=True))
    assert imperfect.run_tag != plain.run_tag and "imperfect masks" in summary_markdown([], imperfect.settings)
    changed = dataclasses.replace(BUDGETS["quick"], decoder_epochs=2)  # a budget changed by an update
    original, BUDGETS["quick"] = BUDGETS["quick"], changed
    try:
        assert EvaluationRun(EvaluationSettings(data=parsed.data, out=parsed.out, device="cpu")).run_tag != \
            plain.run_tag  # new folders, nothing stale
    finally:
        BUDGETS["quick"] = original
    full = EvaluationRun(EvaluationSettings(data=parsed.data, out=parsed.out, device="cpu", profile="full"))
    assert full.profile == BUDGETS["original"]  # evaluate.py's earlier name of the original budget
    with pytest.raises(InputError, match="--decoder_samples must be >= 1"):
        evaluate.parse_args(common + ["--decoder_samples", "0"])


def test_curve_margin_finds_the_click_count_where_a_method_is_least_ahead():
    from utils.evaluation.report import curve_margin

    iseg = np.full((2, 20), 0.9)
    walk = np.linspace(0.2, 0.95, 20)[None].repeat(2, axis=0)  # passes 0.9 after 19 clicks
    worst, value, below = curve_margin({"iseg": iseg, "random_walk": walk})
    assert (worst, below) == (20, [19, 20]) and value == pytest.approx(0.9 - 0.95)
    assert curve_margin({"iseg": iseg}) is None
    assert "above it after every click count" in summary_markdown(
        [{"collection": "c", "mesh_id": "1", "category": "x", "timings": {}, "targets": [
            {"label": 0, "area_share": 1.0, "human_ceiling": float("nan"),
             "clicks": {"iseg": [{"vertex": 0, "positive": True, "iou": 0.9, "seconds": 0.0}],
                        "random_walk": [{"vertex": 0, "positive": True, "iou": 0.5, "seconds": 0.0}]}}]}],
        {"data": "d", "teacher": "label", "profile": "quick", "annotator": 0, "seed": 0})


def test_largest_fall_finds_the_click_count_after_which_the_mean_iou_drops_most():
    from utils.evaluation.report import largest_fall

    curve = np.full((2, 20), 0.9)
    curve[0, 4:] = 0.5  # one target loses 0.4 at the 5th click: the mean falls by 0.2 there
    curve[1, 9:] = 0.8
    assert largest_fall(curve)[0] == 5 and largest_fall(curve)[1] == pytest.approx(0.2)
    rising = np.linspace(0.5, 1.0, 20)[None]
    assert largest_fall(rising)[1] < 0


def test_click_effects_count_correction_clicks_that_hurt():
    from utils.evaluation.report import click_effects

    clicks = [{"positive": True, "iou": 0.9}, {"positive": False, "iou": 0.1}, {"positive": True, "iou": 0.5},
              {"positive": True, "iou": 0.45}]
    effects = click_effects([{"targets": [{"clicks": {"iseg": clicks}}]}])
    assert effects["iseg"] == {"positive": [2, 0], "negative": [1, 1]}


def test_the_pipeline_on_a_mesh_learns_the_clicked_part_and_reuses_its_stages(tmp_path):
    import torch

    from models.label_teacher import LabelTeacher
    from utils.evaluation.protocol import IsegSegmenter
    from utils.geometry.mesh_files import load_mesh
    from utils.pipeline.budgets import BUDGETS
    from utils.pipeline.runner import MeshWorkspace, train_mesh

    vertices, faces, labels = cut_sphere(subdivisions=3)  # two labelled halves
    write_off(tmp_path / "sphere.off", vertices, faces)
    mesh = load_mesh(tmp_path / "sphere.off")
    # the quick profile's decoder (attention, learning-rate schedule) and data rules, on fewer views and samples
    tiny = dataclasses.replace(BUDGETS["quick"], name="tiny", encoder_views=60, encoder_epochs=3, click_share=0.05,
                               views_per_click=3, view_pool=30, decoder_samples=512, min_clicks=20, small_mesh=0)
    workspace = MeshWorkspace(str(tmp_path / "work"))
    teacher = LabelTeacher(torch.from_numpy(labels), "sphere")
    predictor = train_mesh(mesh, teacher, workspace, tiny)
    timings = workspace.load_timings()
    assert set(timings) == {"encoder_views", "encoder_training", "decoder_data", "decoder_training"}
    assert not (tmp_path / "work" / "encoder_data").exists() and not (tmp_path / "work" / "decoder_data").exists()
    geometry = MeshGeometry.build(mesh.vertices.numpy().astype(float), mesh.faces.numpy())
    segmenter = IsegSegmenter(predictor, mesh.faces.numpy())
    for part in (0, 1):
        assert simulate_clicks(segmenter, labels == part, geometry, cap=1)[0].iou > 0.9
    first = [first_click(labels == part, geometry) for part in (0, 1)]
    kept = area_iou(segmenter(first, [True, False]), labels == 0, geometry.areas)
    assert kept > 0.9  # a negative click on the other half keeps the clicked half and leaves the other out
    from models.click_aware import ClickAwarePredictor

    click_aware = ClickAwarePredictor(predictor, geometry)
    assert area_iou(click_aware.segment(first, [True, False]), labels == 0, geometry.areas) > 0.9  # the same with it
    again = train_mesh(mesh, teacher, workspace, tiny)  # every stage is reused
    assert workspace.load_timings() == timings
    assert torch.equal(again.features, predictor.features)


def test_quick_profile_samples_the_loss_pixels_only_on_meshes_whose_views_touch_thousands_of_vertices():
    from utils.pipeline.budgets import BUDGETS

    quick = BUDGETS["quick"]
    small, large = quick.pixels_from - 1, quick.pixels_from
    assert quick.decoder_loss_pixels(small) == 0 and quick.decoder_loss_pixels(large) == quick.decoder_pixels > 0
    per_vertex = quick.decoder_samples * quick.small_mesh  # samples × vertices, about constant below small_mesh
    assert quick.decoder_sample_count(small) == round(per_vertex / small)
    assert quick.decoder_sample_count(large) == round(quick.pixel_sample_factor * per_vertex / large)
    assert quick.decoder_sample_count(10 * quick.small_mesh) == quick.pixel_sample_factor * quick.decoder_samples
