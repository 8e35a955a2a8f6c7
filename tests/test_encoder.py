"""encoder.py end to end: tiny SAM through all stages, the label teacher's part separation, resuming, determinism,
restricted evaluation, bad input."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import encoder
import utils.encoder.training as training
import utils.encoder.views as views
from models.build_feature_field import load_feature_field_state
from models.feature_field import FOURIER_KEY, MeshFeatureField
from models.label_teacher import LabelTeacher, label_code
from utils.errors import run_cli
from utils.geometry.camera import Cameras
from utils.geometry.mesh_files import load_mesh
from utils.geometry.raster import PixelWeights, interpolate, rasterize
from utils.geometry.shapes import save_shape, two_spheres

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def spheres(tmp_path):
    """Two spheres (label 0 at −X, 1 at +X) as an OBJ with a .seg label file."""
    save_shape(two_spheres(subdivisions=2), tmp_path, "spheres")
    return tmp_path


def run(tmp_path, *extra, data="data", model="model"):
    argv = ["--obj_path", str(tmp_path / "spheres.obj"), "--encoder_data_dir", str(tmp_path / data),
            "--encoder_model_dir", str(tmp_path / model), "--network_verbose", "0", "--device", "cpu", *extra]
    encoder.main(argv)
    return tmp_path / data, tmp_path / model


LABELS = lambda tmp_path: ["--teacher", "label", "--labels", str(tmp_path / "spheres.seg")]  # noqa: E731


def test_tiny_sam_runs_all_three_stages(spheres):
    data, model = run(spheres, "--SAM", "tiny", "--generate_random_views", "1", "--n_views", "3",
                      "--start_training", "1", "--num_epochs", "1", "--test", "1")
    mesh = load_mesh(spheres / "spheres.obj")
    for i in range(3):
        record = torch.load(data / "sam_f" / "224" / f"target_samf_{i}.pt", weights_only=True)
        assert record["sam_f"].shape == (1, 256, 64, 64) and record["sam_f"].dtype == torch.float32
        image = np.asarray(Image.open(data / "224" / f"target_save_{i}.png"))
        assert image.shape == (224, 224, 3) and image.dtype == np.uint8
    angles = torch.load(data / "224" / "random_viewing_angles.pt", weights_only=True)
    assert len(angles["elev"]) == len(angles["azim"]) == 3
    checkpoint = torch.load(model / "encoder_checkpoint.pth", weights_only=True)
    assert {"encoder_state_dict", "optimizer_state_dict", "losses"} <= set(checkpoint)
    assert len(checkpoint["losses"]) == 3
    features = torch.load(model / "pred_f.pth", weights_only=True)
    assert features.shape == (mesh.num_vertices, 256) and features.dtype == torch.float32
    assert not features.requires_grad and features.device.type == "cpu"
    assert (features.abs() < 1).all()
    assert (model / "test_image.png").exists() and (model / "test_features_hammer.png").exists()
    assert float((model / "test_loss.txt").read_text()) > 0
    assert not (model / training.STATE_NAME).exists()


def test_label_teacher_features_separate_the_two_parts(spheres):
    _, model = run(spheres, *LABELS(spheres), "--generate_random_views", "1", "--n_views", "40",
                   "--start_training", "1", "--num_epochs", "3")
    features = torch.load(model / "pred_f.pth", weights_only=True)
    vertices, faces, labels = two_spheres(subdivisions=2)
    vertex_part = (vertices[:, 0] > 0).astype(int)  # each sphere is one part
    codes = torch.stack([label_code(0), label_code(1)])
    nearest = F.normalize(features, dim=1) @ F.normalize(codes, dim=1).T
    agreement = (nearest.argmax(dim=1).numpy() == vertex_part).mean()
    assert agreement >= 0.95


def test_restricted_evaluation_gives_the_full_loss_and_gradients():
    vertices, faces, _ = two_spheres(subdivisions=2)
    from utils.geometry.mesh import mesh_from_arrays

    mesh = mesh_from_arrays(vertices, faces)
    camera = Cameras.from_degrees(20, 70)
    fragments = rasterize(mesh, camera, 64)
    torch.manual_seed(0)
    model = MeshFeatureField()
    embedding = torch.randn(1, 256, 64, 64)
    pixels = PixelWeights.from_fragments(fragments, mesh.faces)
    assert len(pixels.vertices) < 0.6 * mesh.num_vertices  # the point: far fewer vertices

    restricted = training.feature_loss(model, mesh.vertices, pixels, embedding)
    restricted_grads = torch.autograd.grad(restricted, list(model.parameters()))

    image = interpolate(fragments, mesh.faces, model(mesh.vertices))[0]  # (64, 64, 256), every vertex evaluated
    covered = fragments.coverage[0]
    full = torch.mean((image[covered] - embedding[0].permute(1, 2, 0)[covered]) ** 2)
    full_grads = torch.autograd.grad(full, list(model.parameters()))
    assert torch.allclose(restricted, full, rtol=1e-6)
    for a, b in zip(restricted_grads, full_grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-9)


def test_training_gradients_are_bit_for_bit_repeatable():
    """The feature loss's gradients do not depend on thread timing (the vertex gather's backward adds in order)."""
    vertices, faces, _ = two_spheres(subdivisions=2)
    from utils.geometry.mesh import mesh_from_arrays

    mesh = mesh_from_arrays(vertices, faces)
    pixels = PixelWeights.from_fragments(rasterize(mesh, Cameras.from_degrees(20, 70), 64), mesh.faces)
    embedding = torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(0))
    gradients = []
    for _ in range(10):
        torch.manual_seed(0)
        model = MeshFeatureField()
        loss = training.feature_loss(model, mesh.vertices, pixels, embedding)
        gradients.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(model.parameters()))]))
    assert all(torch.equal(gradients[0], g) for g in gradients[1:])


class Interrupting(LabelTeacher):
    """A label teacher that is 'killed' (KeyboardInterrupt) at its n-th image encoding."""

    def __init__(self, labels, after):
        super().__init__(labels, "label spheres")
        self.calls, self.after = 0, after

    def encode(self, view):
        self.calls += 1
        if self.calls > self.after:
            raise KeyboardInterrupt
        return super().encode(view)


def test_stage_one_resumes_after_a_kill_and_ends_with_the_same_files(spheres):
    mesh = load_mesh(spheres / "spheres.obj")
    labels = torch.from_numpy(two_spheres(subdivisions=2)[2])
    stage_1 = dict(seed=0, frontview_std=4.0, settings=views.ViewSettings(), progress=False)
    whole = str(spheres / "whole")
    assert views.generate_views(mesh, Interrupting(labels, 99), whole, 6, **stage_1) == 6
    killed = str(spheres / "killed")
    with pytest.raises(KeyboardInterrupt):
        views.generate_views(mesh, Interrupting(labels, 3), killed, 6, **stage_1)
    assert len(views.EncoderData(killed, 224).view_indices()) == 3
    assert not [name for name in os.listdir(os.path.join(killed, "sam_f", "224")) if name.endswith(".tmp")]
    assert views.generate_views(mesh, Interrupting(labels, 99), killed, 6, **stage_1) == 3
    for folder in ("224", os.path.join("sam_f", "224")):
        names = sorted(os.listdir(os.path.join(whole, folder)))
        assert names == sorted(os.listdir(os.path.join(killed, folder)))
        for name in names:
            a = torch.load(os.path.join(whole, folder, name), weights_only=True) if name.endswith(".pt") else None
            if a is None:
                with open(os.path.join(whole, folder, name), "rb") as x, open(os.path.join(killed, folder, name),
                                                                              "rb") as y:
                    assert x.read() == y.read()
            else:
                b = torch.load(os.path.join(killed, folder, name), weights_only=True)
                assert a.keys() == b.keys()
                for key in a:
                    assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key]))


def test_training_resumes_after_a_kill_and_same_seed_gives_identical_features(spheres, monkeypatch):
    run(spheres, *LABELS(spheres), "--generate_random_views", "1", "--n_views", "8")
    train = ["--start_training", "1", "--num_epochs", "2"]
    _, first = run(spheres, *LABELS(spheres), *train, model="first")
    _, second = run(spheres, *LABELS(spheres), *train, model="second")
    reference = torch.load(first / "pred_f.pth", weights_only=True)
    assert torch.equal(reference, torch.load(second / "pred_f.pth", weights_only=True))

    monkeypatch.setattr(training, "SAVE_STATE_EVERY", 4)
    original = views.EncoderData.load_embedding
    calls = {"n": 0}

    def dying_load(self, index):
        calls["n"] += 1
        if calls["n"] > 11:
            raise KeyboardInterrupt
        return original(self, index)

    monkeypatch.setattr(views.EncoderData, "load_embedding", dying_load)
    with pytest.raises(KeyboardInterrupt):
        run(spheres, *LABELS(spheres), *train, model="resumed")
    state = torch.load(spheres / "resumed" / training.STATE_NAME, weights_only=True)
    assert state["step"] == 8
    monkeypatch.setattr(views.EncoderData, "load_embedding", original)
    _, resumed = run(spheres, *LABELS(spheres), *train, model="resumed")
    assert torch.equal(reference, torch.load(resumed / "pred_f.pth", weights_only=True))
    assert not (resumed / training.STATE_NAME).exists()
    losses = torch.load(resumed / "encoder_checkpoint.pth", weights_only=True)["losses"]
    assert losses == torch.load(first / "encoder_checkpoint.pth", weights_only=True)["losses"]


def test_test_only_run_loads_the_checkpoint(spheres, capsys):
    run(spheres, *LABELS(spheres), "--generate_random_views", "1", "--n_views", "4", "--start_training", "1",
        "--num_epochs", "1", "--test", "1")
    first = (spheres / "model" / "test_loss.txt").read_text()
    os.remove(spheres / "model" / "test_loss.txt")
    run(spheres, *LABELS(spheres), "--test", "1")
    assert (spheres / "model" / "test_loss.txt").read_text() == first


def test_an_original_checkpoint_without_the_fourier_matrix_loads_with_a_warning():
    torch.manual_seed(3)
    trained = MeshFeatureField()
    state = {k: v for k, v in trained.state_dict().items() if k != FOURIER_KEY}
    assert FOURIER_KEY in trained.state_dict()
    torch.manual_seed(3)  # the original's only way to get B back: the same seed
    model = MeshFeatureField()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_feature_field_state(model, {"module." + k: v for k, v in state.items()})
    assert any("Fourier" in str(w.message) for w in caught)
    points = torch.rand(10, 3)
    assert torch.equal(model(points), trained(points))


def errors_of(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: encoder.main(argv))
    lines = capsys.readouterr().err.strip().splitlines()
    return exit_info.value.code, lines


def test_bad_inputs_give_one_line_errors(spheres, capsys, monkeypatch):
    mesh = ["--obj_path", str(spheres / "spheres.obj"), "--encoder_data_dir", str(spheres / "d"),
            "--encoder_model_dir", str(spheres / "m")]
    np.savetxt(spheres / "short.seg", np.zeros(10, dtype=int), fmt="%d")
    (spheres / "broken.obj").write_text("v 0 0 0\nf 1 2 3\n")
    cases = {
        "SAM checkpoint not found": mesh + ["--generate_random_views", "1"],
        "have 10 entries but the mesh has": mesh + ["--generate_random_views", "1", "--teacher", "label",
                                                   "--labels", str(spheres / "short.seg")],
        "needs --labels": mesh + ["--generate_random_views", "1", "--teacher", "label"],
        "broken.obj": ["--obj_path", str(spheres / "broken.obj"), "--generate_random_views", "1"],
        "nothing to do": mesh,
        "--batch_size must be 1": mesh + ["--start_training", "1", "--batch_size", "4"],
        "no encoder views": mesh + ["--start_training", "1"],
        "encoder checkpoint not found": mesh + ["--test", "1", "--SAM", "tiny"],
    }
    monkeypatch.chdir(spheres)
    for expected, argv in cases.items():
        code, lines = errors_of(argv, capsys)
        assert code == 2, expected
        errors = [line for line in lines if line.startswith("error: ")]
        assert len(errors) == 1 and expected in errors[0], (expected, lines)


def test_the_script_exits_2_with_one_error_line(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "encoder.py"), "--obj_path",
                             str(tmp_path / "missing.obj"), "--generate_random_views", "1"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: mesh file not found: {tmp_path / 'missing.obj'}"]


def test_views_made_with_another_seed_are_not_mixed_in(spheres, capsys):
    run(spheres, *LABELS(spheres), "--generate_random_views", "1", "--n_views", "2")
    code, lines = errors_of(["--obj_path", str(spheres / "spheres.obj"), "--encoder_data_dir", str(spheres / "data"),
                             "--generate_random_views", "1", "--n_views", "2", "--seed", "1", *LABELS(spheres)],
                            capsys)
    assert code == 2 and "seed" in lines[-1]
