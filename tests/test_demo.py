"""The Quick-start main job on the bundled hammer, run in a temporary copy of the project, segments what it should;
download_demo_data.sh falls back to the bundled demo offline."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IGNORED = shutil.ignore_patterns(".venv", ".git", "data", "experiments", "__pycache__", ".pytest_cache", "bundled")


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    """The project as a clean clone has it: the files git tracks (or, outside git, all but working folders)."""
    folder = tmp_path_factory.mktemp("project") / "iseg"
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True)
    if listed.returncode != 0:
        shutil.copytree(ROOT, folder, ignore=IGNORED)
        return folder
    for name in listed.stdout.splitlines():
        if os.path.isfile(os.path.join(ROOT, name)):
            os.makedirs(folder / os.path.dirname(name), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, name), folder / name)
    return folder


def run(command, folder):
    env = {**os.environ, "PYTHON": sys.executable}
    for key in ("ISEG_DEMO_MESH_URL", "ISEG_DEMO_FEATURES_URL", "ISEG_DEMO_DECODER_URL"):
        env.pop(key, None)
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)


def vertex_parts(folder):
    """Per-vertex part: the label most of a vertex's faces carry."""
    faces = np.array([[int(x.split("/")[0]) - 1 for x in line.split()[1:]]
                      for line in open(folder / "meshes" / "hammer.obj") if line.startswith("f ")])
    labels = np.load(folder / "meshes" / "hammer_labels.npy")
    counts = np.zeros((faces.max() + 1, labels.max() + 1), dtype=int)
    np.add.at(counts, (faces.reshape(-1), np.repeat(labels, 3)), 1)
    return counts.argmax(axis=1)


def iou(probability, part_mask):
    segment = probability > 0.5
    return (segment & part_mask).sum() / (segment | part_mask).sum()


def test_the_quick_start_job_segments_the_head_and_the_handle(copy):
    result = run(["bash", "run_demo.sh"], copy)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "installed the bundled demo" in result.stdout + result.stderr
    outputs = copy / "demo" / "hammer" / "decoder"
    cases = [line.split() for line in (copy / "demo" / "hammer" / "bundled_cases.txt").read_text().splitlines()]
    parts = vertex_parts(copy)
    head_click = int(cases[0][0])
    assert parts[head_click] == 1
    probability = np.load(outputs / f"vertex_probability_v{head_click}.npy")
    assert iou(probability, parts == 1) >= 0.8
    for case in cases:
        suffix = "_".join(f"v{c}" for c in case)
        for name in (f"vertex_probability_{suffix}.npy", f"colored_mesh_with_clicks_{suffix}.ply",
                     f"render_views_{suffix}.png"):
            assert (outputs / name).exists(), name
    assert (outputs / "quickstart.png").exists()
    heights = np.array([float(line.split()[2]) for line in open(copy / "meshes" / "hammer.obj")
                        if line.startswith("v ")])
    handle = np.nonzero(parts == 0)[0]
    handle_click = int(handle[np.argmin(np.abs(heights[handle] - np.median(heights[handle])))])  # mid-handle
    result = run([sys.executable, "decoder.py", "--mode", "test", "--save_dir", "./demo/hammer/decoder/",
                  "--encoder_f_path", "./demo/hammer/encoder/pred_f.pth", "--obj_path", "./meshes/hammer.obj",
                  "--select_vertices", str(handle_click)], copy)
    assert result.returncode == 0, result.stderr[-2000:]
    assert iou(np.load(outputs / f"vertex_probability_v{handle_click}.npy"), parts == 0) >= 0.8


def test_download_falls_back_to_the_bundled_demo_and_leaves_no_partial_file(copy):
    env_urls = {"ISEG_DEMO_MESH_URL": "file:///nonexistent/hammer.obj",
                "ISEG_DEMO_FEATURES_URL": "file:///nonexistent/pred_f.pth",
                "ISEG_DEMO_DECODER_URL": "file:///nonexistent/decoder_checkpoint.pth"}
    before = (copy / "demo" / "hammer" / "encoder" / "pred_f.pth").read_bytes()
    result = subprocess.run(["bash", "download_demo_data.sh"], cwd=copy, capture_output=True, text=True,
                            env={**os.environ, "PYTHON": sys.executable, **env_urls}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "could not fetch" in result.stderr and "installed the bundled demo" in result.stdout
    assert (copy / "demo" / "hammer" / "encoder" / "pred_f.pth").read_bytes() == before
    leftovers = [p for p in copy.rglob("*.tmp")]
    assert not leftovers


def test_the_original_demo_command_works_from_any_working_directory(copy, tmp_path):
    """The original's relative defaults (./meshes/hammer.obj, SAM_repo/…, the demo) are taken from the repository
    root: interactive.py's and decoder.py's defaults find the bundled demo from another folder."""
    save_dir = tmp_path / "out"
    save_dir.mkdir()
    shutil.copy2(copy / "demo" / "hammer" / "decoder" / "decoder_checkpoint.pth", save_dir)
    done = run([sys.executable, str(copy / "decoder.py"), "--mode", "test", "--save_dir", str(save_dir),
                "--encoder_f_path", str(copy / "demo" / "hammer" / "encoder" / "pred_f.pth"), "--select_vertices",
                "5", "--device", "cpu"], tmp_path)  # --obj_path left at its default, ./meshes/hammer.obj
    assert done.returncode == 0, done.stderr
    assert (save_dir / "vertex_probability_v5.npy").exists()
    checked = run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); from utils.app import demo; "
                   "print(demo.check_assets())", str(copy)], tmp_path)
    assert checked.returncode == 0 and "decoder checkpoint loads" in checked.stdout, checked.stderr


def test_the_demo_picture_says_each_case_in_words():
    import torch

    from utils.app.demo import describe_case

    vertex_part = torch.tensor([0, 1, 2, 3, 1])  # handle, head, striking face, claw, head
    say = lambda clicks: describe_case(torch.tensor([abs(c) for c in clicks]),  # noqa: E731
                                       torch.tensor([c > 0 for c in clicks]), vertex_part)
    assert say([1]) == "1 positive click on the head"
    assert say([1, 2]) == "2 positive clicks (head, striking face)"
    assert say([4, -3]) == "1 positive click on the head, 1 negative on the claw"
