"""``ultrabones calibrate RECORDING``: probe calibration T_US<-I and lag (Z-phantom)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..layout import cohort_of, true_calibration
from .options import given, output_path


def add_parser(sub) -> None:
    """Register the ``calibrate`` subcommand."""
    p = sub.add_parser(
        "calibrate",
        help="spatio-temporal probe calibration from a Z-phantom recording",
        description="Grid search of the lag dt on [-300, 0) ms (0.1 ms) with a "
        "least-squares T_US<-I per lag; see docs/calibration.md.",
    )
    p.add_argument("recording", help="<cohort>/calibration/<recording> folder")
    p.add_argument("--out", help="folder for calibration.yaml and error_curve.*")
    p.add_argument(
        "--calibration", help="calibration YAML (default: OUT/calibration.yaml)"
    )
    p.add_argument(
        "--error-curve",
        help="error curve PNG, its table beside it as .csv "
        "(default: OUT/error_curve.png)",
    )
    p.add_argument(
        "--max-gap-ms",
        type=float,
        help="frames whose lag window meets a longer tracker dropout are left out "
        "(ms; default: calibrate.DEFAULT_MAX_GAP_MS)",
    )
    p.add_argument(
        "--refine-window-ms",
        type=float,
        default=0.0,
        help="pick the grid lag nearest the vertex of a parabola fitted to the "
        "squared residual within this window around the minimum (ms); default 0: "
        "the grid lag of least localisation error (paper)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    """Calibrate, write calibration.yaml and the error curve, print the summary."""
    from ..calibrate import calibrate_recording
    from ..calibrate.figures import write_error_curve
    from ..io.phantom import read_phantom_recording
    from ..io.png import read_png

    calibration = output_path(args, "calibration", "calibration.yaml")
    curve_path = output_path(args, "error_curve", "error_curve.png")
    recording = read_phantom_recording(args.recording)
    images = ((t, read_png(p)) for t, p in recording.image_paths.items())
    start = time.perf_counter()
    result = calibrate_recording(
        recording,
        images,
        **given(args, "max_gap_ms"),
        refine_window_ms=args.refine_window_ms,
    )
    seconds = time.perf_counter() - start
    calibration.parent.mkdir(parents=True, exist_ok=True)
    _write_calibration(calibration, recording, result)
    curve = result.curve
    write_error_curve(
        curve_path.with_suffix(""),
        curve.dt_ms,
        {
            "localization_error_mm": curve.localization_error_mm,
            "residual_mm": curve.residual_mm,
        },
        best_dt_ms=result.dt_ms,
    )
    summary = _summary(result, seconds, Path(args.recording))
    print(json.dumps(summary, indent=2) if args.json else _text(summary))
    return 0


def _write_calibration(path, recording, result) -> None:
    from ..io.calibration import Calibration, write_calibration

    extra = {
        "dt_ms": result.dt_ms,
        "localization_error_mm": result.localization_error_mm,
        "residual_mm": result.residual_mm,
    }
    calibration = Calibration(
        result.probe_from_image,
        recording.device.pixel_spacing_mm,
        recording.device.image_size_px,
        recording.probe_marker_fiducials_mm,
        extra,
    )
    write_calibration(
        path, calibration, comment=f"ultrabones calibrate {recording.root}"
    )


def _summary(result, seconds: float, recording: Path) -> dict:
    curve = result.curve
    summary = {
        "dt_ms": round(result.dt_ms, 3),
        "grid_minimum_dt_ms": round(float(curve.dt_ms[curve.best]), 3),
        "localization_error_mm": round(result.localization_error_mm, 4),
        "residual_mm": round(result.residual_mm, 4),
        "frames": result.n_frames,
        "points": result.n_points,
        "candidates": int(result.curve.dt_ms.size),
        "grid_seconds": round(result.grid_seconds, 2),
        "seconds": round(seconds, 2),
    }
    cohort = cohort_of(recording, "recording")
    truth = true_calibration(cohort) if cohort else None
    if truth and truth.is_file():
        summary.update(_truth_errors(result, truth))
    return summary


def _truth_errors(result, truth_path) -> dict:
    import numpy as np

    from ..io.calibration import read_calibration
    from ..transforms import invert_rigid, rotation_angle_deg

    truth = read_calibration(truth_path)
    delta = invert_rigid(truth.probe_from_image) @ result.probe_from_image
    return {
        "dt_error_ms": round(result.dt_ms - truth.dt_ms, 3),
        "rotation_error_deg": round(float(rotation_angle_deg(delta)), 4),
        "translation_error_mm": round(float(np.linalg.norm(delta[:3, 3])), 4),
    }


def _text(summary: dict) -> str:
    return "\n".join(f"{k}: {v}" for k, v in summary.items())
