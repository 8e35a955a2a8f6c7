"""What each supported 2D teacher costs: build seconds, image-encoding seconds per 224² render, milliseconds per point
prompt, peak memory — on random weights of the released configurations (a forward pass costs the same whatever the
weights) — and ``train.py --budget quick`` end to end on a 10k-vertex mesh, measured for the fastest model and
projected for the others from the encodings and prompts that run counted.

    .venv/bin/python benchmarks/teachers.py [--models NAME ...] [--runs 3] [--device cpu|cuda] [--skip_train] [--json]

Every model is measured in a process of its own (its peak resident memory is that process's). The render is the
hammer seen by the teacher (lit grey at 224²); a prompt call holds 4 single-click prompts, as data generation batches
them on a CPU (PROMPT_BATCH). ``--json``: one JSON object per line per model (``model``, ``encode_s``, ``prompt_ms``,
``peak_gb``, ``build_s``, ``parameters``), then one for the end-to-end run.
The end-to-end run uses random weights too: its masks are meaningless, but it asks the teacher what a real run asks
(the counts of second-click tries depend a little on the masks' scores).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

MODELS = ["tiny", "edgetam", "sam2.1_hiera_tiny", "sam2.1_hiera_small", "sam2.1_hiera_base_plus",
          "sam2.1_hiera_large", "sam_hq_vit_tiny", "sam_hq_vit_b", "sam_hq_vit_l", "sam_hq_vit_h", "vit_b", "vit_l",
          "vit_h"]
PROMPTS_PER_CALL = 4


def build(name: str, device):
    """A teacher of the released configuration with random weights (seeded)."""
    import torch

    from models.sam2_teacher import SAM2_RELEASES, Sam2Teacher, default_processor, model_class, released_config
    from models.sam_hq_teacher import SAM_HQ_FILES, SamHqTeacher, build_sam_hq
    from models.sam_teacher import SamTeacher, build_tiny_sam

    torch.manual_seed(0)
    if name in SAM2_RELEASES:
        model = model_class(SAM2_RELEASES[name].family)(released_config(name))
        return Sam2Teacher(model, default_processor(), name, device), model
    if name in SAM_HQ_FILES:
        sam = build_sam_hq(name)
        return SamHqTeacher(sam, name, device), sam
    if name == "tiny":
        sam = build_tiny_sam(0)
    else:
        from segment_anything import sam_model_registry

        sam = sam_model_registry[name](checkpoint=None)
    return SamTeacher(sam, name, device), sam


def hammer_view():
    from utils.encoder.views import ViewSettings, render_teacher_view
    from utils.geometry.camera import Cameras
    from utils.geometry.mesh_files import load_mesh

    mesh = load_mesh(os.path.join(ROOT, "meshes", "hammer.obj"))
    view, _ = render_teacher_view(mesh, Cameras.from_degrees(20, 60), ViewSettings())
    return view


def measure(name: str, runs: int, device_name: str) -> dict:
    import torch

    device = torch.device(device_name)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    start = time.perf_counter()
    teacher, model = build(name, device)
    build_s = time.perf_counter() - start
    view = hammer_view()
    encoded = teacher.encode(view)  # warm-up
    encodes = []
    for _ in range(runs):
        sync()
        start = time.perf_counter()
        encoded = teacher.encode(view)
        sync()
        encodes.append(time.perf_counter() - start)
    points = torch.tensor([[[60.0 + 20 * k, 110.0]] for k in range(PROMPTS_PER_CALL)])
    labels = torch.ones(PROMPTS_PER_CALL, 1, dtype=torch.int64)
    teacher.predict(encoded, points, labels)  # warm-up
    prompts = []
    for _ in range(max(3, runs)):
        sync()
        start = time.perf_counter()
        teacher.predict(encoded, points, labels)
        sync()
        prompts.append((time.perf_counter() - start) / PROMPTS_PER_CALL)
    peak = (torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    return {"model": name, "encode_s": round(statistics.median(encodes), 3),
            "prompt_ms": round(1000 * statistics.median(prompts), 1), "peak_gb": round(peak, 2),
            "build_s": round(build_s, 2), "parameters": sum(p.numel() for p in model.parameters()),
            "device": device_name}


def save_release(name: str, work: str) -> str:
    """Random weights of the released configuration, saved as the release is (a Hugging Face folder for the SAM 2
    family, a state-dict file otherwise); returns the path to give --sam_checkpoint."""
    import torch

    from models.sam2_teacher import SAM2_RELEASES, default_processor

    if name in SAM2_RELEASES:
        folder = os.path.join(work, "release")
        build(name, torch.device("cpu"))[1].save_pretrained(folder)
        default_processor().save_pretrained(folder)
        return folder
    path = os.path.join(work, "release.pth")
    torch.save(build(name, torch.device("cpu"))[1].state_dict(), path)
    return path


def end_to_end(name: str, mesh_path: str, work: str, device: str) -> dict:
    """``train.py --budget quick --teacher sam --SAM name`` on ``mesh_path``: wall seconds, stage seconds, peak RSS,
    and the teacher calls it made."""
    folder = save_release(name, work)
    command = [sys.executable, os.path.join(ROOT, "train.py"), "--obj_path", mesh_path, "--budget", "quick",
               "--teacher", "sam", "--SAM", name, "--sam_checkpoint", folder, "--device", device,
               "--data_root", os.path.join(work, "data"), "--experiments_root", os.path.join(work, "experiments")]
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"train.py failed:\n{done.stderr[-3000:]}")
    stem = os.path.splitext(os.path.basename(mesh_path))[0]
    with open(os.path.join(work, "experiments", stem, "timings.json")) as handle:
        stages = json.load(handle)
    with open(os.path.join(work, "data", stem, "decoder_data", "generation_log.json")) as handle:
        log = json.load(handle)["runs"]
    views = len(os.listdir(os.path.join(work, "data", stem, "encoder_data", "sam_f", "224")))
    return {"end_to_end": name, "wall_s": round(wall, 1), "stages_s": stages,
            "peak_gb": round(int(done.stderr.strip().splitlines()[-1]) / 2**20, 2),
            "encodings": views + 1 + sum(run["image_encodings"] for run in log),  # + the encoder's test view
            "prompts": sum(run["prompts"] for run in log), "prompt_calls": sum(run["prompt_calls"] for run in log)}


def icosphere_mesh(work: str) -> str:
    """A 10,242-vertex icosphere as an OBJ (synthetic: the figure needs no benchmark data)."""
    import trimesh

    path = os.path.join(work, "icosphere.obj")
    trimesh.creation.icosphere(subdivisions=5).export(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--runs", type=int, default=3, help="timed encodings per model (after a warm-up)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--mesh", default=None, help="mesh of the end-to-end run (default: a 10,242-vertex icosphere)")
    parser.add_argument("--skip_train", action="store_true", help="no end-to-end train.py run")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)  # one model, in this process
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.case, args.runs, args.device)))
        return
    rows = []
    for name in args.models:
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--case", name, "--runs", str(args.runs),
                               "--device", args.device], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{name}: failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else '?'}",
                  file=sys.stderr)
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
    if not args.json:
        print("| model | parameters | build s | encode s / 224² view | prompt ms | peak GB |")
        print("|---|---|---|---|---|---|")
        for row in rows:
            print(f"| {row['model']} | {row['parameters'] / 1e6:.1f} M | {row['build_s']:.1f} | {row['encode_s']:.2f} "
                  f"| {row['prompt_ms']:.0f} | {row['peak_gb']:.2f} |")
    real = [row for row in rows if row["model"] != "tiny"]
    if args.skip_train or not real:
        return
    fastest = min(real, key=lambda row: row["encode_s"])
    with tempfile.TemporaryDirectory() as work:
        measured = end_to_end(fastest["model"], args.mesh or icosphere_mesh(work), work, args.device)
    teacher_s = measured["encodings"] * fastest["encode_s"] + measured["prompts"] * fastest["prompt_ms"] / 1000
    rest = measured["wall_s"] - teacher_s  # rendering, training, files: the same whatever the teacher
    projected = {row["model"]: round(rest + measured["encodings"] * row["encode_s"]
                                     + measured["prompts"] * row["prompt_ms"] / 1000, 1) for row in real}
    measured["projected_wall_s"] = projected
    if args.json:
        print(json.dumps(measured))
        return
    print(f"\ntrain.py --budget quick with {fastest['model']}: {measured['wall_s']:.0f} s wall, peak "
          f"{measured['peak_gb']:.2f} GB; stages {measured['stages_s']}; {measured['encodings']} image encodings, "
          f"{measured['prompts']} prompts in {measured['prompt_calls']} calls")
    print("projected wall (the same counts, each model's unit costs):")
    for name, seconds in projected.items():
        print(f"  {name}: {seconds / 60:.1f} min")


if __name__ == "__main__":
    main()
