"""The SAM 2 family as teachers, on Hugging Face ``transformers``: SAM 2.1 (Hiera tiny, small, base+, large) and
EdgeTAM (SAM 2 with a RepViT mobile backbone, made for phones).

``--SAM sam2.1_hiera_tiny`` (…) reads the authors' release in the Hugging Face format — a folder with
``config.json``, ``model.safetensors`` and, optionally, ``preprocessor_config.json`` — from the repository's
``SAM_repo/model_checkpoints/<repository name>/`` (``sam2.1-hiera-tiny/``, …, ``EdgeTAM-hf/``), or from
``--sam_checkpoint FOLDER``. Weights are read from safetensors only (a file that can hold code is never opened) and
nothing is downloaded.

What iSeg needs of it, and where it comes from:

* the embedding the encoder distils: the last of the image encoder's three feature maps, SAM 2's ``image_embed``
  (1×256×64×64, the no-memory embedding added as in single-image use); the two high-resolution maps (1×32×256×256,
  1×64×128×128) are kept with the view for its prompts;
* image preparation and prompt coordinates: the library's ``Sam2Processor`` (resize to 1024², ImageNet mean and
  std; points scaled from the view's pixels to the 1024 frame);
* prompts: three masks, their predicted IoU and 256×256 low-resolution logits per prompt; the original's mask-input
  refinement works as with SAM (SAM 2's prompt encoder takes the logits as a dense prompt). Prompts run as a batch of
  images of one prompt each, so that every prompt can carry its own mask input;
* EdgeTAM runs in its inference form (:func:`inference_form`): RepViT is trained with parallel branches and batch
  norms that fold into single convolutions once the weights are fixed (timm's ``reparameterize_model``, what RepViT's
  authors deploy), and its convolutions run channels-last; the neck's position embeddings are computed once, not per
  view — 0.55 → 0.35 s a view on a 2-core CPU, the same embedding within float rounding (about 1e-6 of its largest
  entry).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
import torch

from models.teacher import EncodedView, MaskPrediction, Teacher, TeacherView
from utils.errors import InputError
from utils.paths import CHECKPOINT_DIR, repo_path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # transformers must never reach the network from here


@dataclass(frozen=True)
class Sam2Release:
    """A released model: its transformers family (``sam2`` or ``edgetam``) and its Hugging Face repository."""

    family: str
    repository: str  # owner/name on the Hugging Face Hub; the folder under SAM_repo/model_checkpoints/ is the name

    @property
    def folder(self) -> str:
        return self.repository.split("/")[-1]

    @property
    def source(self) -> str:
        return f"https://huggingface.co/{self.repository}"


SAM2_RELEASES: Dict[str, Sam2Release] = {
    "sam2.1_hiera_tiny": Sam2Release("sam2", "facebook/sam2.1-hiera-tiny"),
    "sam2.1_hiera_small": Sam2Release("sam2", "facebook/sam2.1-hiera-small"),
    "sam2.1_hiera_base_plus": Sam2Release("sam2", "facebook/sam2.1-hiera-base-plus"),
    "sam2.1_hiera_large": Sam2Release("sam2", "facebook/sam2.1-hiera-large"),
    "edgetam": Sam2Release("edgetam", "yonigozlan/EdgeTAM-hf"),
}


#: the Hiera image encoders of the SAM 2.1 release (stages, widths, heads, windows, global-attention blocks)
HIERA_SIZES = {
    "sam2.1_hiera_tiny": dict(hidden_size=96, num_attention_heads=1, blocks_per_stage=[1, 2, 7, 2],
                              global_attention_blocks=[5, 7, 9], window_positional_embedding_background_size=[7, 7]),
    "sam2.1_hiera_small": dict(hidden_size=96, num_attention_heads=1, blocks_per_stage=[1, 2, 11, 2],
                               global_attention_blocks=[7, 10, 13], window_positional_embedding_background_size=[7, 7]),
    "sam2.1_hiera_base_plus": dict(hidden_size=112, num_attention_heads=2, blocks_per_stage=[2, 3, 16, 3],
                                   global_attention_blocks=[12, 16, 20],
                                   window_positional_embedding_background_size=[14, 14]),
    "sam2.1_hiera_large": dict(hidden_size=144, num_attention_heads=2, blocks_per_stage=[2, 6, 36, 4],
                               global_attention_blocks=[23, 33, 43], window_positional_embedding_background_size=[7, 7],
                               window_size_per_stage=[8, 4, 16, 8]),
}


def released_config(name: str, **overrides):
    """The transformers configuration of a release (random weights of it cost what the release costs: benchmarks
    and tests build models from it). ``overrides`` change the image encoder (tests use a narrow one)."""
    import transformers

    release = SAM2_RELEASES[name]
    if release.family == "edgetam":
        # built explicitly: EdgeTamVisionConfig's default backbone spec misspells "architecture" in transformers 5.24
        backbone = transformers.TimmWrapperConfig(architecture="repvit_m1", model_args={
            "in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3]})
        return transformers.EdgeTamConfig(vision_config=transformers.EdgeTamVisionConfig(backbone_config=backbone))
    hiera = {**HIERA_SIZES[name], **overrides}
    width, heads = hiera["hidden_size"], hiera["num_attention_heads"]
    hiera.setdefault("embed_dim_per_stage", [width, 2 * width, 4 * width, 8 * width])
    hiera.setdefault("num_attention_heads_per_stage", [heads, 2 * heads, 4 * heads, 8 * heads])
    backbone = transformers.Sam2HieraDetConfig(**hiera)
    vision = transformers.Sam2VisionConfig(backbone_config=backbone,
                                           backbone_channel_list=hiera["embed_dim_per_stage"][::-1])
    return transformers.Sam2Config(vision_config=vision)


def model_class(family: str):
    """The transformers class of a family."""
    import transformers

    return {"sam2": transformers.Sam2Model, "edgetam": transformers.EdgeTamModel}[family]


def default_processor():
    """SAM 2's processor with its default settings (1024², ImageNet mean and std), for a folder without one."""
    from transformers import Sam2ImageProcessor, Sam2Processor

    return Sam2Processor(image_processor=Sam2ImageProcessor())


def sam2_checkpoint_folder(name: str, checkpoint: Optional[str] = None) -> str:
    """The folder to load ``--SAM name`` from: ``checkpoint``, else SAM_repo/model_checkpoints/<repository name>/.
    Missing, or without config.json and safetensors weights → InputError naming it and where the authors publish."""
    release = SAM2_RELEASES[name]
    folder = checkpoint if checkpoint is not None else repo_path(CHECKPOINT_DIR, release.folder)
    where = f"download the Hugging Face repository {release.repository} ({release.source}) into {folder}/"
    if not os.path.isdir(folder):
        raise InputError(f"{name} checkpoint not found: {folder} (a folder in the Hugging Face format) — {where}, or "
                         f"pass --sam_checkpoint FOLDER")
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise InputError(f"{folder} has no config.json, so it is not a Hugging Face model folder — {where}")
    if not any(name_.endswith(".safetensors") for name_ in os.listdir(folder)):
        raise InputError(f"{folder} has no .safetensors weights (other formats are not read: they can hold code) — "
                         f"{where}")
    return folder


def load_sam2(name: str, checkpoint: Optional[str] = None):
    """The model of ``--SAM name`` and its processor, from a local folder (see :func:`sam2_checkpoint_folder`)."""
    import json

    from transformers import Sam2Processor
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    release = SAM2_RELEASES[name]
    folder = sam2_checkpoint_folder(name, checkpoint)
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as handle:
            model_type = json.load(handle).get("model_type")
    except (OSError, ValueError) as exc:
        raise InputError(f"could not read {folder}/config.json: {exc}") from None
    if model_type != release.family:
        raise InputError(f"{folder} holds a {model_type!r} model, not {release.family!r} ({name})")
    try:
        model = model_class(release.family).from_pretrained(folder, local_files_only=True, use_safetensors=True)
    except Exception as exc:  # a damaged or mismatched release is bad input, not a bug
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        raise InputError(f"could not load {name} from {folder}: {lines[0]}") from None
    saved = any(os.path.isfile(os.path.join(folder, name_))
                for name_ in ("processor_config.json", "preprocessor_config.json"))
    processor = Sam2Processor.from_pretrained(folder, local_files_only=True) if saved else default_processor()
    return model.eval(), processor, folder


class CachedPositionEmbedding(torch.nn.Module):
    """The image encoder's sine position embedding, kept per (shape, device, dtype): it depends on nothing else, and
    the library's own cache holds one shape while the neck asks for four per image, so every view computed all four
    again (~0.1 s of EdgeTAM's 0.45 s on a 2-core CPU). The same tensors, bit for bit."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self._kept: Dict[tuple, torch.Tensor] = {}

    def forward(self, shape, device, dtype, mask=None):
        if mask is not None:
            return self.inner(shape, device, dtype, mask)
        key = (tuple(shape), str(device), dtype)
        if key not in self._kept:
            self._kept[key] = self.inner(shape, device, dtype)
        return self._kept[key]


def inference_form(model):
    """``model`` made ready for inference, in place: eval mode, its position embeddings kept from image to image
    (:class:`CachedPositionEmbedding`) and, for EdgeTAM (a convolutional RepViT backbone), its branches and batch norms
    folded into convolutions and channels-last memory. The answers are the released model's within float rounding
    (bit for bit for SAM 2.1, whose Hiera backbone is a transformer and is left as it is)."""
    model.eval()
    neck = model.vision_encoder.neck
    if not isinstance(neck.position_encoding, CachedPositionEmbedding):
        neck.position_encoding = CachedPositionEmbedding(neck.position_encoding)
    if model.config.model_type == "edgetam":
        from timm.utils import reparameterize_model

        model.vision_encoder.backbone = reparameterize_model(model.vision_encoder.backbone, inplace=True)
        model.to(memory_format=torch.channels_last)
    return model


class Sam2Teacher(Teacher):
    """A model of the SAM 2 family behind the teacher interface (see the module docstring).

    Args:
        model: a transformers ``Sam2Model`` or ``EdgeTamModel``, which the teacher takes over: moved to ``device`` and
            put in its inference form (:func:`inference_form`); processor: its ``Sam2Processor``.
    """

    def __init__(self, model, processor, description: str, device: torch.device = torch.device("cpu")) -> None:
        self.model = inference_form(model.to(device))
        self.channels_last = model.config.model_type == "edgetam"
        self.processor = processor
        self.description = description
        self.device = device

    @classmethod
    def build(cls, name: str, checkpoint: Optional[str] = None,
              device: torch.device = torch.device("cpu")) -> "Sam2Teacher":
        model, processor, folder = load_sam2(name, checkpoint)
        return cls(model, processor, f"{name} ({os.path.basename(os.path.normpath(folder))})", device)

    @torch.no_grad()
    def encode(self, view: TeacherView) -> EncodedView:
        image = np.ascontiguousarray(view.image.detach().cpu().numpy())  # (H, W, 3) uint8 RGB, row 0 at the top
        pixel_values = self.processor(images=image, return_tensors="pt")["pixel_values"].to(self.device)
        if self.channels_last:
            pixel_values = pixel_values.contiguous(memory_format=torch.channels_last)
        maps = [m.float().contiguous() for m in self.model.get_image_embeddings(pixel_values)]  # high res first
        return EncodedView(maps[-1], tuple(image.shape[:2]), {"high_resolution": maps[:-1]})

    @torch.no_grad()
    def predict(self, encoded: EncodedView, points: torch.Tensor, labels: torch.Tensor,
                mask_input: Optional[torch.Tensor] = None, multimask_output: bool = True) -> MaskPrediction:
        height, width = encoded.size
        count = points.shape[0]
        prompts = self.processor(original_sizes=[[height, width]], input_points=points.detach().float().cpu()[None],
                                 input_labels=labels.detach().long().cpu()[None], return_tensors="pt")
        coords = prompts["input_points"][0].unsqueeze(1).to(self.device)  # (P, 1, K, 2) in the 1024 frame
        point_labels = prompts["input_labels"][0].unsqueeze(1).to(self.device)  # (P, 1, K)
        maps = [m.expand(count, -1, -1, -1) for m in (*encoded.extra["high_resolution"], encoded.embedding)]
        output = self.model(image_embeddings=maps, input_points=coords, input_labels=point_labels,
                            input_masks=None if mask_input is None else mask_input.to(self.device).float(),
                            multimask_output=multimask_output)
        logits = output.pred_masks[:, 0].float()  # (P, M, 256, 256)
        # the processor upsamples each image's (objects, masks, 256, 256) logits to the view and thresholds them at 0
        masks = self.processor.post_process_masks(logits.cpu().unsqueeze(1), [[height, width]] * count, binarize=True)
        return MaskPrediction(torch.cat(masks).bool(), output.iou_scores[:, 0].float().cpu(), logits.cpu())
