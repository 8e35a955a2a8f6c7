"""The whole iSeg pipeline on one mesh for evaluate.py: encoder views → encoder training → decoder data → decoder
training, in-process, with a budget (:class:`Profile`), reusing every finished stage.

Folder of a mesh (``<out>/work/<collection>/<mesh id>/<teacher>/``): ``encoder_data/``, ``encoder/`` (with
``pred_f.pth``), ``decoder_data/``, ``decoder/decoder_checkpoint.pth`` and ``timings.json`` (seconds of each stage
when it ran). Once ``pred_f.pth`` exists the stage-1 embeddings are deleted, and once the decoder is trained its
samples are (``keep_stage_data`` keeps both): dozens of meshes then fit a normal disk (DESIGN "Budgets").
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from typing import Dict, Optional

import torch

from models.decoder_predictor import DecoderPredictor
from models.teacher import Teacher
from utils import encoder_pipeline
from utils.decoder_data import GenerationSettings, generate_decoder_data, load_decoder_samples
from utils.decoder_training import (
    DecoderSettings,
    compose_training_set,
    decoder_trained,
    load_decoder,
    load_features,
    train_decoder,
)
from utils.io import load_json, save_json
from utils.mesh import Mesh
from utils.samples import KIND_NEGATIVE, KIND_POSITIVE, KIND_SINGLE

STAGES = ("encoder_views", "encoder_training", "decoder_data", "decoder_training")
DECODER_NAME = "decoder_checkpoint.pth"


@dataclass(frozen=True)
class Profile:
    """A training budget for every mesh.

    encoder_views × encoder_epochs: stage-1 views and passes (encoder.py ``--n_views``, ``--num_epochs``);
    click_share, views_per_click, view_pool: data_generation.py ``--percentage``, ``--n_views``, ``--view_pool``,
    with at least ``min_clicks`` first clicks (the share is raised on small meshes);
    decoder_samples: samples the decoder trains on per epoch (None: all, as ``--data_percentage 1``; on meshes of
    fewer than ``small_mesh`` vertices, whose samples cost less, proportionally more, up to 8×),
    decoder_epochs, decoder_batch, decoder_learning_rate: decoder.py's flags. Views are rendered at 224 pixels.
    decoder_pixels: on meshes of at least ``pixels_from`` vertices, the decoder's loss on this many random covered
    pixels per sample (decoder.py ``--loss_pixels``; 0: every pixel) and ``pixel_sample_factor`` × the samples: a
    view of such a mesh touches thousands of vertices, and the sampled loss makes a sample several times cheaper.
    Views of smaller meshes touch a few hundred vertices: sampling would save little, and they keep every pixel.
    decoder_lr_schedule: decoder.py ``--lr_schedule``; decoder_settings: decoder.py's architecture flags
    (``--use_attention_q/k/v``, ``--depth``, …), used for training and for the predictor.
    """

    name: str
    encoder_views: int
    encoder_epochs: int
    click_share: float
    views_per_click: int
    view_pool: int
    decoder_samples: Optional[int]
    decoder_epochs: int
    decoder_batch: int
    decoder_learning_rate: float
    min_clicks: int = 0
    small_mesh: int = 10_000
    negative_outside: bool = False  # data_generation.py --negative_outside (not in the original)
    positive_inside: bool = False  # data_generation.py --positive_inside (not in the original)
    decoder_pixels: int = 0
    pixels_from: int = 5_000
    pixel_sample_factor: int = 4
    decoder_lr_schedule: str = "constant"
    decoder_settings: DecoderSettings = DecoderSettings()

    def click_percentage(self, num_vertices: int) -> float:
        """data_generation.py's ``--percentage`` for a mesh of ``num_vertices`` vertices."""
        return min(1.0, max(self.click_share, self.min_clicks / num_vertices))

    def decoder_sample_count(self, num_vertices: int) -> Optional[int]:
        """Samples per decoder epoch for a mesh of ``num_vertices`` vertices (None: all)."""
        if self.decoder_samples is None:
            return None
        factor = self.pixel_sample_factor if self.decoder_loss_pixels(num_vertices) else 1
        return round(self.decoder_samples * factor * min(8.0, max(1.0, self.small_mesh / num_vertices)))

    def decoder_loss_pixels(self, num_vertices: int) -> int:
        """decoder.py's ``--loss_pixels`` for a mesh of ``num_vertices`` vertices (0: every covered pixel)."""
        return self.decoder_pixels if num_vertices >= self.pixels_from else 0


PROFILES: Dict[str, Profile] = {
    # the original's defaults (README training sequence): hours per mesh on a CPU
    "full": Profile("full", 1000, 3, 0.03, 100, 1000, None, 5, 16, 1e-4),
    # ≤ 2 minutes for a 10k-vertex mesh on a 2-core CPU (README "Evaluation" for what each choice buys): first clicks
    # on 3 % of the vertices × 2 views (many clicks, few views each); from 5,000 vertices the decoder's loss on 256
    # random pixels per sample makes 4× the samples affordable; a cosine learning rate, so that one short epoch
    # settles; and the original's --use_attention_q 0 --use_attention_k 0: vertices attend to the clicks whose features
    # are most like their own, which a short training does not learn by itself
    "quick": Profile("quick", 200, 2, 0.03, 2, 100, 256, 1, 8, 5e-4, min_clicks=100, decoder_pixels=256,
                     decoder_lr_schedule="cosine",
                     decoder_settings=DecoderSettings(use_attention_q=False, use_attention_k=False)),
}


class MeshWorkspace:
    """Paths of one mesh's pipeline folder."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.encoder_data = os.path.join(root, "encoder_data")
        self.encoder = os.path.join(root, "encoder")
        self.features = os.path.join(self.encoder, encoder_pipeline.FEATURES_NAME)
        self.decoder_data = os.path.join(root, "decoder_data")
        self.decoder = os.path.join(root, "decoder")
        self.checkpoint = os.path.join(self.decoder, DECODER_NAME)
        self.timings = os.path.join(root, "timings.json")

    def load_timings(self) -> Dict[str, float]:
        return load_json(self.timings, "stage timings") if os.path.exists(self.timings) else {}

    def record(self, stage: str, seconds: float) -> None:
        timings = self.load_timings()
        timings[stage] = round(timings.get(stage, 0.0) + seconds, 2)
        save_json(timings, self.timings)


def train_mesh(mesh: Mesh, teacher: Teacher, workspace: MeshWorkspace, profile: Profile, seed: int = 0,
               device: torch.device = torch.device("cpu"), keep_stage_data: bool = False,
               progress: bool = False) -> DecoderPredictor:
    """Run the stages this mesh still lacks and return a predictor on its trained decoder.

    Stage times go to ``workspace.timings`` (a stage reused from an earlier run costs nothing now).
    """
    os.makedirs(workspace.root, exist_ok=True)
    views = encoder_pipeline.ViewSettings()  # the original's defaults: 224 pixels, radius 2, white background
    if not os.path.exists(workspace.features):
        start = time.perf_counter()
        encoder_pipeline.generate_views(mesh.to(device), teacher, workspace.encoder_data, profile.encoder_views,
                                        seed, 4.0, views, torch.float16, progress)
        workspace.record("encoder_views", time.perf_counter() - start)
        start = time.perf_counter()
        encoder_pipeline.train_feature_field(mesh, workspace.encoder_data, workspace.encoder,
                                             encoder_pipeline.FieldSettings(), views, 1e-3,
                                             profile.encoder_epochs, seed, 1.0, device, False, progress)
        workspace.record("encoder_training", time.perf_counter() - start)
    if not keep_stage_data:
        shutil.rmtree(workspace.encoder_data, ignore_errors=True)
    features = load_features(workspace.features, mesh)

    if not decoder_trained(workspace.checkpoint):
        start = time.perf_counter()
        settings = GenerationSettings(seed, profile.click_percentage(mesh.num_vertices), profile.views_per_click,
                                      profile.view_pool, negative_outside=profile.negative_outside,
                                      positive_inside=profile.positive_inside)
        generate_decoder_data(mesh.to(device), teacher, workspace.decoder_data, settings,
                              (KIND_SINGLE, KIND_POSITIVE, KIND_NEGATIVE), progress=progress)
        workspace.record("decoder_data", time.perf_counter() - start)
        start = time.perf_counter()
        samples = load_decoder_samples(workspace.decoder_data)
        every = compose_training_set(samples, True, True, 1.0, seed)
        wanted = profile.decoder_sample_count(mesh.num_vertices)
        share = 1.0 if wanted is None else min(1.0, wanted / len(every))
        indices = compose_training_set(samples, True, True, share, seed)
        os.makedirs(workspace.decoder, exist_ok=True)
        train_decoder(mesh, features, samples, indices, workspace.decoder, DECODER_NAME, profile.decoder_settings,
                      profile.decoder_learning_rate, profile.decoder_epochs, profile.decoder_batch, 100, seed, 2.0,
                      os.path.exists(workspace.checkpoint), device, progress,
                      loss_pixels=profile.decoder_loss_pixels(mesh.num_vertices),
                      lr_schedule=profile.decoder_lr_schedule)
        workspace.record("decoder_training", time.perf_counter() - start)
    if not keep_stage_data:
        shutil.rmtree(workspace.decoder_data, ignore_errors=True)
    attention, head = load_decoder(workspace.checkpoint, profile.decoder_settings, device)
    return DecoderPredictor(attention, head, features.to(device))
