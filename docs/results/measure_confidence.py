"""Measure the confidence features against truth on simulated sweeps (or a record).

Writes one row per frame: the features of ``engine.confidence``, the engine's reason
(with ``min_confidence`` 0, so every frame the other rules keep is kept), the
neighbour feature over the sweep, and, on the simulator, the true errors. Failures
are injected in a seeded share of frames: a wrong start pose (a 2-4 mm / 1.5-3 deg
offset, beyond the 1 mm / 1 deg search box) or a bone model without the sweep's
bone.

    .venv/bin/python docs/results/measure_confidence.py --preset paper --seeds 0 1 \
        --frames 24 --inject 0.3 --out /tmp/conf.csv
    .venv/bin/python docs/results/measure_confidence.py \
        --record /work/shared/real/ultrabones-sample --frames 60 --out /tmp/real.csv
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ultrabones.engine import EngineParams, prepare_specimen, process_frame
from ultrabones.engine.confidence import (
    FEATURES,
    frame_features,
    neighbour_distance_mm,
)
from ultrabones.errors import InputDataError
from ultrabones.io.png import read_png
from ultrabones.io.record import open_record
from ultrabones.io.stl import read_stl
from ultrabones.studies.bench import pose_errors, true_placement, truth_dir, truth_row
from ultrabones.sweep.local import kernel_of, record_tasks, warm_start
from ultrabones.transforms import matrix_from_params, params_from_matrix


def _offset(rng) -> np.ndarray:
    """A wrong start: 2-4 mm and 1.5-3 deg in random directions."""
    t = rng.normal(size=3)
    r = rng.normal(size=3)
    t *= rng.uniform(2, 4) / np.linalg.norm(t)
    r *= rng.uniform(1.5, 3) / np.linalg.norm(r)
    return np.r_[t, r]


def _frames(record, rows):
    """Yield ``(timestamp, image, ct_from_probe)`` of the record rows ``rows``."""
    T = record.ct_from_probe()
    for i in rows:
        stamp = int(record.poses["timestamp"].iat[i])
        try:
            image = read_png(record.image_path(stamp))
        except InputDataError:
            image = None
        yield stamp, image, T[i]


def measure(root, *, seed, frames, inject, sweep_bone) -> pd.DataFrame:
    record = open_record(root)
    truth = truth_dir(root)
    params = EngineParams(min_confidence=0.0)
    bones = {k: read_stl(p) for k, p in record.bone_paths.items()}
    model = prepare_specimen(bones, params=params)
    others = {k: v for k, v in bones.items() if k.lower() != sweep_bone}
    missing = prepare_specimen(others, params=params) if inject and others else None
    rng = np.random.default_rng(seed)
    with_image = np.flatnonzero(record.poses["image"].to_numpy() != "")
    rows = with_image
    if frames and frames < with_image.size:
        start = rng.integers(0, with_image.size - frames + 1)
        rows = with_image[start : start + frames]  # consecutive: a sweep's stretch
    prior, _ = warm_start(
        record_tasks(record, params), kernel_of(record.calibration, model, params)
    )
    placement = true_placement(truth) if truth is not None else {}
    cal = record.calibration
    out = []
    for stamp, image, ct_from_probe in _frames(record, rows):
        kind = "none"
        u = rng.uniform()
        if u < inject * 0.75:
            kind = "offset"
            pose = params_from_matrix(ct_from_probe) + _offset(rng)
            ct_from_probe = matrix_from_params(pose)
        elif u < inject and missing is not None:
            kind = "missing_bone"
        use = missing if kind == "missing_bone" else model
        res = process_frame(
            image,
            ct_from_probe,
            model=use,
            calibration=cal,
            params=params,
            seed=int(stamp),
            prior=prior,
        )
        row = {"seed": seed, "timestamp": stamp, "inject": kind, "reason": res.reason}
        row["correction_mm"] = res.fiducial_correction_mm
        row["confidence_frame"] = res.confidence
        row["refined"] = bool(np.isfinite(res.confidence))
        for i in range(6):
            row[f"p{i}"] = res.pose_initial[i]
            row[f"r{i}"] = res.pose_refined[i]
        if res.kept:
            bound = bool(res.confidence_features[FEATURES.index("at_bound")])
            row |= frame_features(
                res, res.masks, bound, model=use, calibration=cal, params=params
            )
            if truth is not None:
                full = read_png(truth / "label_full" / f"{stamp}.png") > 0
                visible = read_png(truth / "label_visible" / f"{stamp}.png") > 0
                row |= truth_row(res, full, visible, spacing_mm=cal.pixel_spacing_mm)
                row |= pose_errors(
                    res,
                    placement[stamp].ct_from_image,
                    calibration=cal,
                    label_rc=np.argwhere(full),
                    depth_scale=placement[stamp].depth_scale,
                )
        out.append(row)
    table = pd.DataFrame(out)
    initial = table[[f"p{i}" for i in range(6)]].to_numpy()
    refined = table[[f"r{i}" for i in range(6)]].to_numpy()
    table["neighbour_mm"] = neighbour_distance_mm(
        initial,
        refined,
        table["refined"].to_numpy(),
        fiducials=cal.probe_marker_fiducials_mm,
    )
    return table


def main() -> None:
    p = argparse.ArgumentParser()
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset")
    src.add_argument("--record")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--inject", type=float, default=0.0)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    tables = []
    for seed in args.seeds:
        if args.record:
            tables.append(
                measure(
                    args.record,
                    seed=seed,
                    frames=args.frames,
                    inject=args.inject,
                    sweep_bone="fibula",
                )
            )
            continue
        from ultrabones.simulate.cohort import simulate_sweep
        from ultrabones.simulate.presets import get_preset

        preset = get_preset(args.preset)
        specimen = preset.specimens[0]
        sweep = next(w for w in preset.sweeps if w.startswith("fibula"))
        with tempfile.TemporaryDirectory(prefix="conf-") as tmp:
            root = simulate_sweep(
                Path(tmp),
                preset=preset,
                seed=seed,
                specimen=specimen,
                sweep=sweep,
                frames=args.frames,
            )
            tables.append(
                measure(
                    root,
                    seed=seed,
                    frames=0,
                    inject=args.inject,
                    sweep_bone="fibula",
                )
            )
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(args.out, index=False)
    kept = table[table["reason"] == "ok"]
    print(kept[["inject", *FEATURES[:-1], "neighbour_mm"]].describe().to_string())


if __name__ == "__main__":
    main()
