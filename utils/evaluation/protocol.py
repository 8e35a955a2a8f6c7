"""Click-based evaluation of a segmenter on one labelled mesh (evaluate.py): the next click goes to the vertex of the
largest error region farthest (along the surface) from its border, positive in a missed region, negative in a false
one; IoU after k clicks and the number of clicks to reach 80/85/90 % (at most 20), area-weighted per face.


* :func:`segment_targets` — the ground-truth segments worth clicking: those covering ≥ ``MIN_TARGET_AREA`` of the
  surface.
* :func:`simulate_clicks` — up to ``NOC_CAP`` simulated clicks on one target with any segmenter (a function from
  the clicks so far to a per-face prediction); see utils/evaluation/click_simulation.py for where clicks go.
* Segmenters: :class:`IsegSegmenter` (the trained decoder; a face is in when the mean of its vertices'
  probabilities is > 0.5) and the baselines of
  utils/evaluation/baselines.py.
* :func:`human_ceiling` — how well other annotators' segments match a target: what people themselves agree on.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from utils.evaluation.click_simulation import (
    NOC_CAP,
    ClickPlacer,
    MeshGeometry,
    area_iou,
    face_prediction,
    first_click,
    inner_vertex,
    next_click,
)

MIN_TARGET_AREA = 0.02  # targets: segments covering at least this share of the surface area
IOU_AT = (1, 2, 3, 5, 10, 20)  # clicks at which mean IoU is reported
NOC_THRESHOLDS = (0.80, 0.85, 0.90)

#: a segmenter: (clicked vertices, positive flags) → (F,) bool face prediction
Segmenter = Callable[[Sequence[int], Sequence[bool]], np.ndarray]


def segment_targets(labels: np.ndarray, areas: np.ndarray, min_share: float = MIN_TARGET_AREA) -> List[int]:
    """Labels of the segments whose faces cover at least ``min_share`` of the total area, in increasing order.

    Args:
        labels: (F,) int per-face labels; areas: (F,) face areas.
    """
    total = float(areas.sum())
    values = np.unique(labels)
    shares = {int(v): float(areas[labels == v].sum()) / total for v in values}
    return [v for v in sorted(shares) if shares[v] >= min_share]


@dataclass
class Click:
    """One simulated click and the prediction that followed: vertex, sign, area IoU, seconds the segmenter took."""

    vertex: int
    positive: bool
    iou: float
    seconds: float


def simulate_clicks(segmenter: Segmenter, target: np.ndarray, geometry: MeshGeometry,
                    cap: int = NOC_CAP, place: ClickPlacer = inner_vertex) -> List[Click]:
    """Click on ``target`` ((F,) bool) until ``cap`` clicks were made or no error region can be clicked.

    The first click is the target's vertex farthest from its border; each next one goes to the largest error region
    of the last prediction, on an inner vertex not clicked before (utils/evaluation/click_simulation.py). Fewer than
    ``cap`` clicks come back when the prediction was exact or its errors were only strips along the target's border that
    no vertex click can single out (:func:`ious_per_click` carries the last IoU forward). ``place``: where in a region
    a click goes (default: the centre simulator; :class:`RandomInnerVertex`: the random one).
    """
    vertices: List[int] = [first_click(target, geometry, place)]
    positive: List[bool] = [True]
    clicks: List[Click] = []
    while True:
        start = time.perf_counter()
        prediction = segmenter(vertices, positive)
        seconds = time.perf_counter() - start
        clicks.append(Click(vertices[-1], positive[-1], area_iou(prediction, target, geometry.areas), seconds))
        if len(clicks) == cap:
            return clicks
        following = next_click(prediction, target, geometry, vertices, place)
        if following is None:
            return clicks
        vertices.append(following[0])
        positive.append(following[1])


def ious_per_click(clicks: Sequence[Dict[str, object]], cap: int = NOC_CAP) -> np.ndarray:
    """(cap,) IoU after 1..cap clicks from a click record (dicts with "iou"); an early end carries its IoU on."""
    ious = [float(c["iou"]) for c in clicks][:cap]
    if not ious:
        raise ValueError("a target without clicks")
    return np.asarray(ious + [ious[-1]] * (cap - len(ious)))


def click_records(clicks: Sequence[Click]) -> List[Dict[str, object]]:
    """JSON-ready dicts of clicks (IoU and seconds rounded to 5 decimals)."""
    return [{**asdict(c), "iou": round(c.iou, 5), "seconds": round(c.seconds, 5)} for c in clicks]


class IsegSegmenter:
    """The decoder as a segmenter: a face is in when the mean of its vertices' probabilities is > 0.5.

    Args:
        predictor: a models.decoder_predictor.DecoderPredictor of the mesh; faces: (F, 3) int vertex ids.
    """

    def __init__(self, predictor, faces: np.ndarray) -> None:
        self.predictor, self.faces = predictor, faces

    def __call__(self, vertices: Sequence[int], positive: Sequence[bool]) -> np.ndarray:
        probability = self.predictor.predict(torch.as_tensor(list(vertices)), torch.as_tensor(list(positive)))
        return face_prediction(probability.cpu().numpy(), self.faces)


def human_ceiling(target: np.ndarray, other_annotations: Sequence[np.ndarray], areas: np.ndarray
                  ) -> Optional[float]:
    """Mean over other annotators of the best area IoU that any one of their segments reaches with ``target``.

    Args:
        target: (F,) bool; other_annotations: (F,) int labels of each other annotator; areas: (F,).
    Returns:
        None when there is no other annotator (JSON ``null``: a missing value, not a number).
    """
    if not other_annotations:
        return None
    best = [max(area_iou(labels == value, target, areas) for value in np.unique(labels[target]))
            for labels in other_annotations]
    return float(np.mean(best))
