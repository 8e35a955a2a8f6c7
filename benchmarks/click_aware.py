"""What a click costs with the click-aware decoder, against the original decoder, as interactive.py pays it.

    .venv/bin/python benchmarks/click_aware.py [--runs 3] [--evaluation OUT --data DIR [--meshes ID ...]]

Click sequences come from the simulator (utils/evaluation/click_simulation.py, the centre rule, up to 20 clicks per
target): on the bundled hammer demo (its four parts as targets), and with ``--evaluation`` on the meshes of an
evaluate.py output folder (its work/ decoders, their recorded click-aware clicks). Per click: the original decoder
answers the whole click set (DecoderPredictor.predict); the click-aware decoder answers from the segment it kept for
the clicks before (one decoder pass and one edit, ClickAwarePredictor.segment), as in a session. Prints the median
milliseconds per click of each and their ratio, per mesh; the best of ``--runs`` passes over the same sequences.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.build_decoder import DecoderSettings, load_predictor  # noqa: E402
from models.build_feature_field import load_features  # noqa: E402
from models.click_aware import ClickAwarePredictor  # noqa: E402
from utils.evaluation.protocol import segment_targets, simulate_clicks  # noqa: E402
from utils.geometry.mesh_files import load_mesh  # noqa: E402
from utils.geometry.mesh_graph import MeshGeometry  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def time_sequences(predictor, mesh, sequences, runs: int):
    """(original ms, click-aware ms): medians per click over the sequences, best of ``runs`` passes."""
    best = None
    for _ in range(runs):
        click_aware = ClickAwarePredictor.for_mesh(predictor, mesh)  # a new session: nothing kept yet
        plain, aware = [], []
        for vertices, positive in sequences:
            for k in range(1, len(vertices) + 1):
                ids, signs = torch.tensor(vertices[:k]), torch.tensor(positive[:k])
                start = time.perf_counter()
                predictor.predict(ids, signs)
                plain.append(time.perf_counter() - start)
                start = time.perf_counter()
                click_aware.predict(ids, signs)
                aware.append(time.perf_counter() - start)
        figures = (1e3 * statistics.median(plain), 1e3 * statistics.median(aware))
        best = figures if best is None else (min(best[0], figures[0]), min(best[1], figures[1]))
    return best


def simulated_sequences(predictor, mesh, labels):
    geometry = MeshGeometry.build(mesh.vertices.numpy().astype(np.float64), mesh.faces.numpy())
    click_aware = ClickAwarePredictor(predictor, geometry)
    sequences = []
    for label in segment_targets(labels, geometry.areas):
        clicks = simulate_clicks(click_aware.segment, labels == label, geometry)
        sequences.append(([c.vertex for c in clicks], [c.positive for c in clicks]))
    return sequences


def report(name, mesh, sequences, figures):
    count = sum(len(v) for v, _ in sequences)
    plain, aware = figures
    print(f"| {name} | {mesh.num_vertices:,} | {count} | {plain:.1f} | {aware:.1f} | {aware / plain:.2f}× |",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--evaluation", default=None, help="an evaluate.py --out folder run with --click_aware 1")
    parser.add_argument("--data", default=None, help="its --data folder")
    parser.add_argument("--meshes", nargs="+", default=None)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| mesh | vertices | clicks | original ms/click | click-aware ms/click | ratio |\n|---|---|---|---|---|---|")
    mesh = load_mesh(os.path.join(ROOT, "meshes", "hammer.obj"))
    features = load_features(os.path.join(ROOT, "demo", "hammer", "encoder", "pred_f.pth"), mesh)
    predictor = load_predictor(os.path.join(ROOT, "demo", "hammer", "decoder", "decoder_checkpoint.pth"), features,
                               DecoderSettings())
    labels = np.load(os.path.join(ROOT, "meshes", "hammer_labels.npy"))
    sequences = simulated_sequences(predictor, mesh, labels)
    report("hammer (demo)", mesh, sequences, time_sequences(predictor, mesh, sequences, args.runs))
    if args.evaluation is None:
        return
    from utils.evaluation.datasets import find_collection
    from utils.pipeline.budgets import budget_named

    collection = find_collection(args.data)
    for entry in collection.select(args.meshes):
        records = [path for path in glob.glob(os.path.join(args.evaluation, "meshes",
                                                           f"{collection.name}_{entry.mesh_id}_*.json"))
                   if not path.endswith("_rc.json")]
        work = glob.glob(os.path.join(args.evaluation, "work", collection.name, entry.mesh_id, "*"))
        if not records or not work:
            continue
        record = json.load(open(records[0]))
        sequences = [([c["vertex"] for c in t["clicks"]["iseg_click_aware"]],
                      [c["positive"] for c in t["clicks"]["iseg_click_aware"]])
                     for t in record.get("targets", []) if "iseg_click_aware" in t["clicks"]]
        if not sequences:
            continue
        mesh = load_mesh(entry.mesh_path)
        features = load_features(os.path.join(work[0], "encoder", "pred_f.pth"), mesh)
        predictor = load_predictor(os.path.join(work[0], "decoder", "decoder_checkpoint.pth"), features,
                                   budget_named(record.get("profile", "quick")).decoder_settings)
        report(f"{collection.name} {entry.mesh_id}", mesh, sequences, time_sequences(predictor, mesh, sequences,
                                                                                     args.runs))


if __name__ == "__main__":
    main()
