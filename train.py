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

Many meshes: give several files, folders or glob patterns to ``--obj_path`` (and, for the label teacher, one labels
file per mesh or a folder of ``<mesh name>.seg``/``.npy``). They are trained one after another, or ``--workers N`` at a
time as Ray tasks (``--ray_address``: on a cluster; see the README). A mesh that cannot be trained is reported and the
others go on; the run ends with a table of the meshes and ``<experiments_root>/train_summary.json``.

    python train.py --obj_path meshes/ --teacher label --labels labels/ --budget quick --workers 2
"""
import argparse

from utils.cli import (
    add_cluster_arguments,
    add_device_argument,
    add_other_side_click_arguments,
    add_teacher_arguments,
    cluster_settings_from_args,
    int_flag,
)
from utils.errors import InputError, require_writable_folder, run_cli
from utils.paths import RepoDefault, resolve_repo_defaults


def parse_args(argv=None) -> argparse.Namespace:
    from utils.pipeline.budgets import BUDGETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--obj_path", required=True, nargs="+",
                        help="the mesh to train on; or several: files, folders (their mesh files) or quoted glob "
                             "patterns ('meshes/**/*.obj'), each mesh named after its file")
    parser.add_argument("--name", default=None, help="experiment name (default: the mesh file's name; one mesh only)")
    parser.add_argument("--budget", default="original", choices=sorted(BUDGETS), help="views, samples and epochs")
    parser.add_argument("--data_root", default=RepoDefault("./data"), help="stage data go to <data_root>/<name>/")
    parser.add_argument("--experiments_root", default=RepoDefault("./experiments"),
                        help="features and checkpoints go to <experiments_root>/<name>/")
    parser.add_argument("--seed", type=int, default=0, help="seed of every stage")
    add_other_side_click_arguments(parser)
    parser.add_argument("--click_aware", type=int_flag, default=0,
                        help="1: the printed decoder.py and interactive.py commands use the click-aware decoder (each "
                             "click edits the segment where it is; trained as without it: it needs no training)")
    add_teacher_arguments(parser, many_labels=True)
    add_device_argument(parser)
    add_cluster_arguments(parser, "--data_root and --experiments_root")
    args = resolve_repo_defaults(parser.parse_args(argv))
    args.cluster = cluster_settings_from_args(args)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    from dataclasses import replace

    from utils.pipeline.budgets import BUDGETS
    from utils.pipeline.training_run import (
        TrainRunSettings,
        expand_mesh_paths,
        mesh_jobs,
        train_meshes,
        train_one_mesh,
        write_summary,
    )

    if args.teacher == "label" and not args.labels:
        raise InputError("--teacher label needs --labels FILE (per-face labels, .seg or .npy)")
    jobs = mesh_jobs(expand_mesh_paths(args.obj_path), args.labels, args.name)
    settings = TrainRunSettings(
        replace(BUDGETS[args.budget], negative_outside=bool(args.negative_outside),
                positive_inside=bool(args.positive_inside)), args.data_root, args.experiments_root, args.seed,
        args.teacher, args.SAM, args.sam_checkpoint, bool(args.imperfect_masks), args.device, bool(args.click_aware))
    if len(jobs) == 1 and not args.cluster.distributed:  # one mesh: its stages here, and any error ends the run
        record = train_one_mesh(settings, jobs[0])
        print(f"\ndone. Segment with (clicks are vertex ids; a negative id is a negative click):\n  "
              f"{record['segment_command']}")
        print(f"or click in the browser:\n  {record['browser_command']}")
        return
    for folder, flag in ((args.data_root, "--data_root"), (args.experiments_root, "--experiments_root")):
        require_writable_folder(folder, flag)  # before any mesh is trained (the summary and logs go there too)
    records = train_meshes(settings, jobs, args.cluster)
    summary = write_summary(settings, records)
    failed = [record for record in records if "error" in record]
    print(f"\ntrained {len(records) - len(failed)} of {len(records)} meshes (summary: {summary}):")
    width = max(len(record["name"]) for record in records)
    for record in records:
        state = (f"failed: {record['error']}" if "error" in record else
                 f"{record['vertices']} vertices, {record['seconds']:.0f} s: {record['browser_command']}")
        print(f"  {record['name']:<{width}}  {state}")
    if failed:
        raise InputError(f"{len(failed)} of {len(records)} meshes could not be trained "
                         f"({', '.join(record['name'] for record in failed)}); the others are trained")


if __name__ == "__main__":
    run_cli(main)
