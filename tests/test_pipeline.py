"""The whole pipeline with the label teacher on a two-part mesh: encoder → data generation → decoder, then
decoder.py's test outputs, resuming decoder training, and its errors."""
import os

import numpy as np
import pytest
import torch
import trimesh

import data_generation
import decoder
import encoder
import utils.decoder.training as decoder_training
from models.build_decoder import DecoderSettings, load_decoder
from models.build_feature_field import load_features
from models.decoder_predictor import DecoderPredictor
from utils.errors import run_cli
from utils.geometry.mesh_files import load_mesh
from utils.geometry.shapes import save_shape, two_spheres


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two spheres (part 0 at −X, part 1 at +X) through the three stages with small settings."""
    root = tmp_path_factory.mktemp("pipeline")
    save_shape(two_spheres(subdivisions=2), root, "m")
    mesh_args = ["--obj_path", str(root / "m.obj"), "--device", "cpu"]
    teacher = ["--teacher", "label", "--labels", str(root / "m.seg")]
    encoder.main(mesh_args + teacher + ["--encoder_data_dir", str(root / "ed"), "--encoder_model_dir",
                                        str(root / "em"), "--generate_random_views", "1", "--n_views", "40",
                                        "--start_training", "1", "--num_epochs", "3", "--network_verbose", "0"])
    data_generation.main(mesh_args + teacher + ["--decoder_data_dir", str(root / "dd"), "--percentage", "0.1",
                                                "--n_views", "10", "--view_pool", "40", "--second_positive", "1",
                                                "--second_negative", "1"])
    decoder_args = mesh_args + ["--encoder_f_path", str(root / "em" / "pred_f.pth"), "--decoder_data_dir",
                                str(root / "dd"), "--save_dir", str(root / "dec")]
    decoder.main(decoder_args + ["--mode", "train", "--num_epochs", "2", "--use_positive_click", "1",
                                 "--use_negative_click", "1"])
    return root, decoder_args


def test_a_click_on_one_part_segments_that_part_and_a_negative_click_keeps_the_other_out(trained):
    root, _ = trained
    mesh = load_mesh(root / "m.obj")
    features = load_features(str(root / "em" / "pred_f.pth"), mesh)
    predictor = DecoderPredictor(*load_decoder(str(root / "dec" / "decoder_checkpoint.pth"), DecoderSettings()),
                                 features)
    part_a = mesh.vertices[:, 0] < 0
    a, b = int(part_a.nonzero()[10]), int((~part_a).nonzero()[20])
    segment = predictor.predict(torch.tensor([a]), torch.tensor([True])) > 0.5
    iou = (segment & part_a).sum() / (segment | part_a).sum()
    assert iou >= 0.9
    with_negative = predictor.predict(torch.tensor([a, b]), torch.tensor([True, False])) > 0.5
    assert (with_negative & ~part_a).sum() < 0.05 * (~part_a).sum()  # B stays out


def test_decoder_test_mode_writes_the_originals_outputs(trained, capsys):
    root, decoder_args = trained
    decoder.main(decoder_args + ["--mode", "test", "--select_vertices", "10", "-200", "--show_spheres", "1"])
    out = capsys.readouterr().out
    assert "inference time" in out
    mesh = load_mesh(root / "m.obj")
    probability = np.load(root / "dec" / "vertex_probability_v10_v-200.npy")
    assert probability.shape == (mesh.num_vertices,) and probability.dtype == np.float32
    assert ((probability >= 0) & (probability <= 1)).all()
    ply = trimesh.load(root / "dec" / "colored_mesh_with_clicks_v10_v-200.ply", process=False)
    file_vertices = trimesh.load(root / "m.obj", process=False).vertices
    assert len(ply.vertices) > mesh.num_vertices  # the mesh, then the two click spheres
    assert np.allclose(ply.vertices[:mesh.num_vertices], file_vertices, atol=1e-5)  # the file's coordinates
    colours = ply.visual.vertex_colors[:mesh.num_vertices, :3].astype(float)
    expected = np.round(probability[:, None] * [60, 160, 250] + (1 - probability[:, None]) * [180, 180, 180])
    assert np.abs(colours - expected).max() <= 1
    assert (root / "dec" / "render_views_v10_v-200.png").stat().st_size > 10_000
    decoder.main(decoder_args + ["--mode", "test", "--select_vertices", "n0", "p5", "--ply_coordinates",
                                 "normalized"])
    normalized = trimesh.load(root / "dec" / "colored_mesh_vn0_v5.ply", process=False)
    assert np.allclose(normalized.vertices, mesh.vertices.numpy(), atol=1e-5)


def test_training_continues_after_a_kill_to_the_same_weights(trained, monkeypatch):
    root, decoder_args = trained
    train = decoder_args + ["--mode", "train", "--num_epochs", "2", "--data_percentage", "0.15",
                            "--save_interval", "2"]
    decoder.main([*train[:-2], "--save_dir", str(root / "whole"), *train[-2:]])
    original = decoder_training.batch_loss
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 4:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(decoder_training, "batch_loss", dying)
    killed = [*train[:-2], "--save_dir", str(root / "killed"), *train[-2:]]
    with pytest.raises(KeyboardInterrupt):
        decoder.main(killed)
    monkeypatch.setattr(decoder_training, "batch_loss", original)
    decoder.main(killed + ["--continue_train", "1"])
    whole = torch.load(root / "whole" / "decoder_checkpoint.pth", weights_only=True)
    resumed = torch.load(root / "killed" / "decoder_checkpoint.pth", weights_only=True)
    assert whole["losses"] == resumed["losses"]
    for key in ("attention_state_dict", "model_state_dict"):
        assert all(torch.equal(whole[key][name], resumed[key][name]) for name in whole[key])
    assert os.path.exists(root / "killed" / "decoder_checkpoint_e2.pth")


def test_a_checkpoint_without_optimizer_state_continues_and_a_damaged_one_is_refused(trained, capsys):
    """The bundled demo's slimmed checkpoints (and authors' files without the keys resuming needs) continue with fresh
    Adam moments; a damaged training position is one line."""
    root, decoder_args = trained
    train = decoder_args + ["--mode", "train", "--num_epochs", "2", "--data_percentage", "0.15"]
    decoder.main([*train, "--save_dir", str(root / "slim")])
    path = root / "slim" / "decoder_checkpoint.pth"
    checkpoint = torch.load(path, weights_only=True)
    checkpoint.update(optimizer_state_dict={}, epoch=1, batch_idx=0)
    del checkpoint["losses"]
    torch.save(checkpoint, path)
    capsys.readouterr()
    decoder.main([*train, "--save_dir", str(root / "slim"), "--continue_train", "1"])
    assert "no optimizer state" in capsys.readouterr().out
    continued = torch.load(path, weights_only=True)
    assert continued["epoch"] == 2 and continued["optimizer_state_dict"]["state"]  # trained on, Adam state saved
    continued["epoch"] = "two"
    torch.save(continued, path)
    with pytest.raises(SystemExit):
        run_cli(lambda: decoder.main([*train, "--save_dir", str(root / "slim"), "--continue_train", "1"]))
    message = capsys.readouterr().err.strip()
    assert "damaged" in message and len(message.splitlines()) == 1


def errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: decoder.main(argv))
    return exit_info.value.code, capsys.readouterr().err.strip().splitlines()


def test_bad_decoder_inputs_give_one_line_errors(trained, capsys, tmp_path):
    root, decoder_args = trained
    torch.save(torch.zeros(5, 256), tmp_path / "short.pth")
    cases = {
        "has 324 vertices": decoder_args + ["--select_vertices", "400"],
        "bad click": decoder_args + ["--select_vertices", "x1"],
        "does not fit --depth 12": decoder_args + ["--depth", "12"],
        "have 5 rows": decoder_args[:4] + ["--encoder_f_path", str(tmp_path / "short.pth")] + decoder_args[6:],
        "decoder checkpoint not found": decoder_args + ["--model_name", "missing.pth"],
    }
    for expected, argv in cases.items():
        code, lines = errors(argv, capsys)
        assert code == 2 and len(lines) == 1 and expected in lines[0], (expected, lines)
