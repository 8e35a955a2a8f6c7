"""Evaluate iSeg on labelled meshes with simulated clicks, against a random-walk baseline given the same clicks.

    python evaluate.py --data ../shared/data/psb --teacher label --profile quick --out results/psb_quick
    python evaluate.py --data ../shared/data/coseg/chairs --teacher label --profile quick --out results/chairs
    python evaluate.py --data ../shared/data/psb --meshes 1 2 --teacher sam --SAM vit_b --out results/psb_sam

--data is a folder in the Princeton Segmentation Benchmark layout (off/, seg/) or the COSEG layout (shapes/, gt/),
detected automatically. Per mesh the whole pipeline runs (encoder → decoder data → decoder) with the chosen teacher
and budget (--profile), then every segment covering ≥ 2 % of the area is segmented with up to 20 simulated clicks.
With --teacher label the teacher answers with the same annotator's labels: the figures are the pipeline's ceiling
with a perfect 2D segmenter. Finished meshes and stages are reused: rerun the same command to continue.
With --click_aware 1 the click-aware decoder (the same trained decoder, each click an edit of the segment where it
is) runs beside the original on the same features and simulator; a finished run given it adds only its clicks.

With --workers N the meshes run N at a time as Ray tasks on a local Ray (--ray_address: on a cluster; see the README's
"Many meshes" section); their output goes to --out/logs/<mesh id>.log.

Writes to --out: results.json (every mesh, target and click), summary.md, iou_vs_clicks.png, meshes/<id>.json
(one per mesh) and work/ (each mesh's features and decoder).
"""
import argparse

from utils.cli import (
    add_cluster_arguments,
    add_device_argument,
    add_imperfect_masks_argument,
    add_other_side_click_arguments,
    cluster_settings_from_args,
    int_flag,
    require,
)
from utils.errors import require_writable_folder, run_cli


def parse_args(argv=None) -> argparse.Namespace:
    from models.build_teacher import TEACHER_MODELS
    from utils.pipeline.budgets import ALIASES, BUDGETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="labelled meshes (PSB or COSEG layout)")
    parser.add_argument("--out", required=True, help="folder for the results (created; reused when rerun)")
    parser.add_argument("--teacher", default="label", choices=["label", "sam"],
                        help="label (default): ground-truth masks, the pipeline's ceiling; sam: Segment Anything")
    parser.add_argument("--profile", default="quick", choices=sorted([*BUDGETS, *ALIASES]),
                        help="training budget per mesh, as train.py --budget: quick (minutes on a CPU) or original "
                             "(= full, the original's defaults)")
    parser.add_argument("--meshes", nargs="+", default=None, help="mesh ids to evaluate (default: all)")
    parser.add_argument("--annotator", type=int, default=0,
                        help="whose labels are the targets (PSB has several annotators per mesh; COSEG one)")
    parser.add_argument("--methods", nargs="+", default=["iseg", "random_walk"], choices=["iseg", "random_walk"],
                        help="segmenters to evaluate (default both)")
    add_other_side_click_arguments(parser)
    parser.add_argument("--decoder_samples", type=int, default=None,
                        help="decoder training samples per epoch on a 10k-vertex mesh (up to 8× more on smaller "
                             "meshes), instead of the profile's (quick: 256); more costs time, buys quality")
    parser.add_argument("--decoder_pixels", type=int, default=None,
                        help="decoder training loss on at most this many covered pixels per sample (decoder.py "
                             "--loss_pixels; 0 = all), instead of the profile's")
    parser.add_argument("--same_part_negative", default="split", choices=["split", "ignore"],
                        help="label teacher: a part under both a positive and a negative click is split between them "
                             "(default) or kept whole (ignore)")
    parser.add_argument("--segmenter_rules", type=int_flag, default=0,
                        help="1: label teacher: make the decoder data by the rules a SAM-family teacher gets from the "
                             "profile (quick: fewer second clicks, views and refinement steps), to measure what "
                             "they cost")
    parser.add_argument("--clicks", default="center", choices=["center", "random"],
                        help="click simulator: center (default: each click on the error region's point farthest from "
                             "its border) or random (uniform over the region, as people click); the training is "
                             "shared")
    add_imperfect_masks_argument(parser)
    parser.add_argument("--click_aware", type=int_flag, default=0,
                        help="1: also the click-aware decoder (each click edits the segment where it is; "
                             "models/click_aware.py) on the same features, beside the original decoder")
    parser.add_argument("--seed", type=int, default=0, help="seed of every stage")
    parser.add_argument("--SAM", default="vit_h", choices=TEACHER_MODELS, help="SAM model for --teacher sam")
    parser.add_argument("--sam_checkpoint", default=None, help="SAM checkpoint (default: SAM_repo/model_checkpoints/)")
    parser.add_argument("--keep_stage_data", action="store_true",
                        help="keep encoder views and decoder samples (default: deleted once used, to save disk)")
    add_device_argument(parser)
    add_cluster_arguments(parser)
    args = parser.parse_args(argv)
    require([(args.annotator >= 0, f"--annotator must be >= 0, got {args.annotator}"),
             (args.decoder_samples is None or args.decoder_samples >= 1,
              f"--decoder_samples must be >= 1, got {args.decoder_samples}"),
             (args.decoder_pixels is None or args.decoder_pixels >= 0,
              f"--decoder_pixels must be >= 0, got {args.decoder_pixels}")])
    args.cluster = cluster_settings_from_args(args)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    from utils.evaluation.run import EvaluationRun, EvaluationSettings

    run = EvaluationRun(EvaluationSettings(
        data=args.data, out=args.out, teacher=args.teacher, profile=args.profile, meshes=args.meshes,
        annotator=args.annotator, methods=tuple(args.methods) + (("iseg_click_aware",) if args.click_aware else ()),
        negative_outside=bool(args.negative_outside),
        positive_inside=bool(args.positive_inside), decoder_samples=args.decoder_samples,
        decoder_pixels=args.decoder_pixels, same_part_negative=args.same_part_negative, seed=args.seed,
        segmenter_rules=bool(args.segmenter_rules), clicks=args.clicks, imperfect_masks=bool(args.imperfect_masks),
        sam_type=args.SAM, sam_checkpoint=args.sam_checkpoint, keep_stage_data=args.keep_stage_data,
        device=args.device))
    require_writable_folder(args.out, "--out")  # before any mesh is trained
    paths = run.run(args.cluster)
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    run_cli(main)
