"""The specimen registration: ``ct_from_specimen`` as JSON (``ultrabones register``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputDataError
from ..transforms import check_rigid, params_from_matrix

__all__ = ["read_registration", "write_registration"]


def write_registration(path: str | Path, ct_from_specimen, info: dict) -> None:
    """Write ``ct_from_specimen`` (4x4 and pose params) and its quality as JSON."""
    ct_from_specimen = check_rigid(ct_from_specimen, name="ct_from_specimen")
    doc = {
        "ct_from_specimen": np.round(ct_from_specimen, 10).tolist(),
        "params": np.round(params_from_matrix(ct_from_specimen), 8).tolist(),
        "from_frame": "specimen",
        "to_frame": "ct",
        "units": "mm",
        **info,
    }
    Path(path).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def read_registration(path: str | Path) -> np.ndarray:
    """Read ``ct_from_specimen`` from a registration JSON (ours or the truth's).

    Raises
    ------
    InputDataError
        If the file is unreadable, lacks the key or the matrix is not rigid.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        matrix = doc["ct_from_specimen"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputDataError(
            f"{path}: cannot read ct_from_specimen ({type(err).__name__}: {err})"
        ) from err
    try:
        return check_rigid(
            np.asarray(matrix, dtype=np.float64), name="ct_from_specimen"
        )
    except ValueError as err:
        raise InputDataError(f"{path}: {err}") from err
