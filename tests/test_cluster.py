"""Many meshes as Ray tasks (utils/pipeline/cluster.py): the same records, features and decoders as a run in this
process, also when a worker is killed mid-mesh; a mesh that fails does not stop the others; no Ray without
--workers."""
import dataclasses
import json
import os
import re
import signal
import sys
import threading
import time

import numpy as np
import pytest
import torch
from training_checks import assert_same_training
from training_checks import trained_files as load_trained

from utils.errors import InputError
from utils.evaluation.run import EvaluationRun, EvaluationSettings
from utils.geometry.shapes import cut_sphere, two_boxes, two_spheres
from utils.pipeline.budgets import BUDGETS
from utils.pipeline.cluster import ClusterSettings

# the quick profile's stages on a few views and samples: seconds per mesh
TINY = dataclasses.replace(BUDGETS["quick"], name="tiny", encoder_views=12, encoder_epochs=2, click_share=0.05,
                           views_per_click=2, view_pool=12, decoder_samples=64, min_clicks=8, small_mesh=0)


def write_psb(root):
    """A PSB-layout folder of three small labelled meshes and one whose file is damaged."""
    os.makedirs(root / "off")
    for mesh_id, (vertices, faces, labels) in {"1": two_boxes(subdivisions=1), "2": cut_sphere(subdivisions=2),
                                               "3": two_spheres(subdivisions=1)}.items():
        with open(root / "off" / f"{mesh_id}.off", "w") as handle:
            handle.write(f"OFF\n{len(vertices)} {len(faces)} 0\n")
            handle.writelines(f"{x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in vertices)
            handle.writelines(f"3 {a} {b} {c}\n" for a, b, c in faces)
        os.makedirs(root / "seg" / mesh_id)
        np.savetxt(root / "seg" / mesh_id / f"{mesh_id}_0.seg", labels, fmt="%d")
    (root / "off" / "4.off").write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n")  # truncated: a vertex and the face missing
    os.makedirs(root / "seg" / "4")
    (root / "seg" / "4" / "4_0.seg").write_text("0\n")


def settings(data, out):
    return EvaluationSettings(data=str(data), out=str(out), budget=TINY, device="cpu",
                              methods=("iseg", "iseg_click_aware", "random_walk"))


def without_timings(path):
    """A results.json's records without what the clock says (stage times, each click's seconds)."""
    records = json.loads(path.read_text())["meshes"]
    for record in records:
        record.pop("timings", None)
        for target in record.get("targets", []):
            for clicks in target["clicks"].values():
                for click in clicks:
                    click.pop("seconds")
    return records


def trained_files(out):
    """{mesh id: (pred_f.pth tensor, decoder weights)} of a run's work folder."""
    return load_trained({mesh_id: next((out / "work" / "psb" / mesh_id).iterdir()) for mesh_id in ("1", "2", "3")})


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The reference: the meshes one after another in this process, with one torch thread, as each task has."""
    root = tmp_path_factory.mktemp("cluster")
    write_psb(root / "psb")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        EvaluationRun(settings(root / "psb", root / "sequential")).run()
    finally:
        torch.set_num_threads(threads)
    return root


def test_two_workers_give_the_sequential_results_and_a_bad_mesh_does_not_stop_the_others(sequential):
    out = sequential / "two_workers"
    EvaluationRun(settings(sequential / "psb", out)).run(ClusterSettings(workers=2, cpus_per_worker=1))
    records = without_timings(out / "results.json")
    assert records == without_timings(sequential / "sequential" / "results.json")
    assert [record["mesh_id"] for record in records] == ["1", "2", "3", "4"]
    assert "error" in records[3] and "targets" in records[0]  # the damaged mesh: its one-line error, the rest done
    assert_same_training(trained_files(out), trained_files(sequential / "sequential"))
    log = (out / "logs" / "2.log").read_text()
    assert "1 thread(s)" in log and "encoder training" in log  # the task's own output, in its log


def test_a_killed_worker_is_retried_and_the_mesh_resumes_to_the_same_results(sequential):
    out = sequential / "killed"
    killed = []

    def kill_the_first_worker_once_it_trains():
        log, record = out / "logs" / "3.log", out / "meshes"
        deadline = time.time() + 600
        while time.time() < deadline and not killed:
            text = log.read_text() if log.exists() else ""
            unfinished = not any(name.startswith("psb_3_") for name in os.listdir(record)) if record.exists() else True
            if "encoder training" in text and unfinished:  # its encoder done or under way, the decoder still to come
                pid = int(re.findall(r"pid (\d+)", text)[-1])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.2)

    killer = threading.Thread(target=kill_the_first_worker_once_it_trains, daemon=True)
    killer.start()
    EvaluationRun(settings(sequential / "psb", out)).run(ClusterSettings(workers=2, cpus_per_worker=1))
    killer.join()
    assert killed, "the worker was never seen training"
    log = (out / "logs" / "3.log").read_text()
    assert len(re.findall(r"--- .* pid \d+", log)) >= 2  # the mesh ran again, in another worker
    assert without_timings(out / "results.json") == without_timings(sequential / "sequential" / "results.json")
    assert_same_training(trained_files(out), trained_files(sequential / "sequential"))


def test_without_workers_no_ray_is_imported_and_without_ray_workers_are_one_line(tmp_path, capsys, monkeypatch):
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import sys, evaluate, train, utils.evaluation.run, utils.pipeline.cluster, utils.pipeline.training_run; "
            "evaluate.parse_args(['--data', 'd', '--out', 'o']); train.parse_args(['--obj_path', 'a.obj', 'b.obj']); "
            "print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr[-500:]

    import evaluate
    from utils.errors import run_cli

    write_psb(tmp_path / "psb")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(SystemExit) as stop:
        run_cli(lambda: evaluate.main(["--data", str(tmp_path / "psb"), "--out", str(tmp_path / "out"),
                                       "--workers", "2", "--methods", "random_walk"]))
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("error: --workers and --ray_address need Ray") and "pip install" in error[-1]
    with pytest.raises(InputError, match="--workers must be >= 1"):
        evaluate.parse_args(["--data", "d", "--out", "o", "--workers", "0"])
