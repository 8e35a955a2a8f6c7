"""Where does the pipeline lose with a perfect (label) teacher? Reads an evaluate.py --teacher label output folder and
prints, per mesh and overall:

* feature IoU — how well the trained feature field alone separates the parts: each face gets the label whose
  teacher code (models/label_teacher.label_code) is nearest to the mean of its vertices' features, and the
  area-weighted IoU of that labelling with the ground truth is averaged over the targets. Near 1: the encoder
  (views, feature resolution) keeps the parts apart, so what is lost happens in the decoder.
* iSeg IoU@1 and IoU@3 of the evaluation.
* correction clicks (2nd and later) after which the IoU fell by > 0.2, and targets whose IoU fell below 0.1 after
  having been ≥ 0.8 (collapsed), and how many of those came back to ≥ 0.8 within the 20 clicks.
* how clear the clicked vertices' features are: the weight of the clicked vertex's own part code in its features
  (features · code / |code|²; about 0.9 inside a part, lower where the field blends neighbouring parts), for the
  correction clicks that hurt and for the others, and the share whose nearest code is another part's. Clicks land
  in error regions, and error regions lie where features blend: a click there looks like the neighbouring part.

    .venv/bin/python benchmarks/evaluation_diagnosis.py --data ../shared/data/coseg/chairs --out results/chairs_quick
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.label_teacher import label_code  # noqa: E402
from utils.evaluation.click_simulation import area_iou  # noqa: E402
from utils.evaluation.datasets import find_collection  # noqa: E402
from utils.evaluation.protocol import ious_per_click  # noqa: E402
from utils.geometry.mesh_files import load_face_labels, load_mesh  # noqa: E402


def feature_iou(features: torch.Tensor, faces: np.ndarray, labels: np.ndarray, areas: np.ndarray,
                targets) -> float:
    values = np.unique(labels)
    codes = torch.stack([label_code(int(v)) for v in values])  # (L, 256)
    face_features = features[torch.from_numpy(faces)].mean(dim=1)  # (F, 256)
    nearest = values[torch.cdist(face_features, codes).argmin(dim=1).numpy()]
    return float(np.mean([area_iou(nearest == t, labels == t, areas) for t in targets]))


def own_code_weights(features: torch.Tensor, faces: np.ndarray, labels: np.ndarray, vertices) -> np.ndarray:
    """(K, 2): for each vertex, the weight of its own part's code in its features and whether another part's code is
    nearer (1.0) — its own part being the label of most of its faces."""
    values = np.unique(labels)
    codes = torch.stack([label_code(int(v)) for v in values])  # (L, 256)
    rows = []
    for vertex in vertices:
        around, counts = np.unique(labels[(faces == vertex).any(axis=1)], return_counts=True)
        own = int(np.searchsorted(values, around[np.argmax(counts)]))
        weights = (codes @ features[vertex]).numpy() / float(codes[0].norm()) ** 2
        rows.append((weights[own], float(np.argmax(weights) != own)))
    return np.asarray(rows, dtype=float).reshape(-1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True, help="an evaluate.py --teacher label output folder")
    args = parser.parse_args()
    collection = find_collection(args.data)
    rows, click_rows = [], []
    for path in sorted(glob.glob(os.path.join(args.out, "meshes", "*.json"))):
        record = json.load(open(path))
        if "targets" not in record or record.get("teacher") != "label":
            continue
        entry = collection.select([record["mesh_id"]])[0]
        mesh = load_mesh(entry.mesh_path)
        labels = load_face_labels(entry.annotation(record["annotator"]), mesh.num_faces)
        work = glob.glob(os.path.join(args.out, "work", record["collection"], record["mesh_id"],
                                      f"label_{record['profile']}*_a{record['annotator']}_*", "encoder", "pred_f.pth"))
        if not work:
            continue
        features = torch.load(work[0], weights_only=True)
        areas = mesh.face_areas().double().numpy()
        targets = [t["label"] for t in record["targets"]]
        curves = [ious_per_click(t["clicks"]["iseg"]) for t in record["targets"]]
        clicks = [c for t in record["targets"] for c in zip(t["clicks"]["iseg"], t["clicks"]["iseg"][1:])]
        hurting = np.array([after["iou"] < before["iou"] - 0.2 for before, after in clicks], dtype=bool)
        clarity = own_code_weights(features, mesh.faces.numpy(), labels, [after["vertex"] for _, after in clicks])
        click_rows.append((clarity, hurting))
        collapsed = [c for c in curves if any(c[k] < 0.1 and c[:k].max() >= 0.8 for k in range(1, len(c)))]
        recovered = [c for c in collapsed if c[int(np.argmax(c < 0.1)):].max() >= 0.8]
        rows.append((record["mesh_id"], record["num_vertices"], feature_iou(features, mesh.faces.numpy(), labels,
                                                                            areas, targets),
                     np.mean([c[0] for c in curves]), np.mean([c[2] for c in curves]), len(clicks), hurting.sum(),
                     len(curves), len(collapsed), len(recovered)))
        print("mesh {:>5} ({:>6} vertices): feature IoU {:.3f}  IoU@1 {:.3f}  IoU@3 {:.3f}  correction clicks {:>3}, "
              "hurt {:>3}  targets {:>2}, collapsed {:>2}, recovered {:>2}".format(*rows[-1]), flush=True)
    if rows:
        table = np.array([r[2:] for r in rows], dtype=float)
        print(f"\n{len(rows)} meshes: mean feature IoU {table[:, 0].mean():.3f}, mean IoU@1 {table[:, 1].mean():.3f}, "
              f"IoU@3 {table[:, 2].mean():.3f}; correction clicks that hurt {table[:, 4].sum():.0f} of "
              f"{table[:, 3].sum():.0f} ({100 * table[:, 4].sum() / max(table[:, 3].sum(), 1):.0f} %); targets that "
              f"collapsed after ≥ 0.8: {table[:, 6].sum():.0f} of {table[:, 5].sum():.0f}, recovered "
              f"{table[:, 7].sum():.0f}")
        clarity = np.concatenate([c for c, _ in click_rows] or [np.zeros((0, 2))])
        hurting = np.concatenate([h for _, h in click_rows] or [np.zeros(0, dtype=bool)])
        for name, chosen in (("hurt", hurting), ("did not hurt", ~hurting)):
            if chosen.any():
                print(f"correction clicks that {name}: {chosen.sum()}, own-code weight of the clicked vertex median "
                      f"{np.median(clarity[chosen, 0]):.2f}, another part's code nearer for "
                      f"{100 * clarity[chosen, 1].mean():.0f} %")


if __name__ == "__main__":
    main()
