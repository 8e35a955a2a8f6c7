"""Many meshes on one machine: train.py over 4 meshes in one process with 2 torch threads against 2 Ray workers of
1 thread each, and what Ray itself costs (starting the local cluster, a worker's start, handing a mesh to a worker
and its result back).

    .venv/bin/python benchmarks/scale_out.py                              # 4 synthetic 10k-vertex meshes
    .venv/bin/python benchmarks/scale_out.py --data ../shared/data/psb    # the first 4 meshes of a collection

Both runs are the user's command (train.py with the label teacher and the quick budget, as subprocesses, so the
2-worker figure includes starting Ray). A third run trains the first mesh alone with 1 thread: how much a mesh gains
from the other threads bounds what the workers can give (the ceiling, printed). Run it on an otherwise idle machine:
another job on the cores changes every figure. About 7 minutes on a 2-core CPU. Targets: 2 workers ≥ 1.3× the
meshes per hour of one process; Ray's overhead ≤ 5 s per mesh and ≤ 30 s to start the local cluster.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def synthetic_meshes(folder: str, count: int):
    """``count`` icospheres of 10,242 vertices, each cut into two labelled parts at another height."""
    from utils.geometry.shapes import cut_sphere, save_shape

    os.makedirs(folder, exist_ok=True)
    shapes = [save_shape(cut_sphere(subdivisions=5, height=-0.5 + k / max(1, count - 1)), folder, f"sphere_{k}")
              for k in range(count)]
    return [mesh for mesh, _ in shapes], [labels for _, labels in shapes]


def collection_meshes(data: str, count: int):
    """The first ``count`` meshes of a PSB/COSEG folder and their first annotation."""
    from utils.evaluation.datasets import find_collection

    entries = find_collection(data).select(None)[:count]
    return [entry.mesh_path for entry in entries], [entry.annotation(0) for entry in entries]


def train_command(meshes, labels, out, budget, *extra):
    return [sys.executable, os.path.join(ROOT, "train.py"), "--obj_path", *meshes, "--labels", *labels,
            "--teacher", "label", "--budget", budget, "--data_root", os.path.join(out, "data"),
            "--experiments_root", os.path.join(out, "experiments"), "--device", "cpu", *extra]


def timed_run(command, threads: int) -> float:
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": ROOT}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    return seconds


def in_task_seconds(out: str):
    """Each mesh's seconds inside its task (train_summary.json), by name."""
    with open(os.path.join(out, "experiments", "train_summary.json"), encoding="utf-8") as handle:
        return {record["name"]: record["seconds"] for record in json.load(handle)["meshes"]}


def stage_seconds(out: str, name: str) -> float:
    """A mesh's seconds in its four stages (its timings.json): what its thread count changes."""
    with open(os.path.join(out, "experiments", name, "timings.json"), encoding="utf-8") as handle:
        return sum(json.load(handle).values())


def ray_overhead(meshes, labels, out, workers: int, repeats: int):
    """Seconds of Ray's own work, with the arguments a mesh task carries: starting the local cluster, the first
    round of tasks (each worker's process start: Python, torch, the project's modules), one task's round trip on a
    warm worker (scheduling, the arguments there and the result back) and shutting down."""
    from utils.pipeline.budgets import BUDGETS
    from utils.pipeline.cluster import ClusterSettings, _run_logged, connect
    from utils.pipeline.training_run import TrainRunSettings, mesh_jobs

    settings = TrainRunSettings(BUDGETS["quick"], os.path.join(out, "data"), os.path.join(out, "experiments"),
                                teacher="label")
    job = mesh_jobs(meshes, labels)[0]
    log = os.path.join(out, "overhead.log")
    start = time.perf_counter()
    ray = connect(ClusterSettings(workers=workers, cpus_per_worker=1))
    started = time.perf_counter() - start
    remote = ray.remote(num_cpus=1)(_run_logged)
    # len((settings, job)): a task that does nothing, but is handed what a mesh task is handed
    start = time.perf_counter()
    ray.get([remote.remote(len, 1, log, ((settings, job),)) for _ in range(workers)])
    first_round = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(repeats):
        ray.get(remote.remote(len, 1, log, ((settings, job),)))
    round_trip = (time.perf_counter() - start) / repeats
    start = time.perf_counter()
    ray.shutdown()
    return {"start": started, "worker_start": first_round, "round_trip": round_trip,
            "shutdown": time.perf_counter() - start}


def segments_agree(meshes, labels, out, budget: str):
    """How the two runs' results compare: the features' largest difference, and for one click at the middle of each
    labelled part (the part's vertex nearest its vertices' mean: a crude click, on a thin or curved part it may sit
    near a border) the IoU of the two runs' segments (probability > 0.5, per vertex), mean and least, and each run's
    mean IoU with the part."""
    import numpy as np
    import torch

    from models.build_decoder import load_predictor
    from models.build_feature_field import load_features
    from utils.geometry.mesh_files import load_face_labels, load_mesh
    from utils.pipeline.budgets import BUDGETS

    largest, between, truth = 0.0, [], {"one_process": [], "workers": []}
    for mesh_path, labels_path in zip(meshes, labels):
        name = os.path.splitext(os.path.basename(mesh_path))[0]
        mesh = load_mesh(mesh_path)
        face_labels = load_face_labels(labels_path, mesh.num_faces)
        faces, vertices = mesh.faces.numpy(), mesh.vertices.numpy()
        segments, features = {}, {}
        for run in truth:
            folder = os.path.join(out, run, "experiments", name)
            features[run] = load_features(os.path.join(folder, "encoder", "pred_f.pth"), mesh)
            predictor = load_predictor(os.path.join(folder, "decoder", "decoder_checkpoint.pth"), features[run],
                                       BUDGETS[budget].decoder_settings)
            segments[run] = []
            for label in np.unique(face_labels):
                part = np.zeros(mesh.num_vertices, dtype=bool)
                part[faces[face_labels == label].ravel()] = True
                inside = np.flatnonzero(part)
                middle = inside[np.argmin(((vertices[inside] - vertices[inside].mean(0)) ** 2).sum(1))]
                segment = predictor.predict(torch.tensor([int(middle)]), torch.tensor([True])).numpy() > 0.5
                segments[run].append(segment)
                truth[run].append((segment & part).sum() / max(1, (segment | part).sum()))
        largest = max(largest, float((features["workers"].double() - features["one_process"].double()).abs().max()))
        between += [(a & b).sum() / max(1, (a | b).sum()) for a, b in zip(segments["workers"],
                                                                          segments["one_process"])]
    return {"features": largest, "between": float(np.mean(between)), "between_min": float(min(between)),
            "one": float(np.mean(truth["one_process"])),
            "many": float(np.mean(truth["workers"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="a PSB/COSEG folder (default: synthetic meshes)")
    parser.add_argument("--meshes", type=int, default=4, help="how many meshes")
    parser.add_argument("--budget", default="quick", help="train.py --budget")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers of 1 thread (the machine's cores)")
    parser.add_argument("--out", default=None, help="work folder (default: a temporary one, deleted)")
    parser.add_argument("--no_ceiling", action="store_true", help="skip the run of one mesh alone with 1 thread")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scale_out_") as temporary:
        out = args.out or temporary
        if args.data:
            meshes, labels = collection_meshes(args.data, args.meshes)
        else:
            meshes, labels = synthetic_meshes(os.path.join(out, "meshes"), args.meshes)
        print(f"{len(meshes)} meshes, budget {args.budget}, {os.cpu_count()} cores", flush=True)
        overhead = ray_overhead(meshes, labels, out, args.workers, repeats=20)
        one = timed_run(train_command(meshes, labels, os.path.join(out, "one_process"), args.budget), args.workers)
        many = timed_run(train_command(meshes, labels, os.path.join(out, "workers"), args.budget, "--workers",
                                       str(args.workers), "--cpus_per_worker", "1"), 1)
        one_tasks = in_task_seconds(os.path.join(out, "one_process"))
        many_tasks = in_task_seconds(os.path.join(out, "workers"))
        first = os.path.splitext(os.path.basename(meshes[0]))[0]
        if not args.no_ceiling:
            timed_run(train_command(meshes[:1], labels[:1], os.path.join(out, "alone"), args.budget), 1)
            alone = stage_seconds(os.path.join(out, "alone"), first)
            together = stage_seconds(os.path.join(out, "one_process"), first)
        # the work a worker did beyond its meshes, shared among its meshes: everything but the meshes' own seconds
        busy = sum(many_tasks.values()) / args.workers
        agreement = segments_agree(meshes, labels, out, args.budget)
    count = len(meshes)
    per_mesh = overhead["round_trip"] + overhead["worker_start"] / max(1, count / args.workers)
    print("\n| run | wall s | meshes per hour | mesh s (in its task, mean) |\n|---|---|---|---|")
    print(f"| 1 process × {args.workers} threads | {one:.1f} | {3600 * count / one:.0f} | "
          f"{sum(one_tasks.values()) / count:.1f} |")
    print(f"| {args.workers} Ray workers × 1 thread | {many:.1f} | {3600 * count / many:.0f} | "
          f"{sum(many_tasks.values()) / count:.1f} |")
    print(f"\nspeed-up: {one / many:.2f}× the meshes per hour (target ≥ 1.3×)")
    if not args.no_ceiling:
        # W one-thread workers that did not slow each other down and cost nothing: each mesh T_1 instead of T_W,
        # W at a time
        ceiling = args.workers * together / alone
        print(f"ceiling on this machine: {args.workers} × T_{args.workers} / T_1 = {args.workers} × "
              f"{together:.1f} s / {alone:.1f} s = {ceiling:.2f}× ({first}'s four stages with {args.workers} "
              f"threads in the one process, alone with 1 thread): the speed-up if the workers did not slow each "
              f"other down and Ray cost nothing; this run reached {one / many / ceiling:.2f} of it")
    print(f"Ray overhead: local cluster start {overhead['start']:.1f} s (target ≤ 30 s), shutdown "
          f"{overhead['shutdown']:.1f} s; first round of {args.workers} tasks (worker processes start) "
          f"{overhead['worker_start']:.1f} s; a task's round trip on a warm worker "
          f"{overhead['round_trip'] * 1000:.0f} ms")
    print(f"Ray overhead per mesh: {per_mesh:.2f} s (round trip + the worker's start shared by its "
          f"{count / args.workers:.0f} meshes; target ≤ 5 s); the {args.workers}-worker run's wall beyond its "
          f"workers' mesh seconds: {many - busy:.1f} s in all, {(many - busy) / count:.1f} s per mesh")
    print(f"{args.workers} workers × 1 thread vs 1 process × {args.workers} threads (another thread count: other "
          f"roundings, which training amplifies): pred_f.pth max |Δ| {agreement['features']:.2e}; one click per part: "
          f"segments' IoU with each other {agreement['between']:.3f} (mean; least {agreement['between_min']:.3f}), "
          f"with the parts {agreement['one']:.3f} "
          f"(1 process) and {agreement['many']:.3f} (workers), mean")


if __name__ == "__main__":
    main()
