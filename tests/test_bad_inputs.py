"""Hardening, one case per class of bad input or state (more classes join as they are fixed)."""
import json
import math
import os

import pytest

from utils.errors import InputError
from utils.io import save_json


def strict_load(path):
    """Parse JSON as strict parsers (JavaScript, jq) do: NaN and Infinity are not JSON."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    with open(path, encoding="utf-8") as handle:
        return json.load(handle, parse_constant=refuse)


def test_every_json_the_project_writes_is_strict(tmp_path):
    save_json({"value": 0.5, "missing": None}, tmp_path / "ok.json")
    assert strict_load(tmp_path / "ok.json") == {"value": 0.5, "missing": None}
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError):
            save_json({"value": bad}, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()  # nothing half-written either


def test_an_evaluation_without_other_annotators_writes_null_ceilings(tmp_path):
    """COSEG has one annotator: the human ceiling is missing, and results.json says null (it said NaN)."""
    import evaluate
    from utils.geometry.shapes import save_shape, two_boxes

    (tmp_path / "coseg" / "shapes").mkdir(parents=True)
    (tmp_path / "coseg" / "gt").mkdir()
    vertices, faces, labels = two_boxes(subdivisions=1)
    save_shape((vertices, faces, labels + 1), tmp_path / "coseg" / "shapes", "7", ".off")  # COSEG counts from 1
    (tmp_path / "coseg" / "shapes" / "7.seg").rename(tmp_path / "coseg" / "gt" / "7.seg")
    evaluate.main(["--data", str(tmp_path / "coseg"), "--out", str(tmp_path / "out"), "--device", "cpu",
                   "--methods", "random_walk"])
    results = strict_load(tmp_path / "out" / "results.json")
    targets = [t for mesh in results["meshes"] for t in mesh["targets"]]
    assert targets and all(t["human_ceiling"] is None for t in targets)


def test_records_written_with_nan_ceilings_are_read_as_missing(tmp_path):
    from utils.evaluation.run import without_nan_ceilings

    record = json.loads('{"targets": [{"human_ceiling": NaN}, {"human_ceiling": 0.7}]}')  # as written before
    assert [t["human_ceiling"] for t in without_nan_ceilings(record)["targets"]] == [None, 0.7]


OBJ = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 3 4\n"


@pytest.mark.parametrize("prefix, newline", [("\ufeff", "\n"), ("", "\r\n"), ("\ufeff", "\r\n")])
def test_text_files_with_a_byte_order_mark_or_crlf_read_as_plain_ones(tmp_path, prefix, newline):
    from utils.geometry.mesh_files import load_face_labels, load_mesh

    plain = load_mesh(_write(tmp_path / "plain.obj", OBJ))
    other = load_mesh(_write(tmp_path / "other.obj", prefix + OBJ.replace("\n", newline)))
    assert other.num_vertices == 4 and (other.vertices == plain.vertices).all()  # the first vertex is kept
    labels = load_face_labels(_write(tmp_path / "l.seg", prefix + newline.join(["3", "4"]) + newline), 2)
    assert labels.tolist() == [3, 4]


def _write(path, text):
    path.write_bytes(text.encode("utf-8"))
    return str(path)


@pytest.mark.parametrize("token", ["\u0663", "\u00b2", "p\u0663", "-\u0661\u0660"])
def test_clicks_and_vertex_ids_are_ascii_integers(tmp_path, token):
    from utils.decoder.clicks import parse_clicks
    from utils.errors import InputError
    from utils.geometry.mesh_files import load_mesh

    with pytest.raises(InputError, match="bad click") as error:
        parse_clicks([token], 100)
    assert "\n" not in str(error.value)
    digit = token.lstrip("p-")
    with pytest.raises(InputError, match="could not read mesh") as error:  # "٣" was read as vertex 3
        load_mesh(_write(tmp_path / "m.obj", OBJ.replace("f 1 2 3", f"f 1 2 {digit}")))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("script, flag", [("encoder", "--learning_rate"), ("encoder", "--sigma"),
                                          ("encoder", "--radius"), ("encoder", "--test_elev_deg"),
                                          ("data_generation", "--radius"), ("decoder", "--learning_rate"),
                                          ("decoder", "--sphere_radius"), ("interactive", "--sphere_radius")])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
def test_non_finite_float_flags_are_refused_in_one_line(script, flag, value, capsys):
    """A NaN or infinite float flag used to run to exit 0 with NaN outputs; now argparse refuses it before anything
    runs (exit 2, one error line naming the flag)."""
    import importlib

    module = importlib.import_module(script)
    with pytest.raises(SystemExit) as stop:
        module.parse_args([f"{flag}={value}"])  # the = form: argparse would read "-inf" as a flag
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"error: argument {flag}" in error and "finite number" in error


def test_non_finite_features_checkpoints_embeddings_and_huge_coordinates_are_one_line_errors(tmp_path):
    """A NaN or inf in pred_f.pth, a decoder or encoder checkpoint or a stored view embedding, and coordinates too
    large for float32 outputs, used to give NaN outputs with exit 0; now each is an InputError naming the file."""
    import numpy as np
    import torch

    from models.build_decoder import DecoderSettings, load_decoder
    from models.build_feature_field import FieldSettings, load_feature_field, load_features
    from utils.encoder.views import EncoderData
    from utils.errors import InputError
    from utils.geometry.mesh import mesh_from_arrays
    from utils.geometry.shapes import two_boxes

    vertices, faces, _ = two_boxes()
    mesh = mesh_from_arrays(vertices, faces)
    features = torch.randn(mesh.num_vertices, 256)
    features[3, 7] = float("nan")
    torch.save(features, tmp_path / "pred_f.pth")
    with pytest.raises(InputError, match="non-finite values"):
        load_features(str(tmp_path / "pred_f.pth"), mesh)

    attention, head = DecoderSettings(depth=2).build()
    state = head.state_dict()
    state["mlp.0.weight"][0, 0] = float("inf")
    torch.save({"attention_state_dict": attention.state_dict(), "model_state_dict": state}, tmp_path / "decoder.pth")
    with pytest.raises(InputError, match="decoder checkpoint .* non-finite values"):
        load_decoder(str(tmp_path / "decoder.pth"), DecoderSettings(depth=2))

    field = FieldSettings(depth=2, width=32)
    model = field.build()
    weights = model.state_dict()
    next(iter(weights.values())).view(-1)[0] = float("nan")
    torch.save({"encoder_state_dict": weights}, tmp_path / "encoder_checkpoint.pth")
    with pytest.raises(InputError, match="encoder checkpoint .* non-finite values"):
        load_feature_field(str(tmp_path), field, seed=0)

    data = EncoderData(str(tmp_path / "views"), 224)
    os.makedirs(data.embedding_dir, exist_ok=True)
    embedding = torch.zeros(1, 256, 64, 64)
    embedding[0, 0, 0, 0] = float("inf")
    torch.save({"sam_f": embedding, "elev": 0.1, "azim": 0.2}, data.embedding(0))
    with pytest.raises(InputError, match="embedding .* non-finite values"):
        data.load_embedding(0)
    torch.save({"sam_f": torch.zeros(1, 256, 64, 64), "elev": float("nan"), "azim": 0.2}, data.embedding(0))
    with pytest.raises(InputError, match="non-finite values .*elev"):
        data.load_embedding(0)

    with pytest.raises(InputError, match="too large for float32"):
        mesh_from_arrays(np.asarray(vertices) * 1e300, faces)
    big = mesh_from_arrays(np.asarray(vertices) * 1e36, faces)  # large but representable: finite both ways
    assert torch.isfinite(big.original_vertices()).all()


@pytest.mark.parametrize("script", ["encoder", "data_generation", "decoder", "train", "evaluate"])
def test_an_output_folder_that_is_a_file_or_read_only_is_one_line_before_any_work(script, tmp_path):
    """Output folders are checked before the work (encoder training used to learn for minutes and only then find its
    folder unwritable); whatever the file system refuses later is one line too (run_cli), never a traceback."""
    import subprocess
    import sys

    from utils.geometry.shapes import save_shape, two_boxes

    mesh, labels = save_shape(two_boxes(), tmp_path, "boxes")
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    out = str(blocked / "out")
    torch_features = tmp_path / "pred_f.pth"
    import torch

    torch.save(torch.zeros(16, 256), torch_features)
    arguments = {
        "encoder": ["--obj_path", mesh, "--teacher", "label", "--labels", labels, "--encoder_data_dir", out,
                    "--generate_random_views", "1", "--start_training", "0"],
        "data_generation": ["--obj_path", mesh, "--teacher", "label", "--labels", labels, "--decoder_data_dir", out],
        "decoder": ["--mode", "test", "--obj_path", mesh, "--encoder_f_path", str(torch_features), "--save_dir", out],
        "train": ["--obj_path", mesh, "--teacher", "label", "--labels", labels, "--budget", "quick", "--data_root",
                  out],
        "evaluate": ["--data", str(tmp_path / "psb"), "--out", out, "--methods", "random_walk"],
    }[script]
    if script == "evaluate":
        (tmp_path / "psb" / "off").mkdir(parents=True)
        (tmp_path / "psb" / "seg" / "1").mkdir(parents=True)
        import trimesh

        vertices, faces, face_labels = two_boxes()
        trimesh.Trimesh(vertices, faces, process=False).export(tmp_path / "psb" / "off" / "1.off")
        (tmp_path / "psb" / "seg" / "1" / "1_0.seg").write_text("".join(f"{v}\n" for v in face_labels))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, os.path.join(root, f"{script}.py"), *arguments, "--device", "cpu"],
                          capture_output=True, text=True, timeout=300, cwd=root)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-800:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --") and "cannot be written" in last and str(blocked) in last


def test_a_refused_file_operation_during_a_run_is_one_line_with_exit_status_1(tmp_path, capsys):
    from utils.errors import run_cli

    def main():
        open(tmp_path / "missing_folder" / "out.txt", "w")

    with pytest.raises(SystemExit) as stop:
        run_cli(main)
    assert stop.value.code == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: No such file or directory: ") and "out.txt" in error[0]


def test_damaged_state_files_name_the_remedy(tmp_path):
    """A truncated manifest, stage-timings file or evaluation record used to end in a bare parse error; now the line
    says what to do."""
    from utils.errors import InputError
    from utils.io import check_manifest
    from utils.pipeline.runner import MeshWorkspace

    (tmp_path / "manifest.json").write_text('{"res": 22')
    with pytest.raises(InputError, match="it is damaged: rerun with --overwrite 1"):
        check_manifest(tmp_path / "manifest.json", {"res": 224}, True, "rerun with --overwrite 1")
    workspace = MeshWorkspace(str(tmp_path / "work"))
    os.makedirs(workspace.root)
    with open(workspace.timings, "w") as handle:
        handle.write('{"encoder_views": 1')
    with pytest.raises(InputError, match="damaged: delete it"):
        workspace.load_timings()


TRAINING_STEPS = """
import hashlib, sys
sys.path.insert(0, sys.argv[1])
import utils  # noqa: F401  (sets the thread settings before torch loads its libraries, as every script does)
import torch
from models.build_decoder import DecoderSettings
torch.manual_seed(0)
attention, head = DecoderSettings(depth=3, use_attention_q=False, use_attention_k=False).build()
features = torch.randn(12000, 256)
parameters = list(attention.parameters()) + list(head.parameters())
optimizer = torch.optim.Adam(parameters, lr=1e-3)
for step in range(2):
    clicks, signs = torch.randint(0, 12000, (4, 3)), torch.rand(4, 3) > 0.3
    attended = attention(features, clicks, signs)
    probability = head(torch.cat([features.expand(4, -1, -1), attended], dim=-1))[..., 1]
    target = (torch.rand(4, 12000) > 0.5).float()
    loss = torch.nn.functional.binary_cross_entropy(probability.clamp(1e-6, 1 - 1e-6), target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
digest = hashlib.sha256()
for parameter in parameters:
    digest.update(parameter.detach().numpy().tobytes())
print(torch.get_num_threads(), digest.hexdigest())
"""


def test_training_steps_give_the_same_bits_while_other_processes_keep_the_cores_busy(tmp_path):
    """The same decoder training steps (multi-threaded matrix products, reductions, Adam) on an idle machine and
    while as many busy processes as cores run beside them: bit for bit the same parameters. (The thread count
    itself may change the last bits; it is fixed per machine — one per core — unless set.)"""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = tmp_path / "steps.py"
    script.write_text(TRAINING_STEPS)

    def run():
        done = subprocess.run([sys.executable, str(script), root], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-500:]
        return done.stdout.split()

    quiet = run()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        loaded = run()
    finally:
        for process in busy:
            process.kill()
            process.wait()
    assert quiet == loaded


def test_a_write_that_fails_midway_leaves_the_earlier_set_of_test_outputs_whole(tmp_path, monkeypatch):
    """decoder.py --mode test writes three files for a click set; a full disk during the third used to leave a new npy
    and PLY beside the old render. Now the set is replaced together or not at all, and no temporary is left."""
    import errno

    import torch

    import utils.decoder.outputs as outputs
    from utils.geometry.mesh import mesh_from_arrays
    from utils.geometry.shapes import two_boxes

    vertices, faces, _ = two_boxes()
    mesh = mesh_from_arrays(vertices, faces)
    clicks, positive = torch.tensor([0]), torch.tensor([True])

    def write(probability):
        return outputs.write_test_outputs(mesh, probability, clicks, positive, "v0", str(tmp_path), (0, 0, 255),
                                          (200, 200, 200), (0, 255, 0), (255, 0, 0), render_res=32)

    paths = write(torch.zeros(mesh.num_vertices))
    before = {kind: open(path, "rb").read() for kind, path in paths.items()}
    real_grid = outputs.save_render_grid

    def grid_on_a_full_disk(mesh, probability, vertices, positive, path, res=224):
        real_grid(mesh, probability, vertices, positive, path, res)
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(outputs, "save_render_grid", grid_on_a_full_disk)
    with pytest.raises(OSError):
        write(torch.ones(mesh.num_vertices))
    assert {kind: open(path, "rb").read() for kind, path in paths.items()} == before
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(path) for path in paths.values())

    monkeypatch.setattr(outputs, "save_render_grid", real_grid)
    nan = torch.ones(mesh.num_vertices)
    nan[4] = float("nan")
    with pytest.raises(InputError, match="non-finite values .* nothing was written"):
        write(nan)
    assert {kind: open(path, "rb").read() for kind, path in paths.items()} == before
    assert write(torch.ones(mesh.num_vertices)) == paths  # and a good run does replace them
    assert {kind: open(path, "rb").read() for kind, path in paths.items()} != before


def test_a_viewer_export_that_fails_midway_keeps_the_earlier_export(tmp_path, monkeypatch):
    """The viewer's export writes a segment's mesh, probabilities, clicks and the shared label files: all or none."""
    import errno

    import utils.app.session as session_module
    from models.build_decoder import DecoderSettings, load_decoder
    from models.build_feature_field import load_features
    from models.decoder_predictor import DecoderPredictor
    from utils.app.demo import CHECKPOINT, FEATURES, MESH
    from utils.geometry.mesh_files import load_mesh

    mesh = load_mesh(MESH)
    predictor = DecoderPredictor(*load_decoder(CHECKPOINT, DecoderSettings()), load_features(FEATURES, mesh))
    colours = session_module.Colours((180, 180, 180), (28, 99, 227), (0, 255, 0), (255, 0, 0))
    session = session_module.InteractiveSession(mesh, predictor, "hammer", str(tmp_path), colours, [])
    first = session.export([100], [True], 1)
    before = {name: open(path, "rb").read() for name, path in first["paths"].items()}
    real_text = session_module.save_text

    def full_disk_on_the_seg_file(text, path):
        if ".seg" in os.path.basename(path):
            raise OSError(errno.ENOSPC, "No space left on device", path)
        real_text(text, path)

    monkeypatch.setattr(session_module, "save_text", full_disk_on_the_seg_file)
    with pytest.raises(OSError):
        session.export([100, -5], [True, False], 1)
    assert {name: open(path, "rb").read() for name, path in first["paths"].items()} == before
    assert not [name for name in os.listdir(os.path.dirname(first["paths"]["mesh"])) if name.endswith(".tmp")]


@pytest.mark.parametrize("stage", ["encoder", "decoder"])
def test_training_that_diverges_stops_in_one_line_and_keeps_the_earlier_result(stage, tmp_path, capsys):
    """A learning rate that makes the weights overflow used to train on, write an all-NaN pred_f.pth or decoder over
    the good ones and exit 0. Now the first non-finite loss stops the run with one line naming the flag, and the
    earlier result stays bit for bit."""
    import torch

    import encoder
    from utils.errors import run_cli
    from utils.geometry.shapes import save_shape, two_spheres

    if stage == "encoder":
        save_shape(two_spheres(subdivisions=2), tmp_path, "spheres")
        common = ["--obj_path", str(tmp_path / "spheres.obj"), "--encoder_data_dir", str(tmp_path / "data"),
                  "--encoder_model_dir", str(tmp_path / "model"), "--network_verbose", "0", "--device", "cpu",
                  "--teacher", "label", "--labels", str(tmp_path / "spheres.seg")]
        encoder.main(common + ["--generate_random_views", "1", "--n_views", "4", "--start_training", "1",
                               "--num_epochs", "1"])
        result = tmp_path / "model" / "pred_f.pth"
        good = result.read_bytes()
        with pytest.raises(SystemExit) as stop:
            run_cli(lambda: encoder.main(common + ["--start_training", "1", "--num_epochs", "3",
                                                   "--learning_rate", "1e30"]))
    else:
        from models.build_decoder import DecoderSettings
        from utils.decoder.samples import Samples, pack_masks
        from utils.decoder.training import TrainingSettings, train_decoder
        from utils.geometry.mesh import mesh_from_arrays

        vertices, faces, _ = two_spheres(subdivisions=2)
        mesh = mesh_from_arrays(vertices, faces)
        generator = torch.Generator().manual_seed(0)
        features = torch.randn(mesh.num_vertices, 256, generator=generator)
        count = 4
        samples = Samples(vertices=torch.tensor([[0, 0], [5, 200], [7, 9], [30, 31]]),
                          signs=torch.tensor([[1, 1], [1, 1], [1, -1], [1, 1]], dtype=torch.int8),
                          kind=torch.tensor([0, 1, 2, 0], dtype=torch.int8), view=torch.arange(count),
                          elev=torch.tensor([0.1, -0.4, 0.9, 0.3]), azim=torch.tensor([0.0, 2.0, 4.0, 5.0]),
                          points=torch.zeros(count, 2, 2), masks=pack_masks(torch.rand(count, 24, 24,
                                                                                       generator=generator) > 0.5),
                          score=torch.ones(count), res=24)

        def train(learning_rate):
            train_decoder(mesh, features, samples, torch.arange(count), str(tmp_path), "decoder.pth",
                          DecoderSettings(depth=2), TrainingSettings(learning_rate=learning_rate, num_epochs=4,
                                                                     batch_size=2), 2.0, False, progress=False)

        train(1e-4)
        result = tmp_path / "decoder.pth"
        good = result.read_bytes()
        with pytest.raises(SystemExit) as stop:
            run_cli(lambda: train(1e30))
    assert stop.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]  # not tqdm's bars
    assert len(errors) == 1 and "training diverged" in errors[0] and "--learning_rate (it is 1e+30)" in errors[0]
    assert result.read_bytes() == good
