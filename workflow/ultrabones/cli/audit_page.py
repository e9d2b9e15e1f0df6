"""``ultrabones audit-page``: static HTML audit pages of a sweep or of the release."""

from __future__ import annotations

import logging

from .options import given

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
    p.add_argument("--out", help="folder for index.html and its files")
    p.add_argument(
        "--index", help="with --stats: the index page (default: OUT/index.html)"
    )
    p.add_argument("--script", help="with --stats: its audit.js, beside it")
    p.add_argument("--style", help="with --stats: its audit.css, beside it")
    p.set_defaults(run=run)


#: The file name of a page, a sweep's or the index (the folders' report htmlindex).
INDEX = "index.html"


def run(args) -> int:
    """Write the page, its images and its script into its folder."""
    from ..auditpage import ASSETS, asset_text
    from ..io.tables import write_text

    if args.stats:
        out = _index_folder(args)
        _write_index(args.stores, args.stats, out / INDEX)
    else:
        out = _sweep_folder(args)
        _write_sweep(args.stores[0], out, max_correction_mm=args.max_correction_mm)
    for name in ASSETS:
        write_text(out / name, asset_text(name))
    return 0


def _index_folder(args):
    """Return the index page's folder: --index, --script and --style side by side."""
    from ..auditpage import SCRIPT, STYLE
    from .options import output_folder

    files = {"index": INDEX, "script": SCRIPT, "style": STYLE}
    why = f"the index page links {SCRIPT} and {STYLE} by name"
    return output_folder(args, files, why=why)


def _sweep_folder(args):
    """Return the folder of a sweep's page (--out): one store, no index options."""
    from pathlib import Path

    from ..errors import ConfigError

    if len(args.stores) > 1:
        raise ConfigError(
            f"audit-page: one store makes a sweep page, got {len(args.stores)} "
            "(give --stats for the index page)"
        )
    if args.out is None or given(args, "index", "script", "style"):
        raise ConfigError(
            "a sweep page takes --out (its folder); --index, --script "
            "and --style name the index page's files (with --stats)"
        )
    return Path(args.out)


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
    write_text(out / INDEX, html)
    log.info("%s: page of %d frames in %s", path, len(reasons), out)


def _write_index(paths, stats_path, index) -> None:
    from ..auditpage import index_page, sweep_row
    from ..errors import InputDataError
    from ..io.tables import read_table, write_text

    try:
        stats = read_table(stats_path)
    except (OSError, ValueError) as err:
        raise InputDataError(f"{stats_path}: cannot read ({err})") from err
    rows = [sweep_row(stats, _open(p), path=str(stats_path)) for p in paths]
    write_text(index, index_page(rows))
    log.info("%s: index of %d sweeps", index, len(rows))
