"""What ``decoder.py --mode test`` writes for a click set (the original's three outputs), named by the clicks' suffix
(e.g. ``v5141_v-10795``):

* ``vertex_probability_<suffix>.npy`` — float32 (N,), probability of each vertex being in the segment;
* ``colored_mesh_<suffix>.ply`` — the mesh coloured p·seg_color + (1 − p)·base_color (ASCII PLY, uchar RGB), in the
  mesh file's coordinates (``--ply_coordinates normalized`` for the original's unit-ball ones); with
  ``--show_spheres 1`` instead ``colored_mesh_with_clicks_<suffix>.ply``, with a sphere on each click (green
  positive, red negative, ``--sphere_radius`` in unit-ball units);
* ``render_views_<suffix>.png`` — the 5 × 6 grid of views (elevations −60…60°, azimuths 0…300°): lit grey render,
  the probability overlaid in blue (alpha 0.6·p), clicks marked where visible.
"""
from __future__ import annotations

import os
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np
import torch
import trimesh

from utils.geometry.camera import TEST_GRID_AZIMUTHS_DEG, TEST_GRID_ELEVATIONS_DEG, grid_views
from utils.geometry.mesh import Mesh
from utils.geometry.raster import vertex_pixels, visible_vertices
from utils.geometry.render import probability_overlay, render
from utils.io import replaced_together, require_finite_result, save_numpy, save_ply

POSITIVE_COLOUR = (0, 255, 0)
NEGATIVE_COLOUR = (255, 0, 0)


def require_finite_probability(probability: Union[torch.Tensor, np.ndarray]) -> None:
    """InputError before anything is written if the (N,) probabilities hold a NaN or an infinity (finite features
    and weights cannot give one; a damaged file that slipped past the loaders' checks could)."""
    require_finite_result({"the vertex probabilities": probability}, "the decoder's prediction",
                          "the features or the decoder checkpoint are damaged: train again")


def vertex_colours(probability: torch.Tensor, seg_color: Sequence[int], base_color: Sequence[int],
                   show_seg: bool = True) -> np.ndarray:
    """(N, 3) uint8 round(p·seg + (1 − p)·base); all base colour when ``show_seg`` is off."""
    p = probability.detach().cpu().double().numpy()[:, None]
    if not show_seg:
        p = np.zeros_like(p)
    colours = p * np.asarray(seg_color, dtype=np.float64) + (1 - p) * np.asarray(base_color, dtype=np.float64)
    return np.clip(np.round(colours), 0, 255).astype(np.uint8)


def click_spheres(centres: np.ndarray, positive: np.ndarray, radius: float, positive_colour=POSITIVE_COLOUR,
                  negative_colour=NEGATIVE_COLOUR):
    """Vertices (M, 3), faces (G, 3) and colours (M, 3) of a small sphere on each click."""
    vertices, faces, colours = [], [], []
    offset = 0
    for centre, is_positive in zip(centres, positive):
        sphere = trimesh.creation.uv_sphere(radius=radius, count=[10, 10])
        vertices.append(np.asarray(sphere.vertices) + centre)
        faces.append(np.asarray(sphere.faces) + offset)
        colours.append(np.tile(positive_colour if is_positive else negative_colour, (len(sphere.vertices), 1)))
        offset += len(sphere.vertices)
    return np.concatenate(vertices), np.concatenate(faces), np.concatenate(colours).astype(np.uint8)


def write_test_outputs(mesh: Mesh, probability: torch.Tensor, vertices: torch.Tensor, positive: torch.Tensor,
                       suffix: str, save_dir: str, seg_color: Sequence[int], base_color: Sequence[int],
                       pos_color: Sequence[int], neg_color: Sequence[int], show_seg: bool = True,
                       show_spheres: bool = False, sphere_radius: float = 0.025, normalized: bool = False,
                       render_res: int = 224) -> Dict[str, str]:
    """Write the three outputs, as one set: they replace the earlier outputs of the same clicks together or not at
    all (utils.io.replaced_together), and a probability that is not finite writes nothing. Returns {"npy": path,
    "ply": path, "png": path}."""
    require_finite_probability(probability)
    paths = {"npy": os.path.join(save_dir, f"vertex_probability_{suffix}.npy")}
    points = mesh.vertices if normalized else mesh.original_vertices()
    points = points.detach().cpu().double().numpy()
    faces = mesh.faces.cpu().numpy()
    colours = vertex_colours(probability, seg_color, base_color, show_seg)
    name = f"colored_mesh_{suffix}.ply"
    if show_spheres:
        radius = sphere_radius * (1.0 if normalized else mesh.scale)
        sphere_vertices, sphere_faces, sphere_colours = click_spheres(
            points[vertices.cpu().numpy()], positive.cpu().numpy(), radius, tuple(pos_color), tuple(neg_color))
        faces = np.concatenate([faces, sphere_faces + len(points)])
        points = np.concatenate([points, sphere_vertices])
        colours = np.concatenate([colours, sphere_colours])
        name = f"colored_mesh_with_clicks_{suffix}.ply"
    paths["ply"] = os.path.join(save_dir, name)
    paths["png"] = os.path.join(save_dir, f"render_views_{suffix}.png")
    with replaced_together() as stage:
        save_numpy(probability.detach().cpu().float().numpy(), stage(paths["npy"]))
        save_ply(stage(paths["ply"]), points, faces, colours)
        save_render_grid(mesh, probability, vertices, positive, stage(paths["png"]), render_res)
    return paths


@torch.no_grad()
def save_render_grid(mesh: Mesh, probability: torch.Tensor, vertices: torch.Tensor, positive: torch.Tensor,
                     path: str, res: int = 224) -> None:
    """The 5 × 6 view grid of the probabilities (see the module docstring)."""
    from utils.plots import save_image_grid

    cameras = grid_views().to(mesh.vertices.device)
    grey, fragments = render(mesh, cameras, res)
    images = probability_overlay(grey, fragments, mesh.faces, probability)  # (30, H, W, 3)
    markers = click_markers(fragments, mesh, cameras, vertices, positive)
    titles = [f"elev {e:g}°, azim {a:g}°" for e in TEST_GRID_ELEVATIONS_DEG for a in TEST_GRID_AZIMUTHS_DEG]
    save_image_grid(images, markers, titles, path, columns=len(TEST_GRID_AZIMUTHS_DEG))


def click_markers(fragments, mesh: Mesh, cameras, vertices: torch.Tensor, positive: torch.Tensor
                  ) -> List[List[Tuple[int, int, bool]]]:
    """Per view, (x, y, positive) of each click whose vertex the view shows (for utils.plots.save_image_grid)."""
    vertices = vertices.to(mesh.vertices.device)
    pixels, _ = vertex_pixels(mesh.vertices[vertices], cameras, fragments.res)
    seen = visible_vertices(fragments, mesh, cameras)[:, vertices].cpu()
    return [[(int(pixels[view, c, 1]), int(pixels[view, c, 0]), bool(positive[c]))
             for c in range(len(vertices)) if seen[view, c]] for view in range(len(cameras))]
