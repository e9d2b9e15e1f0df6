"""``ultrabones export-public STORE --out DIR``: the public loader layout."""

from __future__ import annotations


def add_parser(sub) -> None:
    """Register the ``export-public`` subcommand."""
    p = sub.add_parser(
        "export-public", help="write a store's kept frames in the public loader layout"
    )
    p.add_argument("store", help="label store (.zarr)")
    p.add_argument("--out", required=True, help="record folder to write")
    p.set_defaults(run=run)


def run(args) -> int:
    """Write images, 0/255 labels and sweepProcessedAndOptimized.csv (kept frames)."""
    from ..io.release import write_public_record
    from ..io.store import open_store
    from ..release import kept_mask, public_table
    from ..store import validate_store

    ds = open_store(args.store)
    validate_store(ds)
    kept = kept_mask(ds)
    table = public_table(ds)
    images = ds["image"].values[kept]
    labels = ds["label"].values[kept]
    write_public_record(args.out, table, images, labels)
    return 0
