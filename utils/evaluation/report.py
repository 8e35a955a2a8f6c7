"""What evaluate.py reports: the summary table (``summary.md``) and the IoU-against-clicks plot, from per-mesh
records.

A mesh record (one JSON per mesh, all of them together in ``results.json``)::

    {"collection", "mesh_id", "category", "num_vertices", "num_faces", "annotator", "teacher", "profile",
     "timings": {stage: seconds, "simulation_<method>": seconds},
     "targets": [{"label", "area_share", "human_ceiling", "clicks": {method: [{"vertex", "positive", "iou",
                                                                               "seconds"}, ...]}}]}

or, for a mesh that could not be evaluated, ``{"collection", "mesh_id", "category", "error"}``.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

import numpy as np

from models.build_decoder import DecoderSettings
from utils.evaluation.click_simulation import NOC_CAP, number_of_clicks
from utils.evaluation.protocol import IOU_AT, NOC_THRESHOLDS, ious_per_click
from utils.pipeline.budgets import ALIASES, BUDGETS

METHOD_NAMES = {"iseg": "iSeg", "iseg_click_aware": "iSeg click-aware", "random_walk": "random walk (Lai et al. 2008)"}
#: the names in the per-category table's column heads
SHORT_NAMES = {"iseg": "iSeg", "iseg_click_aware": "click-aware", "random_walk": "random walk"}
#: the segmenters built on the trained decoder (compared with the random walk)
DECODER_METHODS = ("iseg", "iseg_click_aware")


def method_curves(records: Sequence[Dict]) -> Dict[str, np.ndarray]:
    """Per method: (targets, NOC_CAP) IoU after 1..NOC_CAP clicks, all evaluated meshes' targets stacked."""
    curves: Dict[str, List[np.ndarray]] = defaultdict(list)
    for record in records:
        for target in record.get("targets", []):
            for method, clicks in target["clicks"].items():
                curves[method].append(ious_per_click(clicks))
    order = list(METHOD_NAMES)  # the tables' order, whatever order a record's methods were added in
    ranked = sorted(curves, key=lambda m: (order.index(m) if m in order else len(order), m))
    return {method: np.stack(curves[method]) for method in ranked}


def curve_metrics(curves: np.ndarray) -> Dict[str, float]:
    """Mean IoU@k (k in IOU_AT), mean NoC@t and the share of targets that hit the cap without reaching t."""
    metrics: Dict[str, float] = {f"iou@{k}": float(curves[:, k - 1].mean()) for k in IOU_AT}
    for threshold in NOC_THRESHOLDS:
        counts = np.array([number_of_clicks(row, threshold) for row in curves])
        reached = np.array([bool((row >= threshold).any()) for row in curves])
        tag = int(round(threshold * 100))
        metrics[f"noc@{tag}"] = float(counts.mean())
        metrics[f"capped@{tag}"] = float((~reached).mean())
    return metrics


def _format(value: float, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


_SIMULATOR_WORDS = {
    "center": "each on the inner vertex of the largest error region farthest from its border",
    "random": "each on an inner vertex drawn uniformly over the area of the largest error region (seeded)",
}


def summary_markdown(records: Sequence[Dict], settings: Dict[str, object]) -> str:
    """The whole summary.md text."""
    evaluated = [r for r in records if "targets" in r]
    failed = [r for r in records if "error" in r]
    lines = [f"# iSeg evaluation — {settings['data']}", ""]
    teacher = settings["teacher"]
    if teacher == "label":
        lines += ["**Teacher: label, imperfect masks** — the annotator's part masks, spoiled per view and click as a "
                  "real segmenter's are (a neighbouring part taken too or only a piece of the part, borders moved "
                  "by a few pixels): closer to SAM's quality than the perfect teacher, still not SAM.", ""
                  ] if settings.get("imperfect_masks") else [
                  "**Teacher: label** — the 2D teacher answers with the annotator's ground-truth part masks, so these "
                  "figures are the pipeline's *ceiling* with a perfect 2D segmenter (what is lost on the way: "
                  "views, feature resolution, training budget, click generalisation), not SAM's quality.", ""]
    else:
        lines += [f"**Teacher: SAM ({settings.get('SAM')})**.", ""]
    options = [f"`--{name} 1`" for name in ("negative_outside", "positive_inside") if settings.get(name)]
    options += ["`--same_part_negative ignore`"] if settings.get("same_part_negative") == "ignore" else []
    options += ["`--segmenter_rules 1`"] if teacher == "label" and settings.get("segmenter_rules") else []
    options += ["`--clicks random`"] if settings.get("clicks") == "random" else []
    options += ["`--imperfect_masks 1`"] if settings.get("imperfect_masks") else []
    profile = BUDGETS.get(ALIASES.get(settings["profile"], settings["profile"]))
    for name in ("decoder_samples", "decoder_pixels"):
        value = settings.get(name)
        if profile is not None and value is not None and value != getattr(profile, name):
            options.append(f"`--{name} {value}`")
    extra = f" with {' '.join(options)}" if options else ""
    decoder_flags = _decoder_flags(settings.get("budget") or {})
    if decoder_flags:
        extra += f" (decoder.py {' '.join(decoder_flags)})"
    lines += [f"Profile `{settings['profile']}`{extra}, annotator {settings['annotator']}, seed {settings['seed']}; "
              f"{len(evaluated)} meshes evaluated" + (f", {len(failed)} failed" if failed else "") + ", "
              f"{sum(len(r['targets']) for r in evaluated)} targets (segments ≥ 2 % of the area); up to {NOC_CAP} "
              f"clicks each, {_SIMULATOR_WORDS[settings.get('clicks', 'center')]}. "
              f"IoU is area-weighted over faces; iSeg's face is in when the mean of its vertices' "
              f"probabilities is > 0.5. Random walk: Lai et al. 2008 on dihedral-angle weighted face adjacency, seeds "
              f"= the faces around clicked vertices; with no negative click yet, the vertex geodesically farthest from "
              f"the positive clicks is the background seed.", ""]
    curves = method_curves(evaluated)
    if curves:
        lines += _overall_table(curves)
        lines += _margin_lines(curves)
        lines += _category_table(evaluated)
    ceiling = [t["human_ceiling"] for r in evaluated for t in r["targets"]
               if t.get("human_ceiling") is not None and not math.isnan(t["human_ceiling"])]
    if ceiling:
        lines += ["## Human ceiling", "",
                  f"For each target of annotator {settings['annotator']}, the best IoU any one segment of each other "
                  f"annotator reaches with it, averaged over annotators and then over targets: "
                  f"**{np.mean(ceiling):.3f}** ({len(ceiling)} targets) — how much people themselves agree on these "
                  f"parts.", ""]
    lines += _click_effect_table(evaluated)
    lines += _timing_table(evaluated)
    if failed:
        lines += ["## Not evaluated", ""] + [f"- {r['collection']}/{r['mesh_id']}: {r['error']}" for r in failed] + [""]
    return "\n".join(lines)


def _decoder_flags(budget: Dict) -> List[str]:
    """decoder.py flags, other than the original's defaults, that a resolved budget (``asdict(Budget)``) trains with."""
    flags = [f"--lr_schedule {budget['decoder_lr_schedule']}"] if budget.get("decoder_lr_schedule",
                                                                             "constant") != "constant" else []
    flags += DecoderSettings(**(budget.get("decoder_settings") or {})).changed_flags()
    return [f"`{flag}`" for flag in flags]


def _overall_table(curves: Dict[str, np.ndarray]) -> List[str]:
    tags = [int(round(t * 100)) for t in NOC_THRESHOLDS]
    header = (["method", "targets"] + [f"IoU@{k}" for k in IOU_AT] + [f"NoC@{t}" for t in tags]
              + [f"≥{NOC_CAP} @{t}" for t in tags])
    lines = ["## All targets", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, curve in curves.items():
        metrics = curve_metrics(curve)
        row = ([METHOD_NAMES.get(method, method), str(len(curve))]
               + [_format(metrics[f"iou@{k}"]) for k in IOU_AT] + [_format(metrics[f"noc@{t}"], 2) for t in tags]
               + [f"{100 * metrics[f'capped@{t}']:.0f} %" for t in tags])
        lines.append("| " + " | ".join(row) + " |")
    return lines + ["", f"NoC@t: clicks until IoU ≥ t ({NOC_CAP} when never); ≥{NOC_CAP}: share of targets that "
                        f"never reached t in {NOC_CAP} clicks.", ""]


def curve_margin(curves: Dict[str, np.ndarray], method: str = "iseg", baseline: str = "random_walk"):
    """(k, margin, not_above): the click count k in 1..NOC_CAP at which ``method``'s mean IoU is least above
    ``baseline``'s, that margin, and the click counts at which it is not above; None if either method is missing."""
    if method not in curves or baseline not in curves:
        return None
    margins = curves[method].mean(axis=0) - curves[baseline].mean(axis=0)  # (NOC_CAP,)
    worst = int(np.argmin(margins))
    return worst + 1, float(margins[worst]), [k + 1 for k in np.nonzero(margins <= 0)[0]]


def largest_fall(curve: np.ndarray) -> Tuple[int, float]:
    """(k, fall): the click count k in 2..NOC_CAP after which the mean IoU of a (targets, NOC_CAP) curve falls most
    from the count before, and that fall (≤ 0 when it never falls)."""
    falls = curve.mean(axis=0)[:-1] - curve.mean(axis=0)[1:]  # (NOC_CAP − 1,)
    worst = int(np.argmax(falls))
    return worst + 2, float(falls[worst])


def _margin_lines(curves: Dict[str, np.ndarray]) -> List[str]:
    lines = []
    for method in DECODER_METHODS:
        margin = curve_margin(curves, method)
        if margin is None:
            continue
        worst, value, below = margin
        name = METHOD_NAMES[method]
        verdict = (f"above it after every click count from 1 to {NOC_CAP}" if not below else
                   f"not above it after {', '.join(str(k) for k in below)} click(s)")
        lines += [f"Mean IoU of {name} minus the random walk's: smallest margin {value:+.3f} (after {worst} clicks); "
                  f"{name} is {verdict}.", ""]
    for method, curve in curves.items():
        clicks, fall = largest_fall(curve)
        lines += [f"{METHOD_NAMES.get(method, method)}: " + (
            f"the mean IoU falls by at most {fall:.3f} from one click count to the next (after {clicks} clicks)."
            if fall >= 0.0005 else f"the mean IoU never falls by 0.001 or more from one click count to the next "
                                   f"(1 to {NOC_CAP}).")]
    return lines + [""]


def _category_table(records: Sequence[Dict]) -> List[str]:
    by_category: Dict[str, List[Dict]] = defaultdict(list)
    for record in records:
        by_category[record["category"]].append(record)
    methods = list(method_curves(records))
    header = ["category", "meshes", "targets"] + [f"{SHORT_NAMES.get(m, m)} {s}" for m in methods
                                                  for s in ("IoU@1", "IoU@3", "NoC@85")]
    lines = ["## Per category", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for category in sorted(by_category):
        group = by_category[category]
        curves = method_curves(group)
        row = [category, str(len(group)), str(sum(len(r["targets"]) for r in group))]
        for method in methods:
            metrics = curve_metrics(curves[method])
            row += [_format(metrics["iou@1"]), _format(metrics["iou@3"]), _format(metrics["noc@85"], 1)]
        lines.append("| " + " | ".join(row) + " |")
    return lines + [""]


def click_effects(records: Sequence[Dict], drop: float = 0.2) -> Dict[str, Dict[str, List[int]]]:
    """Per method and click sign: [correction clicks (2nd and later), those after which IoU fell by > ``drop``]."""
    effects: Dict[str, Dict[str, List[int]]] = defaultdict(lambda: {"positive": [0, 0], "negative": [0, 0]})
    for record in records:
        for target in record.get("targets", []):
            for method, clicks in target["clicks"].items():
                for before, click in zip(clicks, clicks[1:]):
                    counts = effects[method]["positive" if click["positive"] else "negative"]
                    counts[0] += 1
                    counts[1] += int(click["iou"] < before["iou"] - drop)
    return effects


def _click_effect_table(records: Sequence[Dict]) -> List[str]:
    effects = click_effects(records)
    if not effects:
        return []
    lines = ["## Correction clicks that hurt", "",
             "Clicks after the first, by sign, and the share after which the IoU fell by more than 0.2 (the segment "
             "collapsed or spilled instead of improving).", "",
             "| method | positive clicks | IoU fell | negative clicks | IoU fell |", "|---|---|---|---|---|"]
    for method, counts in effects.items():
        cells = []
        for sign in ("positive", "negative"):
            total, fell = counts[sign]
            cells += [str(total), f"{100 * fell / total:.0f} %" if total else "–"]
        lines.append(f"| {METHOD_NAMES.get(method, method)} | " + " | ".join(cells) + " |")
    return lines + [""]


def _timing_table(records: Sequence[Dict]) -> List[str]:
    stages: Dict[str, List[float]] = defaultdict(list)
    for record in records:
        for stage, seconds in record.get("timings", {}).items():
            stages[stage].append(float(seconds))
    if not stages:
        return []
    lines = ["## Time", "", "Seconds per mesh when the stage ran (stages reused from an earlier run are not counted).",
             "", "| stage | meshes | mean s | max s | total min |", "|---|---|---|---|---|"]
    for stage, values in stages.items():
        lines.append(f"| {stage} | {len(values)} | {np.mean(values):.1f} | {np.max(values):.1f} | "
                     f"{np.sum(values) / 60:.1f} |")
    return lines + [""]


def save_iou_plot(records: Sequence[Dict], path: str, title: str) -> None:
    """Mean IoU against the number of clicks, one line per method."""
    from utils.plots import plt, save_figure

    curves = method_curves([r for r in records if "targets" in r])
    figure, axis = plt.subplots(figsize=(6, 4))
    clicks = np.arange(1, NOC_CAP + 1)
    for method, curve in curves.items():
        axis.plot(clicks, curve.mean(axis=0), marker="o", markersize=3,
                  label=f"{METHOD_NAMES.get(method, method)} ({len(curve)} targets)")
    axis.set_xlabel("clicks")
    axis.set_ylabel("mean IoU (area-weighted)")
    axis.set_xticks([1, 2, 3, 5, 10, 15, 20])
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    axis.set_title(title)
    axis.legend(loc="lower right")
    save_figure(figure, path)
