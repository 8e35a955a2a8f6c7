"""Decoder training samples: the on-disk format written by data_generation.py and read by decoder.py.

A sample is one teacher answer: the clicks (two, as the original encodes them — a single click is (v, v)), the view
they were made in, the teacher's mask in that view and its score. Samples are stored in shards, each a ``torch.save``
of a dict of stacked tensors (loadable with ``weights_only=True``):

| key | shape, dtype | meaning |
|---|---|---|
| ``vertices`` | (S, 2) int64 | clicked vertex ids, first click first |
| ``signs`` | (S, 2) int8 | +1 positive click, −1 negative click |
| ``kind`` | (S,) int8 | 0 single click (v, v), 1 second positive (v, k), 2 second negative (v, −k) |
| ``view`` | (S,) int64 | index of the view (pool view, or per-click view id) |
| ``elev``, ``azim`` | (S,) float32 | the view's angles in radians (radius in the manifest) |
| ``points`` | (S, 2, 2) float32 | the clicks' pixels given to the teacher, (x = column, y = row) |
| ``masks`` | (S, ⌈H·W/8⌉) uint8 | the teacher's mask, row-major, bits packed 8 to a byte, most significant first |
| ``score`` | (S,) float32 | the teacher's predicted IoU of that mask |
| ``res`` | int | H = W of the masks |

A 224² mask takes 6,272 bytes (the original stored a 50 kB file per sample).

The folder (:class:`DecoderData`): shards ``samples/shard_<p|v><first>-<last>_<kinds>.pt`` (``p``: pool views,
``v``: per-click vertices; kinds ``s``, ``p``, ``n``), ``manifest.json`` (what they were made with),
``fps_vertices.pt``, ``pool_views.pt``, ``pool_visibility.pt`` and ``generation_log.json``.
:func:`load_decoder_samples` reads them back for training.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from typing import List, Sequence, Set

import numpy as np
import torch

from utils.errors import InputError
from utils.io import load_json, load_torch, save_torch

KIND_SINGLE, KIND_POSITIVE, KIND_NEGATIVE = 0, 1, 2
KIND_NAMES = ("single", "positive", "negative")


def pack_masks(masks: torch.Tensor) -> torch.Tensor:
    """(S, H, W) bool → (S, ⌈H·W/8⌉) uint8, row-major, most significant bit first (numpy.packbits)."""
    flat = masks.detach().cpu().reshape(masks.shape[0], masks.shape[1:].numel()).numpy()
    return torch.from_numpy(np.packbits(flat, axis=1))


def unpack_masks(packed: torch.Tensor, res: int) -> torch.Tensor:
    """(S, ⌈res²/8⌉) uint8 → (S, res, res) bool."""
    bits = np.unpackbits(packed.detach().cpu().numpy(), axis=1, count=res * res)
    return torch.from_numpy(bits.astype(bool)).reshape(-1, res, res)


if hasattr(np, "bitwise_count"):  # numpy >= 2
    def _popcount(packed: np.ndarray) -> np.ndarray:
        return np.bitwise_count(packed).sum(axis=1, dtype=np.int64)
else:
    _BYTE_COUNTS = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)

    def _popcount(packed: np.ndarray) -> np.ndarray:
        return _BYTE_COUNTS[packed].sum(axis=1)


def packed_areas(packed: torch.Tensor) -> torch.Tensor:
    """(S,) int64 number of pixels in each packed mask (fast: bytes, not pixels, are touched)."""
    return torch.from_numpy(_popcount(packed.numpy()))


def packed_intersections(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(S,) int64 pixels in both of each pair of packed masks."""
    return torch.from_numpy(_popcount(np.bitwise_and(a.numpy(), b.numpy())))


@dataclass
class Samples:
    """A batch of samples (see the module docstring for the fields)."""

    vertices: torch.Tensor
    signs: torch.Tensor
    kind: torch.Tensor
    view: torch.Tensor
    elev: torch.Tensor
    azim: torch.Tensor
    points: torch.Tensor
    masks: torch.Tensor
    score: torch.Tensor
    res: int

    def __len__(self) -> int:
        return self.kind.shape[0]

    @classmethod
    def empty(cls, res: int) -> "Samples":
        return cls(torch.zeros(0, 2, dtype=torch.int64), torch.zeros(0, 2, dtype=torch.int8),
                   torch.zeros(0, dtype=torch.int8), torch.zeros(0, dtype=torch.int64), torch.zeros(0),
                   torch.zeros(0), torch.zeros(0, 2, 2), torch.zeros(0, (res * res + 7) // 8, dtype=torch.uint8),
                   torch.zeros(0), res)

    @classmethod
    def concatenate(cls, parts: Sequence["Samples"], res: int) -> "Samples":
        parts = [part for part in parts if len(part)]
        if not parts:
            return cls.empty(res)
        tensors = {f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(cls) if f.name != "res"}
        return cls(res=res, **tensors)

    def select(self, index: torch.Tensor) -> "Samples":
        tensors = {f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "res"}
        return Samples(res=self.res, **tensors)

    def unpacked_masks(self) -> torch.Tensor:
        """(S, res, res) bool masks."""
        return unpack_masks(self.masks, self.res)

    def save(self, path: str) -> None:
        save_torch({f.name: getattr(self, f.name) for f in fields(self)}, path)

    @classmethod
    def load(cls, path: str) -> "Samples":
        record = load_torch(path, "sample shard")
        try:
            return cls(**{f.name: record[f.name] for f in fields(cls)})
        except (KeyError, TypeError) as exc:
            raise InputError(f"sample shard {path} is not in the expected format (missing {exc})") from None


KIND_LETTERS = "spn"  # single, positive, negative in shard names


class DecoderData:
    """Files of the decoder data folder."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.samples = os.path.join(root, "samples")
        self.manifest = os.path.join(root, "manifest.json")
        self.fps = os.path.join(root, "fps_vertices.pt")
        self.pool = os.path.join(root, "pool_views.pt")
        self.visibility = os.path.join(root, "pool_visibility.pt")
        self.log = os.path.join(root, "generation_log.json")

    def shard(self, prefix: str, first: int, last: int, kinds: Sequence[int]) -> str:
        letters = "".join(KIND_LETTERS[k] for k in sorted(kinds))
        return os.path.join(self.samples, f"shard_{prefix}{first:06d}-{last:06d}_{letters}.pt")

    def shards(self) -> List[str]:
        """All shard files, sorted by name (= by chunk, then kinds)."""
        if not os.path.isdir(self.samples):
            return []
        return sorted(os.path.join(self.samples, n) for n in os.listdir(self.samples) if _SHARD.match(n))

    def kinds_done(self, prefix: str, first: int, last: int) -> Set[int]:
        done: Set[int] = set()
        for path in self.shards():
            match = _SHARD.match(os.path.basename(path))
            if match and match.group(1) == prefix and (int(match.group(2)), int(match.group(3))) == (first, last):
                done |= {KIND_LETTERS.index(letter) for letter in match.group(4)}
        return done


_SHARD = re.compile(r"shard_([pv])(\d+)-(\d+)_([spn]+)\.pt$")


def load_decoder_samples(root: str, kinds: Sequence[int] = (KIND_SINGLE, KIND_POSITIVE, KIND_NEGATIVE)) -> Samples:
    """Every sample of ``kinds`` in a decoder data folder, in shard order."""
    data = DecoderData(root)
    shards = data.shards()
    if not shards:
        raise InputError(f"no decoder training samples in {data.samples}: run data_generation.py first")
    res = int(load_json(data.manifest, "decoder data manifest").get("res", 224)) if os.path.exists(
        data.manifest) else 224
    parts = []
    for path in shards:
        samples = Samples.load(path)
        wanted = torch.isin(samples.kind, torch.tensor(list(kinds), dtype=samples.kind.dtype))
        parts.append(samples.select(wanted.nonzero(as_tuple=True)[0]))
    return Samples.concatenate(parts, res)
