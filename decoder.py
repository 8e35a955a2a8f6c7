"""Decoder: train the interactive-attention decoder, or segment with it (the original's decoder.py, same flags).

    # train on the samples of data_generation.py
    python decoder.py --mode train --num_epochs 5 --use_positive_click 1 --use_negative_click 1
    # segment: one positive click, two positive clicks, a positive and a negative click
    python decoder.py --mode test --save_dir ./demo/hammer/decoder/ --model_name decoder_checkpoint.pth \\
        --encoder_f_path ./demo/hammer/encoder/pred_f.pth --obj_path ./meshes/hammer.obj --select_vertices 5141 -10795

Clicks: a vertex index is a positive click, a negative index a negative click; ``p<i>`` / ``n<i>`` say it explicitly
(``n0`` is a negative click on vertex 0). See utils/decoder_training.py and utils/decoder_outputs.py.
"""
import argparse
import os
import time

from utils.cli import add_device_argument, int_flag, require
from utils.errors import InputError, run_cli


def add_decoder_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags decoder.py shares with interactive.py (the original's names and defaults)."""
    parser.add_argument("--obj_path", default="./meshes/hammer.obj", help="mesh (.obj/.off/.ply/.stl/.glb)")
    parser.add_argument("--encoder_f_path", default="./experiments/hammer/encoder/pred_f.pth",
                        help="per-vertex features from encoder.py")
    parser.add_argument("--save_dir", default="./experiments/hammer/decoder/",
                        help="checkpoints and test outputs (created if missing)")
    parser.add_argument("--model_name", default="decoder_checkpoint.pth", help="checkpoint file name in --save_dir")
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


def build_parser(description: str = __doc__, interactive: bool = False) -> argparse.ArgumentParser:
    """decoder.py's flags; ``interactive``: interactive.py's — the same without --seed and --mode (reference §3.4),
    those it does not use accepted without effect."""
    from utils.decoder_training import LR_SCHEDULES

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_decoder_arguments(parser)
    if not interactive:
        parser.add_argument("--seed", type=int, default=0, help="seeds training (initialisation and sample order)")
    parser.add_argument("--decoder_data_dir", default="./data/hammer/decoder_data", help="samples of data_generation")
    parser.add_argument("--use_positive_click", type=int_flag, default=0, help="1: train on second-positive samples")
    parser.add_argument("--use_negative_click", type=int_flag, default=0, help="1: train on second-negative samples")
    parser.add_argument("--data_percentage", type=float, default=1.0, help="train on this share of the samples")
    parser.add_argument("--loss_pixels", type=int, default=0,
                        help="training loss of each sample on at most this many of its covered pixels, drawn at "
                             "random (0 = all, the original; a few hundred make samples several times cheaper)")
    parser.add_argument("--lr_schedule", default="constant", choices=LR_SCHEDULES,
                        help="constant (the original) or cosine: a 5 %% linear warm-up, then a cosine decay to 0")
    parser.add_argument("--render_res", type=int, default=224,
                        help="render size (training: must equal the samples' mask size; test: the view grid)")
    parser.add_argument("--continue_train", type=int_flag, default=0, help="1: resume from save_dir/model_name")
    parser.add_argument("--batch_size", type=int, default=16, help="samples (views) per step")
    parser.add_argument("--learning_rate", type=float, default=1e-4, help="Adam learning rate")
    parser.add_argument("--num_epochs", type=int, default=5, help="passes over the samples")
    parser.add_argument("--save_interval", type=int, default=100, help="checkpoint every N batches")
    if not interactive:
        parser.add_argument("--mode", default="test", choices=["train", "test"], help="train or test (default)")
    parser.add_argument("--select_vertices", nargs="+", default=["0"],
                        help="clicks: 5141 (positive), -10795 (negative), p<i> / n<i> (n0: negative on vertex 0)")
    parser.add_argument("--show_seg", type=int_flag, default=1, help="0: write the mesh in the base colour only")
    parser.add_argument("--show_spheres", type=int_flag, default=0, help="1: add a sphere on each click to the PLY")
    parser.add_argument("--sphere_radius", type=float, default=0.025, help="click sphere radius (unit-ball units)")
    parser.add_argument("--ply_coordinates", default="file", choices=["file", "normalized"],
                        help="PLY vertices in the mesh file's coordinates (default) or the original's unit ball")
    dead = "accepted for compatibility; has no effect (as in the original)"
    parser.add_argument("--views_per_vert", type=int, default=100, help=dead)
    parser.add_argument("--background", type=float, nargs=3, default=[1.0, 1.0, 1.0], help=dead)
    parser.add_argument("--n_views", type=int, default=1, help=dead)
    parser.add_argument("--frontview_std", type=float, default=4.0, help=dead)
    parser.add_argument("--frontview_center", type=float, nargs=2, default=[3.14, 0.0], help=dead)
    parser.add_argument("--width", type=int, default=256, help=dead)
    parser.add_argument("--n_classes", type=int, default=256, help=dead)
    parser.add_argument("--positional_encoding", action="store_true", help="accepted; no effect (it crashed in "
                                                                            "the original)")
    parser.add_argument("--sigma", type=float, default=5.0, help=dead)
    parser.add_argument("--return_original", type=int, default=0, help="accepted; no effect (it crashed in the "
                                                                        "original)")
    parser.add_argument("--use_data_parallel", type=int_flag, default=0,
                        help="accepted; no effect (training uses one device)")
    parser.add_argument("--show", type=int_flag, default=0, help="accepted; no effect (no windows are opened)")
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def decoder_settings(args: argparse.Namespace):
    from utils.decoder_training import DecoderSettings

    if args.depth < 1:
        raise InputError(f"--depth must be >= 1, got {args.depth}")
    return DecoderSettings.from_flags(vars(args))


def train(args, mesh, features, device) -> None:
    from utils.decoder_data import DecoderData, load_decoder_samples
    from utils.decoder_training import compose_training_set, train_decoder
    from utils.io import load_json

    checks = [(args.batch_size >= 1, f"--batch_size must be >= 1, got {args.batch_size}"),
              (args.num_epochs >= 1, f"--num_epochs must be >= 1, got {args.num_epochs}"),
              (args.learning_rate > 0, f"--learning_rate must be > 0, got {args.learning_rate}"),
              (args.save_interval >= 1, f"--save_interval must be >= 1, got {args.save_interval}"),
              (0 < args.data_percentage <= 1, f"--data_percentage must be in (0, 1], got {args.data_percentage}"),
              (args.loss_pixels >= 0, f"--loss_pixels must be >= 0, got {args.loss_pixels}")]
    require(checks)
    settings = decoder_settings(args)
    samples = load_decoder_samples(args.decoder_data_dir)
    manifest = load_json(DecoderData(args.decoder_data_dir).manifest, "decoder data manifest")
    if manifest.get("num_vertices") != mesh.num_vertices:
        raise InputError(f"the samples in {args.decoder_data_dir} were made for a mesh of "
                         f"{manifest.get('num_vertices')} vertices, {args.obj_path} has {mesh.num_vertices}")
    if samples.res != args.render_res:
        raise InputError(f"--render_res {args.render_res} differs from the samples' mask size {samples.res}")
    indices = compose_training_set(samples, bool(args.use_positive_click), bool(args.use_negative_click),
                                   args.data_percentage, args.seed)
    print(f"training on {len(indices)} samples of {len(samples)} in {args.decoder_data_dir}")
    os.makedirs(args.save_dir, exist_ok=True)
    train_decoder(mesh, features, samples, indices, args.save_dir, args.model_name, settings, args.learning_rate,
                  args.num_epochs, args.batch_size, args.save_interval, args.seed, float(manifest["radius"]),
                  bool(args.continue_train), device, loss_pixels=args.loss_pixels, lr_schedule=args.lr_schedule)
    print(f"wrote {os.path.join(args.save_dir, args.model_name)}")


def test(args, mesh, features, device) -> None:
    import torch

    from models.decoder_predictor import DecoderPredictor
    from utils.clicks import click_suffix, parse_clicks
    from utils.decoder_outputs import write_test_outputs
    from utils.decoder_training import load_decoder

    vertices, positive = parse_clicks(args.select_vertices, mesh.num_vertices)
    attention, head = load_decoder(os.path.join(args.save_dir, args.model_name), decoder_settings(args), device)
    predictor = DecoderPredictor(attention, head, features.to(device))
    start = time.perf_counter()
    probability = predictor.predict(vertices, positive)
    if device.type == "cuda":
        torch.cuda.synchronize()
    print(f"inference time (attention + head, {mesh.num_vertices} vertices): "
          f"{(time.perf_counter() - start) * 1e3:.1f} ms")
    suffix = click_suffix(tuple(vertices.tolist()), tuple(1 if p else -1 for p in positive.tolist()))
    paths = write_test_outputs(mesh.to(device), probability, vertices, positive, suffix, args.save_dir,
                               args.seg_color, args.base_color, args.pos_color, args.neg_color,
                               bool(args.show_seg), bool(args.show_spheres), args.sphere_radius,
                               args.ply_coordinates == "normalized", args.render_res)
    for kind in ("npy", "ply", "png"):
        print(f"wrote {paths[kind]}")


def main(argv=None) -> None:
    args = parse_args(argv)
    from utils.decoder_training import load_features
    from utils.mesh import load_mesh
    from utils.runtime import resolve_device

    if args.render_res < 16:
        raise InputError(f"--render_res must be >= 16, got {args.render_res}")
    device = resolve_device(args.device)
    mesh = load_mesh(args.obj_path)
    features = load_features(args.encoder_f_path, mesh)
    os.makedirs(args.save_dir, exist_ok=True)
    (train if args.mode == "train" else test)(args, mesh, features, device)


if __name__ == "__main__":
    run_cli(main)
