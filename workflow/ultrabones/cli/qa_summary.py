"""``ultrabones qa-summary STATS --out DIR``: release-level QA figures."""

from __future__ import annotations


def add_parser(sub) -> None:
    """Register the ``qa-summary`` subcommand."""
    p = sub.add_parser("qa-summary", help="discard rate per sweep")
    p.add_argument("stats", help="reject_statistics.csv")
    p.add_argument("--out", help="folder for the figures")
    p.add_argument(
        "--discard-rate", help="discard rate PNG (default: OUT/discard_rate.png)"
    )
    p.set_defaults(run=run)


def run(args) -> int:
    """Write ``discard_rate.png``."""
    from ..io.tables import read_table, save_figure
    from ..qa import discard_rate_figure
    from .options import output_path

    path = output_path(args, "discard_rate", "discard_rate.png")
    save_figure(discard_rate_figure(read_table(args.stats)), path)
    return 0
