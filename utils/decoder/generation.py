"""Decoder data generation, by the original's rules: click → mask samples from a 2D teacher on rendered views.

Which clicks: farthest-point samples of the vertices (from vertex 0, round(percentage · N) of them), each the first
click of up to ``n_views`` views in which it is visible; in each view a single positive click at its pixel gives the
teacher's mask (mask index 0, the clicked pixel forced on, as the original; ``mask_select best`` takes the best-scoring
one). Where that mask scores ≥ 0.4, up to 5 second clicks are tried among the other sampled vertices visible in the
view — outside the mask for a second positive click, inside it for a second negative one, closer (squared distance)
than half the farthest such candidate — with the original's refinement chain (the first click's best low-resolution
logits as mask input, then six predictions with both clicks, each fed the previous best logits); a candidate's mask is
kept if its IoU with the single-click mask is ≤ 0.9 and it grew (positive) or shrank (negative).

``negative_outside`` (``--negative_outside 1``; not in the original): also up to 5 second negative clicks *outside* the
mask, kept when the mask stays as it was (IoU > 0.9). The original's rules only ever show the decoder negative clicks
inside the first click's segment; a user's corrections are mostly negative clicks on a neighbouring part that the
segment spilled into, which must remove that part and keep the rest (README "Evaluation" for what this changes).
``positive_inside`` (``--positive_inside 1``; not in the original) is its mirror: also up to 5 second positive clicks
*inside* the mask, kept when the mask stays as it was. The original's rules only show second positive clicks on
another part (which must join the segment); a user's positive corrections mostly land on a stretch of the wanted part
the segment missed, which must complete it without pulling in the neighbour.

``second_clicks`` and ``refinement_steps`` (``--second_clicks``, ``--refinement_steps``; the original's 5 and 6) bound
what the second clicks ask of the teacher: a (vertex, view) pair costs 1 + 2 · second_clicks · refinement_steps
prompts, 61 by the original's rules — about 40,000 prompts for a 10k-vertex mesh with the quick budget, half an hour
with a SAM-family teacher on a CPU (~50 ms a prompt). Fewer are not in the original.

Where views come from (the pool is ours; the original drew and encoded a view per click):

* ``view_pool K > 0`` (default 1000): K views are drawn once from the original's distribution (elevation uniform in
  [−π/2, π/2], azimuth in [0, 2π)); a vertex's views are chosen among the pool views in which it is visible, and each
  pool view is rendered and encoded by the teacher once, all its prompts answered while its embedding is in memory.
  Image encodings ≤ K, whatever the mesh.
* ``view_pool 0``: the original's per-click views: for every vertex, views are drawn until it is visible (views facing
  away are redrawn without counting; after 200 counted failures the last accepted view is reused, and a vertex with
  none gets no views), and every (vertex, view) pair is rendered and encoded on its own.

All random draws are keyed by (seed, what, vertex, view), so a killed run that resumes — or a run split into stages —
makes exactly the samples of an uninterrupted one. Samples are written in shards (utils/decoder/samples.py documents the
format) under ``<decoder_data_dir>/samples/``; ``manifest.json`` records what they were made with, ``fps_vertices.pt``
the sampled vertices, ``pool_views.pt`` the pool, ``generation_log.json`` the teacher calls of each run.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple

import torch
from tqdm import tqdm

from models.teacher import Teacher, TeacherView
from utils.decoder.clicks import farthest_point_sampling
from utils.decoder.samples import (
    KIND_NAMES,
    KIND_NEGATIVE,
    KIND_POSITIVE,
    KIND_SINGLE,
    DecoderData,
    Samples,
    load_decoder_samples,
    pack_masks,
    packed_areas,
    packed_intersections,
)
from utils.geometry.camera import Cameras, sample_uniform_views
from utils.geometry.mesh import Mesh, mesh_signature
from utils.geometry.raster import rasterize, vertex_pixels, visible_vertices
from utils.geometry.render import render
from utils.io import check_manifest, load_json, load_torch, save_json, save_torch
from utils.runtime import keyed_generator

SCORE_THRESHOLD = 0.4  # a single-click mask must score this for second clicks to be tried in its view
IOU_LIMIT = 0.9  # a second click must change the mask at least this much
MAX_SECOND_CLICKS = 5  # the original's second-click candidates per (vertex, view) and kind
REFINEMENT_STEPS = 6  # the original's predictions with both clicks, each fed the previous best logits
MAX_TRIES = 200  # counted view draws per per-click view slot before the last view is reused
MAX_FACING_REDRAWS = 100_000  # safety bound on uncounted redraws of views facing away
#: prompts per teacher call: SAM's mask decoder copies the image embedding per prompt, and on a CPU small batches keep
#: those copies in cache (4: ~63 ms a prompt with tiny SAM here, 32: ~88 ms); a GPU wants big batches
PROMPT_BATCH = {"cpu": 4, "cuda": 64}
VISIBILITY_BATCH = 16  # pool views rasterized per call when finding which vertices they show


@dataclass(frozen=True)
class GenerationSettings:
    """data_generation.py's flags that decide the samples (see the module docstring)."""

    seed: int = 0
    percentage: float = 0.03
    n_views: int = 100
    view_pool: int = 1000
    res: int = 224
    radius: float = 2.0
    background: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    mask_select: str = "first"
    views_per_shard: int = 25  # pool views (or, per-click, vertices) per shard
    negative_outside: bool = False  # also "unchanged" second negatives outside the mask (not in the original)
    positive_inside: bool = False  # also "unchanged" second positives inside the mask (not in the original)
    second_clicks: int = MAX_SECOND_CLICKS  # candidates per (vertex, view) and kind (fewer: not in the original)
    refinement_steps: int = REFINEMENT_STEPS  # of each candidate's refinement chain (fewer: not in the original)


@dataclass
class Counters:
    """What a run asked of the teacher and what it made."""

    image_encodings: int = 0
    prompt_calls: int = 0
    prompts: int = 0
    samples: List[int] = field(default_factory=lambda: [0, 0, 0])

    def summary(self) -> str:
        if not self.image_encodings and not any(self.samples):
            return "all requested samples were already there (nothing to do)"
        made = ", ".join(f"{count} {name}" for count, name in zip(self.samples, KIND_NAMES))
        return (f"{self.image_encodings} teacher image encodings, {self.prompt_calls} prompt calls "
                f"({self.prompts} prompts); samples written: {made}")


def _prepare_folder(data: DecoderData, manifest: Dict[str, object], overwrite: bool) -> None:
    if overwrite and os.path.isdir(data.root):
        for path in (data.samples,):
            shutil.rmtree(path, ignore_errors=True)
        for path in (data.manifest, data.fps, data.pool, data.visibility, data.log):
            if os.path.exists(path):
                os.remove(path)
    check_manifest(data.manifest, manifest, has_data=bool(data.shards()), defaults=asdict(GenerationSettings()),
                   remedy="pass --overwrite 1 to start again, or use another --decoder_data_dir")


def generate_decoder_data(mesh: Mesh, teacher: Teacher, root: str, settings: GenerationSettings,
                          kinds: Sequence[int] = (KIND_SINGLE,), overwrite: bool = False,
                          progress: bool = True) -> Counters:
    """Make the samples of ``kinds`` (KIND_SINGLE, KIND_POSITIVE, KIND_NEGATIVE) that the folder lacks.

    Returns:
        what this call asked of the teacher and wrote.
    """
    data = DecoderData(root)
    fps_count = max(1, round(settings.percentage * mesh.num_vertices))
    _prepare_folder(data, {"mesh": mesh_signature(mesh), "num_vertices": mesh.num_vertices,
                           "teacher": teacher.description, "num_fps_vertices": fps_count,
                           **{k: v for k, v in asdict(settings).items() if k != "views_per_shard"}}, overwrite)
    started = time.time()
    if os.path.exists(data.fps):
        fps = load_torch(data.fps, "sampled vertices")
    else:
        fps = farthest_point_sampling(mesh.vertices, fps_count, start=0)
        save_torch(fps, data.fps)
    counters = Counters()
    generator = _Generator(mesh, teacher, fps, settings, counters)
    if settings.view_pool > 0:
        generator.run_pool(data, set(kinds), progress)
    else:
        generator.run_per_click(data, set(kinds), progress)
    log = load_json(data.log, "generation log") if os.path.exists(data.log) else {"runs": []}
    log["runs"].append({**asdict(counters), "kinds": [KIND_NAMES[k] for k in sorted(kinds)],
                        "seconds": round(time.time() - started, 1)})
    save_json(log, data.log)
    return counters


class _Generator:
    """The per-view work shared by both view sources."""

    def __init__(self, mesh: Mesh, teacher: Teacher, fps: torch.Tensor, settings: GenerationSettings,
                 counters: Counters) -> None:
        self.mesh, self.teacher, self.settings, self.counters = mesh, teacher, settings, counters
        self.fps = fps.to(mesh.vertices.device)
        self.fps_points = mesh.vertices[self.fps]  # (k, 3)

    # --- view sources ----------------------------------------------------------------------------------------
    def pool_views(self, data: DecoderData) -> Cameras:
        settings = self.settings
        if os.path.exists(data.pool):
            pool = load_torch(data.pool, "view pool")
            return Cameras(pool["elev"], pool["azim"], settings.radius)
        cameras = sample_uniform_views(settings.view_pool, keyed_generator(settings.seed, "pool"))
        save_torch({"elev": cameras.elev, "azim": cameras.azim, "radius": settings.radius}, data.pool)
        return Cameras(cameras.elev, cameras.azim, settings.radius)

    def pool_visibility(self, data: DecoderData, cameras: Cameras, progress: bool) -> torch.Tensor:
        """(K, k) bool: which sampled vertices each pool view shows (cached in the folder)."""
        if os.path.exists(data.visibility):
            return load_torch(data.visibility, "pool visibility")["visible"]
        rows = []
        for start in tqdm(range(0, len(cameras), VISIBILITY_BATCH), desc="view pool visibility", unit="batch",
                          disable=not progress):
            batch = cameras[start:start + VISIBILITY_BATCH].to(self.mesh.vertices.device)
            fragments = rasterize(self.mesh, batch, self.settings.res)
            rows.append(visible_vertices(fragments, self.mesh, batch)[:, self.fps].cpu())
        visible = torch.cat(rows)
        save_torch({"visible": visible}, data.visibility)
        return visible

    def run_pool(self, data: DecoderData, kinds: Set[int], progress: bool) -> None:
        settings = self.settings
        cameras = self.pool_views(data)
        visible = self.pool_visibility(data, cameras, progress)
        assigned: List[List[int]] = [[] for _ in range(len(cameras))]
        for a, vertex in enumerate(self.fps.tolist()):
            seen = visible[:, a].nonzero(as_tuple=True)[0]
            if len(seen) > settings.n_views:
                order = torch.randperm(len(seen), generator=keyed_generator(settings.seed, "views", vertex))
                seen = seen[order[: settings.n_views]].sort().values
            for view in seen.tolist():
                assigned[view].append(a)
        bar = tqdm(total=len(cameras), desc="decoder data (view pool)", unit="view", disable=not progress)
        for first in range(0, len(cameras), settings.views_per_shard):
            last = min(first + settings.views_per_shard, len(cameras)) - 1
            needed = kinds - data.kinds_done("p", first, last)
            if needed:
                parts = []
                for j in range(first, last + 1):
                    if assigned[j]:
                        parts.append(self.view_samples(cameras[j], j, assigned[j], needed))
                    bar.update(1)
                self.write(data.shard("p", first, last, needed), parts)
            else:
                bar.update(last + 1 - first)
        bar.close()

    def run_per_click(self, data: DecoderData, kinds: Set[int], progress: bool) -> None:
        settings = self.settings
        count = len(self.fps)
        step = max(1, settings.views_per_shard // 5)  # vertices per shard
        bar = tqdm(total=count, desc="decoder data (per-click views)", unit="vertex", disable=not progress)
        for first in range(0, count, step):
            last = min(first + step, count) - 1
            needed = kinds - data.kinds_done("v", first, last)
            if needed:
                parts = []
                for a in range(first, last + 1):
                    for slot, camera in enumerate(self.per_click_views(a)):
                        parts.append(self.view_samples(camera, a * settings.n_views + slot, [a], needed))
                    bar.update(1)
                self.write(data.shard("v", first, last, needed), parts)
            else:
                bar.update(last + 1 - first)
        bar.close()

    def per_click_views(self, a: int) -> List[Cameras]:
        """The original's views of sampled vertex ``a``: drawn until visible."""
        settings, mesh = self.settings, self.mesh
        vertex = int(self.fps[a])
        generator = keyed_generator(settings.seed, "per-click views", vertex)
        normal = _vertex_normals(mesh)[vertex]
        views: List[Cameras] = []
        last = None
        for _ in range(settings.n_views):
            accepted = None
            tries = redraws = 0
            while tries < MAX_TRIES and redraws < MAX_FACING_REDRAWS:
                camera = sample_uniform_views(1, generator)
                camera = Cameras(camera.elev, camera.azim, settings.radius).to(mesh.vertices.device)
                if float(camera.rotations()[0, 2] @ normal) < 0:  # faces away: redrawn, not counted
                    redraws += 1
                    continue
                tries += 1
                if visible_vertices(rasterize(mesh, camera, settings.res), mesh, camera)[0, vertex]:
                    accepted = camera
                    break
            if accepted is None and last is None:
                break  # never visible: no views for this vertex
            last = accepted if accepted is not None else last
            views.append(last)
        return views

    # --- one view ---------------------------------------------------------------------------------------------
    def view_samples(self, camera: Cameras, view_id: int, assigned: List[int], kinds: Set[int]) -> Samples:
        """All samples of one view for the sampled vertices ``assigned`` (positions in ``fps``)."""
        settings, mesh = self.settings, self.mesh
        camera = camera.to(mesh.vertices.device)
        image, fragments = render(mesh, camera, settings.res, background=settings.background)
        encoded = self.teacher.encode(TeacherView(image[0].cpu(), fragments.pix_to_face[0].cpu()))
        self.counters.image_encodings += 1
        visible = visible_vertices(fragments, mesh, camera)[0][self.fps].cpu()  # (k,)
        pixels, _ = vertex_pixels(self.fps_points, camera, settings.res)
        points = pixels[0].flip(-1).float().cpu()  # (k, 2) as (x = column, y = row)

        firsts = torch.tensor(assigned, dtype=torch.int64)
        masks, scores, best_logits = self.predict(encoded, points[firsts].unsqueeze(1),
                                                  torch.ones(len(firsts), 1, dtype=torch.int64))
        clicked = points[firsts].long()
        masks[torch.arange(len(firsts)), clicked[:, 1], clicked[:, 0]] = True  # the clicked pixel is in (original)

        parts = []
        elev, azim = float(camera.elev[0]), float(camera.azim[0])
        if KIND_SINGLE in kinds:
            parts.append(self.make_samples(firsts, firsts, torch.ones(len(firsts), dtype=torch.int8), KIND_SINGLE,
                                           view_id, elev, azim, points, pack_masks(masks), scores))
        for kind in (KIND_POSITIVE, KIND_NEGATIVE):
            if kind in kinds:
                parts.append(self.second_clicks(kind, encoded, view_id, elev, azim, firsts, points, visible, masks,
                                                scores, best_logits))
        return Samples.concatenate(parts, settings.res)

    def second_clicks(self, kind: int, encoded, view_id: int, elev: float, azim: float, firsts: torch.Tensor,
                      points: torch.Tensor, visible: torch.Tensor, masks: torch.Tensor, scores: torch.Tensor,
                      best_logits: torch.Tensor) -> Samples:
        """Second positive (outside the mask, must grow) or negative (inside, must shrink) clicks, and
        with ``negative_outside`` / ``positive_inside`` the other side's clicks, which must leave the mask unchanged."""
        settings = self.settings
        pixel_columns, pixel_rows = points[:, 0].long(), points[:, 1].long()
        pairs: List[Tuple[int, int, bool]] = []  # (row in firsts, fps position of the second click, unchanged side)
        # --negative_outside / --positive_inside: clicks on the other side too, kept when they leave the mask unchanged
        other_side = settings.negative_outside if kind == KIND_NEGATIVE else settings.positive_inside
        sides = (False, True) if other_side else (False,)
        for row, a in enumerate(firsts.tolist()):
            if scores[row] < SCORE_THRESHOLD:
                continue
            inside = masks[row][pixel_rows, pixel_columns]  # (k,) is each sampled vertex's pixel in the mask
            for unchanged in sides:
                candidate = visible & (inside if (kind == KIND_NEGATIVE) != unchanged else ~inside)
                candidate[a] = False
                options = candidate.nonzero(as_tuple=True)[0]
                if len(options) == 0:
                    continue
                distance = ((self.fps_points[options] - self.fps_points[a]) ** 2).sum(dim=1).cpu()
                options = options[distance < 0.5 * distance.max()]
                if len(options) > settings.second_clicks:
                    side = ("outside" if kind == KIND_NEGATIVE else "inside",) if unchanged else ()
                    keys = (settings.seed, KIND_NAMES[kind], int(self.fps[a]), view_id) + side
                    order = torch.randperm(len(options), generator=keyed_generator(*keys))
                    options = options[order[:settings.second_clicks]]
                pairs += [(row, int(b), unchanged) for b in options]
        if not pairs:
            return Samples.empty(settings.res)
        rows = torch.tensor([p[0] for p in pairs])
        seconds = torch.tensor([p[1] for p in pairs])
        label = 1 if kind == KIND_POSITIVE else 0
        two_points = torch.stack([points[firsts[rows]], points[seconds]], dim=1)  # (P, 2, 2)
        labels = torch.tensor([[1, label]]).expand(len(pairs), 2)
        logits = best_logits[rows.to(best_logits.device)] if best_logits is not None else None
        for _ in range(settings.refinement_steps if self.teacher.uses_mask_input else 1):
            new_masks, new_scores, logits = self.predict(encoded, two_points, labels, logits)
        new_packed, old_packed = pack_masks(new_masks), pack_masks(masks)[rows]
        new_area, old_area = packed_areas(new_packed), packed_areas(old_packed)
        intersection = packed_intersections(new_packed, old_packed)
        iou = intersection.float() / (new_area + old_area - intersection).clamp_min(1).float()
        keep = (iou <= IOU_LIMIT) & (new_area >= old_area if kind == KIND_POSITIVE else new_area <= old_area)
        unchanged = torch.tensor([p[2] for p in pairs], device=keep.device)
        keep = torch.where(unchanged, iou > IOU_LIMIT, keep)  # the other side's click must leave the mask as it was
        signs = torch.full((len(pairs),), 1 if kind == KIND_POSITIVE else -1, dtype=torch.int8)
        kept = keep.nonzero(as_tuple=True)[0]
        return self.make_samples(firsts[rows[kept]], seconds[kept], signs[kept], kind, view_id, elev, azim, points,
                                 new_packed[kept], new_scores[kept])

    def make_samples(self, firsts: torch.Tensor, seconds: torch.Tensor, second_signs: torch.Tensor, kind: int,
                     view_id: int, elev: float, azim: float, points: torch.Tensor, packed_masks: torch.Tensor,
                     scores: torch.Tensor) -> Samples:
        """Samples of first clicks ``firsts`` and second clicks ``seconds`` (positions in ``fps``), packed masks."""
        count = len(firsts)
        fps = self.fps.cpu()
        self.counters.samples[kind] += count
        return Samples(
            vertices=torch.stack([fps[firsts], fps[seconds]], dim=1),
            signs=torch.stack([torch.ones(count, dtype=torch.int8), second_signs], dim=1),
            kind=torch.full((count,), kind, dtype=torch.int8),
            view=torch.full((count,), view_id, dtype=torch.int64),
            elev=torch.full((count,), elev), azim=torch.full((count,), azim),
            points=torch.stack([points[firsts], points[seconds]], dim=1),
            masks=packed_masks, score=scores, res=self.settings.res,
        )

    # --- teacher calls ----------------------------------------------------------------------------------------
    def predict(self, encoded, points: torch.Tensor, labels: torch.Tensor,
                mask_input: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """Teacher predictions in batches of PROMPT_BATCH prompts (counted calls), reduced to what generation keeps.

        Returns:
            masks: (P, H, W) bool, the kept output of each prompt (index 0, or the best-scoring with
                ``mask_select best``); scores: (P,) float32 its score; best_logits: (P, 1, 256, 256) low-resolution
                logits of the best-scoring output, the next refinement step's mask input (None if the teacher
                ignores mask inputs).
        """
        masks, scores, logits = [], [], []
        batch = PROMPT_BATCH.get(self.mesh.vertices.device.type, 16)
        for start in range(0, len(points), batch):
            part = slice(start, start + batch)
            prediction = self.teacher.predict(encoded, points[part], labels[part],
                                              None if mask_input is None else mask_input[part])
            self.counters.prompt_calls += 1
            self.counters.prompts += len(points[part])
            rows = torch.arange(prediction.scores.shape[0])
            choice = self.select(prediction.scores)
            masks.append(prediction.masks[rows, choice].cpu())
            scores.append(prediction.scores[rows, choice].float().cpu())
            if self.teacher.uses_mask_input:
                logits.append(prediction.low_res_logits[rows, prediction.scores.argmax(dim=1)].unsqueeze(1))
        return torch.cat(masks), torch.cat(scores), torch.cat(logits) if logits else None

    def select(self, scores: torch.Tensor) -> torch.Tensor:
        """(P,) the kept mask of each prompt's outputs: index 0 (the original) or the best-scoring one."""
        if self.settings.mask_select == "best":
            return scores.argmax(dim=1)
        return torch.zeros(scores.shape[0], dtype=torch.int64, device=scores.device)

    def write(self, path: str, parts: List[Samples]) -> None:
        Samples.concatenate(parts, self.settings.res).save(path)


def _vertex_normals(mesh: Mesh) -> torch.Tensor:
    """(N, 3) sum of the unit normals of each vertex's faces (its sign is the original's facing test)."""
    normals = mesh.face_normals()
    return torch.zeros_like(mesh.vertices).index_add_(0, mesh.faces.reshape(-1), normals.repeat_interleave(3, dim=0))


def save_preview(mesh: Mesh, root: str, settings: GenerationSettings, per_kind: int = 4) -> str:
    """``preview.png``: the first few samples of each kind, drawn on their views. Returns its path."""
    from utils.plots import save_sample_preview

    samples = load_decoder_samples(root)
    images, masks, points, signs, titles = [], [], [], [], []
    for kind in (KIND_SINGLE, KIND_POSITIVE, KIND_NEGATIVE):
        chosen = (samples.kind == kind).nonzero(as_tuple=True)[0][:per_kind]
        subset = samples.select(chosen)
        for i in range(len(subset)):
            camera = Cameras(subset.elev[i:i + 1], subset.azim[i:i + 1], settings.radius).to(mesh.vertices.device)
            image, _ = render(mesh, camera, settings.res, background=settings.background)
            images.append(image[0].cpu().numpy())
            masks.append(subset.unpacked_masks()[i].numpy())
            points.append(subset.points[i].numpy())
            signs.append(subset.signs[i].numpy())
            titles.append(f"{KIND_NAMES[kind]}: {subset.vertices[i].tolist()} score {float(subset.score[i]):.2f}")
    path = os.path.join(root, "preview.png")
    save_sample_preview(images, masks, points, signs, titles, path)
    return path
