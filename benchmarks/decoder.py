"""Decoder costs: milliseconds per click set (attention + head) beside the bare chain of matrix products of the
same shapes, the largest probability difference of the fast path, and training seconds per batch with peak memory,
on every covered pixel (the original's loss) and with ``--loss_pixels 256``.

    .venv/bin/python benchmarks/decoder.py [--device auto|cpu|cuda] [--runs 7] [--skip_training]

Meshes: an icosphere of 10,242 vertices and a UV sphere of ~50k vertices, random features and weights (costs do not
depend on the values). "plain" runs the modules as written (attention on all vertices, head on [F, Y]); "fast" is
DecoderPredictor.predict (W_Q·F and the feature half of the first layer cached per mesh, vertices in chunks). Each
bare chain is the matrix products of its path with preallocated operands — no bias, activation, normalisation or
softmax — over all rows at once and, for the fast path, in the same row chunks.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import json  # noqa: E402

import torch  # noqa: E402
import trimesh  # noqa: E402

from models.build_decoder import DecoderSettings  # noqa: E402
from models.decoder_predictor import INFERENCE_CHUNK, DecoderPredictor  # noqa: E402
from utils.decoder.samples import Samples, pack_masks  # noqa: E402
from utils.decoder.training import batch_loss
from utils.geometry.mesh import mesh_from_arrays  # noqa: E402
from utils.runtime import resolve_device  # noqa: E402

MESHES = {"icosphere": lambda: trimesh.creation.icosphere(subdivisions=5),
          "UV sphere": lambda: trimesh.creation.uv_sphere(count=[112, 224])}


def median_ms(function, runs: int, device: torch.device) -> float:
    function()
    times = []
    for _ in range(runs):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def bare_chain(shapes, device, chunk=None):
    """A function multiplying preallocated (N, a) @ (a, b) operands for each (N, a, b) in ``shapes`` — over all N
    rows at once, or in row chunks of ``chunk`` (as the fast path runs)."""
    operands = [(torch.randn(n, a, device=device), torch.randn(a, b, device=device)) for n, a, b in shapes]
    outputs = [torch.empty(n, b, device=device) for n, a, b in shapes]
    n = shapes[0][0]
    step = chunk or n

    def run():
        for start in range(0, n, step):
            for (x, w), out in zip(operands, outputs):
                torch.mm(x[start:start + step], w, out=out[start:start + step])
    return run


def inference_rows(runs: int, device: torch.device):
    torch.manual_seed(0)
    attention, head = DecoderSettings().build()
    for name, make in MESHES.items():
        shape = make()
        n = len(shape.vertices)
        predictor = DecoderPredictor(attention, head, torch.randn(n, 256, device=device))
        for clicks in (1, 3):
            vertices = torch.arange(clicks) * 97
            positive = torch.tensor([True, False, True][:clicks])
            head_shapes = [(n, 512, 256)] + [(n, 256, 256)] * 13 + [(n, 256, 2)]
            plain_shapes = [(n, 256, 256), (n, 256, clicks), (n, clicks, 256), (n, 512, 512)] + head_shapes
            fast_shapes = [(n, 256, clicks), (n, clicks, 256), (n, 256, 512)] + head_shapes
            plain = median_ms(lambda: predictor.predict_plain(vertices, positive), runs, device)
            fast = median_ms(lambda: predictor.predict(vertices, positive), runs, device)
            plain_bare = median_ms(bare_chain(plain_shapes, device), runs, device)
            fast_bare = median_ms(bare_chain(fast_shapes, device), runs, device)
            fast_bare_chunked = median_ms(bare_chain(fast_shapes, device, INFERENCE_CHUNK), runs, device)
            difference = (predictor.predict(vertices, positive) - predictor.predict_plain(vertices, positive)).abs()
            print(f"| {name} | {n:,} | {clicks} | {plain:.1f} | {plain_bare:.1f} | {plain / plain_bare:.2f} | "
                  f"{fast:.1f} | {fast_bare:.1f} | {fast_bare_chunked:.1f} | {fast / fast_bare_chunked:.2f} | "
                  f"{difference.max():.1e} |", flush=True)


def training_case(name: str, device_name: str, loss_pixels: int = 0) -> dict:
    """Seconds per batch of 16 random views (restricted training) and peak memory, in a fresh process."""
    device = resolve_device(device_name)
    shape = MESHES[name]()
    mesh = mesh_from_arrays(shape.vertices, shape.faces).to(device)
    torch.manual_seed(0)
    attention, head = (module.to(device) for module in DecoderSettings().build())
    optimizer = torch.optim.Adam(list(attention.parameters()) + list(head.parameters()), lr=1e-4)
    features = torch.randn(mesh.num_vertices, 256, device=device) * 0.3
    generator, pixels = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    times = []
    with open("/proc/self/statm") as statm:
        base = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    for _ in range(4):
        batch = Samples(vertices=torch.randint(0, mesh.num_vertices, (16, 2), generator=generator),
                        signs=torch.ones(16, 2, dtype=torch.int8), kind=torch.zeros(16, dtype=torch.int8),
                        view=torch.arange(16), elev=torch.rand(16, generator=generator) * 3 - 1.5,
                        azim=torch.rand(16, generator=generator) * 6.28, points=torch.zeros(16, 2, 2),
                        masks=pack_masks(torch.rand(16, 224, 224, generator=generator) > 0.5),
                        score=torch.ones(16), res=224)
        start = time.perf_counter()
        loss = batch_loss(attention, head, features, mesh, batch, 2.0, loss_pixels=loss_pixels, generator=pixels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {"vertices": mesh.num_vertices, "seconds": statistics.median(times[1:]), "peak_gib": peak / 2**30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--skip_training", action="store_true")
    parser.add_argument("--training_case", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.training_case:
        print(json.dumps(training_case(args.training_case[0], args.device, int(args.training_case[1]))))
        return
    device = resolve_device(args.device)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} CPU threads, median of {args.runs}")
    print("\n| mesh | vertices | clicks | plain ms | its bare chain ms | ratio | fast ms | its bare chain ms | "
          f"same, in chunks of {INFERENCE_CHUNK} ms | ratio to chunked | max prob. difference |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with torch.inference_mode():
        inference_rows(args.runs, device)
    if args.skip_training:
        return
    print("\n| mesh | vertices | loss pixels per view | training s/batch (16 views, 224²) | peak GiB |")
    print("|---|---:|---|---:|---:|")
    for name in MESHES:
        for loss_pixels in (0, 256):
            command = [sys.executable, os.path.abspath(__file__), "--training_case", name, str(loss_pixels),
                       "--device", args.device]
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()
                                .splitlines()[-1])
            print(f"| {name} | {result['vertices']:,} | {loss_pixels or 'all'} | {result['seconds']:.2f} | "
                  f"{result['peak_gib']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
