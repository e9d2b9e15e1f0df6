"""Marker geometry files in the Atracsys FusionTrack ``.ini`` style.

::

    [geometry]
    count=4
    id=1000

    [fiducial0]
    x=0.000000
    y=0.000000
    z=0.000000
"""

from __future__ import annotations

import configparser
from pathlib import Path

import numpy as np

from ..errors import InputDataError

__all__ = ["read_marker_ini", "write_marker_ini"]


def read_marker_ini(path: str | Path) -> tuple[int, np.ndarray]:
    """Read a marker geometry.

    Returns
    -------
    marker_id : int
    fiducials : ndarray of shape (count, 3)
        Fiducial centres in the marker's own frame, mm.

    Raises
    ------
    InputDataError
        Naming the file and the missing section or key.
    """
    path = Path(path)
    parser = configparser.ConfigParser()
    try:
        if not parser.read(path):
            raise InputDataError(f"{path}: marker geometry file not found")
        count = parser.getint("geometry", "count")
        marker_id = parser.getint("geometry", "id")
        fiducials = np.array(
            [[parser.getfloat(f"fiducial{i}", k) for k in "xyz"] for i in range(count)]
        )
    except (configparser.Error, ValueError) as err:
        raise InputDataError(f"{path}: malformed marker geometry ({err})") from err
    if count < 3:
        raise InputDataError(
            f"{path}: a marker needs at least 3 fiducials, got {count}"
        )
    return marker_id, fiducials


def write_marker_ini(path: str | Path, marker_id: int, fiducials: np.ndarray) -> None:
    """Write a marker geometry (fiducial centres in mm, marker frame)."""
    fid = np.asarray(fiducials, dtype=np.float64)
    lines = ["[geometry]", f"count={fid.shape[0]}", f"id={int(marker_id)}", ""]
    for i, (x, y, z) in enumerate(fid):
        lines += [f"[fiducial{i}]", f"x={x:.6f}", f"y={y:.6f}", f"z={z:.6f}", ""]
    Path(path).write_text("\n".join(lines))
