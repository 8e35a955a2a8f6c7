"""Data generation costs: the shared view pool (default) against the original's view per click (--view_pool 0).

    .venv/bin/python benchmarks/data_generation.py [--device auto|cpu|cuda] [--n_views 10] [--skip_50k]
                                                   [--default_views]

With tiny SAM (its masks are meaningless, its costs are SAM's code path with a small image encoder and SAM's full
mask decoder) on a ~10k-vertex mesh (an icosphere of 10,242 vertices cut in two parts), single-click samples, 3 % of
the vertices as first clicks: image encodings, prompt calls, wall time and peak memory of both view sources at the
same number of samples (``--n_views`` views per first click; the per-click mode is slow, so fewer than the default
100; ``--default_views`` adds the pool at 100). Then the pool's peak memory on a ~50k-vertex mesh (a UV sphere, 2
views per click: memory does not grow with the views per click). Each run is a fresh subprocess, so peak memory
(growth of the peak RSS over the process after loading) is its own.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import trimesh  # noqa: E402

from models.sam_teacher import SamTeacher  # noqa: E402
from utils.decoder_data import GenerationSettings, generate_decoder_data, load_decoder_samples  # noqa: E402
from utils.mesh import mesh_from_arrays  # noqa: E402
from utils.runtime import resolve_device  # noqa: E402
from utils.samples import KIND_SINGLE  # noqa: E402
from utils.shapes import cut_sphere  # noqa: E402


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def benchmark_mesh(thousands: int):
    """(vertices, faces) of the ~10k-vertex cut icosphere or a ~50k-vertex UV sphere."""
    if thousands == 10:
        vertices, faces, _ = cut_sphere(subdivisions=5)
        return vertices, faces
    sphere = trimesh.creation.uv_sphere(count=[112, 224])
    return sphere.vertices, sphere.faces


def run_case(thousands: int, n_views: int, view_pool: int, device_name: str) -> dict:
    device = resolve_device(device_name)
    mesh = mesh_from_arrays(*benchmark_mesh(thousands)).to(device)
    teacher = SamTeacher.build("tiny", device=device)
    settings = GenerationSettings(n_views=n_views, view_pool=view_pool)
    base = current_rss_bytes()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        counters = generate_decoder_data(mesh, teacher, folder, settings, [KIND_SINGLE], progress=False)
        seconds = time.perf_counter() - start
        samples = len(load_decoder_samples(folder))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {"vertices": mesh.num_vertices, "n_views": n_views, "view_pool": view_pool, "samples": samples,
            "encodings": counters.image_encodings, "prompt_calls": counters.prompt_calls, "seconds": seconds,
            "peak_gib": peak / 2**30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--n_views", type=int, default=10, help="views per first click for the comparison")
    parser.add_argument("--skip_50k", action="store_true", help="leave out the ~50k-vertex memory run")
    parser.add_argument("--default_views", action="store_true",
                        help="also run the pool at the default 100 views per click (about an hour with tiny SAM)")
    parser.add_argument("--case", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(*args.case, args.device)))
        return
    print(f"torch {torch.__version__}, device {resolve_device(args.device)}, {torch.get_num_threads()} CPU threads; "
          f"tiny SAM, single-click samples, 3 % of the vertices as first clicks")
    print("\n| vertices | views per click | view source | samples | image encodings | prompt calls | wall s | "
          "peak GiB |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    cases = [(10, args.n_views, 0), (10, args.n_views, 1000)]
    if args.default_views:
        cases.append((10, 100, 1000))
    if not args.skip_50k:
        cases.append((50, 2, 1000))
    for thousands, n_views, pool in cases:
        command = [sys.executable, os.path.abspath(__file__), "--case", str(thousands), str(n_views), str(pool),
                   "--device", args.device]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        r = json.loads(output.strip().splitlines()[-1])
        source = "per click (original)" if pool == 0 else f"pool of {pool}"
        print(f"| {r['vertices']:,} | {n_views} | {source} | {r['samples']:,} | {r['encodings']:,} | "
              f"{r['prompt_calls']:,} | {r['seconds']:.0f} | {r['peak_gib']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
