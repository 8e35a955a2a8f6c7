"""evaluate.py's run over a collection: per mesh, train (the stage runner, utils/pipeline/runner.py), simulate clicks
per target with each method (utils/evaluation/protocol.py), write the mesh's record; then results.json, summary.md and
the plot (utils/evaluation/report.py). A mesh whose record exists is not evaluated again.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import zlib
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from models.click_aware import ClickAwarePredictor
from utils.errors import InputError
from utils.evaluation.baselines import RandomWalkSegmenter
from utils.evaluation.click_simulation import MeshGeometry, RandomInnerVertex, inner_vertex
from utils.evaluation.datasets import LabelledMesh, find_collection
from utils.evaluation.protocol import IsegSegmenter, click_records, human_ceiling, segment_targets, simulate_clicks
from utils.evaluation.report import DECODER_METHODS
from utils.geometry.mesh_files import load_face_labels, load_mesh
from utils.io import load_json, replaced_together, save_json, save_text
from utils.pipeline.budgets import Budget, budget_named
from utils.pipeline.cluster import ClusterSettings, file_sizes, run_tasks
from utils.pipeline.runner import MeshWorkspace, train_mesh
from utils.runtime import resolve_device


@dataclass(frozen=True)
class EvaluationSettings:
    """What one evaluation runs (evaluate.py's flags): the collection at ``data``, results to ``out``; the teacher
    (``label`` or ``sam`` with ``sam_type`` / ``sam_checkpoint``), the budget (``profile``, a name of
    utils/pipeline/budgets.py, with the ``decoder_samples`` / ``decoder_pixels`` overrides and the other-side click
    options), the meshes (None: all), whose labels are the targets (``annotator``), the methods, the label teacher's
    ``same_part_negative`` rule (split / ignore), the seed, whether stage data are kept, and the device name."""

    data: str
    out: str
    teacher: str = "label"
    profile: str = "quick"
    meshes: Optional[Sequence[str]] = None
    annotator: int = 0
    methods: Sequence[str] = ("iseg", "random_walk")
    negative_outside: bool = False
    positive_inside: bool = False
    decoder_samples: Optional[int] = None
    decoder_pixels: Optional[int] = None
    same_part_negative: str = "split"
    seed: int = 0
    segmenter_rules: bool = False  # label teacher: the data rules a SAM-family teacher gets (the budget's bounds)
    imperfect_masks: bool = False  # the label teacher's imperfect mode (models/label_teacher.py)
    clicks: str = "center"  # the click simulator: center (the error region's inner vertex farthest from its border)
    # or random (uniform over the region's area); see utils/evaluation/click_simulation.py
    sam_type: str = "vit_h"
    sam_checkpoint: Optional[str] = None
    keep_stage_data: bool = False
    device: str = "auto"
    budget: Optional[Budget] = None  # a budget of one's own instead of the profile's (its name names the folders)


def without_nan_ceilings(record: Dict) -> Dict:
    """A mesh record as written before missing human ceilings were ``null`` (they were NaN, which strict JSON
    parsers refuse): the NaN ones become None."""
    for target in record.get("targets", []):
        value = target.get("human_ceiling")
        if isinstance(value, float) and value != value:
            target["human_ceiling"] = None
    return record


class EvaluationRun:
    """One evaluation (``evaluate.py``) over a collection."""

    def __init__(self, args: EvaluationSettings) -> None:
        self.args = args
        self.collection = find_collection(args.data)
        self.entries = self.collection.select(args.meshes)
        profile = budget_named(args.profile) if args.budget is None else args.budget
        samples = profile.decoder_samples if args.decoder_samples is None else args.decoder_samples
        pixels = profile.decoder_pixels if args.decoder_pixels is None else args.decoder_pixels
        self.profile = replace(profile, negative_outside=bool(args.negative_outside),
                               positive_inside=bool(args.positive_inside), decoder_samples=samples,
                               decoder_pixels=pixels)
        # whether the stages treat the teacher's prompts as free: the label teacher's are, unless it is to make the
        # data a SAM-family teacher would (--segmenter_rules 1)
        self.free_prompts = args.teacher == "label" and not args.segmenter_rules
        variant = (("_no" if args.negative_outside else "") + ("_pi" if args.positive_inside else "")
                   + ("_ig" if args.same_part_negative == "ignore" else "")
                   + ("_sr" if args.teacher == "label" and args.segmenter_rules else "")
                   + ("_im" if args.teacher == "label" and args.imperfect_masks else ""))
        # the resolved budget's digest (overrides included; what the teacher uses of it): a changed budget makes new
        # folders, never reuses stale ones
        budget = self.profile.record(self.free_prompts)
        digest = hashlib.sha1(json.dumps(budget, sort_keys=True).encode()).hexdigest()[:6]
        self.run_tag = f"{self.profile.name}{variant}_{digest}_a{args.annotator}_s{args.seed}"
        self.device = resolve_device(args.device)
        self.teacher_tag = "label" if args.teacher == "label" else f"sam_{args.sam_type}"
        self.settings: Dict[str, object] = {
            "data": os.path.abspath(args.data), "layout": self.collection.layout, "teacher": args.teacher,
            "SAM": args.sam_type if args.teacher == "sam" else None, "profile": self.profile.name,
            "negative_outside": bool(args.negative_outside), "positive_inside": bool(args.positive_inside),
            "same_part_negative": args.same_part_negative, "segmenter_rules": not self.free_prompts,
            "clicks": args.clicks, "imperfect_masks": args.teacher == "label" and bool(args.imperfect_masks),
            "decoder_samples": samples,
            "decoder_pixels": pixels, "budget": budget,
            "annotator": args.annotator, "seed": args.seed, "methods": list(args.methods), "device": str(self.device)}
        self._sam = None
        self.stage_progress = False  # the stages' own progress bars (on in a Ray task, whose output is its log)
        if args.teacher == "sam":
            from models.build_teacher import build_sam_teacher

            self._sam = build_sam_teacher(args.sam_type, args.sam_checkpoint, self.device, args.seed)

    def record_path(self, entry: LabelledMesh) -> str:
        # the simulator changes the records, not the training: one work folder serves both
        tag = f"{self.teacher_tag}_{self.run_tag}" + ("_rc" if self.args.clicks == "random" else "")
        return os.path.join(self.args.out, "meshes", f"{self.collection.name}_{entry.mesh_id}_{tag}.json")

    def run(self, cluster: Optional[ClusterSettings] = None) -> List[str]:
        """Evaluate every selected mesh (in this process, or as Ray tasks when ``cluster`` asks for workers or a
        cluster: utils/pipeline/cluster.py), then write the reports; returns their paths."""
        if cluster is not None and cluster.distributed:
            return self.write_reports(self._run_on_ray(cluster))
        records = []
        bar = tqdm(self.entries, desc="meshes", unit="mesh")
        for entry in bar:
            bar.set_postfix(mesh=entry.mesh_id)
            records.append(self.mesh_record(entry))
        return self.write_reports(records)

    def mesh_record(self, entry: LabelledMesh) -> Dict:
        """The mesh's record: the saved one when it is complete, else evaluated (only the methods it lacks) and
        saved. A mesh that cannot be evaluated (a bad file) gets a record holding its one-line error."""
        path = self.record_path(entry)
        earlier = None
        if os.path.exists(path):
            earlier = without_nan_ceilings(load_json(path, "mesh evaluation record",
                                                     "delete it to evaluate the mesh again"))
            if not self.missing_methods(earlier):  # complete (or a mesh that failed)
                return earlier
        try:
            record = self.evaluate_mesh(entry, earlier)
        except InputError as err:
            record = self.error_record(entry, str(err))
        save_json(record, path)  # final, errors too (delete the record to evaluate the mesh again)
        return record

    def _run_on_ray(self, cluster: ClusterSettings) -> List[Dict]:
        settings = replace(self.args, data=os.path.abspath(self.args.data), out=os.path.abspath(self.args.out))
        entries = {entry.mesh_id: entry for entry in self.entries}
        tasks = {mesh_id: (settings, mesh_id) for mesh_id in entries}
        results = {}
        sizes = file_sizes({mesh_id: entry.mesh_path for mesh_id, entry in entries.items()})
        for mesh_id, record, error in run_tasks(evaluate_one_mesh, tasks, cluster, os.path.join(settings.out, "logs"),
                                                sizes, is_failure=lambda record: "error" in record):
            # a task that failed is not saved: a rerun tries the mesh again
            results[mesh_id] = record if error is None else self.error_record(entries[mesh_id],
                                                                              f"the task failed: {error}")
        return [results[mesh_id] for mesh_id in entries]  # the collection's order, as a sequential run

    def error_record(self, entry: LabelledMesh, error: str) -> Dict:
        """The record of a mesh that could not be evaluated: its one-line error (printed too)."""
        tqdm.write(f"mesh {entry.mesh_id}: not evaluated: {error}")
        return {"collection": self.collection.name, "mesh_id": entry.mesh_id, "category": entry.category,
                "error": error}

    def write_reports(self, records: List[Dict]) -> List[str]:
        from utils.evaluation.report import save_iou_plot, summary_markdown

        out = self.args.out
        results = os.path.join(out, "results.json")
        summary = os.path.join(out, "summary.md")
        plot = os.path.join(out, "iou_vs_clicks.png")
        with replaced_together() as stage:  # the three reports always describe the same records
            save_json({"settings": self.settings, "meshes": records}, stage(results))
            save_text(summary_markdown(records, self.settings), stage(summary))
            save_iou_plot(records, stage(plot),
                          f"{self.collection.name}: {self.teacher_tag} teacher, {self.profile.name}")
        return [results, summary, plot]

    def click_placer(self, entry: LabelledMesh, label: int, method: str):
        """Where the simulated clicks on a target go: the centre of each region, or (``--clicks random``) a draw
        seeded by (seed, mesh, target, method), so that a rerun or another method's order does not change it."""
        if self.args.clicks == "center":
            return inner_vertex
        key = zlib.crc32(f"{self.collection.name}/{entry.mesh_id}/{label}/{method}".encode())
        return RandomInnerVertex(np.random.default_rng([self.args.seed, key]))

    def missing_methods(self, record: Dict) -> List[str]:
        """The methods asked for that a mesh record has no clicks of (a run with more methods adds them)."""
        targets = record.get("targets")
        if not targets:  # a mesh that could not be evaluated: nothing to add
            return []
        have = set.intersection(*(set(target["clicks"]) for target in targets))
        return [method for method in self.args.methods if method not in have]

    def evaluate_mesh(self, entry: LabelledMesh, earlier: Optional[Dict] = None) -> Dict:
        """Train on one mesh (or reuse its stages) and simulate clicks on each of its targets with each method —
        only those ``earlier`` (the mesh's record from a run with fewer methods) lacks, if given."""
        args = self.args
        methods = list(args.methods) if earlier is None else self.missing_methods(earlier)
        mesh = load_mesh(entry.mesh_path)
        labels_path = entry.annotation(args.annotator)
        labels = load_face_labels(labels_path, mesh.num_faces)
        if self._sam is not None:
            teacher = self._sam
        else:
            from models.build_teacher import build_teacher

            teacher = build_teacher("label", mesh, self.device, labels=labels_path, seed=args.seed,
                                    split_parts=args.same_part_negative == "split",
                                    imperfect_masks=args.imperfect_masks)
        workspace = MeshWorkspace(os.path.join(args.out, "work", self.collection.name, entry.mesh_id,
                                               f"{self.teacher_tag}_{self.run_tag}"))
        timings: Dict[str, float] = {}
        predictor = train_mesh(mesh, teacher, workspace, self.profile, args.seed, self.device,
                               args.keep_stage_data, progress=self.stage_progress, free_prompts=self.free_prompts
                               ) if set(methods) & set(DECODER_METHODS) else None
        timings.update(workspace.load_timings())

        vertices, faces = mesh.vertices.cpu().numpy().astype(np.float64), mesh.faces.cpu().numpy()
        geometry = MeshGeometry.build(vertices, faces)
        segmenters = {}
        if "iseg" in methods:
            segmenters["iseg"] = IsegSegmenter(predictor, faces)
        if "iseg_click_aware" in methods:  # the same decoder, its answers turned into edits (models/click_aware.py)
            segmenters["iseg_click_aware"] = ClickAwarePredictor(predictor, geometry).segment
        if "random_walk" in methods:
            segmenters["random_walk"] = RandomWalkSegmenter(geometry)
        others = [load_face_labels(path, mesh.num_faces) for k, path in enumerate(entry.annotations)
                  if k != args.annotator]
        total_area = float(geometry.areas.sum())
        targets = []
        spent = {name: 0.0 for name in segmenters}
        for label in segment_targets(labels, geometry.areas):
            target = labels == label
            clicks = {}
            for name, segmenter in segmenters.items():
                start = time.perf_counter()
                clicks[name] = click_records(simulate_clicks(segmenter, target, geometry,
                                                             place=self.click_placer(entry, label, name)))
                spent[name] += time.perf_counter() - start
            targets.append({"label": int(label), "area_share": round(float(geometry.areas[target].sum()) / total_area,
                                                                     5),
                            "human_ceiling": human_ceiling(target, others, geometry.areas), "clicks": clicks})
        timings.update({f"simulation_{name}": round(seconds, 2) for name, seconds in spent.items()})
        if earlier is not None:  # the earlier record's targets, with the new methods' clicks added
            new_clicks = {t["label"]: t["clicks"] for t in targets}
            for target in earlier["targets"]:
                target["clicks"].update(new_clicks.get(target["label"], {}))
            return {**earlier, "timings": {**earlier.get("timings", {}), **timings}}
        return {"collection": self.collection.name, "mesh_id": entry.mesh_id, "category": entry.category,
                "num_vertices": mesh.num_vertices, "num_faces": mesh.num_faces, "annotator": args.annotator,
                "teacher": self.teacher_tag, "profile": self.profile.name, "timings": timings, "targets": targets}


def evaluate_one_mesh(settings: EvaluationSettings, mesh_id: str) -> Dict:
    """A Ray task (utils/pipeline/cluster.py): the record of one mesh of ``settings``' collection, as
    :meth:`EvaluationRun.mesh_record` makes and saves it."""
    run = EvaluationRun(replace(settings, meshes=[mesh_id]))
    run.stage_progress = True
    return run.mesh_record(run.entries[0])
