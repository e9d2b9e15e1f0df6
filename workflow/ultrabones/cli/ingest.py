"""``ultrabones ingest RECORD``: a real record in the poses-folder form."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    """Register the ``ingest`` subcommand."""
    p = sub.add_parser(
        "ingest",
        help="turn a real record (public layout) into a poses folder",
        description="Rows without an image file are reported and marked no_image.",
    )
    p.add_argument("record", help="record folder (UltrasoundImages/, CT_models/, ...)")
    p.add_argument("--out", required=True, help="output record folder")
    p.set_defaults(run=run)


def run(args) -> int:
    """Read the record, mark its rows and write the folder."""
    from ..io.record import (
        CALIBRATION_FILE,
        IMAGES_DIR,
        MODELS_DIR,
        open_record,
        write_record_folder,
    )
    from ..vocabulary import Reason

    root = Path(args.record)
    record = open_record(root)
    write_record_folder(
        args.out,
        record.poses,
        calibration=root / CALIBRATION_FILE,
        images=root / IMAGES_DIR,
        models=root / MODELS_DIR,
    )
    table = record.poses
    missing = table.loc[table["status"] == Reason.NO_IMAGE.value, "timestamp"]
    counts = table["status"].value_counts().sort_index().to_dict()
    print(f"{len(table)} rows: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if len(missing):
        shown = ", ".join(map(str, missing.to_numpy()[:10]))
        print(f"{len(missing)} row(s) without image (first stamps: {shown})")
    return 0
