"""``ultrabones export-published STORE ... --out DIR``: the authors' published layout.

``specimenNN/CT_bone_segmentations/<bone>.stl`` and
``specimenNN/ultrasound_records/<anatomy>/<sweep>/`` with ``UltrasoundImages/``,
``Labels/``, ``tracking.csv`` and ``calibration.yaml`` (kept frames only).
"""

from __future__ import annotations


def add_parser(sub) -> None:
    """Register the ``export-published`` subcommand."""
    p = sub.add_parser(
        "export-published",
        help="write the kept frames in the authors' published layout",
    )
    p.add_argument("stores", nargs="+", help="label stores (.zarr)")
    p.add_argument(
        "--records", nargs="+", required=True, help="each store's poses record folder"
    )
    p.add_argument(
        "--bones", nargs="+", required=True, help="SPECIMEN=DIR of bone models (*.stl)"
    )
    p.add_argument("--out", required=True, help="layout root folder")
    p.set_defaults(run=run)


def run(args) -> int:
    """Copy the bone models, then write each store's record."""
    from pathlib import Path

    from ..errors import ConfigError
    from ..io.published import BONES_DIR
    from ..io.release import copy_bones
    from ..release import published_folders

    if len(args.records) != len(args.stores):
        raise ConfigError(
            f"--records: one per store ({len(args.stores)}), got {len(args.records)}"
        )
    bones = dict(b.split("=", 1) for b in args.bones)
    folders = published_folders(bones)
    out = Path(args.out)
    for specimen, folder in folders.items():
        copy_bones(bones[specimen], out / folder / BONES_DIR)
    for store, record in zip(args.stores, args.records, strict=True):
        _write_record(store, Path(record), out, folders)
    return 0


def _write_record(store, record, out, folders: dict) -> None:
    from ..errors import InputDataError
    from ..io.published import PUBLISHED_EULER, RECORDS_DIR
    from ..io.release import write_published_record
    from ..io.store import open_store
    from ..release import anatomy_of, kept_mask, tracking_table
    from ..store import validate_store

    ds = open_store(store)
    validate_store(ds)
    specimen, sweep = str(ds["specimen"].values), str(ds["sweep"].values)
    if specimen not in folders:
        raise InputDataError(f"{store}: no --bones given for specimen {specimen}")
    kept = ds.isel(frame=kept_mask(ds))
    write_published_record(
        out / folders[specimen] / RECORDS_DIR / anatomy_of(sweep) / sweep,
        tracking_table(ds, euler=PUBLISHED_EULER),
        (kept["image"].values, kept["label"].values),
        calibration=record / "calibration.yaml",
    )
