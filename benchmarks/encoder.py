"""Encoder costs: seconds per training step (restricted to the touched vertices vs all vertices) and seconds per
teacher image encoding (tiny SAM, and ViT-B / ViT-H built with random weights: what a CPU run of real SAM costs).

    .venv/bin/python benchmarks/encoder.py [--device auto|cpu|cuda] [--steps 10] [--skip_vit_h]

Meshes: an icosphere of 10,242 vertices and a UV sphere of ~50k vertices (synthetic, so the figures need no data).
A step = evaluate the feature field, render the features at 64×64 in one view, MSE against an embedding, backward,
Adam update — as in encoder.py's stage 2.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import trimesh  # noqa: E402
from segment_anything import sam_model_registry  # noqa: E402

from models.feature_field import MeshFeatureField  # noqa: E402
from models.sam_teacher import SamTeacher, build_tiny_sam  # noqa: E402
from models.teacher import TeacherView  # noqa: E402
from utils.encoder.training import feature_loss, prepare_views  # noqa: E402
from utils.geometry.camera import sample_front_views  # noqa: E402
from utils.geometry.mesh import mesh_from_arrays  # noqa: E402
from utils.geometry.raster import interpolate, rasterize  # noqa: E402
from utils.runtime import resolve_device  # noqa: E402


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_seconds(mesh, device: torch.device, steps: int, restricted: bool) -> float:
    cameras = sample_front_views(steps + 2, 4.0, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = MeshFeatureField().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    embedding = torch.randn(1, 256, 64, 64, device=device)
    views = prepare_views(mesh, cameras)
    fragments = [rasterize(mesh, cameras[i], 64) for i in range(len(cameras))]
    times = []
    for i in range(len(cameras)):
        synchronize(device)
        start = time.perf_counter()
        if restricted:
            loss = feature_loss(model, mesh.vertices, views[i], embedding)
        else:
            image = interpolate(fragments[i], mesh.faces, model(mesh.vertices))[0]
            covered = fragments[i].coverage[0]
            loss = torch.mean((image[covered] - embedding[0].permute(1, 2, 0)[covered]) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])  # the first two warm up


def encode_seconds(teacher: SamTeacher, device: torch.device, runs: int) -> float:
    image = torch.full((224, 224, 3), 170, dtype=torch.uint8)
    image[60:160, 80:150] = 120
    view = TeacherView(image, torch.full((224, 224), -1))
    teacher.encode(view)  # warm-up
    times = []
    for _ in range(runs):
        synchronize(device)
        start = time.perf_counter()
        teacher.encode(view)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per case (median)")
    parser.add_argument("--skip_vit_h", action="store_true", help="leave out ViT-H (slow to build and run on a CPU)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"torch {torch.__version__}, device {device}"
          f"{' (' + torch.cuda.get_device_name() + ')' if device.type == 'cuda' else ''}, "
          f"{torch.get_num_threads()} CPU threads")

    print("\n| mesh | vertices | touched vertices per view (mean) | s/step restricted | s/step all vertices | "
          "speed-up | est. 3 epochs × 1000 views |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    meshes = {"icosphere": trimesh.creation.icosphere(subdivisions=5),
              "UV sphere": trimesh.creation.uv_sphere(count=[112, 224])}
    for name, shape in meshes.items():
        mesh = mesh_from_arrays(shape.vertices, shape.faces).to(device)
        cameras = sample_front_views(20, 4.0, torch.Generator().manual_seed(1))
        touched = np.mean([len(view.vertices) for view in prepare_views(mesh, cameras)])
        fast = step_seconds(mesh, device, args.steps, restricted=True)
        slow = step_seconds(mesh, device, args.steps, restricted=False)
        print(f"| {name} | {mesh.num_vertices:,} | {touched:,.0f} | {fast:.3f} | {slow:.3f} | {slow / fast:.1f}× | "
              f"{3000 * fast / 60:.1f} min |", flush=True)

    print("\n| teacher image encoder | build s | s/view (224² render → 1×256×64×64) |")
    print("|---|---:|---:|")
    builders = [("tiny SAM", lambda: build_tiny_sam(0)), ("SAM ViT-B, random weights", sam_model_registry["vit_b"])]
    if not args.skip_vit_h:
        builders.append(("SAM ViT-H, random weights", sam_model_registry["vit_h"]))
    for name, build in builders:
        start = time.perf_counter()
        sam = build()
        built = time.perf_counter() - start
        teacher = SamTeacher(sam.eval(), name, device)
        seconds = encode_seconds(teacher, device, runs=3 if "tiny" in name else 1)
        print(f"| {name} | {built:.1f} | {seconds:.2f} |", flush=True)
        del teacher, sam


if __name__ == "__main__":
    main()
