"""The hammer demo: where its files are, its click cases, slim checkpoints, checking downloaded assets, the summary
picture. Used by run_demo.sh, download_demo_data.sh and demo/make_demo.py:

    python -m utils.app.demo cases               # the demo's click sets, one per line (for run_demo.sh)
    python -m utils.app.demo summary             # demo/hammer/decoder/quickstart.png from the three cases' outputs
    python -m utils.app.demo check [DIR]         # the installed demo (or DIR/{hammer.obj,pred_f.pth,
                                             #   decoder_checkpoint.pth}) loads and agrees
    python -m utils.app.demo slim SRC DST        # a decoder checkpoint without its optimiser state
"""
from __future__ import annotations

import os
import sys
from typing import List

import numpy as np
import torch

from utils.errors import InputError, run_cli
from utils.io import load_json, load_torch, save_torch
from utils.paths import DECODER_CHECKPOINT_FILE, FEATURES_FILE, repo_path

MESH = repo_path("meshes", "hammer.obj")
LABELS = repo_path("meshes", "hammer_labels.npy")
FEATURES = repo_path("demo", "hammer", "encoder", FEATURES_FILE)
DECODER_DIR = repo_path("demo", "hammer", "decoder")
CHECKPOINT = os.path.join(DECODER_DIR, DECODER_CHECKPOINT_FILE)
CLICKS = repo_path("demo", "hammer", "clicks.json")


def demo_cases(path: str = CLICKS) -> List[List[str]]:
    """The three demo click sets (``--select_vertices`` tokens) of the installed demo."""
    cases = load_json(path, "demo clicks").get("cases")
    if not cases:
        raise InputError(f"{path} lists no click cases")
    return cases


def slim_checkpoint(source: str, destination: str) -> None:
    """Copy a decoder checkpoint without its optimiser state (the rest of the original's keys stay)."""
    checkpoint = load_torch(source, "decoder checkpoint")
    checkpoint["optimizer_state_dict"] = {}
    save_torch(checkpoint, destination)


def check_assets(mesh_path: str = MESH, features_path: str = FEATURES, checkpoint_path: str = CHECKPOINT) -> str:
    """Check that a demo's mesh, features and decoder checkpoint load and fit together; returns a summary."""
    from models.build_decoder import DecoderSettings, load_decoder
    from models.build_feature_field import load_features
    from utils.geometry.mesh_files import load_mesh

    mesh = load_mesh(mesh_path)
    features = load_features(features_path, mesh)
    load_decoder(checkpoint_path, DecoderSettings())
    return f"{mesh.num_vertices} vertices, features {tuple(features.shape)}, decoder checkpoint loads"


PART_NAMES = {0: "handle", 1: "head", 2: "striking face", 3: "claw"}  # meshes/hammer_labels.npy's parts


def vertex_parts(mesh, labels_path: str = LABELS) -> torch.Tensor:
    """(N,) int64 a part each vertex of the hammer belongs to (one of its faces' labels)."""
    from utils.geometry.mesh_files import load_face_labels

    labels = torch.from_numpy(load_face_labels(labels_path, mesh.num_faces))
    vertex_part = torch.full((mesh.num_vertices,), -1, dtype=torch.int64)
    vertex_part[mesh.faces.reshape(-1)] = labels.repeat_interleave(3)
    return vertex_part


def describe_case(vertices: torch.Tensor, positive: torch.Tensor, vertex_part: torch.Tensor) -> str:
    """A case's clicks in words, by the parts they are on: "1 positive click on the head", "2 positive clicks (head,
    striking face)", "1 positive click on the head, 1 negative on the claw"."""
    def named(chosen: List[int]) -> str:
        parts = [PART_NAMES.get(int(vertex_part[v]), "?") for v in chosen]
        return f"on the {parts[0]}" if len(parts) == 1 else f"({', '.join(parts)})"

    on = [int(v) for v, p in zip(vertices.tolist(), positive.tolist()) if p]
    off = [int(v) for v, p in zip(vertices.tolist(), positive.tolist()) if not p]
    words = f"{len(on)} positive click{'s' if len(on) != 1 else ''} {named(on)}" if on else "no positive click"
    return words + (f", {len(off)} negative {named(off)}" if off else "")


def choose_demo_cases(mesh_path: str = MESH, labels_path: str = LABELS) -> List[List[str]]:
    """Click cases for the bundled hammer: one positive click on the head; on the head and the striking face; on the
    head with a negative click on the claw. Each click is the vertex of its part nearest to a hand-picked point."""
    from utils.geometry.mesh_files import load_mesh

    mesh = load_mesh(mesh_path)
    points = mesh.original_vertices()
    vertex_part = vertex_parts(mesh, labels_path)

    def nearest(part: int, target) -> int:
        distance = (points - torch.tensor(target, dtype=torch.float32)).norm(dim=1)
        return int(torch.where(vertex_part == part, distance, float("inf")).argmin())

    head, face, claw = nearest(1, (0.5, 12.3, 0.0)), nearest(2, (8.2, 10.5, 0.0)), nearest(3, (-10.0, 8.0, 0.0))
    return [[str(head)], [str(head), str(face)], [str(head), f"-{claw}"]]


def save_summary(path: str = os.path.join(DECODER_DIR, "quickstart.png"), size: int = 320) -> str:
    """The picture of the README: each demo case's segmentation (blue) from two views, clicks marked, each row titled
    with its clicks in words and the ``--select_vertices`` that make it."""
    from utils.decoder.clicks import click_suffix, parse_clicks
    from utils.decoder.outputs import click_markers
    from utils.geometry.camera import Cameras
    from utils.geometry.mesh_files import load_mesh
    from utils.geometry.render import probability_overlay, render
    from utils.plots import save_image_grid

    mesh = load_mesh(MESH)
    vertex_part = vertex_parts(mesh)
    cameras = Cameras.from_degrees([20, 20], [60, 240])
    grey, fragments = render(mesh, cameras, size)
    # every picture cropped to the square around what any view shows (the hammer fills a fifth of a view's width)
    rows, columns = torch.nonzero((fragments.pix_to_face >= 0).any(dim=0), as_tuple=True)
    centre = ((int(rows.min()) + int(rows.max())) // 2, (int(columns.min()) + int(columns.max())) // 2)
    half = max(int(rows.max()) - int(rows.min()), int(columns.max()) - int(columns.min())) // 2 + 8
    top, left = max(0, centre[0] - half), max(0, centre[1] - half)
    images, markers, titles = [], [], []
    for case in demo_cases():
        vertices, positive = parse_clicks(case, mesh.num_vertices)
        suffix = click_suffix(tuple(vertices.tolist()), tuple(1 if p else -1 for p in positive.tolist()))
        probability = torch.from_numpy(np.load(os.path.join(DECODER_DIR, f"vertex_probability_{suffix}.npy")))
        images += [image[top:top + 2 * half, left:left + 2 * half]
                   for image in probability_overlay(grey, fragments, mesh.faces, probability)]
        markers += [[(x - left, y - top, sign) for x, y, sign in view]
                    for view in click_markers(fragments, mesh, cameras, vertices, positive)]
        words = describe_case(vertices, positive, vertex_part)
        titles += [f"{words}\n--select_vertices {' '.join(case)}"] + [""] * (len(cameras) - 1)
    save_image_grid(images, markers, titles, path, columns=len(cameras), cell_inches=3.4, title_size=13)
    return path


def main() -> None:
    command, arguments = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "cases":
        print("\n".join(" ".join(case) for case in demo_cases()))
    elif command == "summary":
        print(f"wrote {save_summary()}")
    elif command == "check" and len(arguments) <= 1:
        folder = arguments[0] if arguments else None
        print(check_assets(*(os.path.join(folder, name) for name in ("hammer.obj", FEATURES_FILE,
                                                                       DECODER_CHECKPOINT_FILE))) if folder
              else check_assets())
    elif command == "slim" and len(arguments) == 2:
        slim_checkpoint(*arguments)
    elif command == "write-clicks" and len(arguments) >= 2:
        from utils.io import save_json

        save_json({"source": arguments[0], "cases": [case.split() for case in arguments[1:]]}, CLICKS)
    else:
        raise InputError("usage: python -m utils.app.demo cases | summary | check DIR | slim SRC DST | "
                         "write-clicks SOURCE 'CASE' 'CASE' ...")


if __name__ == "__main__":
    run_cli(main)
