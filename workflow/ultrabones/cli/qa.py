"""``ultrabones qa STORE --out DIR``: overlays and correction histogram of a sweep."""

from __future__ import annotations


def add_parser(sub) -> None:
    """Register the ``qa`` subcommand."""
    p = sub.add_parser("qa", help="QA figures of one sweep's label store")
    p.add_argument("store", help="label store (.zarr)")
    p.add_argument(
        "--out", required=True, help="folder for overlays.png, corrections.png"
    )
    p.add_argument("--frames", type=int, default=6, help="frames in the overlay grid")
    p.add_argument("--max-correction-mm", type=float, default=1.0, help="discard bound")
    p.set_defaults(run=run)


def run(args) -> int:
    """Write ``overlays.png`` and ``corrections.png``."""
    from pathlib import Path

    from ..io.store import open_store
    from ..io.tables import save_figure
    from ..qa import correction_figure, overlay_figure

    ds = open_store(args.store)
    out = Path(args.out)
    save_figure(overlay_figure(ds, frames=args.frames), out / "overlays.png")
    fig = correction_figure(ds, max_correction_mm=args.max_correction_mm)
    save_figure(fig, out / "corrections.png")
    return 0
