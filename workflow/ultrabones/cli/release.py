"""``ultrabones release STORE ...``: stores, splits, statistics, card and metadata."""

from __future__ import annotations

import logging

from ..layout import RELEASE_FILES, release_paths
from .options import output_folder

log = logging.getLogger(__name__)

#: Why the release's file names are fixed (the error of a path off them).
_WHY = (
    "the release's files keep their names in one folder: croissant.json names its "
    "tables relative to it"
)


def add_parser(sub) -> None:
    """Register the ``release`` subcommand."""
    p = sub.add_parser("release", help="assemble the release from the label stores")
    p.add_argument("stores", nargs="+", help="label stores (<specimen>/<sweep>.zarr)")
    p.add_argument("--out", help="release folder (or give each of its paths below)")
    for option, name in RELEASE_FILES.items():
        p.add_argument(f"--{option}", help=f"its {name} (default: OUT/{name})")
    p.add_argument("--split-mode", choices=("counts", "proportions"), required=True)
    p.add_argument("--train", type=float, required=True, help="count or weight")
    p.add_argument("--val", type=float, required=True, help="count or weight")
    p.add_argument("--test", type=float, required=True, help="count or weight")
    p.add_argument("--seed", type=int, default=0, help="split shuffle seed")
    p.add_argument("--config-hash", default="", help="workflow config hash")
    p.add_argument("--licence", required=True, help="SPDX licence of the release")
    p.add_argument("--title", required=True, help="dataset title (citation)")
    p.add_argument("--authors", nargs="+", required=True, help="author names")
    p.add_argument("--url", default="", help="dataset home page")
    p.set_defaults(run=run)


def run(args) -> int:
    """Verify and copy the stores; write splits, statistics, card and metadata."""
    from ..io.store import open_store, verify_store
    from ..io.tables import write_table
    from ..release import reject_statistics, split_specimens, sweep_statistics
    from ..store import validate_store

    paths = release_paths(output_folder(args, RELEASE_FILES, why=_WHY))
    for path in args.stores:
        verify_store(path)
    datasets = [open_store(p) for p in args.stores]
    for ds in datasets:
        validate_store(ds)
    stats = reject_statistics(sweep_statistics(ds) for ds in datasets)
    sizes = {"train": args.train, "val": args.val, "test": args.test}
    splits = split_specimens(
        stats["specimen"].unique(), mode=args.split_mode, sizes=sizes, seed=args.seed
    )
    _copy_stores(args.stores, datasets, paths["labels"])
    write_table(paths["splits"], splits, precision="measured")
    write_table(paths["stats"], stats, precision="measured")
    _write_metadata(paths, stats, splits, args, attrs=datasets[0].attrs)
    log.info("release: %d sweeps, %d kept frames", len(stats), stats["kept"].sum())
    return 0


def _copy_stores(paths, datasets, out) -> None:
    """Link the stores into the release and verify each copy against its digests.

    The copies are hard links where possible: the digests, checked on the source
    and again on the copy, are what make that safe.
    """
    from ..io.release import copy_tree
    from ..io.store import verify_store

    for path, ds in zip(paths, datasets, strict=True):
        dst = out / f"{ds['specimen'].values}" / f"{ds['sweep'].values}.zarr"
        copy_tree(path, dst)
        verify_store(dst)


def _write_metadata(paths, stats, splits, args, *, attrs) -> None:
    """Write README.md (the dataset card), croissant.json and CITATION.cff."""
    from .. import __version__
    from ..io.checksum import sha256_file
    from ..io.tables import write_json, write_text
    from ..release import citation_cff, croissant_metadata, dataset_card

    write_text(
        paths["card"], dataset_card(stats, splits, attrs=_card_attrs(attrs, args))
    )
    tables = {RELEASE_FILES[k]: sha256_file(paths[k]) for k in ("splits", "stats")}
    described = dict(title=args.title, licence=args.licence, url=args.url)
    write_json(
        paths["croissant"],
        croissant_metadata(**described, version=__version__, files=tables),
    )
    write_text(
        paths["citation"],
        citation_cff(**described, authors=args.authors, version=__version__),
    )


def _card_attrs(attrs: dict, args) -> dict:
    keys = (
        "ultrabones_version",
        "git_sha",
        "gamma_mm",
        "engine_params",
        "lam_rule",
        "seed",
        "pixel_spacing_mm",
    )
    out = {k: attrs[k] for k in keys if k in attrs}
    out["config_hash"] = args.config_hash
    out["splits"] = f"{args.split_mode} {args.train:g}/{args.val:g}/{args.test:g}"
    out["licence"] = args.licence
    return out
