"""``ultrabones qa-summary STATS --out DIR``: release-level QA figures."""

from __future__ import annotations


def add_parser(sub) -> None:
    """Register the ``qa-summary`` subcommand."""
    p = sub.add_parser("qa-summary", help="discard rate per sweep")
    p.add_argument("stats", help="reject_statistics.csv")
    p.add_argument("--out", required=True, help="folder for the figures")
    p.set_defaults(run=run)


def run(args) -> int:
    """Write ``discard_rate.png``."""
    from pathlib import Path

    from ..io.tables import read_table, save_figure
    from ..qa import discard_rate_figure

    out = Path(args.out)
    save_figure(discard_rate_figure(read_table(args.stats)), out / "discard_rate.png")
    return 0
