"""``ultrabones audit``: 3D audit of a label store against the CT bone surfaces."""

from __future__ import annotations

import json
import logging

from ..layout import true_calibration

log = logging.getLogger(__name__)

_STORE_VARS = ("image", "label", "pose_initial", "pose_refined")


def add_parser(sub) -> None:
    """Register the ``audit`` subcommand."""
    p = sub.add_parser(
        "audit",
        help="distance of back-projected bone echoes and labels to the CT surface",
        description="Maps the echo ridge near each label with the initial and the "
        "refined poses (and truth poses) to CT; reports one-sided Chamfer and HD95.",
    )
    p.add_argument(
        "store",
        help="label store (.zarr) of one sweep, or a record folder (public layout: "
        "its initial poses are audited, the echo searched near the CT intersection)",
    )
    p.add_argument(
        "--bones",
        "--model",
        dest="bones",
        help="folder with the bone surfaces <Bone>.stl in CT coordinates "
        "(required for a store; default for a record: its CT_models/)",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--truth", help="simulator truth folder of the sweep (holds poses.csv)"
    )
    p.add_argument(
        "--truth-calibration",
        help="true calibration.yaml (default: truth/calibration.yaml above --truth)",
    )
    p.add_argument("--window-mm", type=float, default=3.0, help="ridge search band")
    p.add_argument("--sigma-mm", type=float, default=0.2, help="ridge smoothing")
    p.add_argument(
        "--signed",
        action="store_true",
        help="signed distances (negative inside bone; needs closed meshes): adds "
        "mean_signed_mm, the systematic offset of the echo",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    """Audit a store or record; write audit.json, audit_frames.csv/.png, audit.md."""
    from pathlib import Path

    from ..audit import audit_sweep
    from ..evaluate.figures import audit_frames_figure
    from ..io.masks import is_zarr_store
    from ..io.tables import save_figure, write_json, write_rows, write_text

    load = _store_inputs if is_zarr_store(args.store) else _record_inputs
    frames, calibration, spacing = load(args)
    result = audit_sweep(
        frames,
        distance=calibration.pop("distance"),
        probe_from_image=calibration,
        spacing_mm=spacing,
        window_mm=args.window_mm,
        sigma_mm=args.sigma_mm,
    )
    result.update(
        store=str(args.store), window_mm=args.window_mm, sigma_mm=args.sigma_mm
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in result.items() if k != "per_frame"}
    write_json(out / "audit.json", summary, indent=2)
    write_rows(out / "audit_frames.csv", result["per_frame"])
    write_text(out / "audit.md", table(summary) + "\n")
    save_figure(audit_frames_figure(result["per_frame"]), out / "audit_frames.png")
    print(json.dumps(summary, indent=2) if args.json else table(summary))
    return 0


def _store_inputs(args):
    """Frames, calibrations (+ distance function) and spacing of a label store."""
    from ..audit import surface_distance_fn
    from ..errors import InputDataError
    from ..io.masks import open_label_store
    from ..transforms import matrix_from_params

    ds = open_label_store(args.store, require=(*_STORE_VARS, "status"))
    if not args.bones:
        raise InputDataError(f"{args.store}: give --bones DIR to audit a label store")
    spacing = tuple(float(s) for s in ds.attrs["pixel_spacing_mm"])
    calibration = {"initial": matrix_from_params(ds.attrs["probe_from_image"])}
    calibration["refined"] = calibration["initial"]
    frames = _frames(ds, _truth_poses(args, calibration))
    calibration["distance"] = surface_distance_fn(
        _read_bones(args.bones), signed=args.signed
    )
    return frames, calibration, spacing


def _record_inputs(args):
    """Frames (initial poses, CT-intersection band as label) of a record folder."""
    from ..audit import surface_distance_fn
    from ..errors import ConfigError
    from ..io.record import open_record

    record = open_record(args.store)
    cal = record.calibration
    bones = _read_bones(args.bones or record.root / "CT_models")
    calibration = {"initial": cal.probe_from_image}
    if args.truth:
        raise ConfigError(
            f"{args.store}: --truth needs a label store, not a record folder"
        )
    distance = surface_distance_fn(bones, signed=args.signed)
    calibration["distance"] = distance
    frames = _record_frames(record, distance)
    return frames, calibration, cal.pixel_spacing_mm


def _record_frames(record, distance, *, stride: int = 4):
    from ..audit import near_surface_mask
    from ..io.png import read_png
    from ..vocabulary import Reason

    cal = record.calibration
    tol = 0.3 + stride * max(cal.pixel_spacing_mm)
    poses = record.ct_from_probe()
    for i, row in record.poses.iterrows():
        if row["status"] != Reason.OK.value:
            continue
        near = near_surface_mask(
            cal.shape,
            ct_from_image=poses[i] @ cal.probe_from_image,
            spacing_mm=cal.pixel_spacing_mm,
            distance=distance,
            tol_mm=tol,
            stride=stride,
        )
        yield {
            "timestamp": int(row["timestamp"]),
            "image": read_png(record.image_path(row["timestamp"])),
            "label": near,
            "ct_from_probe": {"initial": poses[i]},
        }


def _read_bones(folder) -> dict:
    from pathlib import Path

    from ..errors import InputDataError
    from ..io.stl import read_stl

    paths = sorted(Path(folder).glob("*.stl"))
    if not paths:
        raise InputDataError(f"{folder}: no bone surfaces (*.stl) found")
    return {p.stem: read_stl(p) for p in paths}


def _truth_poses(args, calibration: dict) -> dict | None:
    """Read the truth poses; add the true calibration to ``calibration``."""
    from pathlib import Path

    from ..errors import InputDataError
    from ..io.calibration import read_calibration
    from ..io.masks import read_truth_poses

    if not args.truth:
        return None
    truth = Path(args.truth)
    cal_path = args.truth_calibration or _find_truth_calibration(truth)
    if cal_path is None:
        raise InputDataError(
            f"{truth}: no truth calibration.yaml above it; give --truth-calibration"
        )
    calibration["truth"] = read_calibration(cal_path).probe_from_image
    return read_truth_poses(truth / "poses.csv")


def _find_truth_calibration(truth):
    # Only the truth tree's own calibration: never an error-carrying one elsewhere.
    for folder in (truth.resolve(), *truth.resolve().parents):
        if folder.name == "truth":
            path = true_calibration(folder.parent)
            return path if path.is_file() else None
    return None


def _frames(ds, truth_poses):
    from ..io.masks import iter_store_frames
    from ..transforms import matrix_from_params

    for _, stamp, data in iter_store_frames(ds, _STORE_VARS):
        poses = {
            "initial": matrix_from_params(data["pose_initial"]),
            "refined": matrix_from_params(data["pose_refined"]),
        }
        if truth_poses is not None and stamp in truth_poses:
            poses["truth"] = truth_poses[stamp]
        elif truth_poses is not None:
            log.warning("frame %d: no truth pose; scored without truth", stamp)
        yield {
            "timestamp": stamp,
            "image": data["image"],
            "label": data["label"] != 0,
            "ct_from_probe": poses,
        }


def table(summary: dict) -> str:
    """Return the audit summary as a small Markdown table."""
    lines = [
        f"frames: {summary['frames']}",
        "",
        "| points | poses | n | CD (mm) | HD95 (mm) | mean signed (mm) |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ("echo", "labels"):
        for stage, s in summary[kind].items():
            cells = (
                "-" if s[k] is None else f"{s[k]:.3f}"
                for k in ("cd_mm", "hd95_mm", "mean_signed_mm")
            )
            lines.append(f"| {kind} | {stage} | {s['n']} | " + " | ".join(cells) + " |")
    for stage, value in summary["plane_offset_mm"].items():
        lines.append(f"\nimage-plane offset from truth, {stage}: {value:.3f} mm")
    return "\n".join(lines)
