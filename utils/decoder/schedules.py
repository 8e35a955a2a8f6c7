"""Learning-rate schedules of decoder training (decoder.py ``--lr_schedule``), apart from the training code so that
the command-line parser, which inference uses too, can list them."""
from __future__ import annotations

import math

LR_SCHEDULES = ("constant", "cosine")
WARMUP_SHARE = 0.05  # "cosine": the first 5 % of the steps ramp the learning rate up linearly


def learning_rate_factor(schedule: str, step: int, total: int) -> float:
    """The learning rate of global step ``step`` (0-based) of ``total``, as a share of the peak.

    "constant" (the original): 1. "cosine": a linear warm-up over the first WARMUP_SHARE of the steps, then a cosine
    decay to 0 at the last step — short runs settle instead of stopping at full speed. A function of the step alone,
    so a resumed run uses the same rates.
    """
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"unknown learning-rate schedule {schedule!r}")
    warmup = max(1, round(WARMUP_SHARE * total))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
