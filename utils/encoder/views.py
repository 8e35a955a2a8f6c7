"""Encoder stage 1: random views of the mesh, rendered as the teacher sees them, and the teacher's image embedding
of each (encoder.py ``--generate_random_views 1``; stage 2 is utils/encoder/training.py).

Stage-1 files, in ``encoder_data_dir`` (the original's names; ``<res>`` = render resolution, 224):

* ``<res>/target_save_<i>.png`` — the lit grey view i shown to the teacher (8-bit RGB);
* ``<res>/random_viewing_angles.pt`` — {"elev": [...], "azim": [...]} radians of the views made so far;
* ``sam_f/<res>/target_samf_<i>.pt`` — {"sam_f": 1×256×64×64 embedding, "elev", "azim"} (float32, or float16 with
  ``--embedding_dtype float16``: half the disk, 2 MiB a view);
* ``manifest.json`` (ours) — the mesh, teacher and settings the files were made with; a rerun that differs is
  refused instead of mixing views of two set-ups.
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from typing import List, Tuple

import torch
from tqdm import tqdm

from models.teacher import EMBEDDING_SIZE, Teacher, TeacherView
from utils.errors import InputError
from utils.geometry.camera import Cameras, sample_front_views
from utils.geometry.mesh import Mesh, mesh_signature
from utils.geometry.raster import Fragments
from utils.geometry.render import render
from utils.io import check_manifest, load_torch, require_finite, save_png, save_torch


@dataclass(frozen=True)
class ViewSettings:
    """How views are rendered for the teacher (encoder flags of the original)."""

    res: int = 224
    radius: float = 2.0
    background: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    mesh_color: Tuple[float, float, float] = (2 / 3, 2 / 3, 2 / 3)



def render_teacher_view(mesh: Mesh, cameras: Cameras, settings: ViewSettings) -> Tuple[TeacherView, Fragments]:
    """The view a teacher is shown (one camera): lit uniform mesh colour on the background, and its fragments."""
    image, fragments = render(mesh, cameras, settings.res, background=settings.background, albedo=settings.mesh_color)
    return TeacherView(image[0].cpu(), fragments.pix_to_face[0].cpu()), fragments


class EncoderData:
    """Paths of stage-1 files in ``root`` for renders of ``res`` pixels (see the module docstring)."""

    def __init__(self, root: str, res: int) -> None:
        self.root = root
        self.res = res
        self.image_dir = os.path.join(root, str(res))
        self.embedding_dir = os.path.join(root, "sam_f", str(res))
        self.angles = os.path.join(self.image_dir, "random_viewing_angles.pt")
        self.manifest = os.path.join(root, "manifest.json")

    def image(self, index: int) -> str:
        return os.path.join(self.image_dir, f"target_save_{index}.png")

    def embedding(self, index: int) -> str:
        return os.path.join(self.embedding_dir, f"target_samf_{index}.pt")

    def view_indices(self) -> List[int]:
        """Indices of the views whose embedding exists, in numeric order."""
        if not os.path.isdir(self.embedding_dir):
            return []
        pattern = re.compile(r"target_samf_(\d+)\.pt$")
        found = (pattern.match(name) for name in os.listdir(self.embedding_dir))
        return sorted(int(match.group(1)) for match in found if match)

    def load_embedding(self, index: int) -> Tuple[torch.Tensor, float, float]:
        """(1, 256, 64, 64) float32 embedding of view ``index`` and its (elev, azim) in radians."""
        record = load_torch(self.embedding(index), "encoder view embedding")
        try:
            embedding = record["sam_f"].float().reshape(1, -1, EMBEDDING_SIZE, EMBEDDING_SIZE)
            elev, azim = float(record["elev"]), float(record["azim"])
        except (KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise InputError(f"encoder view embedding {self.embedding(index)} is not in the expected format "
                             f"({type(exc).__name__}: {exc})") from None
        require_finite({"sam_f": embedding, "elev": torch.tensor(elev), "azim": torch.tensor(azim)},
                       "encoder view embedding", self.embedding(index))
        return embedding, elev, azim


def generate_views(mesh: Mesh, teacher: Teacher, data_dir: str, n_views: int, *, seed: int, frontview_std: float,
                   settings: ViewSettings, embedding_dtype: torch.dtype = torch.float32, progress: bool = True) -> int:
    """Stage 1: render ``n_views`` Gaussian front views (utils/geometry/camera.py) and store the teacher's embedding of
    each.

    Views are drawn from a generator seeded with ``seed`` one after another, so view i is the same whatever
    ``n_views`` is; views already on disk are kept (a killed run resumes; a larger ``n_views`` extends the data).

    Returns:
        the number of views encoded by the teacher in this call.
    """
    data = EncoderData(data_dir, settings.res)
    check_manifest(data.manifest, {
        "mesh": mesh_signature(mesh), "num_vertices": mesh.num_vertices, "num_faces": mesh.num_faces,
        "teacher": teacher.description, "seed": seed, "frontview_std": frontview_std,
        "embedding_dtype": str(embedding_dtype).replace("torch.", ""), **asdict(settings),
    }, has_data=bool(data.view_indices()), remedy="use another --encoder_data_dir or delete it")
    cameras = sample_front_views(n_views, frontview_std, torch.Generator().manual_seed(seed))
    cameras = Cameras(cameras.elev, cameras.azim, settings.radius)
    encoded = 0
    bar = tqdm(range(n_views), desc="encoder views", unit="view", disable=not progress)
    for index in bar:
        if os.path.exists(data.embedding(index)) and os.path.exists(data.image(index)):
            continue
        view, _ = render_teacher_view(mesh, cameras[index], settings)
        embedding = teacher.encode(view).embedding.detach().to("cpu", embedding_dtype)
        save_png(view.image, data.image(index))
        save_torch({"sam_f": embedding, "elev": cameras.elev[index].clone(), "azim": cameras.azim[index].clone()},
                   data.embedding(index))
        save_torch({"elev": cameras.elev[:index + 1].tolist(), "azim": cameras.azim[:index + 1].tolist()},
                   data.angles)
        encoded += 1
    if not os.path.exists(data.angles) or encoded:
        save_torch({"elev": cameras.elev.tolist(), "azim": cameras.azim.tolist()}, data.angles)
    return encoded
