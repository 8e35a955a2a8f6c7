"""Decoder data: click → mask samples from the 2D teacher on rendered views (the original's data_generation.py).

    python data_generation.py --single_click 1 --second_positive 1 --second_negative 1

Single-click samples, and optionally second-positive and second-negative ones, go to
``<decoder_data_dir>/samples/`` (format in utils/decoder/samples.py). Each view's teacher image encoding is computed
once and shared by all clicks in it (``--view_pool``, default 1000 views); ``--view_pool 0`` renders and encodes a view
per click, as the original. See utils/decoder/generation.py.
"""
import argparse

from utils.cli import (
    add_device_argument,
    add_mesh_argument,
    add_other_side_click_arguments,
    add_switch,
    add_teacher_arguments,
    finite_float,
    int_flag,
    require,
)
from utils.errors import require_writable_folder, run_cli
from utils.paths import RepoDefault, resolve_repo_defaults


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="seeds every random choice (same seed → same data)")
    parser.add_argument("--radius", type=finite_float, default=2.0, help="camera distance from the mesh centre")
    parser.add_argument("--percentage", type=finite_float, default=0.03,
                        help="share of the vertices used as first clicks (farthest-point sampling from vertex 0)")
    parser.add_argument("--single_click", type=int_flag, default=1, help="1: make single-click samples")
    parser.add_argument("--second_positive", type=int_flag, default=0, help="1: make second-positive samples")
    parser.add_argument("--second_negative", type=int_flag, default=0, help="1: make second-negative samples")
    parser.add_argument("--overwrite", type=int_flag, default=0, help="1: delete existing samples and start again")
    add_mesh_argument(parser)
    parser.add_argument("--name", default="hammer", help="cosmetic, as in the original")
    parser.add_argument("--decoder_data_dir", default=RepoDefault("./data/hammer/decoder_data"),
                        help="where samples go")
    parser.add_argument("--background", type=finite_float, nargs=3, default=[1.0, 1.0, 1.0],
                        help="RGB background of the views shown to the teacher (0-1)")
    parser.add_argument("--n_views", type=int, default=100, help="views per first-click vertex")
    parser.add_argument("--frontview_std", type=finite_float, default=4.0,
                        help="accepted; no effect (as in the original)")
    parser.add_argument("--frontview_center", type=finite_float, nargs=2, default=[0.0, 0.0],
                        help="accepted; no effect (as in the original)")
    add_switch(parser, "--show", 0, "1: write preview.png, some samples with their masks and clicks (the original "
                                     "showed matplotlib windows)")
    parser.add_argument("--render_res", type=int, default=224, help="size of the views and masks")
    parser.add_argument("--view_pool", type=int, default=1000,
                        help="views drawn once and shared by all clicks (each encoded once); 0 = a view per click")
    parser.add_argument("--mask_select", default="first", choices=["first", "best"],
                        help="which of the teacher's 3 masks to keep: first (the original) or best-scoring")
    parser.add_argument("--second_clicks", type=int, default=5,
                        help="second-click candidates tried per (click, view) and kind (the original: 5; fewer: fewer "
                             "teacher prompts)")
    parser.add_argument("--refinement_steps", type=int, default=6,
                        help="predictions of each second click's refinement chain (the original: 6; the label teacher "
                             "needs 1)")
    add_other_side_click_arguments(parser)
    add_teacher_arguments(parser)
    add_device_argument(parser)
    return resolve_repo_defaults(parser.parse_args(argv))


def validate(args: argparse.Namespace) -> None:
    checks = [
        (0 < args.percentage <= 1, f"--percentage must be in (0, 1], got {args.percentage}"),
        (args.n_views >= 1, f"--n_views must be >= 1, got {args.n_views}"),
        (args.view_pool >= 0, f"--view_pool must be >= 0, got {args.view_pool}"),
        (args.second_clicks >= 1, f"--second_clicks must be >= 1, got {args.second_clicks}"),
        (args.refinement_steps >= 1, f"--refinement_steps must be >= 1, got {args.refinement_steps}"),
        (args.render_res >= 16, f"--render_res must be >= 16, got {args.render_res}"),
        (args.radius > 1, f"--radius must be > 1 (the mesh fills the unit ball), got {args.radius}"),
        (args.single_click or args.second_positive or args.second_negative,
         "nothing to do: pass --single_click 1, --second_positive 1 and/or --second_negative 1"),
    ]
    require(checks)


def main(argv=None) -> None:
    args = parse_args(argv)
    validate(args)
    from models.build_teacher import build_teacher
    from utils.decoder.generation import GenerationSettings, generate_decoder_data, save_preview
    from utils.decoder.samples import KIND_NEGATIVE, KIND_POSITIVE, KIND_SINGLE
    from utils.geometry.mesh_files import load_mesh
    from utils.runtime import resolve_device

    device = resolve_device(args.device)
    mesh = load_mesh(args.obj_path).to(device)
    require_writable_folder(args.decoder_data_dir, "--decoder_data_dir")
    teacher = build_teacher(args.teacher, mesh, device, args.SAM, args.sam_checkpoint, args.labels, args.seed,
                            imperfect_masks=bool(args.imperfect_masks))
    settings = GenerationSettings(args.seed, args.percentage, args.n_views, args.view_pool, args.render_res,
                                  args.radius, tuple(args.background), args.mask_select,
                                  negative_outside=bool(args.negative_outside),
                                  positive_inside=bool(args.positive_inside), second_clicks=args.second_clicks,
                                  refinement_steps=args.refinement_steps)
    kinds = [kind for kind, on in ((KIND_SINGLE, args.single_click), (KIND_POSITIVE, args.second_positive),
                                   (KIND_NEGATIVE, args.second_negative)) if on]
    counters = generate_decoder_data(mesh, teacher, args.decoder_data_dir, settings, kinds, bool(args.overwrite))
    print(f"decoder data in {args.decoder_data_dir}: {counters.summary()}")
    if args.show:
        print(f"preview: {save_preview(mesh, args.decoder_data_dir, settings)}")


if __name__ == "__main__":
    run_cli(main)
