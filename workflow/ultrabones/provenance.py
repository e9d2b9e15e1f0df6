"""Provenance of every product: package version, git SHA, config hash, input checksums.

Stores and releases record where they came from without absolute paths, so the same
inputs give the same bytes on any machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from . import __version__
from .io.checksum import sha256_path

__all__ = ["config_hash", "git_sha", "input_checksums", "provenance", "relative_path"]


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


def input_checksums(paths, *, root: str | Path = ".") -> dict[str, str]:
    """Map each input's relative path to its SHA-256 (folders by content)."""
    return {relative_path(p, root=root): sha256_path(p) for p in paths}


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
