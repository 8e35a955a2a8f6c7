"""Rasterizer speed and memory: ours beside trimesh's Embree ray casting on the same pixel rays.

    .venv/bin/python benchmarks/raster.py [--device auto|cpu|cuda] [--runs 7] [--quick]

For icospheres of ~20k, ~80k and ~320k faces at 64², 224² and 512² it prints the median milliseconds per view of
``rasterize`` (one view per call, and per view when 8 views go in one call), of trimesh's ``intersects_first`` on the
rays through the same pixel centres (CPU only; Embree via the ``embreex`` wheel) — for a new mesh, which includes
building Embree's BVH, and with the BVH already built —, the share of covered pixels on
which both find the same triangle, and the peak memory one cold single-view call adds (CPU: growth of the process's
peak RSS, measured in a fresh subprocess per case; CUDA: ``torch.cuda.max_memory_allocated``).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import trimesh  # noqa: E402

from utils.geometry.camera import Cameras  # noqa: E402
from utils.geometry.mesh import mesh_from_arrays  # noqa: E402
from utils.geometry.raster import rasterize  # noqa: E402

SUBDIVISIONS = (5, 6, 7)  # 20,480 / 81,920 / 327,680 faces
RESOLUTIONS = (64, 224, 512)
BATCH = 8


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def median_ms(function, runs: int, synchronize) -> float:
    times = []
    for _ in range(runs):
        synchronize()
        start = time.perf_counter()
        function()
        synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def run_case(subdivisions: int, res: int, device: str, runs: int) -> dict:
    """Measure one (mesh, resolution) case; meant to run in a fresh process so that peak memory is its own."""
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    mesh = mesh_from_arrays(sphere.vertices, sphere.faces, normalize=False).to(device)
    cameras = Cameras.from_degrees([20.0, -35.0, 60.0, 5.0, -70.0, 40.0, 10.0, -15.0],
                                   [30.0, 100.0, 200.0, 300.0, 15.0, 250.0, 170.0, 80.0])
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fragments = rasterize(mesh, cameras[0], res)
        synchronize()
        peak_mib = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        base = current_rss_bytes()
        fragments = rasterize(mesh, cameras[0], res)
        peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base) / 2**20

    rasterize(mesh, cameras, res)  # warm-up of the batched path
    single = median_ms(lambda: rasterize(mesh, cameras[0], res), runs, synchronize)
    batched = median_ms(lambda: rasterize(mesh, cameras, res), max(3, runs // 2), synchronize) / len(cameras)

    result = {"faces": len(sphere.faces), "res": res, "device": device, "ours_ms": single,
              "ours_batched_ms": batched, "peak_mib": max(peak_mib, 0.0)}
    origins, directions = cameras[0].pixel_rays(res)
    origins = np.repeat(origins.double().numpy(), res * res, axis=0)
    directions = directions[0].double().numpy()
    hits = sphere.ray.intersects_first(origins, directions)
    # a user casting rays at a mesh once pays for building Embree's BVH; repeated casts on one mesh reuse it
    fresh = lambda: trimesh.Trimesh(sphere.vertices, sphere.faces, process=False).ray.intersects_first(  # noqa: E731
        origins, directions)
    result["trimesh_ms"] = median_ms(fresh, max(3, runs // 2), lambda: None)
    result["trimesh_cached_ms"] = median_ms(lambda: sphere.ray.intersects_first(origins, directions),
                                            max(3, runs // 2), lambda: None)
    ours = fragments.pix_to_face[0].reshape(-1).cpu().numpy()
    covered = (ours >= 0) | (hits >= 0)
    result["same_face"] = float((ours[covered] == hits[covered]).mean())
    result["ray_backend"] = type(sphere.ray).__module__.split(".")[-1]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per case (median reported; at least 5)")
    parser.add_argument("--quick", action="store_true", help="only the ~20k-face mesh")
    parser.add_argument("--case", nargs=2, type=int, metavar=("SUBDIVISIONS", "RES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device
    runs = max(5, args.runs)
    if args.case:
        print(json.dumps(run_case(args.case[0], args.case[1], device, runs)))
        return

    print(f"torch {torch.__version__}, device {device}"
          f"{' (' + torch.cuda.get_device_name() + ')' if device == 'cuda' else ''}, "
          f"{torch.get_num_threads()} CPU threads, trimesh {trimesh.__version__}, median of {runs} runs")
    header = ("| faces | res | ours ms/view | ours ms/view (8 per call) | trimesh ms/view (BVH build + cast) | "
              "speed-up | trimesh ms/view (cached BVH) | same face | peak MiB |")
    print(header)
    print("|---:" * (header.count("|") - 1) + "|")
    for subdivisions in SUBDIVISIONS[:1] if args.quick else SUBDIVISIONS:
        for res in RESOLUTIONS:
            command = [sys.executable, os.path.abspath(__file__), "--case", str(subdivisions), str(res),
                       "--device", device, "--runs", str(runs)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            r = json.loads(output.strip().splitlines()[-1])
            print(f"| {r['faces']:,} | {r['res']} | {r['ours_ms']:.1f} | {r['ours_batched_ms']:.1f} | "
                  f"{r['trimesh_ms']:.1f} | {r['trimesh_ms'] / r['ours_ms']:.1f}× | {r['trimesh_cached_ms']:.1f} | "
                  f"{100 * r['same_face']:.2f} % | {r['peak_mib']:.0f} |", flush=True)
    print(f"trimesh ray backend: {r['ray_backend']}; peak = memory one cold single-view call adds")


if __name__ == "__main__":
    main()
