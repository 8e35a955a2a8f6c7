"""Labelled mesh collections for evaluate.py, in the two layouts of ../shared/data (detected automatically).

* Princeton Segmentation Benchmark (Chen et al. 2009): ``off/<id>.off`` and ``seg/<id>/<id>_<k>.seg``, one file per
  annotator k, 0-based segment ids per face (no meaning across meshes). The category follows from the id (20 ids a
  category: 1–20 Human, 21–40 Cup, …).
* COSEG (Wang et al. 2012): ``shapes/<id>.off`` and ``gt/<id>.seg``, one labelling, 1-based labels per face,
  consistent across the set; the category is the folder's name (``coseg/chairs`` → chairs).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from utils.errors import InputError

PSB_CATEGORIES = ("Human", "Cup", "Glasses", "Airplane", "Ant", "Chair", "Octopus", "Table", "Teddy", "Hand",
                  "Plier", "Fish", "Bird", "Spring", "Armadillo", "Bust", "Mech", "Bearing", "Vase", "Fourleg")


@dataclass(frozen=True)
class LabelledMesh:
    """One mesh of a collection.

    Attributes:
        mesh_id: the file stem (``"2"``); mesh_path: its ``.off``; category: e.g. "Human", "chairs";
        annotations: per-face label files, annotator 0 first (PSB: sorted by k; COSEG: one).
    """

    mesh_id: str
    mesh_path: str
    category: str
    annotations: Sequence[str]

    def annotation(self, annotator: int) -> str:
        """The label file of one annotator; InputError if the mesh has no such annotator."""
        if not 0 <= annotator < len(self.annotations):
            raise InputError(f"mesh {self.mesh_id} has {len(self.annotations)} annotator(s), not annotator "
                             f"{annotator}")
        return self.annotations[annotator]


@dataclass(frozen=True)
class Collection:
    """A folder of labelled meshes: ``layout`` is "psb" or "coseg"; ``name`` labels the results."""

    root: str
    layout: str
    name: str
    meshes: List[LabelledMesh]

    def select(self, mesh_ids: Optional[Sequence[str]]) -> List[LabelledMesh]:
        """The meshes with these ids, in the given order (all when None); an unknown id is an InputError."""
        if not mesh_ids:
            return list(self.meshes)
        by_id: Dict[str, LabelledMesh] = {m.mesh_id: m for m in self.meshes}
        missing = [i for i in mesh_ids if i not in by_id]
        if missing:
            raise InputError(f"no mesh {', '.join(missing)} in {self.root} (it has {len(by_id)} meshes: "
                             f"{', '.join(sorted(by_id, key=_natural)[:8])}…)")
        return [by_id[i] for i in mesh_ids]


def _natural(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _listdir(path: str) -> List[str]:
    try:
        return sorted(os.listdir(path), key=_natural)
    except OSError as err:
        raise InputError(f"cannot read the data folder {path}: {err.strerror or err}") from None


def psb_category(mesh_id: str) -> str:
    """PSB category of a numeric id (20 per category, from 1); "other" if the id is not a number in range."""
    if mesh_id.isdigit() and 1 <= int(mesh_id) <= 20 * len(PSB_CATEGORIES):
        return PSB_CATEGORIES[(int(mesh_id) - 1) // 20]
    return "other"


def find_collection(root: str) -> Collection:
    """Detect the layout of ``root`` and list its meshes (those with at least one label file).

    Raises:
        InputError: missing or unreadable folder, neither layout, or no labelled mesh.
    """
    if not os.path.isdir(root):
        raise InputError(f"data folder not found: {root}")
    entries = set(_listdir(root))
    name = os.path.basename(os.path.normpath(os.path.abspath(root)))
    meshes: List[LabelledMesh] = []
    if {"off", "seg"} <= entries:
        layout = "psb"
        for file in _listdir(os.path.join(root, "off")):
            stem, extension = os.path.splitext(file)
            folder = os.path.join(root, "seg", stem)
            if extension.lower() != ".off" or not os.path.isdir(folder):
                continue
            pattern = re.compile(rf"^{re.escape(stem)}_(\d+)\.seg$")
            found = sorted((int(m.group(1)), n) for n in _listdir(folder) if (m := pattern.match(n)))
            if found:
                meshes.append(LabelledMesh(stem, os.path.join(root, "off", file), psb_category(stem),
                                           [os.path.join(folder, n) for _, n in found]))
    elif {"shapes", "gt"} <= entries:
        layout = "coseg"
        for file in _listdir(os.path.join(root, "shapes")):
            stem, extension = os.path.splitext(file)
            labels = os.path.join(root, "gt", f"{stem}.seg")
            if extension.lower() == ".off" and os.path.isfile(labels):
                meshes.append(LabelledMesh(stem, os.path.join(root, "shapes", file), name, [labels]))
    else:
        raise InputError(f"{root} is neither in the PSB layout (off/, seg/) nor in the COSEG layout (shapes/, gt/)")
    if not meshes:
        raise InputError(f"{root} ({layout} layout) holds no mesh with labels")
    return Collection(root, layout, name, meshes)
