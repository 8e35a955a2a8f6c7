"""Regenerate the bundled hammer demo from scratch (about 25 minutes on a 2-core CPU; see the README):

    python demo/make_demo.py

1. meshes/make_hammer.py: the hammer and its part labels;
2. train.py --budget demo with the label teacher (SAM weights cannot be bundled): encoder, decoder data, decoder;
3. copies the features to demo/hammer/encoder/pred_f.pth and the decoder checkpoint, without its optimiser state, to
   demo/hammer/decoder/decoder_checkpoint.pth, and writes the demo's click cases to demo/hammer/bundled_cases.txt.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from utils import demo  # noqa: E402
from utils.io import save_text  # noqa: E402


def main() -> None:
    os.chdir(ROOT)
    python = sys.executable
    for command in ([python, "meshes/make_hammer.py"],
                    [python, "train.py", "--obj_path", demo.MESH, "--teacher", "label", "--labels", demo.LABELS,
                     "--budget", "demo", "--device", "cpu"]):
        print("+", " ".join(command), flush=True)
        subprocess.run(command, check=True)
    experiment = os.path.join("experiments", "hammer")
    with open(os.path.join(experiment, "encoder", "pred_f.pth"), "rb") as source:
        features = source.read()
    from utils.io import atomic_path

    with atomic_path(demo.FEATURES) as temporary:
        with open(temporary, "wb") as target:
            target.write(features)
    demo.slim_checkpoint(os.path.join(experiment, "decoder", "decoder_checkpoint.pth"), demo.CHECKPOINT)
    cases = demo.choose_demo_cases()
    save_text("".join(" ".join(case) + "\n" for case in cases), os.path.join("demo", "hammer", "bundled_cases.txt"))
    print(f"bundled demo written: {demo.check_assets()}; cases {cases}")


if __name__ == "__main__":
    main()
