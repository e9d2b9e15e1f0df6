"""Optical tracker streams (``tracker.csv``): one row per marker per tracker sample.

Columns: ``timestamp`` (integer ms, the tracker's own clock), ``marker`` (geometry
name, e.g. ``probe``, ``specimen``, ``phantom``), ``visible`` (1 when tracked, 0 in
a dropout), and the pose ``tracker_from_<marker>`` as ``x,y,z`` (mm) and
``euler_x,euler_y,euler_z`` (degrees, extrinsic "xyz"), empty when not visible.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputDataError
from ..transforms import POSE_COLUMNS, matrix_from_params, params_from_matrix
from .tables import write_table

__all__ = [
    "TRACKER_COLUMNS",
    "MarkerStream",
    "marker_stream",
    "read_tracker_stream",
    "write_tracker_stream",
]

log = logging.getLogger(__name__)

TRACKER_COLUMNS = ("timestamp", "marker", "visible", *POSE_COLUMNS)


@dataclass(frozen=True)
class MarkerStream:
    """Samples of one marker.

    Attributes
    ----------
    timestamps : ndarray of shape (n,), int64
        Tracker clock, ms, strictly increasing.
    tracker_from_marker : ndarray of shape (n, 4, 4)
        NaN where not visible.
    visible : ndarray of shape (n,), bool
    """

    timestamps: np.ndarray
    tracker_from_marker: np.ndarray
    visible: np.ndarray


def read_tracker_stream(path: str | Path) -> dict[str, MarkerStream]:
    """Read a tracker stream into one :class:`MarkerStream` per marker.

    A visible row with a NaN pose is logged and treated as a dropout.

    Raises
    ------
    InputDataError
        Missing columns, a row without a marker name, a non-integer timestamp, or
        duplicate or non-increasing timestamps of one marker (naming the line).
    """
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype={"marker": str})
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise InputDataError(f"{path}: cannot read tracker stream ({err})") from err
    missing = [c for c in TRACKER_COLUMNS if c not in df.columns]
    if missing:
        raise InputDataError(
            f"{path}: tracker stream lacks column(s) {', '.join(missing)}"
        )
    no_marker = df["marker"].isna() | (df["marker"].astype(str).str.strip() == "")
    if no_marker.any():
        i = int(np.flatnonzero(no_marker.to_numpy())[0])
        raise InputDataError(f"{path} line {i + 2}: tracking row without a marker name")
    stamps = pd.to_numeric(df["timestamp"], errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(stamps) | (stamps != np.round(stamps))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputDataError(f"{path} line {i + 2}: timestamp must be an integer (ms)")
    params = (
        df[list(POSE_COLUMNS)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    )
    visible = pd.to_numeric(df["visible"], errors="coerce").fillna(0).to_numpy() > 0
    nan_pose = visible & ~np.isfinite(params).all(axis=1)
    for i in np.flatnonzero(nan_pose):
        log.warning(
            "%s line %d: visible marker with NaN pose; treated as dropout", path, i + 2
        )
    visible &= ~nan_pose
    streams = {}
    for name, idx in df.groupby("marker", sort=True).indices.items():
        streams[str(name)] = _marker_stream(
            path, str(name), idx, stamps, params, visible
        )
    return streams


def _marker_stream(path, name, idx, stamps, params, visible) -> MarkerStream:
    t = stamps[idx].astype(np.int64)
    step = np.diff(t)
    if np.any(step <= 0):
        k = int(np.flatnonzero(step <= 0)[0]) + 1
        raise InputDataError(
            f"{path} line {idx[k] + 2}: marker {name!r} timestamp {t[k]} "
            f"is not after {t[k - 1]}"
        )
    tracker_from_marker = np.full((idx.size, 4, 4), np.nan)
    vis = visible[idx]
    tracker_from_marker[vis] = matrix_from_params(params[idx][vis])
    return MarkerStream(t, tracker_from_marker, vis)


def write_tracker_stream(path: str | Path, streams: dict[str, MarkerStream]) -> None:
    """Write marker streams as one CSV sorted by timestamp, then marker name."""
    frames = []
    for name, s in streams.items():
        p = np.full((s.timestamps.size, 6), np.nan)
        p[s.visible] = params_from_matrix(s.tracker_from_marker[s.visible])
        part = pd.DataFrame(p, columns=list(POSE_COLUMNS))
        part.insert(0, "visible", s.visible.astype(np.int8))
        part.insert(0, "marker", name)
        part.insert(0, "timestamp", s.timestamps.astype(np.int64))
        frames.append(part)
    table = pd.concat(frames).sort_values(["timestamp", "marker"], kind="stable")
    write_table(path, table, precision="measured")


def marker_stream(streams: dict, name: str, path: str | Path) -> MarkerStream:
    """Return ``streams[name]`` or raise naming the tracker file."""
    if name not in streams:
        raise InputDataError(f"{path}: no rows of marker {name!r}")
    return streams[name]
