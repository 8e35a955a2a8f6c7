"""Registry: command-line choices → a Teacher (as segment-anything's build_sam maps names to models)."""
from __future__ import annotations

import hashlib
import os
from typing import Optional

import torch

from models.label_teacher import LabelTeacher
from models.sam_teacher import SamTeacher
from models.teacher import Teacher
from utils.errors import InputError
from utils.geometry.mesh import Mesh
from utils.geometry.mesh_files import load_face_labels


def build_teacher(kind: str, mesh: Mesh, device: torch.device, sam_type: str = "vit_h",
                  sam_checkpoint: Optional[str] = None, labels: Optional[str] = None, seed: int = 0,
                  split_parts: bool = True) -> Teacher:
    """``--teacher sam|label`` with its options → a Teacher for ``mesh`` (``split_parts``: see LabelTeacher).

    Raises:
        InputError: label teacher without ``--labels`` or with labels that do not fit the mesh; missing SAM checkpoint.
    """
    if kind == "label":
        if labels is None:
            raise InputError("--teacher label needs --labels FILE (per-face labels, .seg or .npy)")
        face_labels = load_face_labels(labels, mesh.num_faces)
        digest = hashlib.sha1(face_labels.tobytes()).hexdigest()[:12]
        return LabelTeacher(torch.from_numpy(face_labels), f"label {os.path.basename(labels)} ({digest})",
                            split_parts)
    if kind == "sam":
        return SamTeacher.build(sam_type, sam_checkpoint, device, seed)
    raise InputError(f"unknown teacher {kind!r} (choose sam or label)")
