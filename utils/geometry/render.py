"""Shading from fragments: the lit RGB image the 2D teacher sees (the original's kaolin "RGB mode"), and the blue
probability overlay every picture of a segment uses.

:func:`render` is the one call from a mesh and cameras to the lit grey views (rasterize, then shade) and their
fragments, which callers reuse for visibility, masks and overlays.

Per-vertex colours are interpolated and clamped to [0, 1], multiplied by flat spherical-harmonic lighting evaluated
on the camera-space unit normal n of the face seen at the pixel,

    L = 0.28209 + 0.48860 · (n_x + n_y + n_z)        (kaolin's SH with coefficients 1, 1, 1, 1, 0, …)

clamped to [0, 1] again; pixels showing no face get the background colour. The default uniform grey albedo 2/3 gives
a brightest value of ≈ 0.75. :func:`to_uint8` quantises as torchvision's ``save_image`` does (the original saved
each render as an 8-bit PNG and fed the re-read PNG to SAM).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

from utils.geometry.camera import Cameras
from utils.geometry.raster import Fragments, interpolate, rasterize

SH_CONSTANT = 0.28209
SH_LINEAR = 0.48860
DEFAULT_ALBEDO = (2 / 3, 2 / 3, 2 / 3)
WHITE = (1.0, 1.0, 1.0)
OVERLAY_RGB = (30, 144, 255)  # segment overlay colour (0-255)
OVERLAY_OPACITY = 0.6  # the overlay's opacity where the probability is 1

Colour = Union[Sequence[float], torch.Tensor]


def camera_face_normals(mesh, cameras: Cameras) -> torch.Tensor:
    """(B, F, 3) float32 unit face normals in camera space (zero for zero-area faces)."""
    normals = mesh.face_normals()
    return torch.einsum("bij,fj->bfi", cameras.to(normals.device).rotations(), normals)


def flat_sh_lighting(fragments: Fragments, face_normals: torch.Tensor) -> torch.Tensor:
    """(B, H, W) float32 flat SH light intensity of the face seen at each pixel (0 on background pixels).

    Args:
        face_normals: (B, F, 3) camera-space unit normals from :func:`camera_face_normals`.
    """
    intensity = SH_CONSTANT + SH_LINEAR * face_normals.sum(dim=-1)  # (B, F)
    pix_to_face = fragments.pix_to_face.to(face_normals.device)
    per_pixel = torch.gather(intensity, 1, pix_to_face.clamp_min(0).flatten(1)).view_as(pix_to_face)
    return torch.where(pix_to_face >= 0, per_pixel, torch.zeros_like(per_pixel))


def render_rgb(
    mesh,
    cameras: Cameras,
    fragments: Fragments,
    vertex_colors: Optional[torch.Tensor] = None,
    albedo: Colour = DEFAULT_ALBEDO,
    lighting: bool = True,
    background: Colour = WHITE,
) -> torch.Tensor:
    """The original's RGB render of a mesh from its fragments.

    Args:
        mesh: a utils.geometry.mesh.Mesh.
        cameras: the B views the fragments were rasterized in.
        fragments: (B, H, W) fragments of ``mesh`` in ``cameras``.
        vertex_colors: (N, 3) per-vertex RGB, values outside [0, 1] are clamped after interpolation; None → the
            uniform ``albedo``.
        lighting: multiply by flat SH lighting (False: unlit colours, as the original's data-generation check).
        background: RGB of pixels that show no face.
    Returns:
        (B, H, W, 3) float32 in [0, 1].
    """
    device = mesh.vertices.device
    if vertex_colors is None:
        colour = torch.as_tensor(albedo, dtype=torch.float32, device=device).clamp(0, 1)
        image = colour.expand(*fragments.pix_to_face.shape, 3).clone()
    else:
        image = interpolate(fragments, mesh.faces, vertex_colors.float().to(device)).clamp(0, 1)
    if lighting:
        image = (image * flat_sh_lighting(fragments, camera_face_normals(mesh, cameras)).unsqueeze(-1)).clamp(0, 1)
    background = torch.as_tensor(background, dtype=torch.float32, device=device)
    return torch.where(fragments.coverage.to(device).unsqueeze(-1), image, background)


def render_lit_grey(mesh, cameras: Cameras, fragments: Fragments, background: Colour = WHITE,
                    albedo: Colour = DEFAULT_ALBEDO) -> torch.Tensor:
    """(B, H, W, 3) uint8: the lit view of the uniformly coloured mesh (default grey 2/3 on white) the teacher sees."""
    return to_uint8(render_rgb(mesh, cameras, fragments, albedo=albedo, background=background))


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] → uint8, rounding as torchvision's ``save_image`` (x·255 + 0.5, truncated)."""
    return (images * 255 + 0.5).clamp(0, 255).to(torch.uint8)


def render(mesh, cameras: Cameras, res: int, background: Colour = WHITE, albedo: Colour = DEFAULT_ALBEDO
           ) -> Tuple[torch.Tensor, Fragments]:
    """Rasterize ``mesh`` in ``cameras`` at ``res`` × ``res`` and shade it as the teacher sees it.

    Returns:
        (B, H, W, 3) uint8 lit views (:func:`render_lit_grey`) and the (B, H, W) fragments they were shaded from.
    """
    fragments = rasterize(mesh, cameras, res)
    return render_lit_grey(mesh, cameras, fragments, background=background, albedo=albedo), fragments


def overlay(images: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Blend the overlay colour into images: ``(1 − a)·image + a·colour`` with ``a = OVERLAY_OPACITY · weight``.

    Args:
        images: (…, H, W, 3) float in [0, 1].
        weight: (…, H, W) float in [0, 1] (a probability, or 1 inside a mask).
    Returns:
        (…, H, W, 3) float64 in [0, 1].
    """
    alpha = OVERLAY_OPACITY * weight[..., None]
    return (1 - alpha) * images + alpha * (np.array(OVERLAY_RGB) / 255)


def probability_overlay(grey: torch.Tensor, fragments: Fragments, faces: torch.Tensor,
                        probability: torch.Tensor) -> np.ndarray:
    """(B, H, W, 3) float64 pictures of a segment: per-vertex ``probability`` (N,) interpolated over the fragments and
    overlaid (:func:`overlay`) on the (B, H, W, 3) uint8 views ``grey``."""
    weight = interpolate(fragments, faces, probability.to(faces.device).float().unsqueeze(1))[..., 0]
    return overlay(grey.float().cpu().numpy() / 255, weight.clamp(0, 1).cpu().numpy())
