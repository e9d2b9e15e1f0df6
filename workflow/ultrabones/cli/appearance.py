"""``ultrabones appearance``: simulated vs real frames (honesty numbers)."""

from __future__ import annotations

import json
import logging

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    """Register the ``appearance`` subcommand."""
    p = sub.add_parser(
        "appearance", help="appearance numbers: simulated vs real frames"
    )
    p.add_argument(
        "--real",
        nargs="+",
        required=True,
        help="real record folders (labelled at their initial poses) or "
        "plain image folders (histogram only)",
    )
    p.add_argument("--sim", required=True, help="simulated cohort folder (with truth/)")
    p.add_argument("--out", required=True, help="folder for appearance.json/.png")
    p.add_argument(
        "--max-frames", type=int, default=60, help="simulated frames per sweep to read"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    """Measure both sets, write appearance.json and the side-by-side figure."""
    from pathlib import Path

    from ..io.masks import write_json
    from ..simulate.appearance import FrameSet, compare, summary
    from ..simulate.appearance_io import (
        appearance_figure,
        measure_real,
        measure_sim,
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    real, real_examples = FrameSet(), []
    for folder in args.real:
        real_examples += measure_real(Path(folder), real)
    sim, sim_examples = FrameSet(), []
    sim_examples = measure_sim(Path(args.sim), sim, max_frames=args.max_frames)
    doc = {"real": summary(real), "sim": summary(sim), **compare(sim, real)}
    write_json(out / "appearance.json", doc)
    appearance_figure(out / "appearance.png", sim_examples, real_examples)
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        for key in (
            "mean_intensity",
            "std_intensity",
            "ridge_contrast",
            "shadow_ratio",
        ):
            print(
                f"{key:16s} real={doc['real'].get(key, float('nan')):8.3f} "
                f"sim={doc['sim'].get(key, float('nan')):8.3f}"
            )
        print(
            f"histogram_distance={doc['histogram_distance']:.3f} "
            f"within_tolerance={doc['within_tolerance']}"
        )
    return 0
