"""Encoder stage 2: distil the stored teacher embeddings into the Mesh Feature Field (encoder.py ``--start_training
1``), and the qualitative test view (``--test 1``).

Stage-2 files, in ``encoder_model_dir``: ``encoder_checkpoint.pth`` = {encoder_state_dict, optimizer_state_dict,
losses} (the original's keys), ``pred_f.pth`` = (N, 256) float32 CPU tensor of per-vertex features (the original's
format; the decoder reads it), ``encoder_loss.png``; while training runs, ``encoder_training_state.pth`` lets a
killed run continue (removed at the end). ``--test 1`` writes ``test_image.png``, ``test_features_<name>.png`` and
``test_loss.txt``.
"""
from __future__ import annotations

import os
from dataclasses import asdict
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from models.build_feature_field import FieldSettings
from models.feature_field import MeshFeatureField
from models.teacher import EMBEDDING_SIZE, Teacher
from utils.encoder.views import EncoderData, ViewSettings, render_teacher_view
from utils.errors import InputError
from utils.geometry.camera import Cameras
from utils.geometry.mesh import Mesh, mesh_signature
from utils.geometry.raster import PixelWeights, rasterize
from utils.io import load_json, load_torch, replaced_together, require_finite_result, save_png, save_text, save_torch
from utils.paths import ENCODER_CHECKPOINT_FILE, FEATURES_FILE
from utils.runtime import require_finite_step, seed_everything

FEATURE_RES = EMBEDDING_SIZE  # features are rendered at the teacher's 64×64 embedding grid
STATE_NAME = "encoder_training_state.pth"
SAVE_STATE_EVERY = 100  # steps between resumable training states
RASTER_BATCH = 32  # views rasterized per call when preparing training


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


def train_feature_field(mesh: Mesh, data_dir: str, model_dir: str, field: FieldSettings, settings: ViewSettings, *,
                        learning_rate: float, num_epochs: int, seed: int, data_percentage: float = 1.0,
                        device: torch.device = torch.device("cpu"), verbose: bool = True,
                        progress: bool = True) -> MeshFeatureField:
    """Stage 2, as the original's: fit the feature field to the stored embeddings, view by view, for ``num_epochs``.

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
        losses.append(loss.item())
        require_finite_step(losses[-1], f"encoder training, step {step + 1}", learning_rate)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if (step + 1) % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.5f}")
        if (step + 1) % SAVE_STATE_EVERY == 0 and step + 1 < total:
            require_finite_step(losses[-1], f"encoder training, step {step + 1}", learning_rate,
                                list(model.parameters()))
            save_torch({"encoder_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                        "losses": losses, "step": step + 1, "config": config}, state_path)
    save_feature_field(model, optimizer, losses, mesh_device, model_dir)
    if os.path.exists(state_path):
        os.remove(state_path)
    return model


def save_feature_field(model: MeshFeatureField, optimizer: Optional[torch.optim.Optimizer], losses: Sequence[float],
                       mesh: Mesh, model_dir: str) -> None:
    """``encoder_checkpoint.pth`` (original keys), ``pred_f.pth`` ((N, 256) float32 CPU) and the loss curve: the two
    files replace an earlier pair together, and only when the features are finite."""
    features = model.features(mesh.vertices).float().cpu().contiguous()
    require_finite_result({"pred_f": features}, "the trained feature field",
                          "training diverged: lower --learning_rate")
    with replaced_together() as stage:
        save_torch({"encoder_state_dict": model.state_dict(),
                    "optimizer_state_dict": optimizer.state_dict() if optimizer is not None else {},
                    "losses": list(losses)}, stage(os.path.join(model_dir, ENCODER_CHECKPOINT_FILE)))
        save_torch(features, stage(os.path.join(model_dir, FEATURES_FILE)))
    if losses:
        from utils.plots import save_loss_plot

        save_loss_plot(losses, os.path.join(model_dir, "encoder_loss.png"), "encoder training (MSE per view)")


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
