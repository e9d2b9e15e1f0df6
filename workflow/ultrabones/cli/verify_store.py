"""``ultrabones verify-store STORE --out FILE``: check a store's chunk digests."""

from __future__ import annotations


def add_parser(sub) -> None:
    """Register the ``verify-store`` subcommand."""
    p = sub.add_parser(
        "verify-store", help="check that every chunk of a label store is intact"
    )
    p.add_argument("store", help="published label store (.zarr)")
    p.add_argument("--out", required=True, help="copy of the verified digests")
    p.add_argument(
        "--remove-corrupt",
        action="store_true",
        help="delete a corrupted store, so that the workflow's next run rebuilds it",
    )
    p.set_defaults(run=run)


def run(args) -> int:
    """Verify the store; write its digests to ``--out``, or fail naming the chunk."""
    import shutil
    from pathlib import Path

    from ..errors import InputDataError
    from ..io.store import DIGESTS, verify_store
    from ..io.tables import write_text

    try:
        verify_store(args.store)
    except InputDataError as err:
        if not args.remove_corrupt or not Path(args.store).is_dir():
            raise
        shutil.rmtree(args.store)
        raise InputDataError(
            f"{err}; removed it: run the workflow again to rebuild it"
        ) from err
    write_text(args.out, (Path(args.store) / DIGESTS).read_text())
    return 0
