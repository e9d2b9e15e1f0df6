"""``ultrabones export-nnunet STORE ... --splits CSV --out DIR``: nnU-Net v2 dataset."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    """Register the ``export-nnunet`` subcommand."""
    p = sub.add_parser(
        "export-nnunet", help="write the kept frames as an nnU-Net v2 raw dataset"
    )
    p.add_argument("stores", nargs="+", help="label stores (.zarr)")
    p.add_argument("--splits", required=True, help="the release's splits.csv")
    p.add_argument("--dataset-id", type=int, required=True, help="nnU-Net ID 1-999")
    p.add_argument("--name", required=True, help="dataset name (folder suffix)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    p.add_argument("--out", required=True, help="folder to hold Dataset<ID>_<name>")
    p.set_defaults(run=run)


def run(args) -> int:
    """Write imagesTr, labelsTr, imagesTs, dataset.json and splits_final.json."""
    from pathlib import Path

    import pandas as pd

    from ..errors import ConfigError
    from ..io.tables import read_table, write_json
    from ..release import grouped_folds, nnunet_dataset_json

    if not 1 <= args.dataset_id <= 999:
        raise ConfigError(f"--dataset-id must be in 1-999, got {args.dataset_id}")
    split_of = dict(read_table(args.splits)[["specimen", "split"]].to_numpy())
    folder = Path(args.out) / f"Dataset{args.dataset_id:03d}_{args.name}"
    rows = [
        row for store in args.stores for row in _write_store(store, split_of, folder)
    ]
    train = pd.DataFrame(rows, columns=["case", "specimen", "sweep"])
    try:
        folds, grouping = grouped_folds(train, n_folds=args.folds)
    except ValueError as err:
        raise ConfigError(f"{args.splits}: no nnU-Net folds: {err}") from err
    write_json(
        folder / "dataset.json", nnunet_dataset_json(len(train), fold_groups=grouping)
    )
    write_json(folder / "splits_final.json", folds)
    log.info(
        "%s: %d training cases, %d folds by %s",
        folder,
        len(train),
        len(folds),
        grouping,
    )
    return 0


def _write_store(store, split_of: dict, folder) -> list[tuple[str, str, str]]:
    """Write a store's kept frames; return the (case, specimen, sweep) of train/val."""
    from ..errors import InputDataError
    from ..io.release import write_nnunet_case
    from ..io.store import open_store
    from ..release import case_ids, kept_mask
    from ..store import validate_store

    ds = open_store(store)
    validate_store(ds)
    specimen, sweep = str(ds["specimen"].values), str(ds["sweep"].values)
    if specimen not in split_of:
        raise InputDataError(f"{store}: specimen {specimen} is not in the splits")
    test = split_of[specimen] == "test"
    kept = ds.isel(frame=kept_mask(ds))
    cases = case_ids(ds)
    for case, image, label in zip(
        cases, kept["image"].values, kept["label"].values, strict=True
    ):
        write_nnunet_case(folder, case, image, None if test else label)
    return [] if test else [(c, specimen, sweep) for c in cases]
