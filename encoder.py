"""Encoder: distil a 2D teacher (SAM) into a per-vertex Mesh Feature Field (the original's encoder.py, same flags).

    # stage 1: render random views and store the teacher's image embeddings
    python encoder.py --generate_random_views 1 --start_training 0 --test 0
    # stage 2: train the feature field on them (writes pred_f.pth), then the qualitative test
    python encoder.py --generate_random_views 0 --num_epochs 3 --start_training 1 --test 1

See utils/encoder/views.py (stage 1) and utils/encoder/training.py (stage 2, test) for the files each stage writes.
"""
import argparse

import torch

from utils.cli import (
    add_device_argument,
    add_mesh_argument,
    add_switch,
    add_teacher_arguments,
    finite_float,
    int_flag,
    require,
)
from utils.errors import InputError, require_writable_folder, run_cli
from utils.paths import RepoDefault, resolve_repo_defaults


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="seeds views, the network and training (default 0)")
    parser.add_argument("--encoder_data_dir", default=RepoDefault("./data/hammer/encoder_data"),
                        help="stage-1 views/embeddings")
    parser.add_argument("--encoder_model_dir", default=RepoDefault("./experiments/hammer/encoder"),
                        help="checkpoint, pred_f.pth and test outputs")
    add_mesh_argument(parser)
    parser.add_argument("--name", default="hammer", help="used in the test's output file names")
    parser.add_argument("--background", type=finite_float, nargs=3, default=[1.0, 1.0, 1.0],
                        help="RGB background of the views shown to the teacher (0-1)")
    parser.add_argument("--frontview_std", type=finite_float, default=4.0,
                        help="view spread: elevation sd = π/std, azimuth sd = 2π/std (45° and 90° at 4)")
    parser.add_argument("--render_res", type=int, default=224, help="size of the views shown to the teacher")
    parser.add_argument("--frontview_center", type=finite_float, nargs=2, default=[0.0, 0.0],
                        help="accepted for compatibility; has no effect (as in the original)")
    parser.add_argument("--mesh_color", type=finite_float, nargs=3, default=[2 / 3, 2 / 3, 2 / 3],
                        help="RGB albedo of the mesh in the teacher's views (0-1)")
    parser.add_argument("--test_elev_deg", type=finite_float, default=0, help="elevation of the test view (degrees)")
    parser.add_argument("--test_azim_deg", type=finite_float, default=240, help="azimuth of the test view (degrees)")
    parser.add_argument("--batch_size", type=int, default=1, help="views per step; must be 1, as in the original")
    parser.add_argument("--data_percentage", type=finite_float, default=1.0,
                        help="train on this share of the views (a seeded random subset; the original crashed < 1)")
    parser.add_argument("--generate_random_views", type=int_flag, default=0, help="1: run stage 1")
    parser.add_argument("--n_views", type=int, default=1000, help="number of random views of stage 1")
    parser.add_argument("--start_training", type=int_flag, default=0, help="1: run stage 2 (training)")
    parser.add_argument("--test", type=int_flag, default=0, help="1: run the qualitative test")
    parser.add_argument("--depth", type=int, default=4, help="hidden 256→256 blocks of the feature field")
    parser.add_argument("--width", type=int, default=256, help="hidden width and Fourier mapping size")
    parser.add_argument("--n_classes", type=int, default=256, help="feature channels (= the teacher's, 256)")
    add_switch(parser, "--positional_encoding", 1, "1: Gaussian Fourier features")
    parser.add_argument("--sigma", type=finite_float, default=5.0, help="Fourier feature scale")
    parser.add_argument("--radius", type=finite_float, default=2.0, help="camera distance from the mesh centre")
    parser.add_argument("--network_verbose", type=int_flag, default=1, help="1: print the network")
    parser.add_argument("--learning_rate", type=finite_float, default=0.001, help="Adam learning rate")
    parser.add_argument("--num_epochs", type=int, default=3, help="passes over the views")
    parser.add_argument("--embedding_dtype", default="float32", choices=["float32", "float16"],
                        help="storage of stage-1 embeddings: float16 halves the disk (2 MiB a view)")
    add_teacher_arguments(parser)
    add_device_argument(parser)
    return resolve_repo_defaults(parser.parse_args(argv))


def validate(args: argparse.Namespace) -> None:
    if not (args.generate_random_views or args.start_training or args.test):
        raise InputError("nothing to do: pass --generate_random_views 1, --start_training 1 and/or --test 1")
    checks = [
        (args.n_views >= 1, f"--n_views must be >= 1, got {args.n_views}"),
        (args.render_res >= 16, f"--render_res must be >= 16, got {args.render_res}"),
        (args.num_epochs >= 1, f"--num_epochs must be >= 1, got {args.num_epochs}"),
        (args.batch_size == 1, f"--batch_size must be 1 (as in the original), got {args.batch_size}"),
        (0 < args.data_percentage <= 1, f"--data_percentage must be in (0, 1], got {args.data_percentage}"),
        (args.n_classes == 256, f"--n_classes must be 256, the teacher's embedding channels, got {args.n_classes}"),
        (args.depth >= 0 and args.width >= 1, "--depth must be >= 0 and --width >= 1"),
        (args.learning_rate > 0, f"--learning_rate must be > 0, got {args.learning_rate}"),
        (args.frontview_std > 0, f"--frontview_std must be > 0, got {args.frontview_std}"),
        (args.radius > 1, f"--radius must be > 1 (the mesh fills the unit ball), got {args.radius}"),
        (args.sigma > 0, f"--sigma must be > 0, got {args.sigma}"),
    ]
    require(checks)


def main(argv=None) -> None:
    args = parse_args(argv)
    validate(args)
    from models.build_feature_field import FieldSettings, load_feature_field
    from models.build_teacher import build_teacher
    from utils.encoder.training import test_feature_field, train_feature_field
    from utils.encoder.views import ViewSettings, generate_views
    from utils.geometry.mesh_files import load_mesh
    from utils.paths import ENCODER_CHECKPOINT_FILE, FEATURES_FILE
    from utils.runtime import resolve_device

    device = resolve_device(args.device)
    mesh = load_mesh(args.obj_path)
    if args.generate_random_views:
        require_writable_folder(args.encoder_data_dir, "--encoder_data_dir")
    if args.start_training:  # before minutes of training, not after
        require_writable_folder(args.encoder_model_dir, "--encoder_model_dir")
    views = ViewSettings(args.render_res, args.radius, tuple(args.background), tuple(args.mesh_color))
    field = FieldSettings(args.depth, args.width, args.n_classes, bool(args.positional_encoding), args.sigma)
    teacher = None
    if args.generate_random_views or args.test:
        teacher = build_teacher(args.teacher, mesh, device, args.SAM, args.sam_checkpoint, args.labels, args.seed,
                                imperfect_masks=bool(args.imperfect_masks))
    if args.generate_random_views:
        count = generate_views(mesh.to(device), teacher, args.encoder_data_dir, args.n_views, seed=args.seed,
                               frontview_std=args.frontview_std, settings=views,
                               embedding_dtype=getattr(torch, args.embedding_dtype))
        print(f"stage 1: {args.n_views} views in {args.encoder_data_dir} ({count} teacher image encodings now, "
              f"{args.n_views - count} already there)")
    model = None
    if args.start_training:
        model = train_feature_field(mesh, args.encoder_data_dir, args.encoder_model_dir, field, views,
                                    learning_rate=args.learning_rate, num_epochs=args.num_epochs, seed=args.seed,
                                    data_percentage=args.data_percentage, device=device,
                                    verbose=bool(args.network_verbose))
        print(f"stage 2: wrote {args.encoder_model_dir}/{ENCODER_CHECKPOINT_FILE} and {FEATURES_FILE}")
    if args.test:
        if model is None:
            model = load_feature_field(args.encoder_model_dir, field, args.seed, device)
        test_feature_field(mesh, model, teacher, args.encoder_model_dir, args.name, args.test_elev_deg,
                           args.test_azim_deg, views)

if __name__ == "__main__":
    run_cli(main)
