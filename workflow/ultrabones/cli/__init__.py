"""The ``ultrabones`` command line: one subcommand per workflow rule action.

Each subcommand lives in its own module of this package with two functions,
``add_parser(subparsers)`` and ``run(args) -> int``. Commands are thin: they parse, call
the library and write. Heavy imports happen inside ``run`` so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__
from ..errors import UltrabonesError

__all__ = ["main"]

#: Subcommand modules, in pipeline order.
COMMANDS = (
    "info",
    "simulate",
    "simulate_bench",
    "appearance",
    "ingest",
    "import_sequence",
    "calibrate",
    "register",
    "poses",
    "prepare_specimen",
    "select_lambda",
    "label_sweep",
    "bench",
    "honesty",
    "qa",
    "qa_summary",
    "verify_store",
    "release",
    "export_public",
    "export_nnunet",
    "export_published",
    "manifest",
    "validate",
    "evaluate",
    "otsu",
    "audit",
    "audit_page",
    "train",
    "predict",
    "score",
    "model_bench",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="ultrabones",
        description="Open label factory for tracked-ultrasound bone datasets.",
    )
    parser.add_argument(
        "--version", action="version", version=f"ultrabones {__version__}"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.run(args) or 0)
    except UltrabonesError as err:
        print(f"ultrabones {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
