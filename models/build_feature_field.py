"""Building and loading the Mesh Feature Field and its output (as segment-anything's build_sam builds SAM).

* :class:`FieldSettings` — encoder.py's architecture flags → a :class:`MeshFeatureField`;
* :func:`load_feature_field_state` — a state dict of ours or of the original release;
* :func:`load_feature_field` — the trained field from ``encoder_checkpoint.pth``;
* :func:`load_features` — ``pred_f.pth``, the (N, 256) per-vertex features the decoder reads.

Every file is read with ``torch.load(..., weights_only=True)``: a checkpoint from the internet cannot run code.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Dict

import torch

from models.feature_field import FOURIER_KEY, FourierFeatures, MeshFeatureField
from utils.errors import InputError
from utils.geometry.mesh import Mesh
from utils.io import load_torch, mismatch_detail, require_finite
from utils.paths import ENCODER_CHECKPOINT_FILE
from utils.runtime import seed_everything


@dataclass(frozen=True)
class FieldSettings:
    """Mesh Feature Field architecture flags (encoder.py's ``--depth``, ``--width``, ``--n_classes``,
    ``--positional_encoding``, ``--sigma``)."""

    depth: int = 4
    width: int = 256
    n_classes: int = 256
    positional_encoding: bool = True
    sigma: float = 5.0

    def build(self) -> MeshFeatureField:
        return MeshFeatureField(self.depth, self.width, self.n_classes, self.positional_encoding, self.sigma)


def load_feature_field_state(model: MeshFeatureField, state: Dict[str, torch.Tensor]) -> None:
    """Load a state dict of ours or of the original release (which lacks the Fourier matrix: then the model keeps the
    matrix it drew from the seed, as the original did, and a warning says so). Shape mismatches raise ValueError."""
    state = {key.removeprefix("module."): value for key, value in state.items()}
    if FOURIER_KEY not in state and isinstance(model.mlp[0], FourierFeatures):
        warnings.warn("the encoder checkpoint has no Fourier matrix (original iSeg format); using the one drawn "
                      "from --seed, which reproduces the original's features only with the seed it was trained with",
                      stacklevel=2)
        state = {**state, FOURIER_KEY: model.mlp[0].B}
    model.load_state_dict(state)


def load_feature_field(model_dir: str, field: FieldSettings, seed: int,
                       device: torch.device = torch.device("cpu")) -> MeshFeatureField:
    """The trained field from ``model_dir/encoder_checkpoint.pth`` (ours or the original's; see
    :func:`load_feature_field_state`). The model is built right after seeding, as training builds it, so that a
    checkpoint without its Fourier matrix gets the one its seed drew."""
    path = os.path.join(model_dir, ENCODER_CHECKPOINT_FILE)
    checkpoint = load_torch(path, "encoder checkpoint")
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("encoder_state_dict"), dict):
        require_finite(checkpoint["encoder_state_dict"], "encoder checkpoint", path)
    seed_everything(seed)
    model = field.build()
    try:
        load_feature_field_state(model, checkpoint["encoder_state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise InputError(f"encoder checkpoint {path} does not fit --depth {field.depth} --width {field.width} "
                         f"--n_classes {field.n_classes}: {mismatch_detail(exc)}") from None
    return model.to(device)


def load_features(path: str, mesh: Mesh) -> torch.Tensor:
    """``pred_f.pth`` → (N, 256) float32 CPU tensor without grad (a CUDA tensor with requires_grad, as the original
    saved it, loads too); rows ≠ the mesh's vertices is an InputError."""
    features = load_torch(path, "per-vertex features (pred_f.pth)")
    if not isinstance(features, torch.Tensor) or features.dim() != 2:
        raise InputError(f"{path} does not hold an (N, C) tensor of per-vertex features")
    if features.shape[0] != mesh.num_vertices:
        raise InputError(f"features {path} have {features.shape[0]} rows but the mesh {mesh.path} has "
                         f"{mesh.num_vertices} vertices")
    if features.shape[1] != 256:
        raise InputError(f"features {path} have {features.shape[1]} channels, the decoder needs 256")
    features = features.detach().float().cpu().contiguous()
    require_finite({"": features}, "per-vertex features", path)
    return features
