"""train.py: one budget table with evaluate.py, the flags it prints parse as each script's and give the budget, and a
whole run on a small labelled mesh whose printed test command segments it."""
import dataclasses
import shlex

import numpy as np
import pytest
import torch

import data_generation
import decoder
import encoder
import evaluate
import train
from utils.cli import build_decoder_parser
from utils.geometry.shapes import save_shape, two_boxes
from utils.pipeline import budgets
from utils.pipeline.budgets import BUDGETS


def test_train_budgets_are_evaluate_profiles():
    assert sorted(BUDGETS) == sorted(train.parse_args(["--obj_path", "m.obj", "--budget", name]).budget
                                     for name in BUDGETS)
    assert evaluate.parse_args(["--data", "d", "--out", "o", "--profile", "full"]).profile == "full"
    assert budgets.budget_named("full") is BUDGETS["original"] and budgets.budget_named("quick") is BUDGETS["quick"]
    assert BUDGETS["demo"].decoder_settings == budgets.DecoderSettings()  # the original's architecture
    assert BUDGETS["original"].encoder_views == 1000 and BUDGETS["original"].view_pool == 1000


@pytest.mark.parametrize("name", sorted(BUDGETS))
def test_a_budget_s_printed_flags_give_each_script_the_budget(name):
    budget = BUDGETS[name]
    flags = budget.stage_flags(10_000, num_candidates=5_000)
    views = encoder.parse_args(["--generate_random_views", "1", *flags["encoder"]])
    bounds = budget.data_settings(free_prompts=False)  # a SAM-family teacher
    assert (views.n_views, views.num_epochs, views.embedding_dtype) == (bounds.encoder_views, budget.encoder_epochs,
                                                                        budgets.EMBEDDING_DTYPE)
    data = data_generation.parse_args(flags["data"])
    assert (data.percentage, data.n_views, data.view_pool) == (budget.click_percentage(10_000), budget.views_per_click,
                                                               bounds.view_pool)
    assert (data.second_clicks, data.refinement_steps) == (bounds.second_clicks, bounds.refinement_steps)
    free = budget.stage_flags(10_000, free_prompts=True)
    free_data = data_generation.parse_args(free["data"])
    # the label teacher: the original's rules and the budget's views
    assert (free_data.second_clicks, free_data.refinement_steps, free_data.view_pool) == (5, 6, budget.view_pool)
    assert encoder.parse_args(["--generate_random_views", "1", *free["encoder"]]).n_views == budget.encoder_views
    trained = build_decoder_parser("decoder.py").parse_args(["--mode", "train", *flags["decoder"]])
    assert (trained.num_epochs, trained.batch_size, trained.learning_rate, trained.lr_schedule) == (
        budget.decoder_epochs, budget.decoder_batch, budget.decoder_learning_rate, budget.decoder_lr_schedule)
    assert trained.loss_pixels == budget.decoder_loss_pixels(10_000)
    assert trained.data_percentage == budget.decoder_share(10_000, 5_000)
    from utils.cli import decoder_settings_from_args

    assert decoder_settings_from_args(trained) == budget.decoder_settings


def test_train_py_runs_the_budget_and_its_printed_command_segments_the_mesh(tmp_path, monkeypatch, capsys):
    vertices, faces, labels = two_boxes(subdivisions=2)
    mesh_path, labels_path = save_shape((vertices, faces, labels), tmp_path, "boxes", ".off")
    # the quick budget (identity query/key maps: the printed command must carry them) on fewer views and samples
    tiny = dataclasses.replace(BUDGETS["quick"], name="tiny", encoder_views=30, encoder_epochs=2, views_per_click=2,
                               view_pool=20, min_clicks=20, decoder_samples=64, small_mesh=0)
    monkeypatch.setitem(BUDGETS, "quick", tiny)
    train.main(["--obj_path", mesh_path, "--budget", "quick", "--teacher", "label", "--labels",
                labels_path, "--data_root", str(tmp_path / "data"), "--experiments_root",
                str(tmp_path / "experiments"), "--device", "cpu"])
    printed = capsys.readouterr().out
    assert "encoder.py --n_views 30 --num_epochs 2" in printed and "--use_attention_q 0" in printed
    assert (tmp_path / "data" / "boxes" / "decoder_data" / "manifest.json").exists()  # train.py keeps stage data
    assert (tmp_path / "experiments" / "boxes" / "encoder" / "test_image.png").exists()  # the encoder's test view
    commands = {line.split()[1]: shlex.split(line) for line in printed.splitlines() if line.startswith("  python ")}
    command = commands["decoder.py"]
    import interactive

    assert interactive.parse_args(commands["interactive.py"][2:]).save_dir == command[command.index("--save_dir") + 1]
    vertex = int(np.flatnonzero(np.bincount(faces[labels == 0].ravel(), minlength=len(vertices)))[0])
    decoder.main([*command[2:-1], str(vertex), "--device", "cpu"])
    probability = np.load(tmp_path / "experiments" / "boxes" / "decoder" / f"vertex_probability_v{vertex}.npy")
    in_part = np.zeros(len(vertices), dtype=bool)
    in_part[faces[labels == 0].ravel()] = True
    assert probability[in_part].mean() > 0.5 > probability[~in_part].mean()  # the clicked box, not the other
    capsys.readouterr()
    train.main(["--obj_path", mesh_path, "--budget", "quick", "--teacher", "label", "--labels",
                labels_path, "--data_root", str(tmp_path / "data"), "--experiments_root",
                str(tmp_path / "experiments"), "--device", "cpu", "--click_aware", "1"])
    again = capsys.readouterr().out
    assert "encoder: skipped" in again and "decoder: skipped" in again  # a finished run is not trained again
    commands = [shlex.split(line) for line in again.splitlines() if line.startswith("  python ")]
    assert len(commands) == 2 and all(c[c.index("--click_aware") + 1] == "1" for c in commands)  # the click-aware one


class _StopAfterDataSettings(Exception):
    pass


@pytest.mark.parametrize("free_prompts, override, bounded", [(True, None, False), (False, None, True),
                                                              (True, False, True)])
def test_the_data_stage_bounds_a_costly_teacher_s_prompts_and_not_the_label_teacher_s(
        tmp_path, monkeypatch, free_prompts, override, bounded):
    """quick: a teacher whose prompts cost gets the budget's segmenter bounds, the label teacher the original's rules
    (unless told to follow a segmenter's, as evaluate.py --segmenter_rules 1 does)."""
    from models.label_teacher import LabelTeacher
    from utils.geometry.mesh_files import load_mesh
    from utils.pipeline import runner

    vertices, faces, labels = two_boxes(subdivisions=1)
    mesh = load_mesh(save_shape((vertices, faces, labels), tmp_path, "boxes")[0])
    teacher = LabelTeacher(torch.from_numpy(labels), "boxes")
    teacher.free_prompts = free_prompts  # as a SAM-family teacher says of itself when False
    seen = []

    def capture(mesh, teacher, root, settings, kinds, progress):
        seen.append(settings)
        raise _StopAfterDataSettings

    views = []
    monkeypatch.setattr(runner, "generate_views", lambda mesh, teacher, root, count, **kwargs: views.append(count))
    for stage in ("train_feature_field", "load_features"):
        monkeypatch.setattr(runner, stage, lambda *args, **kwargs: None)
    monkeypatch.setattr(runner, "generate_decoder_data", capture)
    quick = BUDGETS["quick"]
    with pytest.raises(_StopAfterDataSettings):
        runner.train_mesh(mesh, teacher, runner.MeshWorkspace(str(tmp_path)), quick, free_prompts=override)
    settings = seen[0]
    if bounded:
        assert (settings.second_clicks, settings.refinement_steps, settings.view_pool, views) == (1, 1, 50, [150])
    else:
        assert (settings.second_clicks, settings.refinement_steps, settings.view_pool, views) == (
            5, 6, quick.view_pool, [quick.encoder_views])


@pytest.mark.cuda
def test_on_cuda_the_stages_train_a_decoder_that_segments_the_clicked_part(tmp_path):
    """The four stages with --device cuda (a small budget): the decoder separates the two boxes as on the CPU."""
    from models.label_teacher import LabelTeacher
    from utils.geometry.mesh_files import load_mesh
    from utils.pipeline.runner import MeshWorkspace, train_mesh

    vertices, faces, labels = two_boxes(subdivisions=2)
    mesh = load_mesh(save_shape((vertices, faces, labels), tmp_path, "boxes")[0])
    tiny = dataclasses.replace(BUDGETS["quick"], name="tiny", encoder_views=30, encoder_epochs=2, views_per_click=2,
                               view_pool=20, min_clicks=20, decoder_samples=64, small_mesh=0)
    predictor = train_mesh(mesh, LabelTeacher(torch.from_numpy(labels), "boxes"), MeshWorkspace(str(tmp_path / "w")),
                           tiny, 0, torch.device("cuda"))
    in_part = np.zeros(len(vertices), dtype=bool)
    in_part[faces[labels == 0].ravel()] = True
    vertex = int(np.flatnonzero(in_part)[0])
    probability = predictor.predict(torch.tensor([vertex]), torch.tensor([True])).cpu().numpy()
    assert np.isfinite(probability).all()
    assert probability[in_part].mean() > 0.5 > probability[~in_part].mean()
