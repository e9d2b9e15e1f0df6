"""``ultrabones release STORE ...``: stores, splits, reject statistics, dataset card."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    """Register the ``release`` subcommand."""
    p = sub.add_parser("release", help="assemble the release from the label stores")
    p.add_argument("stores", nargs="+", help="label stores (<specimen>/<sweep>.zarr)")
    p.add_argument("--out", required=True, help="release folder")
    p.add_argument("--split-mode", choices=("counts", "proportions"), required=True)
    p.add_argument("--train", type=float, required=True, help="count or weight")
    p.add_argument("--val", type=float, required=True, help="count or weight")
    p.add_argument("--test", type=float, required=True, help="count or weight")
    p.add_argument("--seed", type=int, default=0, help="split shuffle seed")
    p.add_argument("--config-hash", default="", help="workflow config hash")
    p.set_defaults(run=run)


def run(args) -> int:
    """Copy the stores and write splits.csv, reject_statistics.csv and README.md."""
    from pathlib import Path

    from ..io.release import copy_tree, write_table, write_text
    from ..io.store import open_store
    from ..release import (
        dataset_card,
        reject_statistics,
        split_specimens,
        sweep_statistics,
    )
    from ..store import validate_store

    datasets = [open_store(p) for p in args.stores]
    for ds in datasets:
        validate_store(ds)
    stats = reject_statistics(sweep_statistics(ds) for ds in datasets)
    sizes = {"train": args.train, "val": args.val, "test": args.test}
    splits = split_specimens(
        stats["specimen"].unique(), mode=args.split_mode, sizes=sizes, seed=args.seed
    )
    out = Path(args.out)
    for path, ds in zip(args.stores, datasets, strict=True):
        name = f"{ds['specimen'].values}/{ds['sweep'].values}.zarr"
        copy_tree(path, out / "labels" / name)
    write_table(out / "splits.csv", splits)
    write_table(out / "reject_statistics.csv", stats)
    write_text(
        out / "README.md",
        dataset_card(stats, splits, attrs=_card_attrs(datasets[0].attrs, args)),
    )
    log.info("release: %d sweeps, %d kept frames", len(stats), stats["kept"].sum())
    return 0


def _card_attrs(attrs: dict, args) -> dict:
    keys = (
        "ultrabones_version",
        "git_sha",
        "gamma_mm",
        "engine_params",
        "seed",
        "pixel_spacing_mm",
    )
    out = {k: attrs[k] for k in keys if k in attrs}
    out["config_hash"] = args.config_hash
    out["splits"] = f"{args.split_mode} {args.train:g}/{args.val:g}/{args.test:g}"
    return out
