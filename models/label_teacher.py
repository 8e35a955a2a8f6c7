"""The label teacher: what a perfect 2D segmenter would answer, computed from ground-truth per-face part labels.

It makes end-to-end tests meaningful (a bug in cameras, projection or training shows up as a low IoU) and gives the
pipeline's quality ceiling on labelled benchmarks. It is not SAM: its masks are exact part masks, its embedding is
a code per part.

* Masks: the view's pixels whose face carries the label of the face under a positive click (more positive clicks:
  the union of their labels), minus the parts under negative clicks. A part under both a positive and a negative
  click is split between them: its pixels at least as close (in the image) to a positive click as to every negative
  one stay — as SAM shrinks a region around a negative click instead of dropping it, so that such samples teach "not
  there" rather than "nothing". Clicks on the background select nothing. The three "multimask" outputs are the same
  mask, scored 1 (0 if empty); a ``mask_input`` is ignored (so refinement chains stop after one step: further steps
  would give the same answer).
* Imperfect masks (:class:`MaskImperfection`, ``--imperfect_masks 1``): real segmenters are not perfect — a mask
  takes a neighbouring part too or only a piece of the part (SAM's granularity ambiguity), its border follows shading
  rather than the part's border, and all of it differs from view to view. In this mode each answer, per (view,
  prompt) and independently of every other, takes with probability ``merge`` one more part (drawn among the parts
  that touch the mask in the view), else with probability ``piece`` keeps only the mask's pixels within a random
  35–75 % of its extent around the first positive click, and then has its border moved by a uniform −``border`` …
  ``border`` pixels (grown or shrunk). The draws are seeded by (seed, the view's label image, the prompt): the same
  prompt on the same view gets the same answer, as from a deterministic network. The embedding stays exact.
* Embedding: every label has a fixed random code in R^256 of norm CODE_NORM (seeded by the label value, so the same
  label gets the same code in every run and mesh); the codes are painted per pixel (background has its own code) and
  averaged over the 64×64 grid of cells SAM's encoder would see for the same image (a cell = res/64 pixels of the view).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from models.teacher import (
    EMBEDDING_CHANNELS,
    EMBEDDING_SIZE,
    LOW_RES_SIZE,
    EncodedView,
    MaskPrediction,
    Teacher,
    TeacherView,
)

CODE_SEED = 20240403
BACKGROUND = -1
LOGIT = 20.0
CODE_NORM = 8.0  # entries of about ±0.5: the size of SAM embedding values, within the feature field's tanh range


def label_code(label: int, channels: int = EMBEDDING_CHANNELS) -> torch.Tensor:
    """(channels,) float32 random code of norm CODE_NORM of a label (``BACKGROUND`` = −1 for the background), fixed
    by its value."""
    generator = torch.Generator().manual_seed(CODE_SEED + 2 * int(label) + 3)
    code = torch.randn(channels, generator=generator, dtype=torch.float64)
    return (CODE_NORM * code / code.norm()).float()


def pool_to_embedding_grid(maps: torch.Tensor) -> torch.Tensor:
    """Average (C, H, W) maps of a square view over SAM's 64×64 embedding cells → (C, 64, 64).

    SAM resizes an H-pixel image to 1024 and encodes 16-pixel patches, so a cell spans H/64 view pixels (3.5 at 224).
    The maps are repeated k-fold (k = 64 / gcd(H, 64)) so that cells fall on whole pixels, then averaged exactly.
    """
    size = maps.shape[-1]
    factor = EMBEDDING_SIZE // math.gcd(size, EMBEDDING_SIZE)
    if factor > 1:
        maps = maps.repeat_interleave(factor, dim=-1).repeat_interleave(factor, dim=-2)
    window = size * factor // EMBEDDING_SIZE
    return F.avg_pool2d(maps.unsqueeze(0), window).squeeze(0)


@dataclass(frozen=True)
class MaskImperfection:
    """How the imperfect label teacher spoils its masks (see the module docstring): ``merge`` and ``piece`` are the
    shares of answers that take a neighbouring part too or keep only a piece near the click; the border moves by up
    to ``border`` pixels; ``seed`` keys every draw."""

    seed: int = 0
    merge: float = 0.2
    piece: float = 0.2
    border: int = 3

    def __post_init__(self) -> None:
        if not (0 <= self.merge and 0 <= self.piece and self.merge + self.piece <= 1 and self.border >= 0):
            raise ValueError(f"bad mask imperfection {self}")

    def spoil(self, mask: torch.Tensor, image: torch.Tensor, view_key: bytes, points: torch.Tensor,
              labels: torch.Tensor) -> torch.Tensor:
        """One answer made imperfect.

        Args:
            mask: (H, W) bool perfect mask; image: (H, W) int64 label index per pixel (the largest = background);
            view_key: identifies the view; points: (K, 2) float pixel clicks (x, y); labels: (K,) 1/0.
        Returns:
            (H, W) bool.
        """
        digest = hashlib.blake2b(b"".join([str(self.seed).encode(), view_key, points.numpy().tobytes(),
                                           labels.numpy().tobytes()]), digest_size=8).digest()
        generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))
        draw = float(torch.rand((), generator=generator))
        if not mask.any():
            return mask
        background = int(image.max()) if image.numel() else 0
        if draw < self.merge:
            touching = _grow(mask, 2) & ~mask & (image != background)
            neighbours = torch.unique(image[touching])
            if len(neighbours):
                chosen = neighbours[torch.randint(len(neighbours), (), generator=generator)]
                mask = mask | (image == chosen)
        elif draw < self.merge + self.piece:
            positive = points[labels == 1]
            if len(positive):
                rows, columns = torch.nonzero(mask, as_tuple=True)
                distance = ((rows.float() - positive[0, 1]) ** 2 + (columns.float() - positive[0, 0]) ** 2).sqrt()
                reach = (0.35 + 0.4 * float(torch.rand((), generator=generator))) * float(distance.max())
                kept = distance <= reach
                mask = torch.zeros_like(mask)
                mask[rows[kept], columns[kept]] = True
        shift = int(torch.randint(-self.border, self.border + 1, (), generator=generator))
        if shift > 0:
            mask = _grow(mask, shift)
        elif shift < 0:
            mask = ~_grow(~mask, -shift)
        return mask


def _grow(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """(H, W) bool mask grown by ``pixels`` (a square neighbourhood)."""
    window = 2 * pixels + 1
    return F.max_pool2d(mask[None, None].float(), window, stride=1, padding=pixels)[0, 0] > 0


class LabelTeacher(Teacher):
    """A perfect 2D segmenter for a mesh with per-face labels (see the module docstring).

    Args:
        face_labels: (F,) int64 label per face (any integers, e.g. PSB's 0-based or COSEG's 1-based ids).
        description: names the label file in stored data.
        split_parts: a part under both a positive and a negative click is split between them (default, see the
            module docstring); False: it stays whole — the positive click wins and the negative one is ignored, as for
            a segmenter whose parts are atomic (evaluate.py --same_part_negative ignore).
        imperfection: None for perfect masks; else how they are spoiled (:class:`MaskImperfection`).
    """

    uses_mask_input = False  # a perfect segmenter needs no refinement
    free_prompts = True  # answers are looked up in the labels

    def __init__(self, face_labels: torch.Tensor, description: str = "label", split_parts: bool = True,
                 imperfection: Optional[MaskImperfection] = None) -> None:
        self.face_labels = torch.as_tensor(face_labels, dtype=torch.int64).reshape(-1)
        self.values = torch.unique(self.face_labels)  # (L,) sorted label values
        self.codes = torch.stack([label_code(int(v)) for v in self.values] + [label_code(BACKGROUND)])  # (L+1, 256)
        self.split_parts = split_parts
        self.description = description if split_parts else f"{description}, same-part negatives ignored"
        self.imperfection = imperfection
        if imperfection is not None:
            self.description += (f", imperfect masks (merge {imperfection.merge}, piece {imperfection.piece}, border "
                                 f"{imperfection.border} px, seed {imperfection.seed})")

    def label_image(self, view: TeacherView) -> torch.Tensor:
        """(H, W) int64 index into ``values`` of the label shown at each pixel; L (= len(values)) on background."""
        face_ids = view.face_ids.detach().cpu().long()
        if face_ids.numel() and int(face_ids.max()) >= len(self.face_labels):
            raise ValueError(f"view shows face {int(face_ids.max())} but only {len(self.face_labels)} faces have "
                             f"labels")
        index = torch.searchsorted(self.values, self.face_labels)  # (F,) position of each face's label
        return torch.where(face_ids >= 0, index[face_ids.clamp_min(0)], torch.full_like(face_ids, len(self.values)))

    def encode(self, view: TeacherView) -> EncodedView:
        image = self.label_image(view)
        one_hot = F.one_hot(image, len(self.values) + 1).permute(2, 0, 1).float()  # (L+1, H, W)
        pooled = pool_to_embedding_grid(one_hot)  # (L+1, 64, 64) share of each label per cell
        embedding = torch.einsum("lc,lhw->chw", self.codes, pooled).unsqueeze(0).contiguous()
        extra = {"label_image": image}
        if self.imperfection is not None:  # what keys the view's draws
            extra["view_key"] = hashlib.blake2b(image.numpy().tobytes(), digest_size=16).digest()
        return EncodedView(embedding, tuple(image.shape), extra)

    @staticmethod
    def _nearer_to_positive(points: torch.Tensor, labels: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(P, H, W) bool: pixels at least as close (in the image) to a positive click as to every negative one."""
        rows = torch.arange(height, dtype=torch.float32).view(1, 1, -1, 1)
        columns = torch.arange(width, dtype=torch.float32).view(1, 1, 1, -1)
        distance = (rows - points[..., 1, None, None]) ** 2 + (columns - points[..., 0, None, None]) ** 2  # (P,K,H,W)
        positive = (labels == 1)[..., None, None]
        nearest_positive = torch.where(positive, distance, float("inf")).amin(dim=1)
        nearest_negative = torch.where(~positive, distance, float("inf")).amin(dim=1)
        return nearest_positive <= nearest_negative

    def predict(self, encoded: EncodedView, points: torch.Tensor, labels: torch.Tensor,
                mask_input: Optional[torch.Tensor] = None, multimask_output: bool = True) -> MaskPrediction:
        image = encoded.extra["label_image"]
        height, width = image.shape
        num_labels = len(self.values)
        points, labels = points.detach().cpu(), labels.detach().cpu().long()
        columns = points[..., 0].round().long().clamp(0, width - 1)
        rows = points[..., 1].round().long().clamp(0, height - 1)
        clicked = image[rows, columns]  # (P, K) label index under each click (num_labels = background)
        chosen = torch.zeros(len(points), num_labels + 1, dtype=torch.bool)
        removed = torch.zeros_like(chosen)
        chosen.scatter_(1, torch.where(labels == 1, clicked, num_labels), True)
        removed.scatter_(1, torch.where(labels == 0, clicked, num_labels), True)
        chosen[:, num_labels] = False  # the background is never part of a mask
        masks = (chosen & ~removed)[:, image]  # (P, H, W) parts chosen and not removed
        split = chosen & removed  # parts under both a positive and a negative click: split between the clicks
        split[:, num_labels] = False
        if split.any():
            kept = split[:, image]
            masks |= kept & self._nearer_to_positive(points, labels, height, width) if self.split_parts else kept
        if self.imperfection is not None:
            masks = torch.stack([self.imperfection.spoil(mask, image, encoded.extra["view_key"], points[i], labels[i])
                                 for i, mask in enumerate(masks)]) if len(masks) else masks
        outputs = 3 if multimask_output else 1

        def low_res_logits() -> torch.Tensor:
            """Nearest-neighbour resampling to SAM's 256×256 low-resolution grid, as ±LOGIT logits."""
            rows_256 = (torch.arange(LOW_RES_SIZE) * height) // LOW_RES_SIZE
            columns_256 = (torch.arange(LOW_RES_SIZE) * width) // LOW_RES_SIZE
            low_res = masks[:, rows_256][:, :, columns_256]  # (P, 256, 256)
            return torch.where(low_res, LOGIT, -LOGIT).unsqueeze(1).expand(-1, outputs, -1, -1)

        scores = masks.flatten(1).any(dim=1).float()
        # the outputs are the same mask: expanded views, not copies; logits made only if asked for
        return MaskPrediction(masks.unsqueeze(1).expand(-1, outputs, -1, -1), scores.unsqueeze(1).expand(-1, outputs),
                              low_res_logits)
