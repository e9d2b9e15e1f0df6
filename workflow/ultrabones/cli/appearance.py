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
        "plain image folders (label-free statistics only)",
    )
    p.add_argument("--sim", required=True, help="simulated cohort folder (with truth/)")
    p.add_argument(
        "--out",
        required=True,
        help="folder for appearance.json, appearance_grid.png, appearance_curves.png",
    )
    p.add_argument(
        "--max-frames", type=int, default=60, help="simulated frames per sweep to read"
    )
    p.add_argument("--grid", help="also write the picture grid to this PNG path")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run)


def _table(doc: dict) -> str:
    """One line per statistic: real, sim, relative difference, pass/fail."""
    lines = [f"{'statistic':26s} {'real':>9s} {'sim':>9s} {'rel':>8s}"]
    for key, s in doc["statistics"].items():
        verdict = "pass" if s["pass"] else "FAIL"
        lines.append(
            f"{key:26s} {s['real']:9.3f} {s['sim']:9.3f} "
            f"{s['relative_difference']:+8.1%} {verdict}"
        )
    lines.append(
        f"histogram_distance={doc['histogram_distance']:.3f} "
        f"within_tolerance={doc['within_tolerance']} (tolerance {doc['tolerance']:.0%})"
    )
    return "\n".join(lines)


def run(args) -> int:
    """Measure both sets; write appearance.json, the picture grid and the curves."""
    import shutil
    from pathlib import Path

    from ..io.tables import write_json
    from ..studies import appearance as study

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    per_real, real_examples = {}, []
    share = -(-4 // len(args.real))  # four real examples spread over the folders
    for folder in args.real:
        per_real[folder] = study.FrameSet()
        real_examples += study.measure_real(
            Path(folder), per_real[folder], examples=share
        )
    real, sim = study.merge(list(per_real.values())), study.FrameSet()
    sim_examples = study.measure_sim(Path(args.sim), sim, max_frames=args.max_frames)
    doc = {
        "real": study.summary(real),
        "real_sets": {k: study.summary(v) for k, v in per_real.items()},
        "sim": study.summary(sim),
        "curves": {"real": study.curves(real), "sim": study.curves(sim)},
        **study.compare(sim, real),
    }
    write_json(out / "appearance.json", doc, indent=2)
    study.grid_figure(out / "appearance_grid.png", real_examples[:4], sim_examples)
    study.curves_figure(
        out / "appearance_curves.png",
        {
            **{Path(k).name: study.curves(v) for k, v in per_real.items()},
            "sim": study.curves(sim),
        },
    )
    if args.grid:
        shutil.copyfile(out / "appearance_grid.png", args.grid)
    print(json.dumps(doc, indent=2, sort_keys=True) if args.json else _table(doc))
    return 0
