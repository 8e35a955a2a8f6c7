"""A fingerprint of what the README's commands write, for checking that a change of the code keeps behaviour.

    .venv/bin/python benchmarks/behaviour_snapshot.py --out snapshot_before.json
    # … change the code …
    .venv/bin/python benchmarks/behaviour_snapshot.py --out snapshot_after.json --compare snapshot_before.json

It drives only the command-line scripts (never the library), so it runs unchanged across a reorganisation of the
code, on a fixed seed and on the CPU, in a temporary folder:

1. the tiny-SAM pipeline on the hammer with a small budget: encoder.py stage 1 and 2 (+ its test view),
   data_generation.py, decoder.py --mode train, decoder.py --mode test;
2. the bundled demo's three click cases (decoder.py --mode test on demo/hammer/);
3. evaluate.py with the label teacher and the quick profile on two synthetic labelled meshes (PSB layout).

Every file written is hashed (SHA-256); in JSON files the keys that hold measured times (``timings``,
``seconds``, …) are dropped first, in summary.md the time table, and the files that only hold times are skipped.
About 3 minutes on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import trimesh

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIME_KEYS = {"timings", "seconds", "time", "wall_s"}
SKIPPED = {"timings.json"}


def run(command, cwd):
    print("+", " ".join(command), flush=True)
    done = subprocess.run([sys.executable, os.path.join(ROOT, command[0]), *command[1:]], cwd=cwd,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stdout[-2000:]}\n"
                         f"{done.stderr[-2000:]}")


def without_times(value):
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if k not in TIME_KEYS}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def canonical(value) -> bytes:
    """Bytes that stand for a loaded torch file's content (tensors by dtype, shape and values)."""
    import torch

    if isinstance(value, torch.Tensor):
        shape = tuple(value.shape)
        value = value.detach().cpu().contiguous().reshape(-1)
        return f"T{value.dtype}{shape}".encode() + value.view(torch.uint8).numpy().tobytes()
    if isinstance(value, dict):
        return b"{" + b",".join(canonical(k) + b":" + canonical(v) for k, v in value.items()) + b"}"
    if isinstance(value, (list, tuple)):
        return b"[" + b",".join(canonical(v) for v in value) + b"]"
    return repr(value).encode()


def fingerprint(path: str, root: str) -> str:
    with open(path, "rb") as handle:
        data = handle.read()
    if path.endswith((".pt", ".pth")):  # a torch file's bytes hold its temporary name: compare what it holds
        import torch

        data = canonical(torch.load(path, map_location="cpu", weights_only=True))
    elif path.endswith(".json"):
        data = json.dumps(without_times(json.loads(data)), sort_keys=True).encode()
        data = data.replace(root.encode(), b"<tmp>")
    elif path.endswith("summary.md"):
        text = data.decode()
        data = text.split("## Time")[0].replace(root, "<tmp>").encode()
    return hashlib.sha256(data).hexdigest()


def write_psb(folder: str) -> None:
    """Two labelled synthetic meshes in the PSB layout: two boxes (2 parts) and a capsule-like pair of spheres."""
    os.makedirs(os.path.join(folder, "off"))
    meshes = {}
    boxes = [trimesh.creation.box((1, 1, 1)).subdivide().subdivide(), trimesh.creation.box((1, 1, 1)).subdivide()]
    boxes[1].apply_translation((1.4, 0, 0))
    meshes["1"] = boxes
    spheres = [trimesh.creation.icosphere(2, 1.0), trimesh.creation.icosphere(2, 0.7)]
    spheres[1].apply_translation((1.5, 0.2, 0))
    meshes["2"] = spheres
    for mesh_id, parts in meshes.items():
        combined = trimesh.util.concatenate(parts)
        labels = np.concatenate([np.full(len(part.faces), k) for k, part in enumerate(parts)])
        with open(os.path.join(folder, "off", f"{mesh_id}.off"), "w") as handle:
            handle.write(f"OFF\n{len(combined.vertices)} {len(combined.faces)} 0\n")
            handle.writelines(f"{x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in combined.vertices)
            handle.writelines(f"3 {a} {b} {c}\n" for a, b, c in combined.faces)
        os.makedirs(os.path.join(folder, "seg", mesh_id))
        with open(os.path.join(folder, "seg", mesh_id, f"{mesh_id}_0.seg"), "w") as handle:
            handle.writelines(f"{int(v)}\n" for v in labels)


def snapshot(work: str) -> dict:
    hammer = os.path.join(ROOT, "meshes", "hammer.obj")
    common = ["--obj_path", hammer, "--device", "cpu", "--seed", "3"]
    tiny = ["--SAM", "tiny"]
    enc = ["--encoder_data_dir", f"{work}/tiny/encoder_data", "--encoder_model_dir", f"{work}/tiny/encoder",
           "--n_views", "8", "--network_verbose", "0"]
    run(["encoder.py", *common, *tiny, *enc, "--generate_random_views", "1", "--start_training", "0", "--test", "0"],
        work)
    run(["encoder.py", *common, *tiny, *enc, "--generate_random_views", "0", "--start_training", "1", "--test", "1",
         "--num_epochs", "1"], work)
    run(["data_generation.py", *common, *tiny, "--decoder_data_dir", f"{work}/tiny/decoder_data", "--percentage",
         "0.005", "--n_views", "2", "--view_pool", "6", "--second_positive", "1", "--second_negative", "1"], work)
    decoder = [*common, "--encoder_f_path", f"{work}/tiny/encoder/pred_f.pth", "--save_dir", f"{work}/tiny/decoder"]
    run(["decoder.py", *decoder, "--mode", "train", "--decoder_data_dir", f"{work}/tiny/decoder_data",
         "--num_epochs", "1", "--batch_size", "4", "--use_positive_click", "1", "--use_negative_click", "1",
         "--depth", "3", "--save_interval", "5"], work)
    run(["decoder.py", *decoder, "--mode", "test", "--depth", "3", "--select_vertices", "100", "-2000"], work)

    with open(os.path.join(ROOT, "demo", "hammer", "bundled_cases.txt")) as handle:
        cases = [line.split() for line in handle if line.strip()]
    for case in cases:
        run(["decoder.py", "--mode", "test", "--save_dir", f"{work}/demo", "--model_name", "decoder_checkpoint.pth",
             "--encoder_f_path", os.path.join(ROOT, "demo/hammer/encoder/pred_f.pth"), "--obj_path", hammer,
             "--show_spheres", "1", "--device", "cpu", "--select_vertices", *case], work)  # checkpoint copied by main

    write_psb(os.path.join(work, "psb"))
    run(["evaluate.py", "--data", f"{work}/psb", "--teacher", "label", "--profile", "quick", "--out",
         f"{work}/evaluation", "--device", "cpu", "--keep_stage_data"], work)

    prints = {}
    for folder, _, names in os.walk(work):
        for name in sorted(names):
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, work)
            copied_input = name == "decoder_checkpoint.pth" and "demo" in relative
            if name in SKIPPED or relative.startswith("psb/") or copied_input:
                continue
            prints[relative] = fingerprint(path, work)
    return dict(sorted(prints.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="JSON file of the fingerprints")
    parser.add_argument("--compare", default=None, help="an earlier snapshot: list the files that differ")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        os.makedirs(os.path.join(work, "demo"))
        with open(os.path.join(ROOT, "demo/hammer/decoder/decoder_checkpoint.pth"), "rb") as source:
            with open(os.path.join(work, "demo", "decoder_checkpoint.pth"), "wb") as target:
                target.write(source.read())
        prints = snapshot(work)
    with open(args.out, "w") as handle:
        json.dump(prints, handle, indent=1)
    print(f"{len(prints)} files fingerprinted → {args.out}")
    if args.compare:
        with open(args.compare) as handle:
            before = json.load(handle)
        differ = sorted(k for k in set(before) | set(prints) if before.get(k) != prints.get(k))
        for key in differ:
            state = "missing now" if key not in prints else "new" if key not in before else "changed"
            print(f"differs: {key} ({state})")
        print(f"{len(prints) - len([k for k in differ if k in prints])} of {len(prints)} identical, "
              f"{len(differ)} differ")
        sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
