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

Tiny SAM's image encoder is nearly free (≈ 0.05 s here) while every prompt goes through SAM's full mask decoder
(≈ 0.06 s), so with tiny SAM the pool can save at most the encodings' share of the per-click wall time. The last table
projects both modes at the default settings (100 views per click, pool of 1000) to real SAM sizes: image-encoding and
prompt times measured here on randomly initialised ViT-B / ViT-H SAMs (the same modules and cost as the released
checkpoints), the number of encodings and prompts counted by a label-teacher run at the default settings, and the rest
of each mode's cost (rendering, visibility) taken from the tiny-SAM runs above.
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
from segment_anything import sam_model_registry  # noqa: E402

from models.label_teacher import LabelTeacher  # noqa: E402
from models.sam_teacher import SamTeacher, build_tiny_sam  # noqa: E402
from models.teacher import TeacherView  # noqa: E402
from utils.decoder.generation import GenerationSettings, generate_decoder_data
from utils.decoder.samples import (
    KIND_SINGLE,  # noqa: E402
    load_decoder_samples,  # noqa: E402
)
from utils.geometry.mesh import mesh_from_arrays  # noqa: E402
from utils.geometry.shapes import cut_sphere  # noqa: E402
from utils.runtime import resolve_device  # noqa: E402


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
            "encodings": counters.image_encodings, "prompt_calls": counters.prompt_calls,
            "prompts": counters.prompts, "seconds": seconds,
            "peak_gib": peak / 2**30}


def default_counts() -> dict:
    """Samples, image encodings and prompts of the pool at the default settings on the ~10k-vertex mesh, counted with
    the (fast) label teacher: single-click counts do not depend on the teacher."""
    vertices, faces, labels = cut_sphere(subdivisions=5)
    mesh = mesh_from_arrays(vertices, faces)
    with tempfile.TemporaryDirectory() as folder:
        counters = generate_decoder_data(mesh, LabelTeacher(torch.from_numpy(labels)), folder, GenerationSettings(),
                                         [KIND_SINGLE], progress=False)
    return {"samples": counters.samples[KIND_SINGLE], "encodings": counters.image_encodings,
            "prompts": counters.prompts}


def teacher_unit_costs(model_type: str, res: int) -> tuple:
    """(seconds per image encoding, seconds per prompt in batches of 4) of a randomly initialised SAM."""
    sam = build_tiny_sam() if model_type == "tiny" else sam_model_registry[model_type](checkpoint=None).eval()
    teacher = SamTeacher(sam, model_type)
    generator = torch.Generator().manual_seed(0)
    view = TeacherView(torch.randint(0, 256, (res, res, 3), dtype=torch.uint8, generator=generator),
                       torch.zeros(res, res, dtype=torch.int64))
    encoded = teacher.encode(view)  # warm-up
    repeats = 1 if model_type == "vit_h" else 3
    start = time.perf_counter()
    for _ in range(repeats):
        encoded = teacher.encode(view)
    encode_seconds = (time.perf_counter() - start) / repeats
    points = torch.rand(4, 1, 2, generator=generator) * (res - 1)
    labels = torch.ones(4, 1, dtype=torch.int64)
    teacher.predict(encoded, points, labels)
    start = time.perf_counter()
    for _ in range(10):
        teacher.predict(encoded, points, labels)
    return encode_seconds, (time.perf_counter() - start) / 40


def print_projection(per_click: dict, pool: dict) -> None:
    """Both modes at the default settings for tiny, ViT-B and ViT-H SAM (see the module docstring)."""
    counts = default_counts()
    tiny_encode, tiny_prompt = teacher_unit_costs("tiny", GenerationSettings().res)
    # what each mode spends besides the teacher, from the measured tiny-SAM runs
    per_sample_rest = max(0.0, per_click["seconds"] / per_click["samples"] - tiny_encode - tiny_prompt)
    per_view_rest = max(0.0, (pool["seconds"] - pool["prompts"] * tiny_prompt) / pool["encodings"] - tiny_encode)
    samples, encodings, prompts = counts["samples"], counts["encodings"], counts["prompts"]
    print(f"\nDefault settings (100 views per click, pool of 1000) on the same mesh: {samples:,} samples; the pool "
          f"makes {encodings:,} image encodings and {prompts:,} prompts, per click {samples:,} of each. Besides the "
          f"teacher: {per_sample_rest:.3f} s per sample per click, {per_view_rest:.3f} s per pool view (tiny runs).")
    print("\n| SAM (random weights) | image encoding s | prompt ms | per click h | pool h | pool faster |")
    print("|---|---:|---:|---:|---:|---:|")
    for model_type in ("tiny", "vit_b", "vit_h"):
        encode, prompt = (tiny_encode, tiny_prompt) if model_type == "tiny" else teacher_unit_costs(
            model_type, GenerationSettings().res)
        click_hours = samples * (per_sample_rest + encode + prompt) / 3600
        pool_hours = (encodings * (per_view_rest + encode) + prompts * prompt) / 3600
        print(f"| {model_type} | {encode:.2f} | {prompt * 1000:.0f} | {click_hours:.1f} | {pool_hours:.1f} | "
              f"{click_hours / pool_hours:.1f}× |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--n_views", type=int, default=10, help="views per first click for the comparison")
    parser.add_argument("--skip_50k", action="store_true", help="leave out the ~50k-vertex memory run")
    parser.add_argument("--default_views", action="store_true",
                        help="also run the pool at the default 100 views per click (about an hour with tiny SAM)")
    parser.add_argument("--skip_projection", action="store_true",
                        help="leave out the projection to ViT-B / ViT-H costs (about 3 minutes, 3 GiB)")
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
    results = {}
    for thousands, n_views, pool in cases:
        command = [sys.executable, os.path.abspath(__file__), "--case", str(thousands), str(n_views), str(pool),
                   "--device", args.device]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        r = json.loads(output.strip().splitlines()[-1])
        source = "per click (original)" if pool == 0 else f"pool of {pool}"
        print(f"| {r['vertices']:,} | {n_views} | {source} | {r['samples']:,} | {r['encodings']:,} | "
              f"{r['prompt_calls']:,} | {r['seconds']:.0f} | {r['peak_gib']:.2f} |", flush=True)
        results[(thousands, n_views, pool)] = r
    if not args.skip_projection:
        print_projection(results[(10, args.n_views, 0)], results[(10, args.n_views, 1000)])


if __name__ == "__main__":
    main()
