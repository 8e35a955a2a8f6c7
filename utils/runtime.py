"""Devices, seeding and keyed random generators, shared by every command."""
from __future__ import annotations

import hashlib
import math
import os
import random
from typing import Sequence

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


def require_finite_step(loss: float, where: str, learning_rate: float, parameters: Sequence[torch.Tensor] = ()
                        ) -> None:
    """Stop a training run the moment its loss (or, given, any of its weights) is NaN or infinite — it has diverged:
    every later step and every output would be NaN — with an InputError naming the step and the flag to change.
    Called with the loss before each backward pass (a weight gone non-finite makes the next loss so) and with the
    weights too before each save (one device sync), so that nothing non-finite is ever saved."""
    if math.isfinite(loss) and (not parameters or bool(torch.stack([torch.isfinite(p).all()
                                                                      for p in parameters]).all())):
        return
    what = "weights are" if math.isfinite(loss) else f"loss is {loss:g}"
    raise InputError(f"{where}: the {what} not finite: training diverged and stopped before saving anything "
                     f"non-finite; lower --learning_rate (it is {learning_rate:g})")
