"""Regenerate the bundled hammer demo from scratch (a few minutes on a 2-core CPU; see the README):

    python demo/make_demo.py

1. meshes/make_hammer.py: the hammer and its part labels;
2. the stage runner with the ``demo`` budget (train.py --budget demo) and the label teacher (SAM weights cannot be
   bundled): encoder, decoder data, decoder, in experiments/hammer/ and data/hammer/;
3. copies the features to demo/hammer/encoder/pred_f.pth and the decoder checkpoint, without its optimiser state, to
   demo/hammer/decoder/decoder_checkpoint.pth, and writes the demo's click cases to demo/hammer/bundled_cases.txt.
"""
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from utils.app import demo  # noqa: E402
from utils.io import atomic_path, save_text  # noqa: E402


def main() -> None:
    from models.build_teacher import build_teacher
    from utils.geometry.mesh_files import load_mesh
    from utils.pipeline.budgets import BUDGETS
    from utils.pipeline.runner import MeshWorkspace, train_mesh
    from utils.runtime import resolve_device

    command = [sys.executable, os.path.join(ROOT, "meshes", "make_hammer.py")]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    device = resolve_device("cpu")
    mesh = load_mesh(demo.MESH)
    workspace = MeshWorkspace(os.path.join(ROOT, "data", "hammer"), os.path.join(ROOT, "experiments", "hammer"))
    teacher = build_teacher("label", mesh, device, labels=demo.LABELS)
    train_mesh(mesh, teacher, workspace, BUDGETS["demo"], seed=0, device=device, keep_stage_data=True,
               progress=True, test_view="hammer", announce=print)
    with atomic_path(demo.FEATURES) as temporary:
        shutil.copyfile(workspace.features, temporary)
    demo.slim_checkpoint(workspace.checkpoint, demo.CHECKPOINT)
    cases = demo.choose_demo_cases()
    save_text("".join(" ".join(case) + "\n" for case in cases), os.path.join(ROOT, "demo", "hammer",
                                                                            "bundled_cases.txt"))
    print(f"bundled demo written: {demo.check_assets()}; cases {cases}")


if __name__ == "__main__":
    main()
