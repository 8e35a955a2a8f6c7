"""Building and loading the decoder (as segment-anything's build_sam builds SAM): its architecture flags
(:class:`DecoderSettings`), the modules they build, checkpoints of ours or of the original release
(:func:`load_decoder`, read with ``torch.load(..., weights_only=True)``) and a ready predictor (:func:`load_predictor`).

Inference goes through this module and models/decoder_predictor.py only; training code (utils/decoder/training.py)
builds on it, never the other way round.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

import torch

from models.decoder_head import DecoderHead
from models.decoder_predictor import DecoderPredictor
from models.interactive_attention import InteractiveAttention
from utils.errors import InputError
from utils.io import load_torch, mismatch_detail, require_finite


@dataclass(frozen=True)
class DecoderSettings:
    """The decoder's architecture flags (decoder.py / interactive.py)."""

    depth: int = 14
    use_attention_q: bool = True
    use_attention_k: bool = True
    use_attention_v: bool = True
    residual_attention: bool = False
    scale_attention: bool = True

    #: decoder.py's flag of each field (the original's names, its typo included)
    FLAGS = {"depth": "depth", "use_attention_q": "use_attention_q", "use_attention_k": "use_attention_k",
             "use_attention_v": "use_attention_v", "residual_attention": "redsidual_attention",
             "scale_attention": "scale_attention"}

    @classmethod
    def from_flags(cls, values: Dict[str, object]) -> "DecoderSettings":
        """Settings from decoder.py's flag values (e.g. ``vars(args)``), keyed by flag name."""
        return cls(**{field: type(getattr(cls, field))(values[flag]) for field, flag in cls.FLAGS.items()})

    def changed_flags(self) -> List[str]:
        """decoder.py flags (``--name value``) that differ from the original's defaults, in the fields' order."""
        default = DecoderSettings()
        return [f"--{flag} {int(getattr(self, field))}" for field, flag in self.FLAGS.items()
                if getattr(self, field) != getattr(default, field)]

    def changed_arguments(self) -> List[str]:
        """:meth:`changed_flags` as command-line tokens (``["--depth", "3", …]``): what a decoder.py command needs to
        build this decoder."""
        return [token for flag in self.changed_flags() for token in flag.split()]

    def build(self) -> Tuple[InteractiveAttention, DecoderHead]:
        attention = InteractiveAttention(256, self.use_attention_q, self.use_attention_k, self.use_attention_v,
                                         self.residual_attention, self.scale_attention)
        return attention, DecoderHead(self.depth)



def load_decoder(path: str, settings: DecoderSettings, device: torch.device = torch.device("cpu")
                 ) -> Tuple[InteractiveAttention, DecoderHead]:
    """Modules from a checkpoint of ours or of the original release (a ``module.`` prefix from DataParallel is
    removed); a missing file or one of the wrong shape is an InputError."""
    checkpoint = load_torch(path, "decoder checkpoint")
    attention, head = settings.build()
    try:
        for module, key in ((attention, "attention_state_dict"), (head, "model_state_dict")):
            state = {name.removeprefix("module."): value for name, value in checkpoint[key].items()}
            module.load_state_dict(state)
    except (KeyError, TypeError, AttributeError, RuntimeError) as exc:
        raise InputError(f"decoder checkpoint {path} does not fit --depth {settings.depth}: {mismatch_detail(exc)}"
                         ) from None
    for module in (attention, head):
        require_finite(module.state_dict(), "decoder checkpoint", path)
    return attention.to(device), head.to(device)


def load_predictor(checkpoint: str, features: torch.Tensor, settings: DecoderSettings,
                   device: torch.device = torch.device("cpu")) -> DecoderPredictor:
    """A :class:`DecoderPredictor` on the checkpoint's modules and (N, 256) ``features``, on ``device``."""
    attention, head = load_decoder(checkpoint, settings, device)
    return DecoderPredictor(attention, head, features.to(device))
