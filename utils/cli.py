"""Argument groups shared by the command-line scripts (each script stays a thin parser + call)."""
from __future__ import annotations

import argparse

from models.build_teacher import TEACHER_MODELS
from utils.paths import DECODER_CHECKPOINT_FILE, RepoDefault


def add_mesh_argument(parser: argparse.ArgumentParser) -> None:
    """--obj_path, the original's default (the hammer) taken from the repository root."""
    parser.add_argument("--obj_path", default=RepoDefault("./meshes/hammer.obj"),
                        help="mesh (.obj/.off/.ply/.stl/.glb; default: the repository's meshes/hammer.obj)")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where to compute: auto = CUDA when available (default), else CPU")


def add_cluster_arguments(parser: argparse.ArgumentParser, shared: str = "--out and --data") -> None:
    """--workers, --ray_address, --cpus_per_worker: meshes as Ray tasks (utils/pipeline/cluster.py); ``shared``:
    the flags whose folders every machine of a cluster must see."""
    parser.add_argument("--workers", type=int, default=1,
                        help="meshes at once, each a Ray task on a local Ray this command starts (default 1: one "
                             "after another in this process, without Ray)")
    parser.add_argument("--ray_address", default=None,
                        help="join this Ray cluster (e.g. 10.0.0.1:6379, from `ray start --head`) instead of "
                             f"starting a local one; {shared} must be on a folder every machine sees")
    parser.add_argument("--cpus_per_worker", type=int, default=None,
                        help="CPUs (and torch threads) per mesh task (default: this machine's cores / --workers)")


def cluster_settings_from_args(args: argparse.Namespace):
    """The ClusterSettings of --workers / --ray_address / --cpus_per_worker (and --device: a GPU per task)."""
    from utils.pipeline.cluster import ClusterSettings

    require([(args.workers >= 1, f"--workers must be >= 1, got {args.workers}"),
             (args.cpus_per_worker is None or args.cpus_per_worker >= 1,
              f"--cpus_per_worker must be >= 1, got {args.cpus_per_worker}")])
    return ClusterSettings(args.workers, args.ray_address, args.cpus_per_worker, gpu=args.device == "cuda")


def add_teacher_arguments(parser: argparse.ArgumentParser, many_labels: bool = False) -> None:
    """--teacher, --SAM, --sam_checkpoint, --labels (``many_labels``: one per mesh, or a folder), --imperfect_masks."""
    parser.add_argument("--teacher", default="sam", choices=["sam", "label"],
                        help="2D teacher: sam (Segment Anything, default) or label (perfect masks from per-face "
                             "ground-truth labels given by --labels; for tests and evaluation)")
    parser.add_argument("--SAM", default="vit_h", choices=TEACHER_MODELS,
                        help="2D segmenter: vit_h (default, as the original), vit_l, vit_b (segment-anything); "
                             "sam_hq_vit_tiny|b|l|h (HQ-SAM); sam2.1_hiera_tiny|small|base_plus|large, edgetam (the "
                             "SAM 2 family, via transformers); tiny = random weights, for smoke tests only")
    parser.add_argument("--sam_checkpoint", default=None,
                        help="its released checkpoint: a file (segment-anything) or a Hugging Face folder (SAM 2 "
                             "family); default: SAM_repo/model_checkpoints/<released name>")
    if many_labels:
        parser.add_argument("--labels", default=None, nargs="+",
                            help="per-face labels (.seg or .npy) for --teacher label: one file per mesh, in the "
                                 "meshes' order, or a folder holding <mesh name>.seg or .npy for each")
    else:
        parser.add_argument("--labels", default=None, help="per-face labels (.seg or .npy) for --teacher label")
    add_imperfect_masks_argument(parser)


def add_imperfect_masks_argument(parser: argparse.ArgumentParser) -> None:
    """--imperfect_masks: the label teacher's imperfect mode."""
    parser.add_argument("--imperfect_masks", type=int_flag, default=0,
                        help="1: --teacher label answers like a real segmenter, not perfectly: per view and click a "
                             "mask sometimes takes a neighbouring part too (20 %%) or only a piece of the part near "
                             "the click (20 %%), its border moved by up to 3 pixels (seeded by --seed)")


def add_other_side_click_arguments(parser: argparse.ArgumentParser) -> None:
    """--negative_outside, --positive_inside: data_generation.py's options (train.py and evaluate.py pass them on)."""
    parser.add_argument("--negative_outside", type=int_flag, default=0,
                        help="1: decoder data also with second negative clicks outside the first click's mask that "
                             "leave it unchanged (not in the original; a negative click elsewhere keeps the segment)")
    parser.add_argument("--positive_inside", type=int_flag, default=0,
                        help="1: decoder data also with second positive clicks inside the first click's mask that "
                             "leave it unchanged (not in the original; a positive click on the same part does not "
                             "grow it)")


def add_switch(parser: argparse.ArgumentParser, name: str, default: int, help: str) -> None:
    """A 0/1 flag that also works alone: ``--name`` = ``--name 1`` (the original declared some of these as integers in
    one script and as ``store_true`` in another; both spellings work in every script)."""
    parser.add_argument(name, type=int_flag, nargs="?", const=1, default=default, help=f"{help} (alone: 1)")


def int_flag(value: str) -> int:
    """The original's 0/1 integer flags (any integer accepted, non-zero = on)."""
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer (0 or 1), got {value!r}") from None


def finite_float(value: str) -> float:
    """A float flag: any finite number (``nan``, ``inf`` and numbers too large for a float are refused, so that they
    cannot end in NaN outputs)."""
    import math

    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {value!r}")
    return number


def require(checks) -> None:
    """Raise InputError with the message of the first (condition, message) pair whose condition is false."""
    from utils.errors import InputError

    for ok, message in checks:
        if not ok:
            raise InputError(message)


def add_decoder_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags decoder.py shares with interactive.py (the original's names and defaults)."""
    add_mesh_argument(parser)
    parser.add_argument("--encoder_f_path", default=RepoDefault("./experiments/hammer/encoder/pred_f.pth"),
                        help="per-vertex features from encoder.py")
    parser.add_argument("--save_dir", default=RepoDefault("./experiments/hammer/decoder/"),
                        help="checkpoints and test outputs (created if missing)")
    parser.add_argument("--model_name", default=DECODER_CHECKPOINT_FILE, help="checkpoint file name in --save_dir")
    parser.add_argument("--name", default="hammer", help="cosmetic, as in the original")
    parser.add_argument("--use_attention_q", type=int_flag, default=1, help="1: learnable query map")
    parser.add_argument("--use_attention_k", type=int_flag, default=1, help="1: learnable key maps")
    parser.add_argument("--use_attention_v", type=int_flag, default=1, help="1: learnable value maps")
    parser.add_argument("--redsidual_attention", type=int_flag, default=0,
                        help="1: add the input to the query/key/value maps (the original's spelling)")
    parser.add_argument("--scale_attention", type=int_flag, default=1, help="1: divide attention logits by 16")
    parser.add_argument("--depth", type=int, default=14, help="256-wide layers of the decoder head")
    parser.add_argument("--base_color", type=int, nargs=3, default=[180, 180, 180], help="unsegmented colour")
    parser.add_argument("--seg_color", type=int, nargs=3, default=[60, 160, 250], help="segment colour")
    parser.add_argument("--pos_color", type=int, nargs=3, default=[0, 255, 0], help="positive click colour")
    parser.add_argument("--neg_color", type=int, nargs=3, default=[255, 0, 0], help="negative click colour")
    add_device_argument(parser)


def build_decoder_parser(description: str, interactive: bool = False) -> argparse.ArgumentParser:
    """decoder.py's flags (the original's names and defaults); ``interactive``: interactive.py's — the same
    without --seed and --mode, as the original's interactive.py, those it does not use accepted without effect."""
    from utils.decoder.schedules import LR_SCHEDULES

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_decoder_arguments(parser)
    if not interactive:
        parser.add_argument("--seed", type=int, default=0, help="seeds training (initialisation and sample order)")
    parser.add_argument("--decoder_data_dir", default=RepoDefault("./data/hammer/decoder_data"),
                        help="samples of data_generation")
    parser.add_argument("--use_positive_click", type=int_flag, default=0, help="1: train on second-positive samples")
    parser.add_argument("--use_negative_click", type=int_flag, default=0, help="1: train on second-negative samples")
    parser.add_argument("--data_percentage", type=finite_float, default=1.0, help="train on this share of the samples")
    parser.add_argument("--loss_pixels", type=int, default=0,
                        help="training loss of each sample on at most this many of its covered pixels, drawn at "
                             "random (0 = all, the original; a few hundred make samples several times cheaper)")
    parser.add_argument("--lr_schedule", default="constant", choices=LR_SCHEDULES,
                        help="constant (the original) or cosine: a 5 %% linear warm-up, then a cosine decay to 0")
    parser.add_argument("--render_res", type=int, default=224,
                        help="render size (training: must equal the samples' mask size; test: the view grid)")
    parser.add_argument("--continue_train", type=int_flag, default=0, help="1: resume from save_dir/model_name")
    parser.add_argument("--batch_size", type=int, default=16, help="samples (views) per step")
    parser.add_argument("--learning_rate", type=finite_float, default=1e-4, help="Adam learning rate")
    parser.add_argument("--num_epochs", type=int, default=5, help="passes over the samples")
    parser.add_argument("--save_interval", type=int, default=100, help="checkpoint every N batches")
    if not interactive:
        parser.add_argument("--mode", default="test", choices=["train", "test"], help="train or test (default)")
    parser.add_argument("--select_vertices", nargs="+", default=["0"],
                        help="clicks: 5141 (positive), -10795 (negative), p<i> / n<i> (n0: negative on vertex 0)")
    parser.add_argument("--click_aware", type=int_flag, default=0,
                        help="1: the click-aware decoder (not in the original): each click, in order, edits the "
                             "segment where it is (models/click_aware.py); the same checkpoint, no training of its "
                             "own (--mode train trains as without it)" + ("; the page's switch starts on"
                                                                        if interactive else ""))
    parser.add_argument("--show_seg", type=int_flag, default=1, help="0: write the mesh in the base colour only")
    parser.add_argument("--show_spheres", type=int_flag, default=0, help="1: add a sphere on each click to the PLY")
    parser.add_argument("--sphere_radius", type=finite_float, default=0.025,
                        help="click sphere radius (unit-ball units)")
    parser.add_argument("--ply_coordinates", default="file", choices=["file", "normalized"],
                        help="PLY vertices in the mesh file's coordinates (default) or the original's unit ball")
    dead = "accepted for compatibility; has no effect (as in the original)"
    parser.add_argument("--views_per_vert", type=int, default=100, help=dead)
    parser.add_argument("--background", type=finite_float, nargs=3, default=[1.0, 1.0, 1.0], help=dead)
    parser.add_argument("--n_views", type=int, default=1, help=dead)
    parser.add_argument("--frontview_std", type=finite_float, default=4.0, help=dead)
    parser.add_argument("--frontview_center", type=finite_float, nargs=2, default=[3.14, 0.0], help=dead)
    parser.add_argument("--width", type=int, default=256, help=dead)
    parser.add_argument("--n_classes", type=int, default=256, help=dead)
    add_switch(parser, "--positional_encoding", 0, "accepted; no effect (it crashed in the original)")
    parser.add_argument("--sigma", type=finite_float, default=5.0, help=dead)
    parser.add_argument("--return_original", type=int, default=0, help="accepted; no effect (it crashed in the "
                                                                        "original)")
    parser.add_argument("--use_data_parallel", type=int_flag, default=0,
                        help="accepted; no effect (training uses one device)")
    add_switch(parser, "--show", 0, "accepted; no effect (no windows are opened)")
    return parser


def decoder_settings_from_args(args: argparse.Namespace):
    """decoder.py's / interactive.py's architecture flags → models.build_decoder.DecoderSettings (``--depth`` ≥ 1)."""
    from models.build_decoder import DecoderSettings

    require([(args.depth >= 1, f"--depth must be >= 1, got {args.depth}")])
    return DecoderSettings.from_flags(vars(args))
