"""Provenance of every product: package version, git SHA, config hash, input checksums.

Stores and releases record where they came from without absolute paths, so the same
inputs give the same bytes on any machine.

Hashing an input folder never walks out of it: a linked folder inside is hashed as its
link text, except the record layout's ``UltrasoundImages`` and ``CT_models`` (linked by
``ultrabones poses``), whose files are hashed by content. A link such as ``usr -> /usr``
left in a record therefore costs one line of the digest, not a walk of ``/usr``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from . import __version__
from .io.checksum import sha256_file
from .io.record import IMAGES_DIR, MODELS_DIR

__all__ = [
    "config_hash",
    "git_sha",
    "input_checksums",
    "input_digest",
    "provenance",
    "relative_path",
]

#: Top-level linked folders of the record layout whose files are hashed by content.
LINKED_FOLDERS = (IMAGES_DIR, MODELS_DIR)


def config_hash(config: Mapping) -> str:
    """Return the SHA-256 of a configuration mapping in canonical JSON.

    >>> config_hash({"b": 1, "a": [2]}) == config_hash({"a": [2], "b": 1})
    True
    """
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def git_sha(*, cwd: str | Path | None = None) -> str:
    """Return the commit SHA of the source tree, or ``"unknown"`` outside git."""
    here = Path(cwd) if cwd is not None else Path(__file__).parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def relative_path(path: str | Path, *, root: str | Path = ".") -> str:
    """Return ``path`` relative to ``root`` (POSIX form), never absolute."""
    rel = os.path.relpath(Path(path).absolute(), Path(root).absolute())
    return Path(rel).as_posix()


def _entries(folder: Path, prefix: str = "") -> dict[str, Path]:
    """Map relative POSIX names to the files and links under ``folder``.

    Linked folders are listed, never entered (``os.walk`` without ``followlinks``).
    """
    found = {}
    for d, dirs, names in os.walk(folder):
        rel = Path(prefix, os.path.relpath(d, folder))
        links = [n for n in dirs if (Path(d) / n).is_symlink()]
        found.update({(rel / n).as_posix(): Path(d) / n for n in [*names, *links]})
    return found


def _entry_digest(path: Path) -> str | None:
    """Return a file's content digest, a folder or odd link's text, None otherwise."""
    if path.is_file():  # a linked file too: reading one never walks
        return sha256_file(path)
    if path.is_symlink():
        return f"-> {os.readlink(path)}"
    return None  # sockets, pipes: not data, and reading a pipe would block


def input_digest(path: str | Path) -> str:
    """Return the SHA-256 of an input file, or of a folder without leaving it.

    A folder's digest covers each entry's relative POSIX path and digest in sorted
    order, so it does not depend on where the folder lives or on file times. Linked
    folders are hashed as their link text, except :data:`LINKED_FOLDERS` at the top.
    """
    path = Path(path)
    if not path.is_dir():
        return sha256_file(path)
    entries = _entries(path)
    for name in LINKED_FOLDERS:
        if (path / name).is_symlink() and (path / name).is_dir():
            del entries[name]
            entries.update(_entries(path / name, prefix=name))
    digest = hashlib.sha256()
    for rel in sorted(entries):
        value = _entry_digest(entries[rel])
        if value is not None:
            digest.update(f"{rel}\0{value}\n".encode())
    return digest.hexdigest()


def input_checksums(paths, *, root: str | Path = ".") -> dict[str, str]:
    """Map each input's relative path to its SHA-256 (see :func:`input_digest`)."""
    return {relative_path(p, root=root): input_digest(p) for p in paths}


def provenance(inputs, *, config_hash: str = "", root: str | Path = ".") -> dict:
    """Return the provenance attrs of a product.

    Parameters
    ----------
    inputs : iterable of path
        Files or folders the product was computed from.
    config_hash : str
        SHA-256 of the workflow configuration (empty when run by hand).
    root : path
        Paths are recorded relative to this folder (the workflow's working folder).

    Returns
    -------
    attrs : dict
        ``ultrabones_version``, ``git_sha``, ``config_hash`` and ``inputs`` (a JSON
        string of relative path to SHA-256, as Zarr attrs hold flat values best).
    """
    return {
        "ultrabones_version": __version__,
        "git_sha": git_sha(),
        "config_hash": config_hash,
        "inputs": json.dumps(input_checksums(inputs, root=root), sort_keys=True),
    }
