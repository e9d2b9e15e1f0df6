"""Where the refined 3D pose goes on the simulator (issue 14, item 3; issue 16, item 7).

``ultrabones bench --preset paper`` reports the label error falling and the true 3D
pose error rising. This splits each frame's correction into the image axes (x
lateral, y axial, z elevational; rotations about them) beside the true correction,
and gives the mean probe-fiducial displacement the true correction would need (the
quantity of Eq. 3's penalty and of the paper's 1 mm rule). Per seed, a paper-preset
fibula sweep is simulated and benched at each lambda of ``--lams``:

    .venv/bin/python docs/results/pose_error.py --work /tmp/pose_error \
        --seeds 1 2 --frames 16 --lams 1 3 10 [--bench-args --bone-weight 0]

Prints a Markdown table per seed (one row per lambda: medians) and the per-frame
corrections of the default lambda, then over all seeds the median absolute error of
the tracked and refined corrections along each image axis.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ultrabones.engine.geometry import fiducial_displacement_mm
from ultrabones.io.calibration import read_calibration
from ultrabones.io.record import open_record, read_poses_table
from ultrabones.simulate.cohort import simulate_sweep
from ultrabones.simulate.presets import PRESETS
from ultrabones.transforms import (
    POSE_COLUMNS,
    invert_rigid,
    matrix_from_params,
    params_from_matrix,
)

AXES = ["x", "y", "z", "rx", "ry", "rz"]
KEYS = [
    "pose_error_mm_median_initial",
    "pose_error_mm_median_refined",
    "label_error_mm_median_initial",
    "label_error_mm_median_refined",
    "worse_fraction",
    "bound_hit_fraction",
    "discarded_fraction",
]


def _sweep(work: Path, seed: int, frames: int) -> Path:
    """Simulate (once) the first fibula sweep of the paper preset; return its record."""
    preset = PRESETS["paper"]
    sweep = next(w for w in preset.sweeps if w.startswith("fibula"))
    out = work / f"seed{seed}"
    record = out / "specimens" / preset.specimens[0] / "sweeps" / sweep
    if not (record / "sweep_initial.csv").is_file():
        out.mkdir(parents=True, exist_ok=True)
        simulate_sweep(
            out,
            preset=preset,
            seed=seed,
            specimen=preset.specimens[0],
            sweep=sweep,
            frames=frames,
        )
    return record


def _bench(record: Path, lam: float, table: Path, extra: list) -> dict:
    cli = str(Path(sys.executable).with_name("ultrabones"))  # the venv's command
    cmd = [cli, "bench", "--record", str(record), "--lam", str(lam)]
    cmd += ["--table", str(table), "--json", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def corrections(record: Path, table: pd.DataFrame) -> pd.DataFrame:
    """Return each frame's true and refined correction in the initial image frame."""
    root = record.parents[3]
    truth = read_poses_table(root / "truth" / record.relative_to(root) / "poses.csv")
    true_cal = read_calibration(root / "truth" / "calibration.yaml")
    cal = open_record(record).calibration
    placed = dict(
        zip(
            truth["timestamp"].astype(int),
            matrix_from_params(truth[list(POSE_COLUMNS)].to_numpy(float))
            @ true_cal.probe_from_image,
            strict=True,
        )
    )
    rows = []
    for _, r in table[table["status"] == "kept"].iterrows():
        initial = r[list(POSE_COLUMNS)].to_numpy(float)
        refined = r[[f"{c}_refined" for c in POSE_COLUMNS]].to_numpy(float)
        image0_from_ct = invert_rigid(matrix_from_params(initial) @ cal.probe_from_image)
        true = params_from_matrix(image0_from_ct @ placed[int(r["timestamp"])])
        est = params_from_matrix(
            image0_from_ct @ matrix_from_params(refined) @ cal.probe_from_image
        )
        probe_true = params_from_matrix(
            placed[int(r["timestamp"])] @ invert_rigid(cal.probe_from_image)
        )
        need = fiducial_displacement_mm(
            initial, probe_true - initial, cal.probe_marker_fiducials_mm
        )
        rows.append(
            {"timestamp": int(r["timestamp"]), "true_fiducial_mm": float(need)}
            | {f"true_{a}": v for a, v in zip(AXES, true, strict=True)}
            | {f"refined_{a}": v for a, v in zip(AXES, est, strict=True)}
        )
    return pd.DataFrame(rows)


def axis_errors(per_frame: pd.DataFrame) -> pd.DataFrame:
    """Median |true| (tracked) and |refined - true| correction per image axis."""
    rows = []
    for stage in ("tracked", "refined"):
        row = {"stage": stage}
        for a in AXES:
            err = per_frame[f"true_{a}"]
            if stage == "refined":
                err = per_frame[f"refined_{a}"] - err
            row[a] = float(err.abs().median())
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    """Run the study and print its tables."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--lams", type=float, nargs="+", default=[1.0, 3.0, 10.0])
    p.add_argument("--default-lam", type=float, default=3.0)
    p.add_argument(
        "--bench-args", nargs=argparse.REMAINDER, default=[], help="more bench options"
    )
    args = p.parse_args(argv)
    errors = []
    for seed in args.seeds:
        record = _sweep(args.work, seed, args.frames)
        rows = []
        for lam in args.lams:
            table_path = args.work / f"seed{seed}_lam{lam:g}.csv"
            summary = _bench(record, lam, table_path, args.bench_args)
            rows.append({"lam": lam} | {k: summary[k] for k in KEYS})
            if lam == args.default_lam:
                per_frame = corrections(record, pd.read_csv(table_path))
        print(f"\n### seed {seed}\n")
        print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"))
        print("\nkept frames at the default lambda, medians:\n")
        print(per_frame.drop(columns="timestamp").median().to_frame().T.to_markdown(
            index=False, floatfmt=".2f"))
        errors.append(per_frame.assign(seed=seed))
    print("\nall seeds, median absolute error per image axis, tracked and refined:\n")
    print(axis_errors(pd.concat(errors)).to_markdown(index=False, floatfmt=".3f"))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
