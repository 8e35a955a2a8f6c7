"""Make the project's hammer: meshes/hammer.obj and its per-face part labels meshes/hammer_labels.npy.

    python meshes/make_hammer.py [--out_dir meshes]

A claw hammer in centimetres — handle (label 0), head (1), striking face (2), claw (3) — as one connected watertight
surface of about 4,800 vertices (utils/geometry/shapes.py: a signed distance field meshed by marching cubes).
Deterministic: the same files on every run.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import trimesh  # noqa: E402

from utils.geometry.shapes import HAMMER_PARTS, hammer  # noqa: E402
from utils.io import atomic_path, save_numpy  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out_dir", default=os.path.dirname(os.path.abspath(__file__)))
    args = parser.parse_args()
    vertices, faces, labels = hammer()
    obj = trimesh.exchange.obj.export_obj(trimesh.Trimesh(vertices, faces, process=False), include_normals=False,
                                          include_color=False, include_texture=False, digits=5)
    header = "# iSeg toolkit hammer (meshes/make_hammer.py), centimetres; parts: " + ", ".join(
        f"{i} {name}" for i, name in enumerate(HAMMER_PARTS)) + "\n"
    with atomic_path(os.path.join(args.out_dir, "hammer.obj")) as temporary:
        with open(temporary, "w") as handle:
            handle.write(header + obj)
    save_numpy(labels.astype(np.int64), os.path.join(args.out_dir, "hammer_labels.npy"))
    print(f"wrote {args.out_dir}/hammer.obj ({len(vertices)} vertices, {len(faces)} faces) and hammer_labels.npy")


if __name__ == "__main__":
    main()
