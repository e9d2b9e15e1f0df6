"""``ultrabones import-sequence FILE``: a PLUS / 3D Slicer sequence as a sweep folder.

Writes the raw layout's ``tracker.csv`` (markers ``probe`` and ``specimen``) and
``UltrasoundImages/<timestamp>.png``; with ``--calibration`` also ``calibration.yaml``
and ``sweep_initial.csv``, so the folder is a record the label engine reads.
"""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    """Register the ``import-sequence`` subcommand."""
    p = sub.add_parser(
        "import-sequence",
        help="turn a PLUS/Slicer sequence file (.mha, .mhd, .nrrd) into a sweep folder",
        description="Frames are flipped from the file's UltrasoundImageOrientation "
        "to ours (PLUS MF); timestamps become integer ms. A frame whose probe or "
        "reference transform is INVALID gets status invalid_pose.",
    )
    p.add_argument("file", help="sequence file (.igs.mha, .seq.mha, .mhd, .seq.nrrd)")
    p.add_argument("--probe", required=True, help="PLUS name, e.g. ProbeToTracker")
    p.add_argument(
        "--reference", required=True, help="PLUS name, e.g. ReferenceToTracker"
    )
    p.add_argument("--out", required=True, help="sweep folder to write")
    p.add_argument(
        "--calibration",
        help="ImageToProbe: a PLUS device-set XML or our calibration.yaml; "
        "with it the folder is also a record (sweep_initial.csv)",
    )
    p.add_argument(
        "--probe-marker",
        help="probe marker geometry (.ini); needed with a PLUS XML calibration",
    )
    p.add_argument(
        "--registration",
        help="JSON with ct_from_specimen (ultrabones register); without it the "
        "record's CT frame is the reference marker's frame",
    )
    p.add_argument("--models", help="bone models folder, linked as CT_models")
    p.set_defaults(run=run)


def run(args) -> int:
    """Read the sequence, write streams, frames and (with a calibration) the record."""
    from ..io.sequence import read_sequence, sequence_streams, write_sequence_frames
    from ..io.tracker import write_tracker_stream

    probe, reference = (_plus_name(n) for n in (args.probe, args.reference))
    sequence = read_sequence(args.file, transforms=(probe, reference))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    streams = sequence_streams(sequence, probe=probe, reference=reference)
    write_tracker_stream(out / "tracker.csv", streams)
    names = write_sequence_frames(out / "UltrasoundImages", sequence)
    print(
        f"{len(names)} frames ({sequence.orientation} -> MF), "
        f"{sum(map(bool, names))} images written to {out}"
    )
    if args.calibration:
        _write_record(args, sequence, names, probe=probe, reference=reference)
    return 0


def _plus_name(name: str) -> str:
    """Accept ``ProbeToTracker`` and ``ProbeToTrackerTransform`` alike."""
    return name[: -len("Transform")] if name.endswith("Transform") else name


def _write_record(args, sequence, names, *, probe: str, reference: str) -> None:
    import numpy as np

    from ..io.calibration import write_calibration
    from ..io.record import (
        CALIBRATION_FILE,
        MODELS_DIR,
        POSES_FILE,
        link_record_folder,
        write_poses_table,
    )
    from ..io.registration import read_registration
    from ..io.sequence import sequence_poses
    from ..poses import poses_table

    calibration = _calibration(args, sequence)
    ct_from_reference = (
        read_registration(args.registration) if args.registration else np.eye(4)
    )
    pose, status = sequence_poses(
        sequence, probe=probe, reference=reference, ct_from_reference=ct_from_reference
    )
    table = poses_table(
        sequence.timestamps_ms,
        pose,
        status,
        space_factor=calibration.pixel_spacing_mm[0],
    )
    table["image"] = names
    out = Path(args.out)
    write_poses_table(out / POSES_FILE, table)
    write_calibration(
        out / CALIBRATION_FILE, calibration, comment=f"from {args.calibration}"
    )
    if args.models:
        link_record_folder(out, MODELS_DIR, args.models)
    counts = table["status"].value_counts().sort_index().to_dict()
    print("record: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def _calibration(args, sequence):
    """Read our calibration.yaml or a PLUS XML; check it fits the frames."""
    from ..errors import InputDataError
    from ..io.calibration import read_calibration
    from ..io.markers import read_marker_ini
    from ..io.sequence import read_plus_calibration

    rows, cols = sequence.images.shape[1:]
    if Path(args.calibration).suffix.lower() == ".xml":
        if not args.probe_marker:
            raise InputDataError(
                f"{args.calibration}: a PLUS configuration holds no probe marker "
                "fiducials; give --probe-marker"
            )
        return read_plus_calibration(
            args.calibration,
            image_size_px=(cols, rows),
            probe_marker_fiducials_mm=read_marker_ini(args.probe_marker)[1],
        )
    calibration = read_calibration(args.calibration)
    if calibration.shape != (rows, cols):
        raise InputDataError(
            f"{args.calibration}: image_size_px {list(calibration.image_size_px)} "
            f"differs from the frames of {args.file} ({cols} x {rows})"
        )
    return calibration
