"""Compare bench tables of several objectives frame by frame (docs/results/engine_v3.md).

Usage: python compare_objectives.py RECORD TABLE.csv [TABLE.csv ...]

For each frame in every table: each objective's fiducial correction (mm), and the mean
distance (mm and px) over a 16 x 16 image grid between each pair of refined poses.
"""

import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from ultrabones.io.record import open_record
from ultrabones.studies.bench import image_grid_rc
from ultrabones.transforms import (
    POSE_COLUMNS,
    apply_rigid,
    matrix_from_params,
    points_image_from_rc,
)


def main(record: str, tables: list[str]) -> None:
    """Print the per-frame comparison and the pairwise medians."""
    cal = open_record(record).calibration
    grid = points_image_from_rc(image_grid_rc(cal.shape), cal.pixel_spacing_mm)
    names = [Path(t).stem.rsplit("_", 1)[-1] for t in tables]
    frames = [pd.read_csv(t).set_index("timestamp") for t in tables]
    stamps = sorted(set.intersection(*(set(f.index) for f in frames)))
    refined = [f"{c}_refined" for c in POSE_COLUMNS]
    rows = []
    for s in stamps:
        placed = {
            n: matrix_from_params(f.loc[s, refined].to_numpy(float))
            @ cal.probe_from_image
            for n, f in zip(names, frames, strict=True)
        }
        row = {"timestamp": s}
        row |= {
            f"corr_{n}": f.loc[s, "fiducial_correction_mm"]
            for n, f in zip(names, frames, strict=True)
        }
        for a, b in combinations(names, 2):
            d = np.linalg.norm(
                apply_rigid(placed[a], grid) - apply_rigid(placed[b], grid), axis=1
            )
            row[f"{a}_vs_{b}_px"] = d.mean() / cal.pixel_spacing_mm[0]
        rows.append(row)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format="%.3f"))
    print(table.drop(columns="timestamp").median().to_string(float_format="%.3f"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
