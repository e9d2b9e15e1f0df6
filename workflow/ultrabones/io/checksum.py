"""SHA-256 checksums of files and folders (provenance, release manifest)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["list_files", "sha256_file", "sha256_path"]

_BLOCK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Return the hex SHA-256 of a file's bytes (symlinks followed)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def list_files(path: str | Path) -> list[Path]:
    """Return the files under ``path`` (``[path]`` for a file), sorted."""
    path = Path(path)
    if path.is_file():
        return [path]
    # os.walk follows linked folders (a record's UltrasoundImages, CT_models)
    found = [
        Path(d) / name
        for d, _, names in os.walk(path, followlinks=True)
        for name in names
    ]
    files = (p for p in found if p.is_file())
    return sorted(files, key=lambda p: p.relative_to(path).as_posix())


def sha256_path(path: str | Path) -> str:
    """Return the SHA-256 of a file, or of a folder as its relative names and contents.

    A folder's digest covers each file's relative POSIX path and content digest in
    sorted order, so it does not depend on where the folder lives or on file times.
    """
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in list_files(path):
        rel = file.relative_to(path).as_posix()
        digest.update(f"{rel}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()
