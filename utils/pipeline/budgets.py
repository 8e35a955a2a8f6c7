"""The one table of training budgets (:data:`BUDGETS`), shared by ``train.py --budget``, ``evaluate.py --profile``
and demo/make_demo.py, and the stage flags each budget amounts to (:meth:`Budget.stage_flags`), so that a run can be
repeated with the four scripts by hand.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Dict, List, Optional

from models.build_decoder import DecoderSettings
from utils.decoder.generation import MAX_SECOND_CLICKS, REFINEMENT_STEPS

EMBEDDING_DTYPE = "float16"  # stage-1 embeddings on disk: half the space, the same training within rounding
ENCODER_LEARNING_RATE = 1e-3  # encoder.py's default
SAVE_INTERVAL = 100  # decoder checkpoints every this many batches (decoder.py's default)


@dataclass(frozen=True)
class SegmenterBounds:
    """What the stages ask of a teacher whose answers a network computes (the SAM family: ~0.35–60 s an image
    encoding and ~55 ms a prompt on a CPU): data_generation.py ``--second_clicks`` and ``--refinement_steps`` (the
    original's 5 candidates × 6 steps ask 1 + 2 · 5 · 6 = 61 prompts per (click, view)), and the image encodings:
    ``--view_pool`` and encoder.py ``--n_views`` (each at most the budget's; None: the budget's)."""

    second_clicks: int = MAX_SECOND_CLICKS
    refinement_steps: int = REFINEMENT_STEPS
    view_pool: Optional[int] = None
    encoder_views: Optional[int] = None


@dataclass(frozen=True)
class Budget:
    """Views, samples and epochs of the four stages for every mesh.

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
    segmenter: what data generation asks of a teacher whose answers a network computes (:class:`SegmenterBounds`);
    a teacher with free prompts (the label teacher: its answers are looked up) keeps the original's rules and
    ``view_pool`` (:meth:`data_settings`).
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
    segmenter: SegmenterBounds = SegmenterBounds()

    def data_settings(self, free_prompts: bool) -> SegmenterBounds:
        """Second-click candidates, refinement steps, view pool and encoder views for a teacher whose prompts are
        free (``free_prompts``: the original's rules and this budget's views) or cost (``segmenter``, resolved)."""
        if free_prompts:
            return SegmenterBounds(MAX_SECOND_CLICKS, REFINEMENT_STEPS, self.view_pool, self.encoder_views)
        bounds = self.segmenter
        return replace(bounds, view_pool=min(self.view_pool, bounds.view_pool or self.view_pool),
                       encoder_views=min(self.encoder_views, bounds.encoder_views or self.encoder_views))

    def record(self, free_prompts: bool) -> Dict[str, object]:
        """The budget as a dict of what it changes for a teacher with free prompts or costly ones (the segmenter
        bounds mean nothing to the former): what evaluation records and fingerprints."""
        fields = asdict(self)
        if free_prompts:
            del fields["segmenter"]
        return fields

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

    def decoder_share(self, num_vertices: int, num_candidates: int) -> float:
        """decoder.py's ``--data_percentage``: the share of the ``num_candidates`` composed samples trained on."""
        wanted = self.decoder_sample_count(num_vertices)
        return 1.0 if wanted is None else min(1.0, wanted / num_candidates)

    def stage_flags(self, num_vertices: int, num_candidates: Optional[int] = None,
                    free_prompts: bool = False) -> Dict[str, List[str]]:
        """The flags of encoder.py, data_generation.py and decoder.py that run this budget on a mesh of
        ``num_vertices`` vertices with a teacher whose prompts are free or cost (the decoder's ``--data_percentage``
        once the ``num_candidates`` samples are known)."""
        data = self.data_settings(free_prompts)
        flags = {
            "encoder": ["--n_views", str(data.encoder_views), "--num_epochs", str(self.encoder_epochs),
                        "--embedding_dtype", EMBEDDING_DTYPE],
            "data": ["--percentage", repr(self.click_percentage(num_vertices)), "--n_views",
                     str(self.views_per_click), "--view_pool", str(data.view_pool), "--single_click", "1",
                     "--second_positive", "1", "--second_negative", "1",
                     "--negative_outside", str(int(self.negative_outside)),
                     "--positive_inside", str(int(self.positive_inside)), "--second_clicks", str(data.second_clicks),
                     "--refinement_steps", str(data.refinement_steps)],
            "decoder": ["--num_epochs", str(self.decoder_epochs), "--batch_size", str(self.decoder_batch),
                        "--learning_rate", repr(self.decoder_learning_rate), "--use_positive_click", "1",
                        "--use_negative_click", "1", "--lr_schedule", self.decoder_lr_schedule,
                        "--loss_pixels", str(self.decoder_loss_pixels(num_vertices)),
                        *self.decoder_settings.changed_arguments()],
        }
        if num_candidates is not None:
            flags["decoder"] += ["--data_percentage", repr(self.decoder_share(num_vertices, num_candidates))]
        return flags


_QUICK = Budget("quick", 200, 2, 0.03, 2, 100, 256, 1, 8, 5e-4, min_clicks=100, decoder_pixels=256,
                decoder_lr_schedule="cosine",
                decoder_settings=DecoderSettings(use_attention_q=False, use_attention_k=False),
                segmenter=SegmenterBounds(second_clicks=1, refinement_steps=1, view_pool=50, encoder_views=150))

BUDGETS: Dict[str, Budget] = {
    # the original's defaults (its README's training sequence): hours per mesh on a CPU
    "original": Budget("original", 1000, 3, 0.03, 100, 1000, None, 5, 16, 1e-4),
    # ≤ 2 minutes for a 10k-vertex mesh on a 2-core CPU with the label teacher (README "Evaluation" for what each
    # choice buys): first clicks on 3 % of the vertices × 2 views (many clicks, few views each); from 5,000 vertices
    # the decoder's loss on 256 random pixels per sample makes 4× the samples affordable; a cosine learning rate, so
    # that one short epoch settles; and identity query/key maps (the original's --use_attention_q 0
    # --use_attention_k 0): vertices attend to the clicks whose features are most like their own, which a short
    # training does not learn by itself. With a SAM-family teacher, one second-click candidate of each kind per
    # (click, view), one refinement step, a pool of 50 views and 150 encoder views: 3 prompts per (click, view)
    # instead of 61, ~1,800 for a 10k-vertex mesh (the decoder trains on ~1,000 samples anyway), and 201 image
    # encodings, so that the whole budget takes minutes on a CPU
    "quick": _QUICK,
    # the bundled demo: quick, with the original decoder's architecture, so that the original's README commands
    # (decoder.py without architecture flags) segment it
    "demo": replace(_QUICK, name="demo", decoder_settings=DecoderSettings()),
}
ALIASES = {"full": "original"}  # evaluate.py's earlier name of the original budget


def budget_named(name: str) -> Budget:
    """The budget of a ``--budget`` / ``--profile`` name (``full`` = ``original``)."""
    return BUDGETS[ALIASES.get(name, name)]
