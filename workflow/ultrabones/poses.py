"""Per-frame probe poses in CT from tracker streams, calibration lag and registration.

``ct_from_probe(t) = ct_from_specimen @ inv(tracker_from_specimen(t + dt))
@ tracker_from_probe(t + dt)``, with SE(3) interpolation (slerp + linear) between
visible tracker samples. A frame outside a marker's coverage, or inside one of its
dropouts longer than ``max_gap_ms``, is ``no_tracking`` with a NaN pose: never an
invented pose.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .transforms import (
    POSE_COLUMNS,
    apply_rigid,
    check_rigid,
    interpolate_rigid,
    invert_rigid,
    params_from_matrix,
)
from .vocabulary import Reason

__all__ = [
    "DEFAULT_MAX_GAP_MS",
    "ct_from_probe_frames",
    "image_corner_errors",
    "poses_table",
    "stream_at",
]

log = logging.getLogger(__name__)

#: Longest tracker dropout bridged by interpolation (ms): about six missed samples at
#: 60 Hz, the probe moving about 1.5 mm at the sweep's median 15 mm/s. Config
#: ``poses.max_gap_ms``.
DEFAULT_MAX_GAP_MS = 100.0


def stream_at(stream, query_ms, *, max_gap_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate a marker stream at query times where it is trustworthy.

    Parameters
    ----------
    stream : MarkerStream
    query_ms : ndarray of shape (n,)
        Tracker-clock times, ms (may be fractional).
    max_gap_ms : float
        Longest span between two visible samples that may be interpolated across.

    Returns
    -------
    tracker_from_marker : ndarray of shape (n, 4, 4)
        NaN where not tracked.
    tracked : ndarray of shape (n,), bool
    """
    q = np.asarray(query_ms, dtype=np.float64)
    times = stream.timestamps[stream.visible].astype(np.float64)
    poses = stream.tracker_from_marker[stream.visible]
    out = np.full(q.shape + (4, 4), np.nan)
    if times.size < 2:
        return out, np.zeros(q.shape, dtype=bool)
    inside = (q >= times[0]) & (q <= times[-1])
    j = np.clip(np.searchsorted(times, q, side="right"), 1, times.size - 1)
    before, after = times[j - 1], times[j]
    tracked = inside & ((after - before <= max_gap_ms) | (q == before) | (q == after))
    if tracked.any():
        out[tracked] = interpolate_rigid(times, poses, q[tracked])
    return out, tracked


def ct_from_probe_frames(
    stamps,
    *,
    probe,
    specimen,
    ct_from_specimen,
    dt_ms: float,
    max_gap_ms: float = DEFAULT_MAX_GAP_MS,
) -> tuple[np.ndarray, np.ndarray]:
    """Compose T_CT<-US for frames stamped on the image clock.

    Parameters
    ----------
    stamps : ndarray of shape (n,)
        Image stamps, ms (the image file names).
    probe, specimen : MarkerStream
        ``tracker_from_probe`` and ``tracker_from_specimen`` streams.
    ct_from_specimen : ndarray of shape (4, 4)
    dt_ms : float
        Lag: the image stamped t was acquired at tracker time t + dt.
    max_gap_ms : float

    Returns
    -------
    ct_from_probe : ndarray of shape (n, 4, 4)
        NaN for untracked frames.
    status : ndarray of shape (n,), str
        ``ok`` or ``no_tracking``.
    """
    ct_from_specimen = check_rigid(ct_from_specimen, name="ct_from_specimen")
    query = np.asarray(stamps, dtype=np.float64) + float(dt_ms)
    tracker_from_probe, ok_p = stream_at(probe, query, max_gap_ms=max_gap_ms)
    tracker_from_specimen, ok_s = stream_at(specimen, query, max_gap_ms=max_gap_ms)
    pose = ct_from_specimen @ invert_rigid(tracker_from_specimen) @ tracker_from_probe
    tracked = ok_p & ok_s
    pose[~tracked] = np.nan
    status = np.where(tracked, Reason.OK.value, Reason.NO_TRACKING.value)
    if (~tracked).any():
        log.info("%d of %d frames without tracking", (~tracked).sum(), tracked.size)
    return pose, status


def poses_table(stamps, ct_from_probe, status, *, space_factor: float) -> pd.DataFrame:
    """Build the poses table: record columns, ``status`` and ``image``.

    Parameters
    ----------
    stamps : ndarray of shape (n,)
        Integer ms; the image of a row is ``<stamp>.png``.
    ct_from_probe : ndarray of shape (n, 4, 4)
        NaN where untracked.
    status : ndarray of shape (n,), str
    space_factor : float
        Pixel spacing (mm), the record's ``space_factor`` column.

    Returns
    -------
    table : DataFrame
    """
    params = np.full((len(stamps), 6), np.nan)
    finite = np.isfinite(ct_from_probe).all(axis=(-2, -1))
    params[finite] = params_from_matrix(ct_from_probe[finite])
    table = pd.DataFrame(params, columns=list(POSE_COLUMNS))
    table.insert(0, "space_factor", float(space_factor))
    table.insert(0, "timestamp", np.asarray(stamps, dtype=np.int64))
    status = np.asarray(status, dtype=object)
    table["status"] = np.where(
        finite | (status != Reason.OK.value), status, Reason.INVALID_POSE.value
    )
    table["image"] = [f"{int(t)}.png" for t in stamps]
    return table


def image_corner_errors(
    ct_from_probe, ct_from_probe_true, *, probe_from_image, size_mm
) -> np.ndarray:
    """Return per frame the largest CT distance of the image corners between two poses.

    Parameters
    ----------
    ct_from_probe, ct_from_probe_true : ndarray of shape (n, 4, 4)
    probe_from_image : ndarray of shape (4, 4)
    size_mm : tuple of float
        Image width and height, mm.

    Returns
    -------
    error_mm : ndarray of shape (n,)
    """
    w, h = size_mm
    corners = np.array([[0, 0, 0], [w, 0, 0], [0, h, 0], [w, h, 0]], dtype=np.float64)
    ours = apply_rigid(ct_from_probe @ probe_from_image, corners)
    true = apply_rigid(ct_from_probe_true @ probe_from_image, corners)
    return np.linalg.norm(ours - true, axis=-1).max(axis=-1)
