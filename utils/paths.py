"""Where things are: the repository root and the file names the stages share (each defined here, once).

The original's scripts ran from the repository root with relative defaults (``./meshes/hammer.obj``,
``./experiments/hammer/...``, ``SAM_repo/model_checkpoints/``). Ours resolve those defaults from the repository root,
so the scripts run from any working directory; a path the user types is taken as usual, relative to the working
directory (:class:`RepoDefault`, :func:`resolve_repo_defaults`).
"""
from __future__ import annotations

import argparse
import os

#: the repository's root folder (the one holding encoder.py, decoder.py, …)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FEATURES_FILE = "pred_f.pth"  # per-vertex features, the encoder's output (the original's name)
ENCODER_CHECKPOINT_FILE = "encoder_checkpoint.pth"
DECODER_CHECKPOINT_FILE = "decoder_checkpoint.pth"
CHECKPOINT_DIR = os.path.join("SAM_repo", "model_checkpoints")  # released teacher checkpoints, from the root


def repo_path(*parts: str) -> str:
    """An absolute path inside the repository."""
    return os.path.join(REPO_ROOT, *parts)


class RepoDefault(str):
    """A flag's default path written as the original wrote it (``./meshes/hammer.obj``), meant from the repository
    root: :func:`resolve_repo_defaults` makes it absolute when the user did not give the flag."""


def resolve_repo_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Every flag whose value is still a :class:`RepoDefault` → the absolute path under the repository root."""
    for name, value in vars(args).items():
        if isinstance(value, RepoDefault):
            setattr(args, name, os.path.normpath(repo_path(value)))
    return args
