"""Figures (matplotlib, headless), written atomically."""
from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from utils.geometry.render import overlay  # noqa: E402
from utils.io import atomic_path  # noqa: E402


def save_figure(figure, path: str) -> None:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)


def save_loss_plot(losses: Sequence[float], path: str, title: str, window: int = 20) -> None:
    """Loss per step (light) and its running mean over ``window`` steps, log scale."""
    values = np.asarray(losses, dtype=np.float64)
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot(values, color="tab:blue", alpha=0.3, linewidth=0.8, label="per step")
    if len(values) >= window:
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        axis.plot(np.arange(window - 1, len(values)), smooth, color="tab:blue", label=f"mean of {window}")
    if (values > 0).all():
        axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.set_title(title)
    axis.legend()
    save_figure(figure, path)


def save_feature_comparison(image: torch.Tensor, teacher: torch.Tensor, rendered: torch.Tensor,
                            covered: torch.Tensor, path: str) -> None:
    """Render | teacher embedding | rendered features, the two embeddings coloured by one 3-component PCA.

    Args:
        image: (H, W, 3) uint8 view.
        teacher, rendered: (C, 64, 64) embeddings.
        covered: (P,) flat indices of the 64×64 cells the mesh covers (the PCA is fitted on the teacher there).
    """
    channels, size = teacher.shape[0], teacher.shape[-1]
    teacher_flat = teacher.reshape(channels, -1).T.float().cpu()
    rendered_flat = rendered.reshape(channels, -1).T.float().cpu()
    covered = covered.cpu()
    sample = teacher_flat[covered] if len(covered) >= 3 else teacher_flat
    mean = sample.mean(dim=0)
    _, _, basis = torch.pca_lowrank(sample - mean, q=3, center=False)
    low = ((sample - mean) @ basis).amin(dim=0)
    high = ((sample - mean) @ basis).amax(dim=0)

    def colour(flat: torch.Tensor) -> np.ndarray:
        rgb = (((flat - mean) @ basis - low) / (high - low).clamp_min(1e-8)).clamp(0, 1)
        mask = torch.zeros(size * size, dtype=torch.bool)
        mask[covered] = True
        rgb[~mask] = 1.0
        return rgb.reshape(size, size, 3).numpy()

    figure, axes = plt.subplots(1, 3, figsize=(12, 4))
    for axis, picture, title in zip(axes, [image.cpu().numpy(), colour(teacher_flat), colour(rendered_flat)],
                                    ["view", "teacher embedding (PCA)", "mesh feature field (PCA)"]):
        axis.imshow(picture, interpolation="nearest")
        axis.set_title(title)
        axis.axis("off")
    save_figure(figure, path)


def save_sample_preview(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], points: Sequence[np.ndarray],
                        signs: Sequence[np.ndarray], titles: Sequence[str], path: str, columns: int = 4) -> None:
    """A grid of samples: each view with its mask in blue and its clicks (green positive, red negative).

    Args:
        images: (H, W, 3) uint8 views; masks: (H, W) bool; points: (K, 2) (x, y) pixels; signs: (K,) ±1.
    """
    rows = max(1, (len(images) + columns - 1) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, image, mask, point, sign, title in zip(axes.ravel(), images, masks, points, signs, titles):
        axis.imshow(overlay(image.astype(np.float32) / 255, mask.astype(np.float32)))
        colours = ["lime" if s > 0 else "red" for s in sign]
        axis.scatter(point[:, 0], point[:, 1], c=colours, s=30, edgecolors="black", linewidths=0.5)
        axis.set_title(title, fontsize=8)
    save_figure(figure, path)


def save_image_grid(images: Sequence[np.ndarray], markers: Sequence[Sequence[tuple]], titles: Sequence[str],
                    path: str, columns: int, cell_inches: float = 3.0, title_size: float = 9) -> None:
    """Images in a grid, each with click markers (x, y, positive) drawn lime (positive) or red (negative); a title
    starting a row whose other titles are empty is written over the whole row."""
    rows = max(1, (len(images) + columns - 1) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(cell_inches * columns, cell_inches * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for index, (axis, image, marks, title) in enumerate(zip(axes.ravel(), images, markers, titles)):
        axis.imshow(np.clip(image, 0, 1))
        for x, y, positive in marks:
            axis.scatter([x], [y], c="lime" if positive else "red", s=40, edgecolors="black", linewidths=0.6)
        row_title = index % columns == 0 and not any(titles[index + 1:index + columns])
        if columns > 1 and title and row_title:  # over the whole row, from its left edge
            axis.set_title(title, fontsize=title_size, loc="left")
        else:
            axis.set_title(title, fontsize=title_size)
    save_figure(figure, path)
