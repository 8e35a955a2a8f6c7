"""Decoder: train the interactive-attention decoder, or segment with it (the original's decoder.py, same flags).

    # train on the samples of data_generation.py
    python decoder.py --mode train --num_epochs 5 --use_positive_click 1 --use_negative_click 1
    # segment: one positive click, two positive clicks, a positive and a negative click
    python decoder.py --mode test --save_dir ./demo/hammer/decoder/ --model_name decoder_checkpoint.pth \\
        --encoder_f_path ./demo/hammer/encoder/pred_f.pth --obj_path ./meshes/hammer.obj --select_vertices 5141 -10795

Clicks: a vertex index is a positive click, a negative index a negative click; ``p<i>`` / ``n<i>`` say it explicitly
(``n0`` is a negative click on vertex 0). ``--click_aware 1`` (not in the original) segments with the click-aware
decoder: the clicks, in their order, each edit the segment where they are (models/click_aware.py); outputs end in
``_click_aware``. See utils/decoder/training.py and utils/decoder/outputs.py.
Default paths (``./meshes/hammer.obj``, ``./experiments/hammer/...``) are taken from the repository root.
"""
import argparse
import os
import time

from utils.cli import build_decoder_parser, decoder_settings_from_args, require
from utils.errors import InputError, require_writable_folder, run_cli
from utils.paths import resolve_repo_defaults


def parse_args(argv=None) -> argparse.Namespace:
    return resolve_repo_defaults(build_decoder_parser(__doc__).parse_args(argv))


def train(args, mesh, features, device) -> None:
    from utils.decoder.samples import DecoderData, load_decoder_samples
    from utils.decoder.training import TrainingSettings, compose_training_set, train_decoder
    from utils.io import load_json

    checks = [(args.batch_size >= 1, f"--batch_size must be >= 1, got {args.batch_size}"),
              (args.num_epochs >= 1, f"--num_epochs must be >= 1, got {args.num_epochs}"),
              (args.learning_rate > 0, f"--learning_rate must be > 0, got {args.learning_rate}"),
              (args.save_interval >= 1, f"--save_interval must be >= 1, got {args.save_interval}"),
              (0 < args.data_percentage <= 1, f"--data_percentage must be in (0, 1], got {args.data_percentage}"),
              (args.loss_pixels >= 0, f"--loss_pixels must be >= 0, got {args.loss_pixels}")]
    require(checks)
    settings = decoder_settings_from_args(args)
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
    training = TrainingSettings(args.learning_rate, args.num_epochs, args.batch_size, args.save_interval, args.seed,
                                args.loss_pixels, args.lr_schedule)
    train_decoder(mesh, features, samples, indices, args.save_dir, args.model_name, settings, training,
                  float(manifest["radius"]), bool(args.continue_train), device)
    print(f"wrote {os.path.join(args.save_dir, args.model_name)}")


def test(args, mesh, features, device) -> None:
    import torch

    from models.build_decoder import load_predictor
    from utils.decoder.clicks import click_suffix, parse_clicks
    from utils.decoder.outputs import write_test_outputs

    vertices, positive = parse_clicks(args.select_vertices, mesh.num_vertices)
    settings = decoder_settings_from_args(args)
    predictor = load_predictor(os.path.join(args.save_dir, args.model_name), features, settings, device)
    if args.click_aware:
        from models.click_aware import ClickAwarePredictor

        predictor = ClickAwarePredictor.for_mesh(predictor, mesh)
    start = time.perf_counter()
    probability = predictor.predict(vertices, positive)
    if device.type == "cuda":
        torch.cuda.synchronize()
    what = "click-aware: a decoder pass and an edit per click" if args.click_aware else "attention + head"
    print(f"inference time ({what}, {mesh.num_vertices} vertices): {(time.perf_counter() - start) * 1e3:.1f} ms")
    suffix = click_suffix(tuple(vertices.tolist()), tuple(1 if p else -1 for p in positive.tolist()))
    if args.click_aware:  # its outputs beside, not over, the original decoder's
        suffix += "_click_aware"
    paths = write_test_outputs(mesh.to(device), probability, vertices, positive, suffix, args.save_dir,
                               args.seg_color, args.base_color, args.pos_color, args.neg_color,
                               bool(args.show_seg), bool(args.show_spheres), args.sphere_radius,
                               args.ply_coordinates == "normalized", args.render_res)
    for kind in ("npy", "ply", "png"):
        print(f"wrote {paths[kind]}")


def main(argv=None) -> None:
    args = parse_args(argv)
    from models.build_feature_field import load_features
    from utils.geometry.mesh_files import load_mesh
    from utils.runtime import resolve_device

    if args.render_res < 16:
        raise InputError(f"--render_res must be >= 16, got {args.render_res}")
    device = resolve_device(args.device)
    mesh = load_mesh(args.obj_path)
    features = load_features(args.encoder_f_path, mesh)
    require_writable_folder(args.save_dir, "--save_dir")
    (train if args.mode == "train" else test)(args, mesh, features, device)


if __name__ == "__main__":
    run_cli(main)
