"""``ultrabones poses SWEEP_DIR``: per-frame T_CT<-US as a public-layout record."""

from __future__ import annotations

import json
from pathlib import Path

from ..layout import truth_of
from .options import given


def add_parser(sub) -> None:
    """Register the ``poses`` subcommand."""
    p = sub.add_parser(
        "poses",
        help="compose per-frame probe poses in CT from tracker.csv",
        description="Frames are the sweep's UltrasoundImages/<timestamp>.png (image "
        "clock); poses are interpolated at timestamp + dt_ms of the calibration.",
    )
    p.add_argument("sweep_dir", help="<cohort>/specimens/<S>/sweeps/<W> folder")
    p.add_argument("--calibration", required=True, help="calibration.yaml (with dt_ms)")
    p.add_argument("--registration", required=True, help="JSON with ct_from_specimen")
    p.add_argument("--out", required=True, help="output record folder")
    p.add_argument(
        "--models",
        help="bone models folder linked as the record's CT_models (default: the "
        "sweep's CT_models; a lab's sweep folder may lack that link)",
    )
    p.add_argument(
        "--max-gap-ms",
        type=float,
        help="longest tracker dropout interpolated across "
        "(ms; default: poses.DEFAULT_MAX_GAP_MS)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    """Compose poses and write the record folder."""
    from ..io.calibration import read_calibration
    from ..io.record import read_frame_stamps, write_record_folder
    from ..io.registration import read_registration
    from ..io.tracker import marker_stream, read_tracker_stream
    from ..poses import ct_from_probe_frames, poses_table

    sweep = Path(args.sweep_dir)
    calibration = read_calibration(args.calibration)
    ct_from_specimen = read_registration(args.registration)
    streams = read_tracker_stream(sweep / "tracker.csv")
    stamps = read_frame_stamps(sweep / "UltrasoundImages")
    pose, status = ct_from_probe_frames(
        stamps,
        probe=marker_stream(streams, "probe", sweep / "tracker.csv"),
        specimen=marker_stream(streams, "specimen", sweep / "tracker.csv"),
        ct_from_specimen=ct_from_specimen,
        dt_ms=calibration.dt_ms,
        **given(args, "max_gap_ms"),
    )
    table = poses_table(
        stamps, pose, status, space_factor=calibration.pixel_spacing_mm[0]
    )
    write_record_folder(
        args.out,
        table,
        calibration=args.calibration,
        images=sweep / "UltrasoundImages",
        models=args.models or sweep / "CT_models",
    )
    summary = {
        "frames": len(table),
        "status": table["status"].value_counts().sort_index().to_dict(),
    }
    # A simulated sweep has its truth beside it (ultrabones.layout).
    truth = _truth_poses(sweep)
    if truth is not None:
        summary.update(_truth_errors(table, truth, calibration))
    print(json.dumps(summary, indent=2) if args.json else _text(summary))
    return 0


def _truth_poses(sweep: Path) -> Path | None:
    truth = truth_of(sweep.resolve(), "sweep")
    path = truth / "poses.csv" if truth else None
    return path if path and path.is_file() else None


def _truth_errors(table, truth_csv, calibration) -> dict:
    """Image-corner errors of the tracked frames against the simulator's truth."""
    import numpy as np

    from ..io.record import read_poses_table
    from ..poses import image_corner_errors
    from ..transforms import POSE_COLUMNS, matrix_from_params

    true = read_poses_table(truth_csv)
    both = table.merge(true, on="timestamp", suffixes=("", "_true"))
    both = both[both["status"] == "ok"]
    if both.empty:
        return {"image_error_mm": None}
    error = image_corner_errors(
        matrix_from_params(both[list(POSE_COLUMNS)].to_numpy(float)),
        matrix_from_params(both[[f"{c}_true" for c in POSE_COLUMNS]].to_numpy(float)),
        probe_from_image=calibration.probe_from_image,
        size_mm=np.multiply(calibration.image_size_px, calibration.pixel_spacing_mm),
    )
    return {
        "image_error_mean_mm": round(float(error.mean()), 4),
        "image_error_max_mm": round(float(error.max()), 4),
    }


def _text(summary: dict) -> str:
    return "\n".join(f"{k}: {v}" for k, v in summary.items())
