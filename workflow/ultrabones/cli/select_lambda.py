"""``ultrabones select-lambda``: choose the fiducial penalty weight lambda."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Register ``select-lambda``."""
    p = sub.add_parser("select-lambda", help="choose lambda on sampled frames")
    p.add_argument("record", help="record folder (public layout)")
    p.add_argument("--model", required=True, help="specimen model folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--truth", help="simulator truth folder (not supported yet)")
    p.add_argument("--frames", type=int, default=20, help="frames to sample")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--objective", choices=("robust", "eq3"), default="robust")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run every lambda, write the table, plot and choice."""
    import json
    from pathlib import Path

    import numpy as np

    from ..engine import EngineParams, SpecimenModel
    from ..engine.figures import lambda_figure
    from ..engine.lam import choose_lambda, lambda_table
    from ..errors import ConfigError
    from ..io.model import write_frame_table
    from ..io.record import open_record
    from .bench import _frames

    if args.truth:
        raise ConfigError(
            "--truth: scoring lambda by label error is not implemented yet"
        )
    record = open_record(args.record)
    model = SpecimenModel.load(args.model)
    with_image = np.flatnonzero(record.poses["image"].to_numpy() != "")
    rng = np.random.default_rng(args.seed)
    rows = np.sort(
        rng.choice(with_image, min(args.frames, with_image.size), replace=False)
    )
    params = EngineParams(objective=args.objective)
    table = lambda_table(_frames(record, rows), model, record.calibration, params)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_frame_table(out / "lambda.csv", table)
    lambda_figure(table).savefig(out / "lambda.png", dpi=110)
    choice = {
        "lam": choose_lambda(table),
        "rule": "smallest lambda with <=10% bound hits",
    }
    (out / "lambda.json").write_text(json.dumps(choice, indent=1) + "\n")
    print(table.to_string(index=False))
    print(json.dumps(choice))
    return 0
