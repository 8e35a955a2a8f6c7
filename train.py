"""Train iSeg on your own mesh with one command: the README's training sequence — encoder views, encoder training,
decoder data, decoder training — run stage by stage with a budget, each stage's equivalent script flags printed.

    python train.py --obj_path my_mesh.obj                                  # SAM ViT-H, the original's budget
    python train.py --obj_path my_mesh.obj --budget quick --SAM vit_b       # evaluate.py's quick profile
    python train.py --obj_path hammer.obj --teacher label --labels hammer_labels.npy --budget quick

Budgets are the table evaluate.py uses (utils/pipeline/budgets.py): ``original`` (= evaluate.py's ``full``), ``quick``
(about a minute and a half for a 10k-vertex mesh on a 2-core CPU with the label teacher) and ``demo`` (quick with the
original decoder's architecture; the bundled demo). A stage already done is skipped (encoder training when
pred_f.pth exists, decoder training when its checkpoint finished; an unfinished one continues), so an interrupted run
is resumed by running the same command again. It ends by printing the ``decoder.py --mode test`` command that
segments the mesh, with the decoder flags the budget trained with.
"""
import argparse
import os
import shlex

from utils.cli import add_device_argument, add_other_side_click_arguments, add_teacher_arguments, int_flag
from utils.errors import InputError, require_writable_folder, run_cli
from utils.paths import RepoDefault, resolve_repo_defaults


def parse_args(argv=None) -> argparse.Namespace:
    from utils.pipeline.budgets import BUDGETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--obj_path", required=True, help="the mesh to train on")
    parser.add_argument("--name", default=None, help="experiment name (default: the mesh file's name)")
    parser.add_argument("--budget", default="original", choices=sorted(BUDGETS), help="views, samples and epochs")
    parser.add_argument("--data_root", default=RepoDefault("./data"), help="stage data go to <data_root>/<name>/")
    parser.add_argument("--experiments_root", default=RepoDefault("./experiments"),
                        help="features and checkpoints go to <experiments_root>/<name>/")
    parser.add_argument("--seed", type=int, default=0, help="seed of every stage")
    add_other_side_click_arguments(parser)
    parser.add_argument("--click_aware", type=int_flag, default=0,
                        help="1: the printed decoder.py and interactive.py commands use the click-aware decoder (each "
                             "click edits the segment where it is; trained as without it: it needs no training)")
    add_teacher_arguments(parser)
    add_device_argument(parser)
    return resolve_repo_defaults(parser.parse_args(argv))


def main(argv=None) -> None:
    args = parse_args(argv)
    from dataclasses import replace

    from models.build_teacher import build_teacher
    from utils.geometry.mesh_files import load_mesh
    from utils.paths import DECODER_CHECKPOINT_FILE
    from utils.pipeline.budgets import BUDGETS
    from utils.pipeline.runner import MeshWorkspace, train_mesh
    from utils.runtime import resolve_device

    if args.teacher == "label" and not args.labels:
        raise InputError("--teacher label needs --labels FILE (per-face labels, .seg or .npy)")
    device = resolve_device(args.device)
    mesh = load_mesh(args.obj_path)
    name = args.name or os.path.splitext(os.path.basename(args.obj_path))[0]
    budget = replace(BUDGETS[args.budget], negative_outside=bool(args.negative_outside),
                     positive_inside=bool(args.positive_inside))
    workspace = MeshWorkspace(os.path.join(args.data_root, name), os.path.join(args.experiments_root, name))
    for folder, flag in ((os.path.join(args.data_root, name), "--data_root"),
                         (os.path.join(args.experiments_root, name), "--experiments_root")):
        require_writable_folder(folder, flag)  # before the stages, not after minutes of them
    teacher = build_teacher(args.teacher, mesh, device, args.SAM, args.sam_checkpoint, args.labels, args.seed,
                            imperfect_masks=bool(args.imperfect_masks))
    print(f"budget {budget.name} on {mesh.num_vertices} vertices, teacher {teacher.description}; data in "
          f"{workspace.encoder_data} and {workspace.decoder_data}, results in {workspace.root}", flush=True)
    train_mesh(mesh, teacher, workspace, budget, args.seed, device, keep_stage_data=True, progress=True,
               test_view=name, announce=lambda message: print(f"\n{message}", flush=True))
    test = ["python", "decoder.py", "--mode", "test", "--obj_path", args.obj_path, "--encoder_f_path",
            workspace.features, "--save_dir", workspace.decoder, "--model_name", DECODER_CHECKPOINT_FILE,
            *budget.decoder_settings.changed_arguments()]
    click_aware = ["--click_aware", "1"] if args.click_aware else []
    interactive = ["python", "interactive.py", *test[4:], *click_aware]
    test += [*click_aware, "--select_vertices", "<vertex>"]
    print(f"\ndone. Segment with (clicks are vertex ids; a negative id is a negative click):\n  {shlex.join(test)}")
    print(f"or click in the browser:\n  {shlex.join(interactive)}")


if __name__ == "__main__":
    run_cli(main)
