"""``ultrabones evaluate``: score a label set against another (Acc, Com, F1 in mm)."""

from __future__ import annotations

import json

#: Distance thresholds (mm) of the scores; source: paper Fig. 4 (0.1-2 mm).
DEFAULT_EPS_MM = (0.1, 0.25, 0.5, 1.0, 2.0)


def add_parser(sub) -> None:
    """Register the ``evaluate`` subcommand."""
    p = sub.add_parser(
        "evaluate",
        help="accuracy, completeness and F1 of labels within eps mm of a truth",
        description="Frames are matched by timestamp / file name; only frames in "
        "both sets and kept in both are scored (see docs/evaluation.md).",
    )
    p.add_argument("--pred", required=True, help="label store (.zarr) or PNG folder")
    p.add_argument("--truth", required=True, help="label store (.zarr) or PNG folder")
    p.add_argument("--pred-var", default="label", help="mask variable of a store")
    p.add_argument("--truth-var", default="label", help="mask variable of a store")
    p.add_argument(
        "--spacing",
        nargs=2,
        type=float,
        metavar=("SX", "SY"),
        help="pixel spacing in mm (required when both are PNG folders)",
    )
    p.add_argument(
        "--eps",
        nargs="+",
        type=float,
        default=list(DEFAULT_EPS_MM),
        help="distance thresholds in mm (strict d < eps)",
    )
    p.add_argument("--images", help="folder of <name>.png intensity images")
    p.add_argument("--otsu", help="Otsu threshold JSON from `ultrabones otsu`")
    p.add_argument("--out", help="folder for metrics.json, per_frame.csv, figures")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    """Evaluate, write the optional outputs and print the summary."""
    from ..evaluate import evaluate_label_sets, resolve_spacing
    from ..io.masks import open_mask_source

    pred = open_mask_source(args.pred, variable=args.pred_var)
    truth = open_mask_source(args.truth, variable=args.truth_var)
    spacing = resolve_spacing(
        args.spacing,
        pred.spacing_mm,
        truth.spacing_mm,
        names=("--spacing", str(pred.path), str(truth.path)),
    )
    result = evaluate_label_sets(
        pred,
        truth,
        spacing_mm=spacing,
        eps_mm=args.eps,
        read_image=_image_reader(args, pred, truth),
        threshold=read_threshold(args.otsu) if args.otsu else None,
    )
    if args.out:
        title = (
            f"{_name(pred, args.pred_var)} vs {_name(truth, args.truth_var)}, "
            f"{result['frames']} frames"
        )
        _write_outputs(args.out, result, title=title)
    summary = {k: v for k, v in result.items() if k != "per_frame"}
    print(json.dumps(summary, indent=2) if args.json else _table(summary))
    return 0


def _name(source, variable: str) -> str:
    from ..io.masks import is_zarr_store

    name = source.path.name
    return f"{name}:{variable}" if is_zarr_store(source.path) else name


def _image_reader(args, pred, truth):
    from ..io.masks import read_image_folder

    if args.images:
        return read_image_folder(args.images)
    return pred.read_image or truth.read_image


def read_threshold(path) -> float:
    """Read the ``threshold`` of an Otsu JSON written by ``ultrabones otsu``."""
    from pathlib import Path

    from ..errors import InputDataError

    try:
        return float(json.loads(Path(path).read_text())["threshold"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputDataError(f"{path}: cannot read Otsu threshold ({err})") from err


def _write_outputs(out, result, *, title: str) -> None:
    from pathlib import Path

    from ..evaluate.figures import metric_curves_figure
    from ..io.tables import save_figure, write_json, write_rows

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        out / "metrics.json",
        {k: v for k, v in result.items() if k != "per_frame"},
        indent=2,
    )
    write_rows(out / "per_frame.csv", result["per_frame"])
    save_figure(metric_curves_figure(result, title=title), out / "eval_curves.png")


def _table(summary) -> str:
    lines = [f"frames scored: {summary['frames']}  {summary['frame_counts']}"]
    lines.append("region  eps_mm   Acc     Com     F1")
    for region, values in summary["regions"].items():
        for i, eps in enumerate(summary["eps_mm"]):
            cells = [values[m][i] for m in ("accuracy", "completeness", "f1")]
            text = ["   -   " if c is None else f"{c:.4f}" for c in cells]
            lines.append(f"{region:6s}  {eps:6.3g}  " + "  ".join(text))
    return "\n".join(lines)
