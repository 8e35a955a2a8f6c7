"""train.py over many meshes (utils/pipeline/training_run.py): files, folders and patterns; one after another or as Ray
tasks with the same features and decoders; a bad mesh reported while the others train; a driver killed mid-run and
the same command run again gives the same files."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from training_checks import assert_same_training
from training_checks import trained_files as load_trained

import train
from utils.errors import InputError
from utils.geometry.shapes import cut_sphere, save_shape, two_boxes, two_spheres
from utils.pipeline.budgets import BUDGETS
from utils.pipeline.training_run import expand_mesh_paths, mesh_jobs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the quick budget on a few views and samples: seconds per mesh
TINY_FIELDS = dict(name="tiny", encoder_views=12, encoder_epochs=2, click_share=0.05, views_per_click=2, view_pool=12,
                   decoder_samples=64, min_clicks=8, small_mesh=0)
TRAINED = ("boxes", "sphere", "spheres")
# train.py with the tiny budget as its quick one, for a run in another process
SCRIPT = f"""import dataclasses, sys
sys.path.insert(0, {ROOT!r})
from utils.pipeline.budgets import BUDGETS
BUDGETS["quick"] = dataclasses.replace(BUDGETS["quick"], **{TINY_FIELDS!r})
import train
from utils.errors import run_cli
run_cli(lambda: train.main(sys.argv[1:]))
"""


def write_meshes(folder):
    """Three small labelled meshes (two .obj, one .off) with their .seg labels beside them, and a damaged one."""
    os.makedirs(folder)
    save_shape(two_boxes(subdivisions=1), folder, "boxes")
    save_shape(cut_sphere(subdivisions=2), folder, "sphere")
    save_shape(two_spheres(subdivisions=1), folder, "spheres", ".off")
    (folder / "broken.off").write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n")  # truncated: a vertex and the face missing
    (folder / "broken.seg").write_text("0\n")


def arguments(meshes, out, *extra):
    return ["--obj_path", str(meshes), "--labels", str(meshes), "--teacher", "label", "--budget", "quick",
            "--data_root", str(out / "data"), "--experiments_root", str(out / "experiments"), "--device", "cpu",
            *extra]


def trained_files(experiments):
    """{mesh: (pred_f.pth tensor, decoder weights)}."""
    return load_trained({name: experiments / name for name in TRAINED})


def test_meshes_come_from_files_folders_and_patterns_with_their_labels(tmp_path):
    write_meshes(tmp_path / "m")
    (tmp_path / "m" / "notes.txt").write_text("not a mesh")
    os.makedirs(tmp_path / "m" / "more")
    save_shape(two_boxes(subdivisions=1), tmp_path / "m" / "more", "cube", ".ply")
    folder = [os.path.basename(p) for p in expand_mesh_paths([str(tmp_path / "m")])]
    assert folder == ["boxes.obj", "broken.off", "sphere.obj", "spheres.off"]  # by name, not into sub-folders
    pattern = expand_mesh_paths([str(tmp_path / "m" / "**" / "*.obj"), str(tmp_path / "m" / "**" / "*.ply")])
    assert [os.path.basename(p) for p in pattern] == ["boxes.obj", "sphere.obj", "cube.ply"]
    twice = expand_mesh_paths([str(tmp_path / "m" / "boxes.obj"), str(tmp_path / "m")])
    assert len(twice) == 4  # a file given twice is trained once
    for value, message in ((tmp_path / "nowhere.obj", "no such file"), (tmp_path / "m" / "more" / "*.obj", "no mesh"),
                           (tmp_path / "m" / "empty", "the folder holds no mesh")):
        if value.name == "empty":
            os.makedirs(value)
        with pytest.raises(InputError, match=message):
            expand_mesh_paths([str(value)])

    paths = expand_mesh_paths([str(tmp_path / "m")])
    jobs = mesh_jobs(paths, [str(tmp_path / "m")])
    assert [(job.name, os.path.basename(job.labels)) for job in jobs] == [
        ("boxes", "boxes.seg"), ("broken", "broken.seg"), ("sphere", "sphere.seg"), ("spheres", "spheres.seg")]
    listed = mesh_jobs(paths[:2], ["a.npy", "b.seg"])
    assert [job.labels for job in listed] == ["a.npy", "b.seg"]  # one file per mesh, in the meshes' order
    assert mesh_jobs(paths[:1], None, name="mine")[0].name == "mine"
    with pytest.raises(InputError, match=r"one file per mesh \(4 meshes, 2 files\)"):
        mesh_jobs(paths, ["a.npy", "b.seg"])
    with pytest.raises(InputError, match="--name names one mesh"):
        mesh_jobs(paths, None, name="mine")
    with pytest.raises(InputError, match="would share the folders 'cube'"):
        mesh_jobs([str(tmp_path / "m" / "more" / "cube.ply"), str(tmp_path / "cube.obj")], None)


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The reference: train.py over the folder in this process, with one torch thread, as each task has."""
    root = tmp_path_factory.mktemp("many")
    write_meshes(root / "meshes")
    threads, quick = torch.get_num_threads(), BUDGETS["quick"]
    torch.set_num_threads(1)
    BUDGETS["quick"] = dataclasses.replace(quick, **TINY_FIELDS)
    try:
        with pytest.raises(InputError) as failure:
            train.main(arguments(root / "meshes", root / "sequential"))
    finally:
        torch.set_num_threads(threads)
        BUDGETS["quick"] = quick
    (root / "failure.txt").write_text(str(failure.value))
    return root


def test_many_meshes_train_one_after_another_and_a_bad_one_is_reported(sequential):
    failure = (sequential / "failure.txt").read_text()
    assert failure == "1 of 4 meshes could not be trained (broken); the others are trained"
    summary = json.loads((sequential / "sequential" / "experiments" / "train_summary.json").read_text())
    records = {record["name"]: record for record in summary["meshes"]}
    assert list(records) == ["boxes", "broken", "sphere", "spheres"]
    assert records["broken"]["error"].startswith("could not read mesh") and "\n" not in records["broken"]["error"]
    for name in TRAINED:
        assert "error" not in records[name] and os.path.exists(records[name]["features"])
        assert records[name]["segment_command"].startswith("python decoder.py --mode test --obj_path ")
    assert records["sphere"]["vertices"] == len(cut_sphere(subdivisions=2)[0])


def test_two_workers_with_the_driver_killed_and_the_command_rerun_give_the_sequential_files(sequential):
    """The driver is killed (SIGKILL) once a mesh has its features; its workers may still be busy for a moment (the
    meshes' folder locks keep the rerun out until they are gone). Running the same command again trains what is left,
    and every file equals the sequential run's."""
    out = sequential / "two_workers"
    script = sequential / "train_tiny.py"
    script.write_text(SCRIPT)
    command = [sys.executable, str(script), *arguments(sequential / "meshes", out, "--workers", "2",
                                                       "--cpus_per_worker", "1")]
    environment = {**os.environ, "PYTHONPATH": ROOT}
    driver = subprocess.Popen(command, cwd=str(sequential), env=environment, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)  # Ray's processes join its group
    try:
        deadline = time.time() + 300
        features = []
        while time.time() < deadline and not features and driver.poll() is None:
            features = [name for name in TRAINED if (out / "experiments" / name / "encoder" / "pred_f.pth").exists()]
            time.sleep(0.1)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        assert features and len(features) < len(TRAINED), "the driver was not killed mid-run"
        assert not (out / "experiments" / "train_summary.json").exists()
        rerun = subprocess.run(command, cwd=str(sequential), env=environment, capture_output=True, text=True,
                               timeout=600)
    finally:
        try:  # what Ray may leave of the killed run (its idle agents)
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert rerun.returncode == 2, rerun.stderr[-2000:]
    assert rerun.stderr.strip().splitlines()[-1] == (
        "error: 1 of 4 meshes could not be trained (broken); the others are trained")
    assert_same_training(trained_files(out / "experiments"), trained_files(sequential / "sequential" / "experiments"))
    summary = json.loads((out / "experiments" / "train_summary.json").read_text())
    assert [("error" in record) for record in summary["meshes"]] == [False, True, False, False]
    log = (out / "experiments" / "logs" / "sphere.log").read_text()
    assert "1 thread(s)" in log and "decoder training" in log  # the task's own output, in its log
