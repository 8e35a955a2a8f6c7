"""The prepared GPU check: the CUDA path's tests and figures in one run, one table (run it through gpu_check.sh).

    bash benchmarks/gpu_check.sh              # on a machine with a CUDA GPU: sized for 8 minutes
    bash benchmarks/gpu_check.sh --dry-run    # the same parts at small sizes on the CPU (CI runs it; ~2 minutes)

Parts, each timed on the GPU (and, where it says, on the CPU in the same run), each with its peak GPU memory:

1. the test suite's CUDA tests (``pytest -m cuda``: rasterizer, decoder, teachers and the stages on CUDA against
   the CPU);
2. the rasterizer: milliseconds per view at 224² and 512² for icospheres of 20k / 80k / 330k faces, GPU and CPU;
3. the decoder: milliseconds per click at 10k / 50k / 200k vertices (random weights and features), fp32, and bf16 /
   fp16 autocast with their largest probability difference from fp32;
4. the quick pipeline (train.py's stages, label teacher) on a 10,242-vertex mesh, stage by stage, and the original
   budget's stages projected from the per-view, per-step and per-sample times measured on the way (the original
   decoder's step measured on its own settings: batch 16, loss on every pixel, its architecture);
5. every supported SAM-family model's image encoding, seconds per 224² view (random weights of the released
   configurations, ViT-H included; benchmarks/teachers.py, a process per model; last, each model started only while
   time is left).

A part that lacks a package or a GPU says so in its row and is skipped; one that fails says why in one line; the
others run. The table is printed and written to benchmarks/results/gpu_check.md (and to $OUT/gpu_check.md when OUT is
set, as on a lent device machine). Exit status 1 if a part failed (not for skips). Parts past ``--minutes`` are
skipped, so that the run ends in time.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from typing import Callable, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


@dataclass
class Row:
    part: str
    case: str
    gpu: str = "—"
    cpu: str = "—"
    peak: str = "—"
    note: str = ""


@dataclass
class Sizes:
    """What each part measures: the GPU check's sizes, or the dry run's small ones."""

    raster_subdivisions: tuple = (5, 6, 7)  # icospheres of 20,480 / 81,920 / 327,680 faces
    raster_resolutions: tuple = (224, 512)
    raster_runs: int = 5
    decoder_vertices: tuple = (10_000, 50_000, 200_000)
    decoder_runs: int = 20
    teachers: Optional[tuple] = None  # None: every supported model
    teacher_runs: int = 3
    pipeline_subdivisions: int = 5  # 10,242 vertices
    pipeline_budget: dict = field(default_factory=dict)  # changes to the quick budget
    original_decoder_samples: int = 64  # samples the original decoder's step is timed on


DRY_RUN = Sizes(raster_subdivisions=(3, 4), raster_resolutions=(64, 128), raster_runs=3,
                decoder_vertices=(2_000, 5_000, 10_000), decoder_runs=5, teachers=("tiny", "edgetam"),
                teacher_runs=1, pipeline_subdivisions=3,
                pipeline_budget=dict(encoder_views=12, encoder_epochs=1, views_per_click=2, view_pool=12,
                                     decoder_samples=32, min_clicks=8, small_mesh=0),
                original_decoder_samples=16)


class Check:
    def __init__(self, device, sizes: Sizes, minutes: float) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.sizes = sizes
        self.deadline = time.monotonic() + 60 * minutes
        self.rows: List[Row] = []
        self.failed = False

    # --- helpers -----------------------------------------------------------------------------------------------
    def sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()

    def peak(self) -> str:
        if self.device.type != "cuda":
            return "—"
        return f"{self.torch.cuda.max_memory_allocated() / 2**30:.2f} GB"

    def median_seconds(self, function: Callable[[], object], runs: int, device=None) -> float:
        sync = (self.torch.cuda.synchronize if (device or self.device).type == "cuda" else (lambda: None))
        function()  # warm-up (kernels, caches)
        times = []
        for _ in range(runs):
            sync()
            start = time.perf_counter()
            function()
            sync()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def part(self, name: str, function: Callable[[], None]) -> None:
        """Run one part; a missing package is a skip, anything else a failure, and neither stops the others."""
        if time.monotonic() > self.deadline:
            self.rows.append(Row(name, "—", note="skipped: out of time (--minutes)"))
            return
        print(f"\n== {name}", flush=True)
        try:
            function()
        except ImportError as err:
            self.rows.append(Row(name, "—", note=f"skipped: needs {getattr(err, 'name', None) or err}"))
        except Exception as err:  # one part's failure is reported, the others still run
            self.failed = True
            traceback.print_exc()
            self.rows.append(Row(name, "—", note=f"failed: {type(err).__name__}: {' '.join(str(err).split())[:200]}"))

    # --- 1. tests ----------------------------------------------------------------------------------------------
    def cuda_tests(self) -> None:
        import pytest  # noqa: F401  (the part needs it)

        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
                               os.path.join(ROOT, "tests")], cwd=ROOT, capture_output=True, text=True)
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "no output"
        print(done.stdout[-3000:], done.stderr[-2000:], flush=True)
        if done.returncode not in (0, 5):  # 5: nothing collected
            self.failed = True
        gpu = summary if self.device.type == "cuda" else "—"
        self.rows.append(Row("CUDA tests", "pytest -m cuda", gpu=gpu, note=(
            f"{time.perf_counter() - start:.0f} s" + ("" if self.device.type == "cuda" else f"; {summary}"))))

    # --- 2. rasterizer -----------------------------------------------------------------------------------------
    def rasterizer(self) -> None:
        import trimesh

        from utils.geometry.camera import Cameras
        from utils.geometry.mesh import mesh_from_arrays
        from utils.geometry.raster import rasterize

        camera = Cameras.from_degrees(20.0, 60.0)
        for subdivisions in self.sizes.raster_subdivisions:
            sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
            mesh = mesh_from_arrays(sphere.vertices, sphere.faces)
            on_cpu = mesh.to(self.torch.device("cpu"))
            on_device = mesh.to(self.device)
            for res in self.sizes.raster_resolutions:
                self.reset_peak()
                cpu = self.median_seconds(lambda: rasterize(on_cpu, camera, res), self.sizes.raster_runs,
                                          self.torch.device("cpu"))
                gpu = "—"
                if self.device.type == "cuda":
                    self.reset_peak()
                    seconds = self.median_seconds(lambda: rasterize(on_device, camera, res), self.sizes.raster_runs)
                    gpu = f"{1000 * seconds:.2f} ms"
                self.rows.append(Row("rasterizer, ms per view", f"{len(sphere.faces):,} faces, {res}²", gpu=gpu,
                                     cpu=f"{1000 * cpu:.1f} ms", peak=self.peak()))

    # --- 3. decoder --------------------------------------------------------------------------------------------
    def decoder(self) -> None:
        torch = self.torch
        from models.decoder_head import DecoderHead
        from models.decoder_predictor import DecoderPredictor
        from models.interactive_attention import InteractiveAttention

        torch.manual_seed(0)
        attention, head = InteractiveAttention().to(self.device), DecoderHead().to(self.device)
        for count in self.sizes.decoder_vertices:
            features = torch.randn(count, 256, device=self.device)
            self.reset_peak()
            predictor = DecoderPredictor(attention, head, features)
            click, positive = torch.tensor([count // 3]), torch.tensor([True])
            reference = predictor.predict(click, positive)
            seconds = self.median_seconds(lambda: predictor.predict(click, positive), self.sizes.decoder_runs)
            notes = []
            for name in ("bfloat16", "float16"):
                try:
                    with torch.autocast(self.device.type, dtype=getattr(torch, name)):
                        low = predictor.predict(click, positive)
                        low_seconds = self.median_seconds(lambda: predictor.predict(click, positive),
                                                          self.sizes.decoder_runs)
                    difference = float((low.float() - reference).abs().max())
                    notes.append(f"{name}: {1000 * low_seconds:.2f} ms, max |Δp| {difference:.1e}")
                except RuntimeError as err:  # a dtype the device's kernels lack
                    notes.append(f"{name}: not supported here ({' '.join(str(err).split())[:60]})")
            figure = f"{1000 * seconds:.2f} ms"
            self.rows.append(Row("decoder, ms per click (fp32)", f"{count:,} vertices",
                                 gpu=figure if self.device.type == "cuda" else "—",
                                 cpu=figure if self.device.type != "cuda" else "—", peak=self.peak(),
                                 note="; ".join(notes)))
            predictor = features = reference = None  # freed before the next size's peak is measured

    # --- 5. teachers -------------------------------------------------------------------------------------------
    def teachers(self) -> None:
        import json

        sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
        from teachers import MODELS

        for name in self.sizes.teachers or MODELS:
            if time.monotonic() > self.deadline:
                self.rows.append(Row("teacher image encoding", name, note="skipped: out of time (--minutes)"))
                continue
            done = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "teachers.py"), "--case", name,
                                   "--runs", str(self.sizes.teacher_runs), "--device", self.device.type],
                                  cwd=ROOT, capture_output=True, text=True)
            if done.returncode != 0:
                last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?"
                missing = "ModuleNotFoundError" in last or "ImportError" in last
                self.failed = self.failed or not missing
                self.rows.append(Row("teacher image encoding", name,
                                     note=("skipped: " if missing else "failed: ") + last[:200]))
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            figure = f"{row['encode_s']:.3f} s"
            self.rows.append(Row("teacher image encoding, s per 224² view", name,
                                 gpu=figure if self.device.type == "cuda" else "—",
                                 cpu=figure if self.device.type != "cuda" else "—",
                                 peak=f"{row['peak_gb']:.2f} GB" if self.device.type == "cuda" else "—",
                                 note=f"{row['parameters'] / 1e6:.1f} M parameters, built in {row['build_s']:.1f} s, "
                                      f"{row['prompt_ms']:.0f} ms a prompt"))

    # --- 4. pipeline -------------------------------------------------------------------------------------------
    def pipeline(self) -> None:
        torch = self.torch
        from models.build_feature_field import load_features
        from models.label_teacher import LabelTeacher
        from utils.decoder.samples import load_decoder_samples
        from utils.decoder.training import TrainingSettings, compose_training_set, train_decoder
        from utils.geometry.mesh import mesh_from_arrays
        from utils.geometry.shapes import cut_sphere
        from utils.io import load_json
        from utils.pipeline.budgets import BUDGETS, SAVE_INTERVAL
        from utils.pipeline.runner import MeshWorkspace, train_mesh

        vertices, faces, labels = cut_sphere(subdivisions=self.sizes.pipeline_subdivisions)
        mesh = mesh_from_arrays(vertices, faces)
        budget = replace(BUDGETS["quick"], **self.sizes.pipeline_budget)
        original = BUDGETS["original"]
        where = "gpu" if self.device.type == "cuda" else "cpu"
        with tempfile.TemporaryDirectory(prefix="gpu_check_") as work:
            workspace = MeshWorkspace(work)
            self.reset_peak()
            start = time.perf_counter()
            train_mesh(mesh, LabelTeacher(torch.from_numpy(labels), "label"), workspace, budget, 0, self.device,
                       keep_stage_data=True, progress=True)
            wall = time.perf_counter() - start
            peak = self.peak()
            stages = load_json(workspace.timings)
            samples = load_decoder_samples(workspace.decoder_data)
            every = compose_training_set(samples, True, True, 1.0, 0)
            data = budget.data_settings(free_prompts=True)
            clicks = math.ceil(budget.click_percentage(mesh.num_vertices) * mesh.num_vertices)
            counts = {"encoder_views": (data.encoder_views, original.encoder_views),
                      "encoder_training": (data.encoder_views * budget.encoder_epochs,
                                           original.encoder_views * original.encoder_epochs),
                      "decoder_data": (clicks * budget.views_per_click,
                                       math.ceil(original.click_percentage(mesh.num_vertices) * mesh.num_vertices)
                                       * original.views_per_click)}
            per_pair = len(every) / max(1, clicks * budget.views_per_click)  # samples per (click, view)
            original_samples = per_pair * counts["decoder_data"][1]
            # the original decoder's own step: its architecture, batch 16, the loss on every covered pixel
            features = load_features(workspace.features, mesh)
            subset = every[: self.sizes.original_decoder_samples]
            os.makedirs(os.path.join(work, "original_decoder"))
            self.reset_peak()
            start = time.perf_counter()
            train_decoder(mesh, features, samples, subset,  # as the stage runner calls it: moved there
                          os.path.join(work, "original_decoder"), "step.pth", original.decoder_settings,
                          TrainingSettings(original.decoder_learning_rate, 1, original.decoder_batch, SAVE_INTERVAL,
                                           0), 2.0, False, self.device, progress=False)
            per_sample = (time.perf_counter() - start) / len(subset)
            original_peak = self.peak()
        units = {"encoder_views": "views", "encoder_training": "view steps", "decoder_data": "(click, view) pairs"}
        projected = {}
        for stage, (quick_count, original_count) in counts.items():
            seconds = stages.get(stage, 0.0)
            projected[stage] = seconds / max(1, quick_count) * original_count
            self.rows.append(Row(f"quick pipeline, {mesh.num_vertices:,} vertices", stage,
                                 **{where: f"{seconds:.1f} s"}, note=(
                                     f"{quick_count:,} {units[stage]}; the original budget's {original_count:,}: "
                                     f"{projected[stage]:.0f} s projected")))
        trained = budget.decoder_sample_count(mesh.num_vertices) or len(every)
        projected["decoder_training"] = per_sample * original_samples * original.decoder_epochs
        self.rows.append(Row(f"quick pipeline, {mesh.num_vertices:,} vertices", "decoder_training",
                             **{where: f"{stages.get('decoder_training', 0.0):.1f} s"}, peak=peak, note=(
                                 f"~{min(trained, len(every)):,} samples × {budget.decoder_epochs} epoch; the "
                                 f"original's {original_samples:,.0f} samples × {original.decoder_epochs} epochs at "
                                 f"{1000 * per_sample:.0f} ms a sample (measured, its own settings; peak "
                                 f"{original_peak}): {projected['decoder_training']:.0f} s projected")))
        self.rows.append(Row(f"quick pipeline, {mesh.num_vertices:,} vertices", "all four stages",
                             **{where: f"{wall:.1f} s"}, peak=peak,
                             note=f"the original budget projected: {sum(projected.values()) / 60:.1f} min"))

    # --- table -------------------------------------------------------------------------------------------------
    def table(self, title: str) -> str:
        lines = [title, "", "| part | case | GPU | CPU | peak GPU memory | note |", "|---|---|---|---|---|---|"]
        lines += [f"| {r.part} | {r.case} | {r.gpu} | {r.cpu} | {r.peak} | {r.note} |" for r in self.rows]
        return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="small sizes on the CPU (CI)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="skip the parts that would start after this many minutes (default 7.5; dry run 5)")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "gpu_check.md"),
                        help="where the table is written")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        raise SystemExit(f"error: {sys.executable} has no torch: run the check with a Python that has it "
                         f"(PYTHON=/path/to/python bash benchmarks/gpu_check.sh)") from None

    cuda = torch.cuda.is_available() and not args.dry_run
    if not cuda and not args.dry_run:
        print("no CUDA GPU here: running the dry run (small sizes on the CPU) instead", flush=True)
    device = torch.device("cuda" if cuda else "cpu")
    check = Check(device, Sizes() if cuda else DRY_RUN, args.minutes or (7.5 if cuda else 5.0))
    started = time.perf_counter()
    for name, part in (("CUDA tests", check.cuda_tests), ("rasterizer", check.rasterizer),
                       ("decoder", check.decoder), ("pipeline", check.pipeline), ("teachers", check.teachers)):
        # the teachers last: a model per process, each checked against the time left
        check.part(name, part)
    where = (f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}" if cuda else
             f"dry run on the CPU ({os.cpu_count()} cores), torch {torch.__version__}: small sizes, no GPU figures")
    table = check.table(f"GPU check ({where}; {time.perf_counter() - started:.0f} s in all)")
    print("\n" + table)
    targets = [args.out] + ([os.path.join(os.environ["OUT"], "gpu_check.md")] if os.environ.get("OUT") else [])
    for path in targets:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(table)
        print(f"wrote {path}")
    sys.exit(1 if check.failed else 0)


if __name__ == "__main__":
    main()
