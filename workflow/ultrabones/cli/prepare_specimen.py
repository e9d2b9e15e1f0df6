"""``ultrabones prepare-specimen``: per-specimen precompute of the label engine."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Register ``prepare-specimen``."""
    p = sub.add_parser(
        "prepare-specimen", help="build the label engine's model of a specimen"
    )
    p.add_argument("--bones", required=True, help="folder of bone STL files (CT, mm)")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument(
        "--sample-spacing-mm", type=float, default=0.25, help="surface sample spacing"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Read the STLs, build the model, write it."""
    import logging
    import time
    from pathlib import Path

    from ..engine import EngineParams, prepare_specimen
    from ..errors import InputDataError
    from ..io.stl import read_stl

    paths = sorted(Path(args.bones).glob("*.stl"))
    if not paths:
        raise InputDataError(f"{args.bones}: no bone models (*.stl) found")
    t0 = time.perf_counter()
    params = EngineParams(sample_spacing_mm=args.sample_spacing_mm)
    model = prepare_specimen({p.stem: read_stl(p) for p in paths}, params=params)
    model.save(args.out)
    logging.getLogger(__name__).info(
        "%s: %d samples in %.1f s",
        args.out,
        len(model.points),
        time.perf_counter() - t0,
    )
    return 0
