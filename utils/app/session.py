"""The state behind interactive.py's page: one mesh, its features and decoder, loaded once (as SAM's predictor);
clicks in, per-vertex probabilities out; exports of the current segment.

Requests come from a browser and are checked here (:func:`parse_clicks_request`): a bad one is a
:class:`RequestError` with a one-line reason, and the server answers it with HTTP 400 and stays up.

Exports (``<save_dir>/exports/``, written atomically), for segment k of the session:

* ``<name>_segment<k>.ply`` (or ``.obj``) — the selected faces as a sub-mesh in the mesh file's coordinates, coloured
  by probability as the page shows it;
* ``<name>_segment<k>_probability.npy`` — float32 (N,) per-vertex probabilities;
* ``<name>_segment<k>_clicks.json`` — the clicks, the threshold, and the ``decoder.py --mode test`` command that
  replays them;
* ``<name>_labels.npy`` and ``<name>_labels.seg`` — one int per face for the whole session: 0 = no segment, k = the
  latest segment k exported that contains the face (later segments win). Exporting segment k again replaces it.

A face is selected when the mean of its vertices' probabilities exceeds the threshold (0.5, or Otsu's threshold of
the probabilities when the page's Otsu switch is on, as the original's checkbox).

The page's click-aware switch (``"click_aware": true`` in a request; on at start with ``interactive.py --click_aware
1``) answers with the click-aware decoder (models/click_aware.py: the same decoder, each click an edit of the segment
where it is); its per-vertex values are the share of each vertex's surrounding area in the segment, and the clicks
JSON's replay command carries ``--click_aware 1``.
"""
from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from models.click_aware import ClickAwarePredictor
from models.decoder_predictor import DecoderPredictor
from utils.decoder.outputs import require_finite_probability, vertex_colours
from utils.errors import InputError
from utils.geometry.mesh import Mesh
from utils.io import replaced_together, save_json, save_numpy, save_ply, save_text

MAX_CLICKS = 256  # clicks per request (a user never needs more; bounds the work of one request)
MAX_SEGMENT = 65535


class RequestError(ValueError):
    """A malformed request from the page (answered with HTTP 400; the server stays up)."""


@dataclass(frozen=True)
class Colours:
    """RGB 0–255 colours of the page and the exports (the original's flags)."""

    base: Tuple[int, int, int]
    segment: Tuple[int, int, int]
    positive: Tuple[int, int, int]
    negative: Tuple[int, int, int]


def parse_clicks_request(body: object, num_vertices: int) -> Tuple[List[int], List[bool]]:
    """``{"clicks": [[vertex, positive], ...]}`` → (vertices, positive flags); RequestError when malformed.

    Vertices are ints in [0, num_vertices); flags are JSON booleans; at least one click, at most MAX_CLICKS.
    """
    if not isinstance(body, dict) or "clicks" not in body:
        raise RequestError('expected a JSON object {"clicks": [[vertex, positive], ...]}')
    clicks = body["clicks"]
    if not isinstance(clicks, list) or not clicks:
        raise RequestError("the click list is empty")
    if len(clicks) > MAX_CLICKS:
        raise RequestError(f"too many clicks ({len(clicks)} > {MAX_CLICKS})")
    vertices, positive = [], []
    for click in clicks:
        if (not isinstance(click, list) or len(click) != 2 or isinstance(click[0], bool)
                or not isinstance(click[0], int) or not isinstance(click[1], bool)):
            raise RequestError(f"a click is [vertex id, true|false], got {str(click)[:40]}")
        if not 0 <= click[0] < num_vertices:
            raise RequestError(f"vertex {click[0]} is out of range (the mesh has {num_vertices} vertices)")
        vertices.append(click[0])
        positive.append(click[1])
    return vertices, positive


def otsu_threshold(probability: np.ndarray) -> float:
    """Otsu's threshold of (N,) probabilities (skimage, as the original); 0.5 when they are all equal."""
    from skimage.filters import threshold_otsu

    if np.ptp(probability) <= 0:
        return 0.5
    return float(threshold_otsu(probability))


class InteractiveSession:
    """One mesh ready for clicks.

    Args:
        mesh: the loaded mesh; predictor: its DecoderPredictor; name: used in export file names;
        save_dir: exports go to ``save_dir/exports``; colours: page and export colours;
        replay: decoder.py arguments that load the same mesh, features and checkpoint (for the clicks JSON);
        click_aware: whether the page's click-aware switch starts on (requests may say otherwise).
    """

    def __init__(self, mesh: Mesh, predictor: DecoderPredictor, name: str, save_dir: str, colours: Colours,
                 replay: Sequence[str], click_aware: bool = False) -> None:
        if not name or name in (".", "..") or os.path.basename(name) != name or (os.altsep and os.altsep in name) \
                or "\0" in name:
            raise InputError(f"--name must be a plain name, without folders (exports go to {save_dir}/exports): "
                             f"got {name!r}")
        self.mesh, self.predictor, self.name, self.colours = mesh, predictor, name, colours
        self.export_dir = os.path.join(save_dir, "exports")
        self.replay = list(replay)
        self.faces = mesh.faces.cpu().numpy()
        self.click_aware = bool(click_aware)
        self.click_aware_predictor = ClickAwarePredictor.for_mesh(predictor, mesh)

    def mesh_payload(self) -> Dict[str, object]:
        """What the page needs to draw the mesh: normalised positions, faces and the colours."""
        return {"name": self.name, "num_vertices": self.mesh.num_vertices, "num_faces": self.mesh.num_faces,
                "vertices": np.round(self.mesh.vertices.cpu().numpy().astype(np.float64), 6).ravel().tolist(),
                "faces": self.faces.ravel().tolist(), "click_aware": self.click_aware,
                "colours": {"base": self.colours.base, "segment": self.colours.segment,
                            "positive": self.colours.positive, "negative": self.colours.negative}}

    def predict(self, vertices: Sequence[int], positive: Sequence[bool], click_aware: bool = False
                ) -> Tuple[np.ndarray, float]:
        """(N,) float32 probabilities for the clicks (``click_aware``: the click-aware decoder's per-vertex
        values) and the seconds the decoder took."""
        start = time.perf_counter()
        predictor = self.click_aware_predictor if click_aware else self.predictor
        probability = predictor.predict(torch.as_tensor(list(vertices), dtype=torch.int64),
                                        torch.as_tensor(list(positive), dtype=torch.bool))
        require_finite_probability(probability)  # never shown, never exported
        return probability.cpu().numpy().astype(np.float32), time.perf_counter() - start

    def _click_aware_of(self, body: Dict) -> bool:
        value = body.get("click_aware", self.click_aware)
        if not isinstance(value, bool):
            raise RequestError("click_aware must be true or false")
        return value

    def predict_request(self, body: object) -> Dict[str, object]:
        vertices, positive = parse_clicks_request(body, self.mesh.num_vertices)
        click_aware = self._click_aware_of(body)
        probability, seconds = self.predict(vertices, positive, click_aware)
        return {"probability": np.round(probability.astype(np.float64), 4).tolist(), "seconds": round(seconds, 4),
                "otsu_threshold": round(otsu_threshold(probability), 4), "click_aware": click_aware}

    def export_request(self, body: object) -> Dict[str, object]:
        """Export the segment of ``{"clicks": …, "otsu": bool, "segment": k ≥ 1, "format": "ply"|"obj"}``."""
        vertices, positive = parse_clicks_request(body, self.mesh.num_vertices)
        segment = body.get("segment", 1)
        if isinstance(segment, bool) or not isinstance(segment, int) or not 1 <= segment <= MAX_SEGMENT:
            raise RequestError(f"segment must be an integer in 1..{MAX_SEGMENT}, got {str(segment)[:20]}")
        file_format = body.get("format", "ply")
        if file_format not in ("ply", "obj"):
            raise RequestError(f"format must be ply or obj, got {str(file_format)[:20]}")
        otsu = body.get("otsu", False)
        if not isinstance(otsu, bool):
            raise RequestError("otsu must be true or false")
        return self.export(vertices, positive, segment, otsu, file_format, self._click_aware_of(body))

    def export(self, vertices: Sequence[int], positive: Sequence[bool], segment: int, otsu: bool = False,
               file_format: str = "ply", click_aware: bool = False) -> Dict[str, object]:
        """Write segment ``segment``'s files (see the module docstring); returns their paths and the face count."""
        probability, _ = self.predict(vertices, positive, click_aware)
        threshold = otsu_threshold(probability) if otsu else 0.5
        selected = probability[self.faces].mean(axis=1) > threshold  # (F,)
        stem = os.path.join(self.export_dir, f"{self.name}_segment{segment}")
        paths = {"mesh": f"{stem}.{file_format}", "probability": f"{stem}_probability.npy",
                 "clicks": f"{stem}_clicks.json", "labels": os.path.join(self.export_dir, f"{self.name}_labels.npy")}
        os.makedirs(self.export_dir, exist_ok=True)
        tokens = [f"{'p' if p else 'n'}{v}" for v, p in zip(vertices, positive)]
        labels = self._labels(paths["labels"])
        labels[labels == segment] = 0
        labels[selected] = segment
        seg = paths["labels"][:-4] + ".seg"
        with replaced_together() as stage:  # the segment's files and the label files change together or not at all
            self._write_submesh(stage(paths["mesh"]), selected, probability, file_format)
            save_numpy(probability, stage(paths["probability"]))
            save_json({"clicks": [{"vertex": v, "positive": p} for v, p in zip(vertices, positive)],
                       "select_vertices": tokens, "threshold": threshold, "otsu": otsu, "segment": segment,
                       "click_aware": click_aware, "selected_faces": int(selected.sum()),
                       "replay": shlex.join(["python", "decoder.py", "--mode", "test", *self.replay,
                                             *(["--click_aware", "1"] if click_aware else []),
                                             "--select_vertices", *tokens])}, stage(paths["clicks"]))
            save_numpy(labels, stage(paths["labels"]))
            save_text("".join(f"{v}\n" for v in labels.tolist()), stage(seg))
        return {"paths": {**paths, "labels_seg": seg}, "selected_faces": int(selected.sum()),
                "threshold": threshold}

    def _labels(self, path: str) -> np.ndarray:
        if os.path.exists(path):
            try:
                labels = np.load(path, allow_pickle=False)
                if labels.shape == (self.mesh.num_faces,):
                    return labels.astype(np.int32)
            except (OSError, ValueError):
                pass
        return np.zeros(self.mesh.num_faces, dtype=np.int32)

    def _write_submesh(self, path: str, selected: np.ndarray, probability: np.ndarray, file_format: str) -> None:
        faces = self.faces[selected]
        used, inverse = np.unique(faces.ravel(), return_inverse=True)
        positions = self.mesh.original_vertices().cpu().numpy()[used]
        faces = inverse.reshape(-1, 3)
        if file_format == "ply":
            colours = vertex_colours(torch.from_numpy(probability[used]), self.colours.segment, self.colours.base)
            save_ply(path, positions, faces, colours)
        else:
            import trimesh

            submesh = trimesh.Trimesh(positions, faces, process=False)  # process=False: vertex order kept
            save_text(trimesh.exchange.obj.export_obj(submesh, include_normals=False), path)
