"""Decoder training, as the original's, and checkpoints in the original's format.

Each sample is (two clicks, a view, the teacher's mask in that view). A batch: the per-vertex probabilities of each
sample's clicks are interpolated over the fragments of its view, and the loss is the binary cross-entropy with the
teacher's mask, averaged over all covered pixels of the batch (the original weighted by DIB-R's soft silhouette: the
same on covered pixels, see the README). The attention and the head run only on the vertices that the covered pixels
touch (same loss and gradients as running them on every vertex; tested).

``loss_pixels K`` (decoder.py ``--loss_pixels``; 0 = every covered pixel, the original): the loss of a batch of B
samples on at most K · B of its covered pixels, drawn uniformly from all of them (seeded per batch) — an unbiased
estimate of the same mean, as point-sampled mask losses (PointRend, SAM's training) use. The network then runs only
on the vertices those pixels touch: where views show thousands of vertices, K of a few hundred makes a sample
several times cheaper.

Dataset composition (the original's): every single-click sample; second-positive and second-negative samples (with
``--use_positive_click`` / ``--use_negative_click``) each randomly capped at 5 × the number of single-click samples;
then ``--data_percentage`` of the whole. Epochs visit the samples in a seeded random order.

Checkpoint (``save_dir/model_name``, every ``save_interval`` batches and after each epoch, plus
``<stem>_e<k><ext>`` after epoch k): {attention_state_dict, model_state_dict, optimizer_state_dict, epoch,
batch_idx, shuffled_indices, losses, num_batch} as the original, plus ``config`` (ours). ``epoch`` is the epoch in
progress (0-based; = num_epochs when done) and ``batch_idx`` the number of its batches done.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint
from tqdm import tqdm

from models.build_decoder import DecoderSettings, load_decoder
from models.decoder_head import DecoderHead
from models.interactive_attention import InteractiveAttention
from utils.decoder.samples import KIND_NEGATIVE, KIND_POSITIVE, KIND_SINGLE, Samples
from utils.decoder.schedules import learning_rate_factor
from utils.errors import InputError
from utils.geometry.camera import Cameras
from utils.geometry.mesh import Mesh
from utils.geometry.raster import PixelWeights, rasterize
from utils.io import load_torch, save_torch
from utils.runtime import keyed_generator, require_finite_step, seed_everything

TWO_CLICK_CAP = 5  # second-click samples of each kind: at most this many times the single-click ones
HEAD_CHUNK_ROWS = 16384  # head rows per gradient-checkpointed chunk in big batches


@dataclass(frozen=True)
class TrainingSettings:
    """decoder.py's training flags: ``--learning_rate``, ``--num_epochs``, ``--batch_size``, ``--save_interval``,
    ``--seed``, ``--loss_pixels`` (see the module docstring), ``--lr_schedule`` (:func:`learning_rate_factor`)."""

    learning_rate: float = 1e-4
    num_epochs: int = 5
    batch_size: int = 16
    save_interval: int = 100
    seed: int = 0
    loss_pixels: int = 0
    lr_schedule: str = "constant"


def compose_training_set(samples: Samples, use_positive: bool, use_negative: bool, data_percentage: float,
                         seed: int) -> torch.Tensor:
    """Indices of the samples to train on (see the module docstring), sorted."""
    single = (samples.kind == KIND_SINGLE).nonzero(as_tuple=True)[0]
    chosen = [single]
    for kind, used in ((KIND_POSITIVE, use_positive), (KIND_NEGATIVE, use_negative)):
        if used:
            index = (samples.kind == kind).nonzero(as_tuple=True)[0]
            cap = TWO_CLICK_CAP * len(single)
            if len(index) > cap:
                index = index[torch.randperm(len(index), generator=keyed_generator(seed, "cap", kind))[:cap]]
            chosen.append(index)
    indices = torch.cat(chosen).sort().values
    if data_percentage < 1:
        count = max(1, round(data_percentage * len(indices)))
        indices = indices[torch.randperm(len(indices), generator=keyed_generator(seed, "share"))[:count]].sort().values
    return indices


def batch_loss(attention: InteractiveAttention, head: DecoderHead, features: torch.Tensor, mesh: Mesh,
               batch: Samples, radius: float, restricted: bool = True, loss_pixels: int = 0,
               generator: Optional[torch.Generator] = None, view_cache: Optional["ViewCache"] = None
               ) -> torch.Tensor:
    """Mean BCE over the covered pixels of a batch between rendered probabilities and the teacher's masks.

    Args:
        features: (N, 256) on the modules' device; mesh on the same device.
        batch: B samples; their views are rasterized at the masks' resolution.
        restricted: run the attention and the head only on the vertices the covered pixels touch (False: on every
            vertex, the straightforward reference).
        loss_pixels: > 0: the loss on at most this many covered pixels per sample, drawn from the whole batch's with
            ``generator`` (a CPU torch.Generator; see the module docstring).
        view_cache: keeps the views' pixel weights between batches (None: every view is rasterized again).
    """
    device = features.device
    views = (view_cache or ViewCache(0)).pixel_weights(mesh, batch, radius)
    if loss_pixels > 0:
        views = sample_pixels(views, loss_pixels * len(batch), generator)
    masks = batch.unpacked_masks().to(device).reshape(len(batch), -1)
    targets = torch.cat([masks[b, view.pixels] for b, view in enumerate(views)]).float()
    positive = batch.signs.to(device) > 0
    clicks = batch.vertices.to(device)
    if not restricted:
        attended = attention(features, clicks, positive)  # (B, N, 256)
        probability = head(torch.cat([features.expand(len(batch), -1, -1), attended], dim=-1))[..., 1]  # (B, N)
        rendered = torch.cat([view.interpolate(probability[b, view.vertices].unsqueeze(1))[:, 0]
                              for b, view in enumerate(views)])
        return rendered_loss(rendered, targets)

    counts = torch.tensor([len(view.vertices) for view in views], device=device)
    touched, rows = torch.unique(torch.cat([view.vertices for view in views]), return_inverse=True)
    sample = torch.repeat_interleave(torch.arange(len(batch), device=device), counts)  # (R,) sample of each row
    touched_features = features.index_select(0, touched)
    queries = attention.queries(touched_features).index_select(0, rows)  # (R, 256)
    keys, values = attention.keys_values(features[clicks], positive)  # (B, C, 256)
    # index_select, not keys[sample]: the backward of advanced indexing (index_put_ with accumulate) adds with
    # atomics across CPU threads, whose order — and rounding — changes with the machine's load; index_add does not
    weights = torch.softmax(torch.einsum("rd,rcd->rc", queries, keys.index_select(0, sample)) / attention.temperature,
                            dim=-1)
    attended = torch.einsum("rc,rcd->rd", weights, values.index_select(0, sample))
    probability = head_probabilities(head, torch.cat([touched_features.index_select(0, rows), attended], dim=-1))
    offsets = torch.cumsum(counts, 0) - counts
    corners = torch.cat([view.corners + offsets[b] for b, view in enumerate(views)])
    corner_weights = torch.cat([view.weights for view in views]).to(probability.dtype)
    rendered = (corner_weights * probability.index_select(0, corners.reshape(-1)).view(-1, 3)).sum(dim=1)
    return rendered_loss(rendered, targets)


def rendered_loss(rendered: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean BCE of (P,) rendered probabilities against (P,) 0/1 targets. A non-finite probability (a diverged
    decoder's) gives a non-finite loss, where ``binary_cross_entropy`` would raise, so that the training loop stops
    the run with its one-line message."""
    if not bool(torch.isfinite(rendered).all()):
        return rendered.sum()
    return F.binary_cross_entropy(rendered.clamp(0, 1), targets)


class ViewCache:
    """Pixel weights (:class:`PixelWeights`) of the views samples were drawn in, kept between batches.

    Geometry needs no gradients, so a view is rasterized once and its fragments reused: samples of the view pool share a
    few hundred views, each reused by dozens of samples. Views are keyed by (view id, elevation, azimuth); the least
    recently used are dropped beyond ``max_bytes`` (0: nothing is kept). Cached and fresh weights are identical.
    """

    def __init__(self, max_bytes: int = 512 * 2 ** 20) -> None:
        self.max_bytes = max_bytes
        self.entries: "OrderedDict[tuple, PixelWeights]" = OrderedDict()
        self.bytes = 0

    @staticmethod
    def _size(view: PixelWeights) -> int:
        return sum(t.numel() * t.element_size() for t in (view.pixels, view.vertices, view.corners, view.weights))

    def pixel_weights(self, mesh: Mesh, batch: Samples, radius: float) -> List[PixelWeights]:
        """The batch's views' pixel weights at the masks' resolution, rasterizing (together) those not kept."""
        device = mesh.vertices.device
        keys = [(int(v), float(e), float(a)) for v, e, a in zip(batch.view, batch.elev, batch.azim)]
        found: Dict[tuple, PixelWeights] = {key: self.entries[key] for key in keys if key in self.entries}
        missing = [i for i, key in enumerate(keys) if key not in found and key not in keys[:i]]  # each view once
        if missing:
            rows = torch.tensor(missing)
            fragments = rasterize(mesh, Cameras(batch.elev[rows], batch.azim[rows], radius).to(device), batch.res)
            for b, i in enumerate(missing):
                found[keys[i]] = PixelWeights.from_fragments(fragments, mesh.faces, b)
        for key in keys:
            self._keep(key, found[key])
        return [found[key] for key in keys]

    def _keep(self, key: tuple, view: PixelWeights) -> None:
        if key in self.entries:
            self.entries.move_to_end(key)
            return
        size = self._size(view)
        if size > self.max_bytes:
            return
        self.entries[key] = view
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, dropped = self.entries.popitem(last=False)
            self.bytes -= self._size(dropped)


def sample_pixels(views: List[PixelWeights], count: int, generator: Optional[torch.Generator]
                  ) -> List[PixelWeights]:
    """At most ``count`` of all the views' covered pixels, drawn uniformly without replacement; each view keeps its
    own (possibly none)."""
    sizes = torch.tensor([len(view.pixels) for view in views])
    if int(sizes.sum()) <= count:
        return views
    chosen = torch.randperm(int(sizes.sum()), generator=generator)[:count].sort().values
    ends = torch.cumsum(sizes, 0)
    owner = torch.bucketize(chosen, ends, right=True)  # (count,) view of each chosen pixel
    starts = ends - sizes
    return [view.subset((chosen[owner == b] - starts[b]).to(view.pixels.device)) for b, view in enumerate(views)]


def head_probabilities(head: DecoderHead, inputs: torch.Tensor) -> torch.Tensor:
    """(R, 512) head inputs → (R,) probabilities; above HEAD_CHUNK_ROWS rows, in chunks whose activations are
    recomputed during the backward pass (gradient checkpointing): the same values and gradients, with memory bounded
    by one chunk's activations (about 50 kB a row) instead of all rows' (16 views of a 50k-vertex mesh: ~300k rows)."""
    if inputs.shape[0] <= HEAD_CHUNK_ROWS or not torch.is_grad_enabled():
        return head(inputs)[:, 1]
    chunks = [checkpoint(head, chunk, use_reentrant=False)[:, 1] for chunk in inputs.split(HEAD_CHUNK_ROWS)]
    return torch.cat(chunks)


def decoder_trained(path: str) -> bool:
    """Whether a decoder checkpoint exists and finished its epochs (else training continues from it)."""
    if not os.path.exists(path):
        return False
    state = load_torch(path, "decoder checkpoint")
    return int(state.get("epoch", 0)) >= int(state.get("config", {}).get("num_epochs", 0)) > 0


def checkpoint_paths(save_dir: str, model_name: str, epoch: Optional[int] = None) -> str:
    """``save_dir/model_name``, or its per-epoch copy ``<stem>_e<epoch><ext>``."""
    if epoch is None:
        return os.path.join(save_dir, model_name)
    stem, extension = os.path.splitext(model_name)
    return os.path.join(save_dir, f"{stem}_e{epoch}{extension}")


def train_decoder(mesh: Mesh, features: torch.Tensor, samples: Samples, indices: torch.Tensor, save_dir: str,
                  model_name: str, settings: DecoderSettings, training: TrainingSettings, radius: float,
                  continue_train: bool, device: torch.device = torch.device("cpu"), progress: bool = True
                  ) -> List[float]:
    """Train (or continue training) the decoder on ``samples[indices]``; returns the per-batch losses of the whole run.

    Args:
        features: (N, 256) per-vertex features; radius: the samples' camera distance.
        continue_train: continue from ``save_dir/model_name`` (its settings must match).
    """
    learning_rate, num_epochs, batch_size = training.learning_rate, training.num_epochs, training.batch_size
    save_interval, seed, loss_pixels, lr_schedule = (training.save_interval, training.seed, training.loss_pixels,
                                                     training.lr_schedule)
    seed_everything(seed)
    attention, head = settings.build()
    attention, head = attention.to(device), head.to(device)
    parameters = list(attention.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(parameters, lr=learning_rate)
    config = {"seed": seed, "learning_rate": learning_rate, "num_epochs": num_epochs, "batch_size": batch_size,
              "num_samples": int(len(indices)), "settings": asdict(settings)}
    if loss_pixels > 0:  # only when used: checkpoints from before the option stay continuable
        config["loss_pixels"] = loss_pixels
    if lr_schedule != "constant":
        config["lr_schedule"] = lr_schedule
    path = checkpoint_paths(save_dir, model_name)
    epoch, done, losses = 0, 0, []
    if continue_train:
        checkpoint = load_torch(path, "decoder checkpoint to continue", map_location=device)
        if checkpoint.get("config", config) != config:
            raise InputError(f"{path} was trained with other settings ({checkpoint.get('config')}); it cannot be "
                             f"continued with these")
        loaded_attention, loaded_head = load_decoder(path, settings, device)
        attention.load_state_dict(loaded_attention.state_dict())
        head.load_state_dict(loaded_head.state_dict())
        state = checkpoint.get("optimizer_state_dict") or {}
        if state:
            try:
                optimizer.load_state_dict(state)
            except (KeyError, ValueError, RuntimeError) as exc:
                raise InputError(f"{path}: its optimizer state does not fit this decoder ({exc}); train afresh "
                                 f"(--continue_train 0) or with the settings it was made with") from None
        else:  # a slimmed checkpoint (the bundled demo's): the weights go on, Adam's moments start again
            print(f"{path} has no optimizer state: continuing with fresh Adam moments")
        try:
            epoch, done = int(checkpoint.get("epoch", 0)), int(checkpoint.get("batch_idx", 0))
            losses = [float(loss) for loss in checkpoint.get("losses", [])]
        except (TypeError, ValueError):
            raise InputError(f"{path}: its epoch, batch_idx or losses are damaged; train afresh "
                             f"(--continue_train 0)") from None
        if epoch < 0 or done < 0:
            raise InputError(f"{path}: epoch {epoch}, batch {done} are not a training position; train afresh "
                             f"(--continue_train 0)")
        print(f"continuing decoder training at epoch {epoch + 1}, batch {done}")

    features = features.to(device)
    mesh = mesh.to(device)
    view_cache = ViewCache()
    batches_per_epoch = (len(indices) + batch_size - 1) // batch_size
    total = num_epochs * batches_per_epoch
    bar = tqdm(total=total, initial=min(total, epoch * batches_per_epoch + done), desc="decoder training",
               unit="batch", disable=not progress)
    attention.train()
    head.train()
    while epoch < num_epochs:
        order = indices[torch.randperm(len(indices), generator=keyed_generator(seed, "epoch", epoch))]
        while done < batches_per_epoch:
            batch = samples.select(order[done * batch_size:(done + 1) * batch_size])
            generator = keyed_generator(seed, "loss pixels", epoch, done) if loss_pixels > 0 else None
            step = epoch * batches_per_epoch + done
            for group in optimizer.param_groups:
                group["lr"] = learning_rate * learning_rate_factor(lr_schedule, step, total)
            loss = batch_loss(attention, head, features, mesh, batch, radius, loss_pixels=loss_pixels,
                              generator=generator, view_cache=view_cache)
            where = f"decoder training, epoch {epoch + 1}, batch {done + 1}"
            losses.append(loss.item())
            require_finite_step(losses[-1], where, learning_rate)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            bar.update(1)
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.4f}")
            finished_epoch = done == batches_per_epoch
            if len(losses) % save_interval == 0 or finished_epoch:
                require_finite_step(losses[-1], where, learning_rate, parameters)  # the step's new weights
                state = _checkpoint(attention, head, optimizer, epoch + finished_epoch,
                                    0 if finished_epoch else done, order, losses, batches_per_epoch, config)
                save_torch(state, path)
                if finished_epoch:
                    save_torch(state, checkpoint_paths(save_dir, model_name, epoch + 1))
        epoch, done = epoch + 1, 0
    bar.close()
    if losses:
        from utils.plots import save_loss_plot

        save_loss_plot(losses, os.path.join(save_dir, "decoder_loss.png"), "decoder training (BCE per batch)")
    return losses


def _checkpoint(attention, head, optimizer, epoch: int, batch_idx: int, order: torch.Tensor, losses: List[float],
                num_batch: int, config: Dict[str, object]) -> Dict[str, object]:
    return {"attention_state_dict": attention.state_dict(), "model_state_dict": head.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(), "epoch": epoch, "batch_idx": batch_idx,
            "shuffled_indices": order.tolist(), "losses": list(losses), "num_batch": num_batch, "config": config}
