"""Devices, seeding and keyed random generators, shared by every command."""
from __future__ import annotations

import hashlib
import os
import random

import numpy as np
import torch

from utils.errors import InputError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an InputError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but torch sees no CUDA GPU (use --device cpu or auto)")
    if name not in ("cpu", "cuda"):
        raise InputError(f"unknown device {name!r} (choose auto, cpu or cuda)")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) and ask for deterministic kernels, as the original does."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def keyed_generator(seed: int, *keys: object) -> torch.Generator:
    """A CPU generator seeded by ``seed`` and ``keys``: the same draws whatever else ran before (resumable,
    order-free)."""
    digest = hashlib.sha256(repr((int(seed),) + tuple(keys)).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
