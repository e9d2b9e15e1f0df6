"""``ultrabones bench``: run the label engine on frames and report speed and outcome."""

from __future__ import annotations

import argparse

from .options import add_engine_options, add_without_option, engine_kwargs

__all__ = ["add_parser", "run"]

#: ``EngineParams`` fields with a bench option of their own: ``--seed`` seeds the
#: simulation and the frame sample, ``--reject-at-bound`` is a flag.
OWN_OPTIONS = ("seed", "reject_at_bound")


def add_parser(sub) -> None:
    """Register ``bench``."""
    p = sub.add_parser("bench", help="benchmark the label engine on frames")
    _add_inputs(p)
    _add_outputs(p)
    _add_variants(p)
    add_engine_options(p, exclude=OWN_OPTIONS)
    p.set_defaults(run=run)


def _add_inputs(p) -> None:
    """Add the options choosing the frames: a record or a simulation, and which."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--record", help="record folder (public layout)")
    src.add_argument("--preset", choices=("tiny", "paper"), help="simulate frames")
    p.add_argument("--seed", type=int, default=0, help="simulation/sampling seed")
    p.add_argument(
        "--cohorts",
        type=int,
        default=1,
        help="with --preset: simulate this many cohorts (seeds SEED, SEED+1, ...) "
        "and report over all of them",
    )
    p.add_argument(
        "--sweep",
        help="with --preset: the sweep of the first specimen to simulate "
        "(default: its first fibula sweep)",
    )
    pick = p.add_mutually_exclusive_group()
    pick.add_argument("--frames", type=int, help="number of frames (random sample)")
    pick.add_argument("--timestamps", type=int, nargs="+", help="frames by timestamp")


def _add_outputs(p) -> None:
    """Add the options naming what the bench writes besides its summary."""
    p.add_argument("--table", help="per-frame table (.csv or .parquet)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--figure", help="PNG of initial vs refined contours (12 frames)")
    p.add_argument(
        "--review",
        help="folder for corrections.png (correction and confidence along the sweep) "
        "and lowest_confidence.png (the 12 refined frames of least confidence)",
    )


def _add_variants(p) -> None:
    """Add the options varying the engine or the simulation from their defaults."""
    p.add_argument(
        "--reject-at-bound",
        action="store_true",
        help="also reject corrections that end on the search box's edge",
    )
    add_without_option(p, condition="with --preset: ")
    p.add_argument(
        "--ablation",
        action="store_true",
        help="with --preset: run the preset, then once per source switched off; "
        "print one row each",
    )


def _pick_rows(record, args, rng):
    import numpy as np

    from ..errors import ConfigError

    if args.timestamps:
        stamps = record.poses["timestamp"].to_numpy()
        missing = sorted(set(args.timestamps) - set(stamps.tolist()))
        if missing:
            raise ConfigError(f"--timestamps not in the record: {missing[:10]}")
        return np.flatnonzero(np.isin(stamps, args.timestamps))
    with_image = record.image_rows()
    if args.frames and args.frames < with_image.size:
        return np.sort(rng.choice(with_image, args.frames, replace=False))
    return with_image


def _figure(path, record, run) -> None:
    """Write initial vs refined contours of up to 12 benched frames with masks."""
    from ..engine.figures import contour_grid
    from ..io.png import read_png

    stamps = run.table["timestamp"].astype(int).tolist()
    picked = [(s, r) for s, r in zip(stamps, run.results, strict=True) if r.masks]
    picked = picked[:: max(1, len(picked) // 12)][:12]
    images = [read_png(record.image_path(s)) for s, _ in picked]
    results = [r for _, r in picked]
    contour_grid(images, results, [s for s, _ in picked]).savefig(path, dpi=110)


#: Columns of the ``--ablation`` rows (besides ``without`` and ``frames``).
ABLATION_KEYS = (
    "label_error_mm_median_initial",
    "label_error_mm_median_refined",
    "pose_error_mm_median_initial",
    "pose_error_mm_median_refined",
    "curve_offset_abs_mm_median_refined",
    "worse_fraction",
    "discarded_fraction",
    "fiducial_correction_mm_mean_kept",
    "bound_hit_fraction",
)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; print the summary (JSON with ``--json``)."""
    import json

    import pandas as pd

    from ..errors import ConfigError
    from ..io.tables import write_table

    if args.cohorts < 1 or (args.cohorts > 1 and not args.preset):
        raise ConfigError("--cohorts takes a count >= 1, and only with --preset")
    if (args.without or args.ablation) and not args.preset:
        raise ConfigError("--without and --ablation need --preset")
    preset = _preset(args)
    if not args.ablation:
        summary, table = _cohorts(args, preset)
        if args.table:
            write_table(args.table, table, precision="measured")
        print(json.dumps(summary, indent=None if args.json else 1))
        return 0
    rows, tables = _ablation(args, preset)
    if args.table:
        write_table(
            args.table, pd.concat(tables, ignore_index=True), precision="measured"
        )
    if args.json:
        print(json.dumps({"ablation": rows}))
    else:
        print(pd.DataFrame(rows).to_string(index=False, float_format="%.4f"))
    return 0


def _preset(args):
    """Return the preset with ``--without`` sources off (None for a record)."""
    from ..simulate.presets import get_preset, without

    return without(get_preset(args.preset), *args.without) if args.preset else None


def _ablation(args, preset):
    """Run the preset, then each of its sources off in turn: one row each."""
    from ..simulate.presets import SOURCE_NAMES, without

    on = [n for n in SOURCE_NAMES if getattr(preset.sources, n)]
    rows, tables = [], []
    for name in ("baseline", *on):
        base = name == "baseline"
        summary, table = _cohorts(
            args, preset if base else without(preset, name), figure=base
        )
        row = {"without": name, "frames": summary["frames"]}
        rows.append(row | {k: summary.get(k, float("nan")) for k in ABLATION_KEYS})
        tables.append(table.assign(without=name))
    return rows, tables


def _cohorts(args, preset, *, figure=True):
    """Bench the record or ``--cohorts`` simulated cohorts: summary and table.

    ``figure``: write ``--figure`` (from the first cohort) on this run.
    """
    import tempfile
    from pathlib import Path

    import pandas as pd

    from ..studies.bench import auroc, summarise, summarise_truth

    runs = []
    with tempfile.TemporaryDirectory(prefix="ultrabones-bench-") as tmp:
        for k in range(args.cohorts):
            seed = args.seed + k
            root = _simulate(args, Path(tmp) / str(k), seed, preset) if preset else None
            first = figure and k == 0
            runs.append(_bench(args, root or args.record, seed, first=first))
    table = pd.concat([r["table"] for r in runs], ignore_index=True)
    summary = dict(runs[0]["summary"])
    if len(runs) > 1:
        summary |= summarise(table)
        if "label_error_mm_refined" in table:
            summary |= summarise_truth(table)
            summary["confidence_auroc"] = auroc(table)
        summary["cohorts"] = [r["summary"] for r in runs]
    if preset is not None:
        from ..simulate.presets import SOURCE_NAMES

        off = [n for n in SOURCE_NAMES if not getattr(preset.sources, n)]
        summary["sources_off"] = off
    return summary, table


def _simulate(args, tmp, seed, preset):
    from ..simulate.cohort import simulate_sweep

    specimen = preset.specimens[0]
    sweep = args.sweep or next(
        (w for w in preset.sweeps if w.startswith("fibula")), preset.sweeps[0]
    )
    return simulate_sweep(
        tmp,
        preset=preset,
        seed=seed,
        specimen=specimen,
        sweep=sweep,
        frames=args.frames,
    )


def _bench(args, root, seed, *, first) -> dict:
    """Bench one record (``studies.bench.bench_record``): its summary and table."""
    import numpy as np

    from ..engine import EngineParams
    from ..io.record import open_record
    from ..studies.bench import bench_record

    record = open_record(root)
    kw = engine_kwargs(args, exclude=OWN_OPTIONS)
    params = EngineParams(**kw, reject_at_bound=args.reject_at_bound)
    rows = _pick_rows(record, args, np.random.default_rng(seed))
    run = bench_record(record, params, rows)
    summary = run.summary | {"seed": seed, "bones": sorted(record.bone_paths)}
    if args.figure and first:
        _figure(args.figure, record, run)
    if args.review and first:
        _review(args.review, record, run)
    return {"summary": summary, "table": run.table.assign(seed=seed)}


def _review(folder, record, run) -> None:
    """Write the sweep timeline and the 12 least confident refined frames."""
    from pathlib import Path

    import numpy as np

    from ..engine.figures import contour_grid, sweep_timeline
    from ..io.png import read_png
    from ..studies.bench import rerun

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    table = run.table
    sweep_timeline(table).savefig(out / "corrections.png", dpi=110)
    low = table[np.isfinite(table["confidence"])].nsmallest(12, "confidence")
    stamps = sorted(low["timestamp"].astype(int).tolist())
    # Labelled again as in the bench (prior, seeds, starts): the same results, now
    # with masks.
    results = rerun(run, stamps)
    by_stamp = low.set_index("timestamp")
    titles = [
        f"{s} {by_stamp.at[s, 'reason']} conf {by_stamp.at[s, 'confidence']:.2f} "
        f"{by_stamp.at[s, 'fiducial_correction_mm']:.2f} mm"
        for s in stamps
    ]
    images = [read_png(record.image_path(s)) for s in stamps]
    fig = contour_grid(images, results, stamps, titles=titles)
    fig.savefig(out / "lowest_confidence.png", dpi=90)
