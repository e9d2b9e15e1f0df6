"""``ultrabones validate RELEASE``: check a release folder; exit 1 naming problems."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    """Register the ``validate`` subcommand."""
    p = sub.add_parser(
        "validate",
        help="check a release: manifest, store chunk digests, splits and exports",
    )
    p.add_argument("release", help="release folder (results/release)")
    p.set_defaults(run=run)


def run(args) -> int:
    """Print each problem found; return 1 if there is any."""
    import sys

    from ..io.validate import release_problems

    problems = release_problems(args.release)
    for problem in problems:
        print(f"ultrabones validate: {problem}", file=sys.stderr)
    if problems:
        return 1
    log.info("%s: release valid", args.release)
    return 0
