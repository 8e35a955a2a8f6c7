"""Train iSeg on your own mesh with one command: the README's training sequence — encoder views, encoder training,
decoder data, decoder training — run stage by stage (each command is printed, and each stage resumes if rerun).

    python train.py --obj_path my_mesh.obj                                  # SAM ViT-H, the original's budget
    python train.py --obj_path my_mesh.obj --budget quick --SAM vit_b       # a smaller budget
    python train.py --obj_path hammer.obj --teacher label --labels hammer_labels.npy --budget demo

A stage already done is skipped (encoder training when pred_f.pth exists, decoder training when its checkpoint
finished; an unfinished one continues), so an interrupted run is resumed by running the same command again. It ends
by printing the ``decoder.py --mode test`` command that segments the mesh. Budgets (views, samples, epochs): see
BUDGETS below and the README.
"""
import argparse
import os
import shlex
import subprocess
import sys

from utils.cli import add_device_argument, add_other_side_click_arguments, add_teacher_arguments
from utils.errors import InputError, run_cli

#: stage flags per budget: "original" = the original's defaults; "quick" and "demo" fit a laptop CPU
BUDGETS = {
    "original": {"encoder": ["--n_views", "1000", "--num_epochs", "3"],
                 "data": ["--percentage", "0.03", "--n_views", "100", "--view_pool", "1000"],
                 "decoder": ["--num_epochs", "5", "--data_percentage", "1.0"]},
    "quick": {"encoder": ["--n_views", "300", "--num_epochs", "3"],
              "data": ["--percentage", "0.03", "--n_views", "20", "--view_pool", "300"],
              "decoder": ["--num_epochs", "2", "--data_percentage", "0.2"]},
    "demo": {"encoder": ["--n_views", "300", "--num_epochs", "3"],
             "data": ["--percentage", "0.03", "--n_views", "20", "--view_pool", "300"],
             "decoder": ["--num_epochs", "2", "--data_percentage", "0.15"]},
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--obj_path", required=True, help="the mesh to train on")
    parser.add_argument("--name", default=None, help="experiment name (default: the mesh file's name)")
    parser.add_argument("--budget", default="original", choices=sorted(BUDGETS), help="views, samples and epochs")
    parser.add_argument("--data_root", default="./data", help="stage data go to <data_root>/<name>/")
    parser.add_argument("--experiments_root", default="./experiments",
                        help="features and checkpoints go to <experiments_root>/<name>/")
    parser.add_argument("--seed", type=int, default=0, help="seed of every stage")
    add_other_side_click_arguments(parser)
    add_teacher_arguments(parser)
    add_device_argument(parser)
    return parser.parse_args(argv)


def stage_commands(args: argparse.Namespace):
    """The four stage commands (lists of arguments), in order."""
    name = args.name or os.path.splitext(os.path.basename(args.obj_path))[0]
    data = os.path.join(args.data_root, name)
    experiment = os.path.join(args.experiments_root, name)
    python = sys.executable
    here = os.path.dirname(os.path.abspath(__file__))
    common = ["--obj_path", args.obj_path, "--device", args.device, "--seed", str(args.seed)]
    teacher = ["--teacher", args.teacher, "--SAM", args.SAM]
    if args.sam_checkpoint:
        teacher += ["--sam_checkpoint", args.sam_checkpoint]
    if args.labels:
        teacher += ["--labels", args.labels]
    budget = BUDGETS[args.budget]
    encoder = [python, os.path.join(here, "encoder.py"), *common, *teacher, "--name", name,
               "--encoder_data_dir", os.path.join(data, "encoder_data"),
               "--encoder_model_dir", os.path.join(experiment, "encoder"), "--network_verbose", "0"]
    features = os.path.join(experiment, "encoder", "pred_f.pth")
    decoder_dirs = ["--decoder_data_dir", os.path.join(data, "decoder_data"),
                    "--save_dir", os.path.join(experiment, "decoder")]
    return [
        encoder + ["--generate_random_views", "1", "--start_training", "0", "--test", "0", *budget["encoder"]],
        encoder + ["--generate_random_views", "0", "--start_training", "1", "--test", "1", *budget["encoder"]],
        [python, os.path.join(here, "data_generation.py"), *common, *teacher, "--name", name,
         "--decoder_data_dir", os.path.join(data, "decoder_data"), "--single_click", "1", "--second_positive", "1",
         "--second_negative", "1", *budget["data"], "--negative_outside", str(args.negative_outside),
         "--positive_inside", str(args.positive_inside)],
        [python, os.path.join(here, "decoder.py"), *common, "--mode", "train", "--encoder_f_path", features,
         *decoder_dirs, "--use_positive_click", "1", "--use_negative_click", "1", *budget["decoder"]],
    ], features, os.path.join(experiment, "decoder")


def main(argv=None) -> None:
    args = parse_args(argv)
    from utils.decoder_training import decoder_trained

    if not os.path.isfile(args.obj_path):
        raise InputError(f"mesh file not found: {args.obj_path}")
    if args.teacher == "label" and not args.labels:
        raise InputError("--teacher label needs --labels FILE (per-face labels, .seg or .npy)")
    commands, features, decoder_dir = stage_commands(args)
    checkpoint = os.path.join(decoder_dir, "decoder_checkpoint.pth")
    for step, command in enumerate(commands, start=1):
        if step == 2 and os.path.exists(features):
            print(f"\n[2/{len(commands)}] skipped: {features} exists (delete it to train the encoder again)")
            continue
        if step == 4 and os.path.exists(checkpoint):
            if decoder_trained(checkpoint):
                print(f"\n[4/{len(commands)}] skipped: {checkpoint} is trained (delete it to train again)")
                continue
            command = command + ["--continue_train", "1"]
        print(f"\n[{step}/{len(commands)}] {shlex.join(command)}", flush=True)
        if subprocess.run(command).returncode != 0:
            raise InputError(f"stage {step} failed (its error is above); rerun this command to continue where it "
                             f"stopped")
    test = ["python", "decoder.py", "--mode", "test", "--obj_path", args.obj_path, "--encoder_f_path", features,
            "--save_dir", decoder_dir, "--model_name", "decoder_checkpoint.pth", "--select_vertices", "<vertex>"]
    print(f"\ndone. Segment with (clicks are vertex ids; a negative id is a negative click):\n  {shlex.join(test)}")


if __name__ == "__main__":
    run_cli(main)
