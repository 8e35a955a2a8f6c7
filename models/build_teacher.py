"""Registry: command-line choices → a Teacher (as segment-anything's build_sam maps names to models)."""
from __future__ import annotations

import hashlib
import os
from typing import Optional

import torch

from models.label_teacher import LabelTeacher, MaskImperfection
from models.sam2_teacher import SAM2_RELEASES, Sam2Teacher
from models.sam_hq_teacher import SAM_HQ_FILES, SamHqTeacher
from models.sam_teacher import SAM_TYPES, SamTeacher
from models.teacher import Teacher
from utils.errors import InputError
from utils.geometry.mesh import Mesh
from utils.geometry.mesh_files import load_face_labels


def build_teacher(kind: str, mesh: Mesh, device: torch.device, sam_type: str = "vit_h",
                  sam_checkpoint: Optional[str] = None, labels: Optional[str] = None, seed: int = 0,
                  split_parts: bool = True, imperfect_masks: bool = False) -> Teacher:
    """``--teacher sam|label`` with its options → a Teacher for ``mesh`` (``split_parts``: see LabelTeacher;
    ``imperfect_masks``: the label teacher's imperfect mode, its draws seeded by ``seed``).

    Raises:
        InputError: label teacher without ``--labels`` or with labels that do not fit the mesh; missing SAM checkpoint.
    """
    if kind == "label":
        if labels is None:
            raise InputError("--teacher label needs --labels FILE (per-face labels, .seg or .npy)")
        face_labels = load_face_labels(labels, mesh.num_faces)
        digest = hashlib.sha1(face_labels.tobytes()).hexdigest()[:12]
        return LabelTeacher(torch.from_numpy(face_labels), f"label {os.path.basename(labels)} ({digest})",
                            split_parts, MaskImperfection(seed=seed) if imperfect_masks else None)
    if kind == "sam":
        return build_sam_teacher(sam_type, sam_checkpoint, device, seed)
    raise InputError(f"unknown teacher {kind!r} (choose sam or label)")


#: every ``--SAM`` name: segment-anything's (vit_h, vit_l, vit_b, tiny), HQ-SAM's (segment-anything-hq) and the SAM 2
#: family's (transformers)
TEACHER_MODELS = SAM_TYPES + tuple(SAM_HQ_FILES) + tuple(SAM2_RELEASES)


def build_sam_teacher(sam_type: str, checkpoint: Optional[str] = None, device: torch.device = torch.device("cpu"),
                      seed: int = 0) -> Teacher:
    """``--SAM`` + ``--sam_checkpoint`` → a teacher: segment-anything for vit_h|vit_l|vit_b|tiny (as the original),
    segment-anything-hq for HQ-SAM, transformers for the SAM 2 family (each package imported only when used)."""
    if sam_type in SAM2_RELEASES:
        return Sam2Teacher.build(sam_type, checkpoint, device)
    if sam_type in SAM_HQ_FILES:
        return SamHqTeacher.build(sam_type, checkpoint, device)
    return SamTeacher.build(sam_type, checkpoint, device, seed)
