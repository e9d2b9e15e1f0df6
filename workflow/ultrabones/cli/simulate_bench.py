"""``ultrabones simulate-bench``: frames/s and peak memory of frame synthesis."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    """Register the ``simulate-bench`` subcommand."""
    p = sub.add_parser("simulate-bench", help="time 950 x 811 frame synthesis")
    p.add_argument(
        "--frames",
        type=int,
        help="frames to synthesise (default 100; with "
        "--misalignment: frames per sweep, default the preset's)",
    )
    p.add_argument("--seed", type=int, default=0, help="cohort seed")
    p.add_argument("--truth", action="store_true", help="also write truth masks")
    p.add_argument("--out", help="folder to write to (default: a temporary folder)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--misalignment",
        metavar="PRESET",
        help="instead, print the realised label misalignment of a preset",
    )
    p.add_argument(
        "--step",
        type=int,
        default=20,
        help="with --misalignment: use every STEP-th frame",
    )
    p.add_argument("--errors", default="paper", help="with --misalignment: paper/none")
    p.set_defaults(run=run)


def run(args) -> int:
    """Simulate one paper-preset sweep of N frames and print the rates.

    ``frames_per_cpu_s`` (frames per CPU second of this process) is the per-core rate;
    wall-clock ``frames_per_s`` also counts time lost to other processes.
    """
    from ..errors import ConfigError

    if args.frames is not None and args.frames < 1:
        raise ConfigError(f"--frames must be positive, got {args.frames}")
    if args.misalignment:
        return _misalignment(args)
    result = _rates(args, args.frames or 100)
    if args.json:
        print(json.dumps(result))
    else:
        print(" ".join(f"{k}={v}" for k, v in result.items()))
    return 0


def _rates(args, frames: int) -> dict:
    """Time a ``frames``-frame sweep (its specimen files made first, untimed)."""
    import resource
    import tempfile
    import time

    from ..simulate.cohort import SweepId, simulate_specimen, write_sweep

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or tmp
        simulate_specimen(out, preset="paper", seed=args.seed, specimen="S01")
        start, cpu = time.perf_counter(), time.process_time()
        ident = SweepId(args.seed, "S01", "fibula-1")
        write_sweep(out, ident, preset="paper", frames=frames, truth=args.truth)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
    return {
        "frames": frames,
        "image_size_px": [950, 811],
        "truth_masks": bool(args.truth),
        "seconds": round(seconds, 3),
        "frames_per_s": round(frames / seconds, 2),
        "cpu_seconds": round(cpu, 3),
        "frames_per_cpu_s": round(frames / cpu, 2),
        "peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
    }


def _misalignment(args) -> int:
    """Print the misalignment distribution (mm) of a preset's frames."""
    from ..studies.misalignment import misalignment_table

    table = misalignment_table(
        args.misalignment,
        seed=args.seed,
        errors=args.errors,
        step=max(args.step, 1),
        frames=args.frames,
    )
    result = {"preset": args.misalignment, "errors": args.errors}
    for column, key in (("misalignment_mm", "label"), ("misalignment_3d_mm", "3d")):
        result[key] = _distribution(table[column].dropna())
    print(
        json.dumps(result)
        if args.json
        else " ".join(f"{k}={v}" for k, v in result.items())
    )
    return 0


def _distribution(m) -> dict:
    """Summary (mm) of one misalignment column."""
    return {
        "frames": int(m.size),
        "mean_mm": round(float(m.mean()), 3),
        "sd_mm": round(float(m.std()), 3),
        "median_mm": round(float(m.median()), 3),
        "p95_mm": round(float(m.quantile(0.95)), 3),
        "max_mm": round(float(m.max()), 3),
        "fraction_over_2mm": round(float((m > 2).mean()), 4),
    }
