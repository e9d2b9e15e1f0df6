"""``ultrabones select-lambda``: choose the fiducial penalty weight lambda."""

from __future__ import annotations

import argparse

from .options import add_engine_options, engine_kwargs, given, output_path

__all__ = ["add_parser", "run"]

#: ``EngineParams`` fields without an option here: ``--seed`` seeds the frame sample,
#: and each candidate replaces ``lam``.
OWN_OPTIONS = ("seed", "lam")


def add_parser(sub) -> None:
    """Register ``select-lambda``."""
    p = sub.add_parser("select-lambda", help="choose lambda on sampled frames")
    p.add_argument("record", help="record folder (public layout)")
    p.add_argument("--model", required=True, help="specimen model folder")
    p.add_argument("--out", help="folder for lambda.csv, lambda.json and lambda.png")
    p.add_argument("--table", help="table of every lambda (default: OUT/lambda.csv)")
    p.add_argument("--choice", help="the chosen lambda (default: OUT/lambda.json)")
    p.add_argument("--figure", help="plot of the table (default: OUT/lambda.png)")
    p.add_argument(
        "--truth", help="simulator truth folder of the sweep (label_full/<ts>.png)"
    )
    p.add_argument(
        "--choose-by",
        help="rule of the choice: evidence (refinements alone, as on a real sweep)"
        " or truth (least label error; needs --truth); default DEFAULT_CHOOSE_BY"
        " of ultrabones.sweep.lam",
    )
    p.add_argument("--frames", type=int, default=20, help="frames to sample")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    add_engine_options(p, exclude=OWN_OPTIONS)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run every lambda, write the table, plot and choice.

    Each lambda labels the sampled frames as ``label-sweep`` would with it: warm
    start, refinement and the other engine options as given (defaults as
    ``EngineParams``).
    """
    import json

    import numpy as np

    from ..engine import EngineParams, SpecimenModel
    from ..engine.figures import lambda_figure
    from ..io.record import open_record
    from ..io.tables import save_figure, write_table
    from ..sweep.lam import check_rule, choose_lambda, lambda_table, write_choice

    paths = {
        option: output_path(args, option, f"lambda.{ext}")
        for option, ext in (("table", "csv"), ("choice", "json"), ("figure", "png"))
    }
    choose = given(args, "choose_by")
    check_rule(with_truth=bool(args.truth), **choose)
    record = open_record(args.record)
    model = SpecimenModel.load(args.model)
    with_image = record.image_rows()
    rng = np.random.default_rng(args.seed)
    rows = np.sort(
        rng.choice(with_image, min(args.frames, with_image.size), replace=False)
    )
    params = EngineParams(**engine_kwargs(args, exclude=OWN_OPTIONS))
    truth = _truth_reader(args.truth) if args.truth else None
    table = lambda_table(record, model, params, rows, truth=truth)
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    write_table(paths["table"], table, precision="measured")
    save_figure(lambda_figure(table), paths["figure"])
    lam, rule = choose_lambda(table, **choose)
    write_choice(paths["choice"], lam, rule)
    print(table.to_string(index=False))
    print(json.dumps({"lam": lam, "rule": rule}))
    return 0


def _truth_reader(folder):
    """Return ``stamp -> true full label`` reading a sweep's truth folder."""
    from pathlib import Path

    from ..errors import InputDataError
    from ..io.png import read_png

    masks = Path(folder) / "label_full"
    if not masks.is_dir():
        raise InputDataError(
            f"--truth: {masks} not found (expected the simulator's label_full masks)"
        )
    return lambda stamp: read_png(masks / f"{stamp}.png") > 0
