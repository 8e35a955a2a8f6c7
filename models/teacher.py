"""The 2D teacher interface: what iSeg asks of a 2D segmenter, for SAM and for the label teacher alike.

A teacher sees one rendered view (:class:`TeacherView`), encodes it once (:meth:`Teacher.encode` → an
:class:`EncodedView` holding the 1×256×64×64 image embedding the encoder distils), and answers any number of point
prompts on it (:meth:`Teacher.predict`, batched), as SAM's ``SamPredictor`` does.

Coordinates of prompts are pixel coordinates of the view: x = column, y = row, origin at the top-left pixel's
centre (the pixel convention of utils/geometry/camera.py); labels are 1 = positive, 0 = negative, as SAM's.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Union

import torch

EMBEDDING_CHANNELS = 256
EMBEDDING_SIZE = 64
LOW_RES_SIZE = 256  # SAM's low-resolution mask logits


@dataclass
class TeacherView:
    """One rendered view, as a teacher receives it.

    Attributes:
        image: (H, W, 3) uint8 RGB, row 0 at the top — the lit render a person would see (SAM looks at this).
        face_ids: (H, W) int64 face shown at each pixel, −1 = background (the label teacher looks at this).
    """

    image: torch.Tensor
    face_ids: torch.Tensor

    @property
    def size(self):
        return tuple(self.image.shape[:2])


@dataclass
class EncodedView:
    """A view after the teacher's (expensive) image encoding; prompts on it are cheap.

    Attributes:
        embedding: (1, 256, 64, 64) float32 image embedding, on the teacher's device.
        size: (H, W) of the view.
        extra: what a teacher needs besides the embedding to answer prompts.
    """

    embedding: torch.Tensor
    size: tuple
    extra: Dict[str, Any] = field(default_factory=dict)


class MaskPrediction:
    """Answers to P prompts, M masks each (M = 3 with multimask output, as the original always asks).

    Attributes:
        masks: (P, M, H, W) bool masks in the view's pixels.
        scores: (P, M) float32 predicted IoU of each mask.
        low_res_logits: (P, M, 256, 256) float32 logits, usable as a later prompt's ``mask_input`` (a teacher may
            pass a function that makes them, called on first use).
    """

    def __init__(self, masks: torch.Tensor, scores: torch.Tensor,
                 low_res_logits: Union[torch.Tensor, Callable[[], torch.Tensor]]) -> None:
        self.masks = masks
        self.scores = scores
        self._low_res_logits = low_res_logits

    @property
    def low_res_logits(self) -> torch.Tensor:
        if callable(self._low_res_logits):
            self._low_res_logits = self._low_res_logits()
        return self._low_res_logits


class Teacher(ABC):
    """A 2D segmenter iSeg distils (encoder) and queries for click → mask examples (data generation)."""

    #: short description stored with the data it produced (resuming with another teacher is refused)
    description: str = "teacher"
    #: whether ``mask_input`` changes predictions (if not, refinement chains can stop after one step)
    uses_mask_input: bool = True
    #: whether prompts cost next to nothing (answers looked up, not computed by a network): budgets bound the prompts
    #: of the teachers whose prompts cost
    free_prompts: bool = False

    @abstractmethod
    def encode(self, view: TeacherView) -> EncodedView:
        """The view's 1×256×64×64 image embedding (and whatever prompts on it need)."""

    @abstractmethod
    def predict(self, encoded: EncodedView, points: torch.Tensor, labels: torch.Tensor,
                mask_input: Optional[torch.Tensor] = None, multimask_output: bool = True) -> MaskPrediction:
        """Masks for P prompts of K points each.

        Args:
            points: (P, K, 2) float pixel coordinates (x = column, y = row).
            labels: (P, K) int64, 1 = positive, 0 = negative.
            mask_input: optional (P, 1, 256, 256) low-resolution logits from an earlier prediction.
        """
