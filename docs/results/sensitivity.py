"""Sensitivity of the engine to its heuristic constants (issue 14, item 3).

Each constant of ``CONSTANTS`` is set to 0.5x and 1.5x its ``EngineParams`` default,
one at a time, and ``ultrabones bench`` runs on the simulator (truth: pose error,
worse fraction, F1) and on the real sample (no truth: discarded fraction, kept
correction, confidence). Every run's JSON summary and per-frame table go to
``--work`` (a run already there is reused, so a killed sweep resumes); the table is
written as Markdown to ``--out``.

    .venv/bin/python docs/results/sensitivity.py --work /tmp/sensitivity \
        --out /tmp/sensitivity_table.md --cohorts 3 --frames 12

A pair's second value is the upper percentile: scaling it would leave [0, 100],
so its distance to 100 is scaled instead (99.5 -> 99.75 and 99.25).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from ultrabones.engine import EngineParams

#: The constants varied, and for a pair which part: ``None`` both values scaled,
#: 0 the first, 1 the second's distance to 100 (a percentile).
CONSTANTS = {
    "evidence_smoothing_px": None,
    "evidence_percentiles[0]": 0,
    "evidence_percentiles[1]": 1,
    "shadow_window_mm": None,
    "evidence_offset": None,
    "evidence_downsample": None,
    "facing_min": None,
    "shadow_margin_mm": None,
    "max_miss_mm": None,
    "fine_points": None,
    "flat_ratio": None,
    "pull_back_fraction": None,
}
FACTORS = (0.5, 1.5)
#: Summary keys reported, by source.
SIM_KEYS = (
    "pose_error_mm_median_refined",
    "worse_fraction",
    "discarded_fraction",
    "f1_at_0_5mm_mean",
    "label_error_mm_median_refined",
)
REAL_KEYS = ("discarded_fraction", "fiducial_correction_mm_mean_kept")


def scaled(name: str, factor: float):
    """Return the option name and value of constant ``name`` at ``factor`` x default."""
    field = name.split("[")[0]
    default = getattr(EngineParams(), field)
    part = CONSTANTS[name]
    if isinstance(default, tuple):
        values = list(default)
        if part is None:
            values = [v * factor for v in values]
        elif part == 0:
            values[0] *= factor
        else:
            values[1] = 100.0 - (100.0 - values[1]) * factor
        return field, [round(v, 6) for v in values]
    value = default * factor
    return field, round(value) if isinstance(default, int) else round(value, 6)


def settings():
    """Yield ``(label, constant, factor, options)``: the baseline, then each change."""
    yield "baseline", "", 1.0, []
    for name in CONSTANTS:
        for factor in FACTORS:
            field, value = scaled(name, factor)
            values = value if isinstance(value, list) else [value]
            flag = f"--{field.replace('_', '-')}"
            label = f"{name}_x{factor:g}"
            yield label, name, factor, [flag, *map(str, values)]


def bench(out: Path, source: list[str], options: list[str]) -> dict:
    """Run ``ultrabones bench`` once (unless its JSON exists); return the summary."""
    summary, table = (out.with_name(f"{out.name}.{ext}") for ext in ("json", "csv"))
    if not summary.exists():
        exe = Path(sys.executable).with_name("ultrabones")
        cmd = [str(exe), "bench", *source, "--json", "--table", str(table), *options]
        print(" ".join(cmd), file=sys.stderr, flush=True)
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        summary.write_text(done.stdout)
    result = json.loads(summary.read_text())
    frames = pd.read_csv(table)
    kept = frames[frames["status"] == "kept"]
    result["confidence_median_kept"] = float(kept["confidence"].median())
    return result


def measure(args) -> pd.DataFrame:
    """Run every setting on both sources; one row per setting."""
    sim = ["--preset", "paper", "--seed", str(args.seed)]
    sim += ["--cohorts", str(args.cohorts), "--frames", str(args.frames)]
    real = ["--record", args.record, "--seed", str(args.seed)]
    if args.real_frames:
        real += ["--frames", str(args.real_frames)]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, name, factor, options in settings():
        s = bench(work / f"sim_{label}", sim, options)
        r = bench(work / f"real_{label}", real, options)
        row = {"constant": name or "(defaults)", "factor": factor}
        row["value"] = " ".join(options[1:]) if options else ""
        row |= {f"sim {k}": s.get(k, float("nan")) for k in SIM_KEYS}
        row |= {f"real {k}": r[k] for k in REAL_KEYS}
        row["real confidence_median_kept"] = r["confidence_median_kept"]
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    """Return the table as Markdown, three decimals."""
    head = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "---|" * len(table.columns)
    body = [
        "| "
        + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row)
        + " |"
        for row in table.itertuples(index=False)
    ]
    return "\n".join([head, rule, *body]) + "\n"


def main(argv=None) -> int:
    """Parse the options, run the settings, write the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True, help="folder of the runs' JSON and tables")
    p.add_argument("--out", required=True, help="Markdown table")
    p.add_argument("--record", default="../shared/real/ultrabones-sample")
    p.add_argument("--seed", type=int, default=0, help="simulation/sampling seed")
    p.add_argument("--cohorts", type=int, default=3, help="simulated cohorts")
    p.add_argument("--frames", type=int, default=12, help="frames per cohort")
    p.add_argument("--real-frames", type=int, help="random real frames (default all)")
    args = p.parse_args(argv)
    Path(args.out).write_text(markdown(measure(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
