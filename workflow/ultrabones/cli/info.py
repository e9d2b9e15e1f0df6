"""``ultrabones info RECORD``: summarise a record folder (rows, images, bones)."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    """Register the ``info`` subcommand."""
    p = sub.add_parser("info", help="summarise a record in the public layout")
    p.add_argument("record", help="record folder (UltrasoundImages/, CT_models/, ...)")
    p.set_defaults(run=run)


def run(args) -> int:
    """Print a JSON summary of the record."""
    from ..io.record import open_record

    record = open_record(args.record)
    summary = {
        "rows": int(len(record.poses)),
        "status": record.poses["status"].value_counts().sort_index().to_dict(),
        "bones": sorted(record.bone_paths),
        "image_size_px": list(record.calibration.image_size_px),
        "pixel_spacing_mm": list(record.calibration.pixel_spacing_mm),
    }
    print(json.dumps(summary, indent=2))
    return 0
