"""``ultrabones audit-page``: static HTML audit pages of a sweep or of the release."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    """Register the ``audit-page`` subcommand."""
    p = sub.add_parser(
        "audit-page",
        help="HTML audit page of a sweep, or with --stats the release's index page",
        description="One store: its page (index.html, timeline.png, thumbs/, full/). "
        "With --stats: the index page of the given stores. Pages open offline.",
    )
    p.add_argument("stores", nargs="+", help="label store(s) (.zarr)")
    p.add_argument(
        "--stats", help="reject_statistics.csv: write the index page of the stores"
    )
    p.add_argument(
        "--max-correction-mm", type=float, help="discard bound, drawn on the timeline"
    )
    p.add_argument("--out", required=True, help="folder for index.html and its files")
    p.set_defaults(run=run)


def run(args) -> int:
    """Write the page, its images and its script into ``--out``."""
    from pathlib import Path

    from ..auditpage import ASSETS, asset_text
    from ..errors import ConfigError
    from ..io.tables import write_text

    out = Path(args.out)
    if args.stats:
        _write_index(args.stores, args.stats, out)
    elif len(args.stores) == 1:
        _write_sweep(args.stores[0], out, max_correction_mm=args.max_correction_mm)
    else:
        raise ConfigError(
            f"audit-page: one store makes a sweep page, got {len(args.stores)} "
            "(give --stats for the index page)"
        )
    for name in ASSETS:
        write_text(out / name, asset_text(name))
    return 0


def _open(path):
    from ..auditpage import FRAME_VARIABLES
    from ..errors import InputDataError
    from ..io.masks import open_label_store
    from ..store import validate_store

    ds = open_label_store(path, require=FRAME_VARIABLES)
    try:
        validate_store(ds)
    except InputDataError as err:
        raise InputDataError(f"{path}: {err}") from err
    return ds


def _write_sweep(path, out, *, max_correction_mm) -> None:
    from ..auditpage import FRAME_VARIABLES, frame_pngs, sweep_page
    from ..io.masks import iter_store_frames
    from ..io.tables import save_figure, write_text
    from ..store import as_str
    from ..vocabulary import Reason

    ds = _open(path)
    html, figure = sweep_page(ds, max_correction_mm=max_correction_mm)
    for folder in ("thumbs", "full"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    reasons = as_str(ds["reason"].values)
    frames = iter_store_frames(ds, FRAME_VARIABLES, status=None)
    for i, stamp, data in frames:
        if reasons[i] == Reason.NO_IMAGE:
            continue
        thumb, full = frame_pngs(data)
        (out / "thumbs" / f"{stamp}.png").write_bytes(thumb)
        (out / "full" / f"{stamp}.png").write_bytes(full)
    save_figure(figure, out / "timeline.png")
    write_text(out / "index.html", html)
    log.info("%s: page of %d frames in %s", path, len(reasons), out)


def _write_index(paths, stats_path, out) -> None:
    from ..auditpage import index_page, sweep_row
    from ..errors import InputDataError
    from ..io.tables import read_table, write_text

    try:
        stats = read_table(stats_path)
    except (OSError, ValueError) as err:
        raise InputDataError(f"{stats_path}: cannot read ({err})") from err
    rows = [sweep_row(stats, _open(p), path=str(stats_path)) for p in paths]
    write_text(out / "index.html", index_page(rows))
    log.info("%s: index of %d sweeps", out, len(rows))
