"""The click-aware decoder (``--click_aware 1``, not in the original): every click edits the segment where it is.

The original decoder answers each click set afresh from the clicked vertices' features alone. Near part borders
those features blend two parts, so a correction click there reads as the neighbouring part: a positive click adds
the whole neighbour, a negative one removes the whole target. The click-aware decoder keeps the trained decoder
(same modules, same checkpoint, no extra training) and turns its answers into local edits of the segment on the
mesh's face graph, one click at a time:

* S₁ — the decoder's segment for the first click (a face is in when the mean of its vertices' probabilities is
  > 0.5).
* For click k (vertex v, sign s), the decoder's segment Q for clicks 1..k *proposes* a change: the faces where Q says
  s and S_{k−1} does not (a positive click only adds faces, a negative one only removes them). Of that proposal only
  the connected piece C that holds v's faces is taken (faces elsewhere keep their side: a click acts where it is);
  v's own faces always belong to C.
* C is cut where it stops belonging to the click. The region a correction click is in lies along the segment's
  border (for a negative click: along the border of what is outside the segment), and a click at its centre is
  about half its width away from that side; so C's faces farther from that side than ``reach`` × the click's own
  distance from it lie beyond the region (the rest of a neighbouring part, say). Those faces, and the faces around
  earlier clicks of the other sign, are seeds against the change; a random walk on C's faces (Lai et al. 2008:
  weights from dihedral angles, so the cut falls on the concave creases where parts meet) between v's faces and
  those seeds decides: the faces more likely to reach v's faces first change. Without seeds against, all of C
  changes.
* When the decoder proposes no change at v at all, the proposal is the connected region around v on the wrong side
  of S_{k−1} (the region the click says is wrong), cut the same way.
* Finally every clicked vertex's faces take its click's sign (later clicks win where faces of two clicks touch).

The answer depends on the order of the clicks (it is a sequence of edits). Per-vertex outputs are the share of the
area around each vertex that lies in the segment (1 inside, 0 outside, in between along the border), so ``> 0.5``
reads as for the decoder's probabilities.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence, Tuple

import numpy as np
import scipy.sparse as sparse
import torch
from scipy.sparse.csgraph import connected_components

from models.decoder_predictor import DecoderPredictor
from utils.geometry.mesh_graph import MeshGeometry, face_prediction, geodesic_distances, random_walk_segmentation

#: faces farther from the segment's side than this many times the click's distance from it are beyond its region
DEFAULT_REACH = 3.0
#: click sequences whose segments are kept (an interactive session's undo and replay reuse them)
CACHED_SEQUENCES = 256


def _components_holding(region: np.ndarray, seeds: np.ndarray, adjacency: sparse.csr_matrix) -> np.ndarray:
    """(F,) bool: the connected pieces of ``region`` ((F,) bool) that hold a face of ``seeds`` (ids in region)."""
    ids = np.nonzero(region)[0]
    if len(ids) == 0 or len(seeds) == 0:  # nothing to change (a click on a vertex of no face)
        return np.zeros(len(region), dtype=bool)
    _, component = connected_components(adjacency[ids][:, ids], directed=False)
    position = np.full(len(region), -1)
    position[ids] = np.arange(len(ids))
    held = np.unique(component[position[seeds]])
    piece = np.zeros(len(region), dtype=bool)
    piece[ids[np.isin(component, held)]] = True
    return piece


class ClickAwareEditor:
    """The edits of the module docstring on one mesh.

    Args:
        geometry: the mesh's MeshGeometry (utils/geometry/mesh_graph.py); reach: the cut's distance factor.
    """

    def __init__(self, geometry: MeshGeometry, reach: float = DEFAULT_REACH) -> None:
        self.geometry, self.reach = geometry, reach

    def first(self, proposal: np.ndarray, vertex: int, positive: bool) -> np.ndarray:
        """S₁: the decoder's (F,) bool segment for one click, with the click's faces on its side."""
        segment = proposal.copy()
        segment[self.geometry.faces_around([vertex])] = positive
        return segment

    def edit(self, previous: np.ndarray, proposal: np.ndarray, vertices: Sequence[int],
             positive: Sequence[bool]) -> np.ndarray:
        """S_k from S_{k−1} (``previous``, (F,) bool) and the decoder's segment for all k clicks (``proposal``);
        the last of ``vertices`` / ``positive`` is the new click."""
        geometry = self.geometry
        vertex, sign = int(vertices[-1]), bool(positive[-1])
        around = geometry.faces_around([vertex])
        change = (proposal == sign) & (previous != sign)
        if not change[around].any():  # the decoder did not answer the click: its wrong-side region is the proposal
            change = previous != sign
        change[around] = True
        piece = _components_holding(change, around, geometry.face_adjacency)
        against = self._seeds_against(piece, previous, vertex, vertices[:-1], positive[:-1], sign)
        segment = previous.copy()
        if len(against) == 0:
            segment[piece] = sign
        else:
            ids = np.nonzero(piece)[0]
            position = np.full(len(piece), -1)
            position[ids] = np.arange(len(ids))
            reached = random_walk_segmentation(geometry.crease_weights[ids][:, ids], position[around],
                                               position[against])
            segment[ids[reached > 0.5]] = sign
        for clicked, clicked_positive in zip(vertices, positive):
            segment[geometry.faces_around([int(clicked)])] = bool(clicked_positive)
        return segment

    def _seeds_against(self, piece: np.ndarray, previous: np.ndarray, vertex: int, earlier: Sequence[int],
                       earlier_positive: Sequence[bool], sign: bool) -> np.ndarray:
        """Face ids of ``piece`` that must not change: around earlier clicks of the other sign, and beyond the
        click's region (the module docstring)."""
        geometry = self.geometry
        against = [geometry.faces_around([int(v)]) for v, p in zip(earlier, earlier_positive) if bool(p) != sign]
        # the error region the click is in lies along the segment's border (for a negative click: along the border
        # of what is outside it), about twice as wide as the click's distance from that side
        side = np.zeros(geometry.num_vertices, dtype=bool)
        side[geometry.faces[previous == sign].ravel()] = True
        if side.any():
            distance = geodesic_distances(geometry.graph, np.nonzero(side)[0])
            limit = self.reach * float(distance[vertex])
            beyond = piece & (distance[geometry.faces].min(axis=1) > limit)
            against.append(np.nonzero(beyond)[0])
        if not against:
            return np.zeros(0, dtype=np.int64)
        ids = np.unique(np.concatenate(against))
        return ids[piece[ids]]


class ClickAwarePredictor:
    """A DecoderPredictor whose click sets are answered as sequences of edits (the module docstring).

    Segments of recent click sequences are kept, so a session that adds one click pays one decoder pass and one
    edit; a sequence is computed from its longest kept prefix.

    Args:
        decoder: the mesh's DecoderPredictor; geometry: its MeshGeometry; reach: see ClickAwareEditor.
    """

    def __init__(self, decoder: DecoderPredictor, geometry: MeshGeometry, reach: float = DEFAULT_REACH) -> None:
        self.decoder, self.geometry = decoder, geometry
        self.editor = ClickAwareEditor(geometry, reach)
        self._segments: "OrderedDict[Tuple[Tuple[int, bool], ...], np.ndarray]" = OrderedDict()

    @classmethod
    def for_mesh(cls, decoder: DecoderPredictor, mesh, reach: float = DEFAULT_REACH) -> "ClickAwarePredictor":
        """The click-aware predictor of a utils.geometry.mesh.Mesh (its graphs built here, once)."""
        vertices = mesh.vertices.detach().cpu().numpy().astype(np.float64)
        geometry = MeshGeometry.build(vertices, mesh.faces.detach().cpu().numpy())
        geometry.crease_weights  # computed now, not on the first click
        return cls(decoder, geometry, reach)

    @property
    def num_vertices(self) -> int:
        return self.decoder.num_vertices

    def proposal(self, vertices: Sequence[int], positive: Sequence[bool]) -> np.ndarray:
        """(F,) bool: the decoder's own segment for the clicks (face in when its vertices' mean probability > 0.5)."""
        probability = self.decoder.predict(torch.as_tensor(list(vertices), dtype=torch.int64),
                                           torch.as_tensor(list(positive), dtype=torch.bool))
        return face_prediction(probability.cpu().numpy(), self.geometry.faces)

    def segment(self, vertices: Sequence[int], positive: Sequence[bool]) -> np.ndarray:
        """(F,) bool segment after the clicks, in their order (at least one click)."""
        clicks = tuple((int(v), bool(p)) for v, p in zip(vertices, positive))
        if not clicks:
            raise ValueError("the click-aware decoder needs at least one click")
        known = next((k for k in range(len(clicks), 0, -1) if clicks[:k] in self._segments), 0)
        segment = self._segments[clicks[:known]] if known else None
        for k in range(known, len(clicks)):
            prefix = clicks[:k + 1]
            ids, signs = [c[0] for c in prefix], [c[1] for c in prefix]
            proposal = self.proposal(ids, signs)
            segment = (self.editor.first(proposal, ids[0], signs[0]) if k == 0
                       else self.editor.edit(segment, proposal, ids, signs))
            self._remember(prefix, segment)
        self._segments.move_to_end(clicks)
        return segment.copy()

    def _remember(self, clicks: Tuple[Tuple[int, bool], ...], segment: np.ndarray) -> None:
        self._segments[clicks] = segment
        while len(self._segments) > CACHED_SEQUENCES:
            self._segments.popitem(last=False)

    def predict(self, vertices: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        """(C,) clicked vertices and (C,) bool positive → (N,) float32 share of each vertex's surrounding area in the
        segment (as DecoderPredictor.predict's probabilities: > 0.5 is in), on the decoder's device."""
        segment = self.segment(vertices.tolist(), positive.tolist())
        coverage = torch.from_numpy(self.geometry.vertex_coverage(segment))
        return coverage.to(self.decoder.features.device)
