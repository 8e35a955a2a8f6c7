"""Argument groups shared by the command-line scripts (each script stays a thin parser + call)."""
from __future__ import annotations

import argparse

from models.sam_teacher import SAM_TYPES


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where to compute: auto = CUDA when available (default), else CPU")


def add_teacher_arguments(parser: argparse.ArgumentParser) -> None:
    """--teacher, --SAM, --sam_checkpoint, --labels."""
    parser.add_argument("--teacher", default="sam", choices=["sam", "label"],
                        help="2D teacher: sam (Segment Anything, default) or label (perfect masks from per-face "
                             "ground-truth labels given by --labels; for tests and evaluation)")
    parser.add_argument("--SAM", default="vit_h", choices=SAM_TYPES,
                        help="SAM model (default vit_h as the original); tiny = random weights, for smoke tests only")
    parser.add_argument("--sam_checkpoint", default=None,
                        help="SAM checkpoint file (default: SAM_repo/model_checkpoints/<official file name>)")
    parser.add_argument("--labels", default=None, help="per-face labels (.seg or .npy) for --teacher label")


def add_other_side_click_arguments(parser: argparse.ArgumentParser) -> None:
    """--negative_outside, --positive_inside: data_generation.py's options (train.py and evaluate.py pass them on)."""
    parser.add_argument("--negative_outside", type=int_flag, default=0,
                        help="1: decoder data also with second negative clicks outside the first click's mask that "
                             "leave it unchanged (not in the original; a negative click elsewhere keeps the segment)")
    parser.add_argument("--positive_inside", type=int_flag, default=0,
                        help="1: decoder data also with second positive clicks inside the first click's mask that "
                             "leave it unchanged (not in the original; a positive click on the same part does not "
                             "grow it)")


def int_flag(value: str) -> int:
    """The original's 0/1 integer flags (any integer accepted, non-zero = on)."""
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer (0 or 1), got {value!r}") from None


def require(checks) -> None:
    """Raise InputError with the message of the first (condition, message) pair whose condition is false."""
    from utils.errors import InputError

    for ok, message in checks:
        if not ok:
            raise InputError(message)
