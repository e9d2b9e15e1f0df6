"""``ultrabones manifest PATH ... --out FILE``: sha256sum of release files."""

from __future__ import annotations


def add_parser(sub) -> None:
    """Register the ``manifest`` subcommand."""
    p = sub.add_parser("manifest", help="write a sha256sum manifest of files/folders")
    p.add_argument("paths", nargs="+", help="files or folders (folders recursively)")
    p.add_argument(
        "--root",
        help="paths are written relative to it (default: the manifest's folder)",
    )
    p.add_argument("--out", required=True, help="manifest file (sha256sum format)")
    p.set_defaults(run=run)


def run(args) -> int:
    """Hash every file under the paths; write ``<sha256>  <relative path>`` lines."""
    from pathlib import Path

    from ..io.checksum import list_files, sha256_file
    from ..io.tables import write_text
    from ..provenance import relative_path
    from ..release import manifest_text

    root = args.root or Path(args.out).parent
    files = [f for p in args.paths for f in list_files(p)]
    sums = {relative_path(f, root=root): sha256_file(f) for f in files}
    write_text(args.out, manifest_text(sums))
    return 0
