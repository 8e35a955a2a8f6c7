"""The encoder's three stages (reference §7): teacher embeddings of random views, distillation into the Mesh Feature
Field, and the qualitative test. encoder.py parses flags and calls these.

Stage-1 files, in ``encoder_data_dir`` (the original's names; ``<res>`` = render resolution, 224):

* ``<res>/target_save_<i>.png`` — the lit grey view i shown to the teacher (8-bit RGB);
* ``<res>/random_viewing_angles.pt`` — {"elev": [...], "azim": [...]} radians of the views made so far;
* ``sam_f/<res>/target_samf_<i>.pt`` — {"sam_f": 1×256×64×64 embedding, "elev", "azim"} (float32, or float16 with
  ``--embedding_dtype float16``: half the disk, 2 MiB a view);
* ``manifest.json`` (ours) — the mesh, teacher and settings the files were made with; a rerun that differs is
  refused instead of mixing views of two set-ups.

Stage-2 files, in ``encoder_model_dir``: ``encoder_checkpoint.pth`` = {encoder_state_dict, optimizer_state_dict,
losses} (the original's keys), ``pred_f.pth`` = (N, 256) float32 CPU tensor of per-vertex features (the original's
format; the decoder reads it), ``encoder_loss.png``; while training runs, ``encoder_training_state.pth`` lets a
killed run continue (removed at the end). ``--test 1`` writes ``test_image.png``, ``test_features_<name>.png`` and
``test_loss.txt``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from models.feature_field import MeshFeatureField, load_feature_field_state
from models.teacher import EMBEDDING_SIZE, Teacher, TeacherView
from utils.camera import Cameras, sample_front_views
from utils.errors import InputError
from utils.io import load_json, load_torch, save_json, save_png, save_text, save_torch
from utils.mesh import Mesh
from utils.raster import Fragments, PixelWeights, rasterize
from utils.render import render_lit_grey
from utils.runtime import seed_everything

FEATURE_RES = EMBEDDING_SIZE  # features are rendered at the teacher's 64×64 embedding grid
CHECKPOINT_NAME = "encoder_checkpoint.pth"
FEATURES_NAME = "pred_f.pth"
STATE_NAME = "encoder_training_state.pth"
SAVE_STATE_EVERY = 100  # steps between resumable training states
RASTER_BATCH = 32  # views rasterized per call when preparing training


@dataclass(frozen=True)
class ViewSettings:
    """How views are rendered for the teacher (encoder flags of the original)."""

    res: int = 224
    radius: float = 2.0
    background: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    mesh_color: Tuple[float, float, float] = (2 / 3, 2 / 3, 2 / 3)


@dataclass(frozen=True)
class FieldSettings:
    """Mesh Feature Field architecture flags."""

    depth: int = 4
    width: int = 256
    n_classes: int = 256
    positional_encoding: bool = True
    sigma: float = 5.0

    def build(self) -> MeshFeatureField:
        return MeshFeatureField(self.depth, self.width, self.n_classes, self.positional_encoding, self.sigma)


def mesh_signature(mesh: Mesh) -> str:
    """A short hash of the normalised vertices and faces: data made for another mesh is recognised."""
    digest = hashlib.sha1(mesh.vertices.detach().cpu().numpy().tobytes())
    digest.update(mesh.faces.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def render_teacher_view(mesh: Mesh, cameras: Cameras, settings: ViewSettings) -> Tuple[TeacherView, Fragments]:
    """The view a teacher is shown (one camera): lit uniform mesh colour on the background, and its fragments."""
    fragments = rasterize(mesh, cameras, settings.res)
    image = render_lit_grey(mesh, cameras, fragments, background=settings.background, albedo=settings.mesh_color)
    return TeacherView(image[0].cpu(), fragments.pix_to_face[0].cpu()), fragments


# ------------------------------------------------------------------------------------------------------------------
# Stage 1: teacher embeddings of random views
# ------------------------------------------------------------------------------------------------------------------
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
            return embedding, float(record["elev"]), float(record["azim"])
        except (KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise InputError(f"encoder view embedding {self.embedding(index)} is not in the expected format "
                             f"({type(exc).__name__}: {exc})") from None


def _check_manifest(data: EncoderData, expected: Dict[str, object]) -> None:
    """Write the manifest of a new data folder, or refuse to mix in views made with another set-up."""
    expected = json.loads(json.dumps(expected))  # as it reads back (tuples become lists)
    if not os.path.exists(data.manifest):
        if data.view_indices():
            raise InputError(f"{data.root} holds encoder views without a manifest.json (made by another program?); "
                             f"use another --encoder_data_dir")
        save_json(expected, data.manifest)
        return
    found = load_json(data.manifest, "encoder data manifest")
    differing = [key for key in expected if found.get(key) != expected[key]]
    if differing:
        key = differing[0]
        raise InputError(f"{data.root} was made with {key} = {found.get(key)!r}, not {expected[key]!r}; use another "
                         f"--encoder_data_dir or delete it")


def generate_views(mesh: Mesh, teacher: Teacher, data_dir: str, n_views: int, seed: int, frontview_std: float,
                   settings: ViewSettings, embedding_dtype: torch.dtype = torch.float32, progress: bool = True) -> int:
    """Stage 1: render ``n_views`` Gaussian front views (reference §5.3) and store the teacher's embedding of each.

    Views are drawn from a generator seeded with ``seed`` one after another, so view i is the same whatever
    ``n_views`` is; views already on disk are kept (a killed run resumes; a larger ``n_views`` extends the data).

    Returns:
        the number of views encoded by the teacher in this call.
    """
    data = EncoderData(data_dir, settings.res)
    _check_manifest(data, {
        "mesh": mesh_signature(mesh), "num_vertices": mesh.num_vertices, "num_faces": mesh.num_faces,
        "teacher": teacher.description, "seed": seed, "frontview_std": frontview_std,
        "embedding_dtype": str(embedding_dtype).replace("torch.", ""), **asdict(settings),
    })
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


# ------------------------------------------------------------------------------------------------------------------
# Stage 2: distillation
# ------------------------------------------------------------------------------------------------------------------
def feature_loss(model: MeshFeatureField, vertices: torch.Tensor, pixels: PixelWeights,
                 embedding: torch.Tensor) -> torch.Tensor:
    """MSE between features rendered into a view and the teacher's embedding, over covered pixels × channels.

    The network runs only on the vertices the covered pixels touch (same loss and gradients as on all vertices).

    Args:
        vertices: (N, 3) normalised positions.
        pixels: the view's covered pixels at 64×64.
        embedding: (1, C, 64, 64) teacher embedding.
    """
    features = model(vertices[pixels.vertices])  # (T, C)
    rendered = pixels.interpolate(features)  # (P, C)
    target = embedding.reshape(embedding.shape[1], -1)[:, pixels.pixels].T  # (P, C)
    return torch.mean((rendered - target) ** 2)


def prepare_views(mesh: Mesh, cameras: Cameras, res: int = FEATURE_RES) -> List[PixelWeights]:
    """Rasterize every training view once (in batches) and keep its covered pixels' interpolation weights."""
    prepared = []
    for start in range(0, len(cameras), RASTER_BATCH):
        batch = cameras[start:start + RASTER_BATCH]
        fragments = rasterize(mesh, batch, res)
        prepared += [PixelWeights.from_fragments(fragments, mesh.faces, view) for view in range(len(batch))]
    return prepared


def _training_views(data: EncoderData, data_percentage: float, seed: int) -> Tuple[List[int], Cameras]:
    """The views to train on (all found, or a seeded random share of them, in index order) and their cameras."""
    indices = data.view_indices()
    if not indices:
        raise InputError(f"no encoder views in {data.embedding_dir}: run encoder.py --generate_random_views 1 first")
    if data_percentage < 1:
        count = max(1, round(data_percentage * len(indices)))
        chosen = torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed))[:count]
        indices = [indices[i] for i in sorted(chosen.tolist())]
    angles = load_torch(data.angles, "view angles file") if os.path.exists(data.angles) else None
    if angles is None or len(angles.get("elev", [])) <= indices[-1]:
        records = [data.load_embedding(index)[1:] for index in indices]  # older data: read angles from each view
        elev, azim = [r[0] for r in records], [r[1] for r in records]
    else:
        elev = [float(angles["elev"][index]) for index in indices]
        azim = [float(angles["azim"][index]) for index in indices]
    return indices, Cameras(torch.tensor(elev), torch.tensor(azim))


def train_feature_field(mesh: Mesh, data_dir: str, model_dir: str, field: FieldSettings, settings: ViewSettings,
                        learning_rate: float, num_epochs: int, seed: int, data_percentage: float = 1.0,
                        device: torch.device = torch.device("cpu"), verbose: bool = True,
                        progress: bool = True) -> MeshFeatureField:
    """Stage 2 (reference §7.2): fit the feature field to the stored embeddings, view by view, for ``num_epochs``.

    Adam (lr ``learning_rate``), batch of one view, views in index order; MSE on covered pixels at 64×64. Writes
    ``encoder_checkpoint.pth`` and ``pred_f.pth``; a killed run continues from its last saved state and ends with
    the same result.
    """
    data = EncoderData(data_dir, settings.res)
    if os.path.exists(data.manifest):
        manifest = load_json(data.manifest, "encoder data manifest")
        if manifest.get("mesh") != mesh_signature(mesh):
            raise InputError(f"the encoder views in {data_dir} were made for another mesh "
                             f"({manifest.get('num_vertices')} vertices, this one has {mesh.num_vertices})")
    indices, cameras = _training_views(data, data_percentage, seed)
    seed_everything(seed)
    model = field.build().to(device)  # the Fourier matrix is drawn first after seeding, as in the original
    if verbose:
        print(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    config = {"seed": seed, "learning_rate": learning_rate, "num_epochs": num_epochs, "views": indices,
              "mesh": mesh_signature(mesh), "field": asdict(field), "radius": settings.radius}
    state_path = os.path.join(model_dir, STATE_NAME)
    losses: List[float] = []
    start = 0
    if os.path.exists(state_path):
        state = load_torch(state_path, "encoder training state", map_location=device)
        if state.get("config") == config:
            model.load_state_dict(state["encoder_state_dict"])
            optimizer.load_state_dict(state["optimizer_state_dict"])
            losses, start = list(state["losses"]), int(state["step"])
            print(f"resuming encoder training at step {start} of {num_epochs * len(indices)}")

    mesh_device = mesh.to(device)
    cameras = Cameras(cameras.elev, cameras.azim, settings.radius)
    views = prepare_views(mesh_device, cameras)
    vertices = mesh_device.vertices
    total = num_epochs * len(indices)
    bar = tqdm(range(start, total), desc="encoder training", unit="step", initial=start, total=total,
               disable=not progress)
    for step in bar:
        position = step % len(indices)
        embedding = data.load_embedding(indices[position])[0].to(device)
        loss = feature_loss(model, vertices, views[position], embedding)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.5f}")
        if (step + 1) % SAVE_STATE_EVERY == 0 and step + 1 < total:
            save_torch({"encoder_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                        "losses": losses, "step": step + 1, "config": config}, state_path)
    save_feature_field(model, optimizer, losses, mesh_device, model_dir)
    if os.path.exists(state_path):
        os.remove(state_path)
    return model


def save_feature_field(model: MeshFeatureField, optimizer: Optional[torch.optim.Optimizer], losses: Sequence[float],
                       mesh: Mesh, model_dir: str) -> None:
    """``encoder_checkpoint.pth`` (original keys), ``pred_f.pth`` ((N, 256) float32 CPU) and the loss curve."""
    save_torch({"encoder_state_dict": model.state_dict(),
                "optimizer_state_dict": optimizer.state_dict() if optimizer is not None else {},
                "losses": list(losses)}, os.path.join(model_dir, CHECKPOINT_NAME))
    save_torch(model.features(mesh.vertices).float().cpu().contiguous(), os.path.join(model_dir, FEATURES_NAME))
    if losses:
        from utils.plots import save_loss_plot

        save_loss_plot(losses, os.path.join(model_dir, "encoder_loss.png"), "encoder training (MSE per view)")


def load_feature_field(model_dir: str, field: FieldSettings, seed: int,
                       device: torch.device = torch.device("cpu")) -> MeshFeatureField:
    """The trained field from ``encoder_checkpoint.pth`` (ours or the original's, see load_feature_field_state)."""
    path = os.path.join(model_dir, CHECKPOINT_NAME)
    checkpoint = load_torch(path, "encoder checkpoint")
    seed_everything(seed)
    model = field.build()
    try:
        load_feature_field_state(model, checkpoint["encoder_state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        detail = str(exc).strip().splitlines()
        raise InputError(f"encoder checkpoint {path} does not fit --depth {field.depth} --width {field.width} "
                         f"--n_classes {field.n_classes}: {detail[1].strip() if len(detail) > 1 else detail[0]}"
                         ) from None
    return model.to(device)


# ------------------------------------------------------------------------------------------------------------------
# Test
# ------------------------------------------------------------------------------------------------------------------
@torch.no_grad()
def test_feature_field(mesh: Mesh, model: MeshFeatureField, teacher: Teacher, model_dir: str, name: str,
                       elev_deg: float, azim_deg: float, settings: ViewSettings) -> float:
    """The original's qualitative test view: ``test_image.png``, the test loss (printed and in ``test_loss.txt``),
    and ``test_features_<name>.png`` comparing the teacher's embedding with the rendered features (a shared
    3-component PCA as RGB)."""
    device = next(model.parameters()).device
    mesh = mesh.to(device)
    camera = Cameras.from_degrees(elev_deg, azim_deg, settings.radius)
    view, _ = render_teacher_view(mesh, camera, settings)
    save_png(view.image, os.path.join(model_dir, "test_image.png"))
    embedding = teacher.encode(view).embedding.float().to(device)
    pixels = PixelWeights.from_fragments(rasterize(mesh, camera, FEATURE_RES), mesh.faces)
    loss = float(feature_loss(model, mesh.vertices, pixels, embedding))
    print(f"test loss (elev {elev_deg}°, azim {azim_deg}°): {loss:.6f}")
    save_text(f"{loss:.8f}\n", os.path.join(model_dir, "test_loss.txt"))

    from utils.plots import save_feature_comparison

    rendered = torch.zeros(FEATURE_RES * FEATURE_RES, embedding.shape[1], device=device)
    rendered[pixels.pixels] = pixels.interpolate(model(mesh.vertices[pixels.vertices]))
    save_feature_comparison(view.image, embedding[0], rendered.T.reshape(embedding.shape[1:]), pixels.pixels,
                            os.path.join(model_dir, f"test_features_{name}.png"))
    return loss
