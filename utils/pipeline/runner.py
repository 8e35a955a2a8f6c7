"""The stage runner: the whole iSeg pipeline on one mesh, in-process — encoder views → encoder training → decoder
data → decoder training — with a :class:`~utils.pipeline.budgets.Budget`, reusing every finished stage and resuming
an unfinished one (each stage resumes by itself: views and samples already on disk are kept, training continues
from its last saved state).

Folders of a mesh (:class:`MeshWorkspace`): under the data root ``encoder_data/`` and ``decoder_data/``; under the
experiment root ``encoder/`` (with ``pred_f.pth``), ``decoder/decoder_checkpoint.pth`` and ``timings.json`` (seconds
of each stage when it ran). train.py keeps its data and experiments apart, as the original's README does; evaluate.py
uses one folder for both. Unless ``keep_stage_data``, the stage-1 embeddings are deleted once ``pred_f.pth`` exists,
and the samples once the decoder is trained: dozens of meshes then fit a normal disk.
"""
from __future__ import annotations

import os
import shlex
import shutil
import time
from typing import Callable, Dict, Optional

import torch
from tqdm import tqdm

from models.build_decoder import load_predictor
from models.build_feature_field import FieldSettings, load_features
from models.decoder_predictor import DecoderPredictor
from models.teacher import Teacher
from utils.decoder.generation import GenerationSettings, generate_decoder_data
from utils.decoder.samples import KIND_NEGATIVE, KIND_POSITIVE, KIND_SINGLE, load_decoder_samples
from utils.decoder.training import TrainingSettings, compose_training_set, decoder_trained, train_decoder
from utils.encoder.training import test_feature_field, train_feature_field
from utils.encoder.views import ViewSettings, generate_views
from utils.geometry.mesh import Mesh
from utils.io import folder_lock, load_json, save_json
from utils.paths import DECODER_CHECKPOINT_FILE, FEATURES_FILE
from utils.pipeline.budgets import EMBEDDING_DTYPE, ENCODER_LEARNING_RATE, SAVE_INTERVAL, Budget

FRONTVIEW_STD = 4.0  # encoder.py's default spread of the Gaussian front views
TEST_VIEW_DEG = (0.0, 240.0)  # encoder.py's default test view (elevation, azimuth)


class MeshWorkspace:
    """Paths of one mesh's stage folders: data under ``data_root``, results under ``experiment_root`` (the same
    folder if only one is given)."""

    def __init__(self, data_root: str, experiment_root: Optional[str] = None) -> None:
        experiment_root = data_root if experiment_root is None else experiment_root
        self.root = experiment_root
        self.encoder_data = os.path.join(data_root, "encoder_data")
        self.decoder_data = os.path.join(data_root, "decoder_data")
        self.encoder = os.path.join(experiment_root, "encoder")
        self.features = os.path.join(self.encoder, FEATURES_FILE)
        self.decoder = os.path.join(experiment_root, "decoder")
        self.checkpoint = os.path.join(self.decoder, DECODER_CHECKPOINT_FILE)
        self.timings = os.path.join(experiment_root, "timings.json")

    def load_timings(self) -> Dict[str, float]:
        if not os.path.exists(self.timings):
            return {}
        return load_json(self.timings, "stage timings", "delete it (it holds only the stages' times)")

    def record(self, stage: str, seconds: float) -> None:
        timings = self.load_timings()
        timings[stage] = round(timings.get(stage, 0.0) + seconds, 2)
        save_json(timings, self.timings)


def _say_nothing(message: str) -> None:
    """The default of ``announce``: stages run silently."""


def train_mesh(mesh: Mesh, teacher: Teacher, workspace: MeshWorkspace, budget: Budget, seed: int = 0,
               device: torch.device = torch.device("cpu"), keep_stage_data: bool = False, progress: bool = False,
               test_view: Optional[str] = None, announce: Callable[[str], None] = _say_nothing,
               free_prompts: Optional[bool] = None) -> DecoderPredictor:
    """Run the stages this mesh still lacks and return a predictor on its trained decoder.

    Args:
        test_view: a name: after encoder training, the encoder's qualitative test view (encoder.py ``--test 1``
            with ``--name``) is written to the encoder folder.
        announce: told, before each stage that runs, which script flags it amounts to.
        free_prompts: whether data generation follows the budget's rules for a teacher with free prompts (the
            original's) or its bounds for a costly one (None: as the teacher says; evaluation makes the label teacher
            follow a segmenter's to measure what the bounds cost).
    Stage times go to ``workspace.timings`` (a stage reused from an earlier run costs nothing now). The mesh's folder
    is locked while its stages run: a second process training it waits, then reuses what the first one made.
    """
    with folder_lock(workspace.root, tqdm.write):
        return _train_mesh_locked(mesh, teacher, workspace, budget, seed, device, keep_stage_data, progress,
                                  test_view, announce, free_prompts)


def _train_mesh_locked(mesh: Mesh, teacher: Teacher, workspace: MeshWorkspace, budget: Budget, seed: int,
                       device: torch.device, keep_stage_data: bool, progress: bool, test_view: Optional[str],
                       announce: Callable[[str], None], free_prompts: Optional[bool]) -> DecoderPredictor:
    views = ViewSettings()  # the original's defaults: 224 pixels, radius 2, white background
    free_prompts = teacher.free_prompts if free_prompts is None else free_prompts
    flags = budget.stage_flags(mesh.num_vertices, free_prompts=free_prompts)
    bounds = budget.data_settings(free_prompts)
    if not os.path.exists(workspace.features):
        announce(f"encoder views and training: encoder.py {shlex.join(flags['encoder'])}")
        start = time.perf_counter()
        generate_views(mesh.to(device), teacher, workspace.encoder_data, bounds.encoder_views, seed=seed,
                       frontview_std=FRONTVIEW_STD, settings=views, embedding_dtype=getattr(torch, EMBEDDING_DTYPE),
                       progress=progress)
        workspace.record("encoder_views", time.perf_counter() - start)
        start = time.perf_counter()
        model = train_feature_field(mesh, workspace.encoder_data, workspace.encoder, FieldSettings(), views,
                                    learning_rate=ENCODER_LEARNING_RATE, num_epochs=budget.encoder_epochs, seed=seed,
                                    device=device, verbose=False, progress=progress)
        workspace.record("encoder_training", time.perf_counter() - start)
        if test_view is not None:
            test_feature_field(mesh, model, teacher, workspace.encoder, test_view, *TEST_VIEW_DEG, views)
    else:
        announce(f"encoder: skipped, {workspace.features} exists (delete it to train the encoder again)")
    if not keep_stage_data:
        shutil.rmtree(workspace.encoder_data, ignore_errors=True)
    features = load_features(workspace.features, mesh)

    if not decoder_trained(workspace.checkpoint):
        announce(f"decoder data: data_generation.py {shlex.join(flags['data'])}")
        start = time.perf_counter()
        settings = GenerationSettings(seed, budget.click_percentage(mesh.num_vertices), budget.views_per_click,
                                      bounds.view_pool, negative_outside=budget.negative_outside,
                                      positive_inside=budget.positive_inside, second_clicks=bounds.second_clicks,
                                      refinement_steps=bounds.refinement_steps)
        generate_decoder_data(mesh.to(device), teacher, workspace.decoder_data, settings,
                              (KIND_SINGLE, KIND_POSITIVE, KIND_NEGATIVE), progress=progress)
        workspace.record("decoder_data", time.perf_counter() - start)
        start = time.perf_counter()
        samples = load_decoder_samples(workspace.decoder_data)
        every = compose_training_set(samples, True, True, 1.0, seed)
        share = budget.decoder_share(mesh.num_vertices, len(every))
        indices = compose_training_set(samples, True, True, share, seed)
        flags = budget.stage_flags(mesh.num_vertices, len(every), free_prompts)
        announce(f"decoder training on {len(indices)} samples: decoder.py --mode train {shlex.join(flags['decoder'])}")
        training = TrainingSettings(budget.decoder_learning_rate, budget.decoder_epochs, budget.decoder_batch,
                                    SAVE_INTERVAL, seed, budget.decoder_loss_pixels(mesh.num_vertices),
                                    budget.decoder_lr_schedule)
        os.makedirs(workspace.decoder, exist_ok=True)
        train_decoder(mesh, features, samples, indices, workspace.decoder, DECODER_CHECKPOINT_FILE,
                      budget.decoder_settings, training, settings.radius, os.path.exists(workspace.checkpoint),
                      device, progress)
        workspace.record("decoder_training", time.perf_counter() - start)
    else:
        announce(f"decoder: skipped, {workspace.checkpoint} is trained (delete it to train again)")
    if not keep_stage_data:
        shutil.rmtree(workspace.decoder_data, ignore_errors=True)
    return load_predictor(workspace.checkpoint, features, budget.decoder_settings, device)
