"""SAM as the teacher, on Meta's ``segment-anything`` package from PyPI (not a vendored copy).

``--SAM vit_h|vit_l|vit_b`` loads the official checkpoint from the repository's ``SAM_repo/model_checkpoints/`` under
its original file name, or from ``--sam_checkpoint PATH``; ``--SAM tiny`` builds the same modules with a small image
encoder and seeded random weights, so that tests and CI run the real code path where no weights can be downloaded — its
masks are meaningless.

Image preparation is the original's: the 8-bit RGB render (the original saved it as PNG and read it
back, which is lossless) is resized to 1024 by SAM's ``ResizeLongestSide`` (PIL bilinear), normalised with SAM's
pixel mean and std and encoded to 1×256×64×64. Prompts go through ``SamPredictor.predict_torch`` with SAM's own
coordinate transform from the view's pixels to the 1024 frame.
"""
from __future__ import annotations

import os
import sys
from functools import partial
from typing import Optional

import torch
from segment_anything import SamPredictor, sam_model_registry
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

from models.teacher import EncodedView, MaskPrediction, Teacher, TeacherView
from utils.errors import InputError
from utils.io import load_state_dict_into
from utils.paths import CHECKPOINT_DIR, repo_path

CHECKPOINT_FILES = {
    "vit_h": "sam_vit_h_4b8939.pth",
    "vit_l": "sam_vit_l_0b3195.pth",
    "vit_b": "sam_vit_b_01ec64.pth",
}
DOWNLOAD_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
SAM_TYPES = tuple(CHECKPOINT_FILES) + ("tiny",)


def sam_checkpoint_path(model_type: str, checkpoint: Optional[str] = None) -> str:
    """The checkpoint file to load for ``model_type``: ``checkpoint`` if given, else the original's file name in
    SAM_repo/model_checkpoints/. Missing → InputError naming the expected path and the official download address."""
    if checkpoint is not None:
        if not os.path.isfile(checkpoint):
            raise InputError(f"SAM checkpoint not found: {checkpoint}")
        return checkpoint
    name = CHECKPOINT_FILES[model_type]
    path = repo_path(CHECKPOINT_DIR, name)
    if not os.path.isfile(path):
        raise InputError(f"SAM checkpoint not found: {path} — download {DOWNLOAD_URL}{name} into "
                         f"{os.path.dirname(path)}/ "
                         f"or pass --sam_checkpoint PATH (or use --teacher label, or --SAM tiny for a smoke test)")
    return path


def build_tiny_sam(seed: int = 0) -> Sam:
    """SAM's modules with a 1-block, 32-wide image encoder (same 1024 input and 256×64×64 output) and seeded random
    weights. Only for exercising the code path: its masks mean nothing."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sam = Sam(
            image_encoder=ImageEncoderViT(
                depth=1, embed_dim=32, img_size=1024, mlp_ratio=2, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                num_heads=1, patch_size=16, qkv_bias=True, use_rel_pos=False, global_attn_indexes=(),
                window_size=16, out_chans=256,
            ),
            prompt_encoder=PromptEncoder(embed_dim=256, image_embedding_size=(64, 64), input_image_size=(1024, 1024),
                                         mask_in_chans=16),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=3,
                transformer=TwoWayTransformer(depth=1, embedding_dim=256, mlp_dim=256, num_heads=8),
                transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=256,
            ),
            pixel_mean=[123.675, 116.28, 103.53],
            pixel_std=[58.395, 57.12, 57.375],
        )
    return sam.eval()


def load_sam(model_type: str, checkpoint: Optional[str] = None) -> Sam:
    """A SAM of ``model_type`` (vit_h, vit_l, vit_b) with its checkpoint, loaded with ``weights_only=True``."""
    if model_type not in CHECKPOINT_FILES:
        raise InputError(f"unknown SAM model {model_type!r} (choose one of {', '.join(SAM_TYPES)})")
    path = sam_checkpoint_path(model_type, checkpoint)
    sam = sam_model_registry[model_type](checkpoint=None)
    load_state_dict_into(sam, path, "SAM checkpoint", f"SAM {model_type}")
    return sam.eval()


class SamTeacher(Teacher):
    """Meta's SAM behind the teacher interface (see the module docstring)."""

    def __init__(self, sam: Sam, description: str, device: torch.device = torch.device("cpu")) -> None:
        self.predictor = SamPredictor(sam.to(device))
        self.description = description

    @classmethod
    def build(cls, model_type: str = "vit_h", checkpoint: Optional[str] = None,
              device: torch.device = torch.device("cpu"), seed: int = 0) -> "SamTeacher":
        """``--SAM`` + ``--sam_checkpoint`` → a teacher; ``tiny`` warns that its masks are meaningless."""
        if model_type == "tiny":
            print("warning: --SAM tiny has random weights; its embeddings and masks are meaningless "
                  "(it exists to test the code path)", file=sys.stderr)
            return cls(build_tiny_sam(seed), f"sam tiny (random weights, seed {seed})", device)
        path = sam_checkpoint_path(model_type, checkpoint)
        return cls(load_sam(model_type, path), f"sam {model_type} ({os.path.basename(path)})", device)

    @property
    def device(self) -> torch.device:
        return self.predictor.device

    @torch.no_grad()
    def encode(self, view: TeacherView) -> EncodedView:
        image = view.image.detach().cpu().numpy()
        self.predictor.set_image(image, image_format="RGB")
        encoded = EncodedView(self.predictor.features, tuple(image.shape[:2]),
                              {"input_size": self.predictor.input_size, **self._encoder_extras()})
        self.predictor.reset_image()
        return encoded

    def _encoder_extras(self) -> dict:
        """What prompts on a view need from its encoding besides the embedding (SAM: nothing)."""
        return {}

    @torch.no_grad()
    def predict(self, encoded: EncodedView, points: torch.Tensor, labels: torch.Tensor,
                mask_input: Optional[torch.Tensor] = None, multimask_output: bool = True) -> MaskPrediction:
        predictor = self.predictor
        predictor.features = encoded.embedding.to(self.device)
        predictor.original_size = encoded.size
        predictor.input_size = encoded.extra["input_size"]
        predictor.is_image_set = True
        try:
            coords = predictor.transform.apply_coords_torch(points.to(self.device).float(), encoded.size)
            masks, scores, logits = predictor.predict_torch(
                coords, labels.to(self.device), mask_input=None if mask_input is None else mask_input.to(self.device),
                multimask_output=multimask_output,
            )
        finally:
            predictor.reset_image()
        return MaskPrediction(masks, scores, logits)
