"""HQ-SAM (SAM in High Quality) as the teacher, on its authors' ``segment-anything-hq`` package from PyPI.

``--SAM sam_hq_vit_tiny|sam_hq_vit_b|sam_hq_vit_l|sam_hq_vit_h`` reads the released checkpoint from the repository's
``SAM_repo/model_checkpoints/`` under its released name (``sam_hq_vit_tiny.pth``, …) or from ``--sam_checkpoint``,
with ``torch.load(..., weights_only=True)`` (the package's own loader would unpickle anything, so it is never given
the file). ``vit_tiny`` is the light HQ-SAM: a TinyViT image encoder (as MobileSAM's) with HQ-SAM's mask decoder.

HQ-SAM is SAM with a high-quality output token: the image encoder is SAM's (ViT or TinyViT) and returns, besides the
1×256×64×64 embedding the encoder distils, early ViT features that the HQ decoder uses (kept with the view). Image
preparation and coordinates are SAM's (``ResizeLongestSide`` to 1024, the package's own transform), as for
``--SAM vit_h``. What differs: asked for several masks, HQ-SAM answers with one — SAM's best-scoring mask corrected by
the HQ token — so the three "multimask" outputs are that one mask (with its score); mask-input refinement works as
with SAM.
"""
from __future__ import annotations

import os
from typing import Optional

import torch

from models.sam_teacher import SamTeacher
from models.teacher import EncodedView, MaskPrediction
from utils.errors import InputError
from utils.io import load_state_dict_into
from utils.paths import CHECKPOINT_DIR, repo_path

SAM_HQ_FILES = {
    "sam_hq_vit_tiny": "sam_hq_vit_tiny.pth",
    "sam_hq_vit_b": "sam_hq_vit_b.pth",
    "sam_hq_vit_l": "sam_hq_vit_l.pth",
    "sam_hq_vit_h": "sam_hq_vit_h.pth",
}
SAM_HQ_SOURCE = "https://huggingface.co/lkeab/hq-sam/resolve/main/"  # where the authors publish the checkpoints


def registry_name(name: str) -> str:
    """``sam_hq_vit_b`` → the package's registry key ``vit_b``."""
    return name.removeprefix("sam_hq_")


def build_sam_hq(name: str):
    """HQ-SAM of ``name``'s architecture with the package's initial weights (seeded by the caller)."""
    import warnings

    with warnings.catch_warnings():  # the package re-registers timm's TinyViT names and imports a deprecated path
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        from segment_anything_hq import sam_model_registry

        return sam_model_registry[registry_name(name)](checkpoint=None)


def load_sam_hq(name: str, checkpoint: Optional[str] = None):
    """HQ-SAM ``name`` with its released weights; a missing or wrong file is an InputError naming the expected path
    and the download address."""
    file_name = SAM_HQ_FILES[name]
    path = checkpoint if checkpoint is not None else repo_path(CHECKPOINT_DIR, file_name)
    if not os.path.isfile(path):
        raise InputError(f"{name} checkpoint not found: {path} — download {SAM_HQ_SOURCE}{file_name} into "
                         f"{os.path.dirname(path) or '.'}/ or pass --sam_checkpoint PATH")
    sam = build_sam_hq(name)
    load_state_dict_into(sam, path, f"{name} checkpoint", name)
    return sam.eval(), path


class SamHqTeacher(SamTeacher):
    """HQ-SAM behind the teacher interface (see the module docstring); SamTeacher's code with HQ-SAM's predictor."""

    def __init__(self, sam, description: str, device: torch.device = torch.device("cpu")) -> None:
        from segment_anything_hq import SamPredictor

        self.predictor = SamPredictor(sam.to(device))
        self.description = description

    @classmethod
    def build(cls, name: str, checkpoint: Optional[str] = None,  # type: ignore[override]
              device: torch.device = torch.device("cpu")) -> "SamHqTeacher":
        sam, path = load_sam_hq(name, checkpoint)
        return cls(sam, f"{name} ({os.path.basename(path)})", device)

    def _encoder_extras(self) -> dict:
        return {"interm_features": list(self.predictor.interm_features)}  # early ViT features for the HQ decoder

    @torch.no_grad()
    def predict(self, encoded: EncodedView, points: torch.Tensor, labels: torch.Tensor,
                mask_input: Optional[torch.Tensor] = None, multimask_output: bool = True) -> MaskPrediction:
        self.predictor.interm_features = [f.to(self.device) for f in encoded.extra["interm_features"]]
        prediction = super().predict(encoded, points, labels, mask_input, multimask_output)
        outputs = 3 if multimask_output else 1  # one mask, given as the three "multimask" answers (no copies)
        return MaskPrediction(prediction.masks.expand(-1, outputs, -1, -1),
                              prediction.scores.expand(-1, outputs),
                              prediction.low_res_logits.expand(-1, outputs, -1, -1))
