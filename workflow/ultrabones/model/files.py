"""File I/O of the model sub-package: checkpoints, the work folder, PNG masks.

Training works in ``<model_dir>.wip/`` beside the declared output (as label stores do,
see :mod:`ultrabones.io.store`), because Snakemake deletes a job's outputs before it
reruns the job: a killed run leaves its last epoch's ``checkpoint.pt`` there and the
next run resumes from it. :func:`publish` moves the finished folder to
``<model_dir>`` by rename.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np

from ..errors import InputDataError

__all__ = [
    "CHECKPOINT",
    "load_checkpoint",
    "publish",
    "release_hash",
    "save_checkpoint",
    "work_folder",
    "write_mask_png",
]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"


def work_folder(out: str | Path) -> Path:
    """Return (and create) the work-in-progress folder of a model folder."""
    out = Path(out)
    root = out.with_name(out.name + ".wip")
    root.mkdir(parents=True, exist_ok=True)
    return root


def save_checkpoint(folder: str | Path, state: dict) -> None:
    """Write ``checkpoint.pt`` atomically (a kill mid-write keeps the previous one)."""
    import torch

    path = Path(folder) / CHECKPOINT
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(folder: str | Path, *, required: bool = False) -> dict | None:
    """Read ``checkpoint.pt`` of a folder onto the CPU; None when there is none.

    Raises
    ------
    InputDataError
        If it is required and missing, or cannot be read (naming the file).
    """
    import torch

    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        if required:
            raise InputDataError(f"{path}: model checkpoint not found")
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as err:
        raise InputDataError(f"{path}: cannot read model checkpoint ({err})") from err


def publish(work: str | Path, out: str | Path) -> None:
    """Move a finished work folder to the model folder, replacing an older one."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    os.replace(work, out)


def release_hash(release: str | Path) -> str:
    """Return the SHA-256 of the release's ``manifest.sha256`` (names the release).

    Raises
    ------
    InputDataError
        If the release has no manifest.
    """
    from ..io.checksum import sha256_file

    path = Path(release) / "manifest.sha256"
    if not path.is_file():
        raise InputDataError(f"{path}: release manifest not found")
    return sha256_file(path)


def write_mask_png(path: str | Path, mask: np.ndarray) -> None:
    """Write a boolean mask as an 8-bit PNG (0/255), creating its folder."""
    from ..io.png import write_png

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(path, np.where(mask, 255, 0).astype(np.uint8))
