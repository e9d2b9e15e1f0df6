"""``ultrabones qa STORE --out DIR``: overlays and correction histogram of a sweep.

The workflow names both figures instead (``--overlays PNG --corrections PNG``).
"""

from __future__ import annotations


def add_parser(sub) -> None:
    """Register the ``qa`` subcommand."""
    p = sub.add_parser("qa", help="QA figures of one sweep's label store")
    p.add_argument("store", help="label store (.zarr)")
    p.add_argument("--out", help="folder for overlays.png and corrections.png")
    p.add_argument("--overlays", help="overlay grid PNG (default: OUT/overlays.png)")
    p.add_argument(
        "--corrections", help="correction histogram PNG (default: OUT/corrections.png)"
    )
    p.add_argument("--frames", type=int, default=6, help="frames in the overlay grid")
    p.add_argument("--max-correction-mm", type=float, default=1.0, help="discard bound")
    p.set_defaults(run=run)


def run(args) -> int:
    """Write ``overlays.png`` and ``corrections.png``."""
    from ..io.store import open_store
    from ..io.tables import save_figure
    from ..qa import correction_figure, overlay_figure
    from .options import output_path

    overlays = output_path(args, "overlays", "overlays.png")
    corrections = output_path(args, "corrections", "corrections.png")
    ds = open_store(args.store)
    save_figure(overlay_figure(ds, frames=args.frames), overlays)
    fig = correction_figure(ds, max_correction_mm=args.max_correction_mm)
    save_figure(fig, corrections)
    return 0
