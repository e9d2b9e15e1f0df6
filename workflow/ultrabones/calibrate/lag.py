"""Spatio-temporal calibration: solve T_US<-I for every candidate lag at once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..transforms import apply_rigid, fit_rigid, interpolate_rigid, invert_rigid

__all__ = ["LagCurve", "covered_frames", "lag_grid", "paper_lag_grid"]


def paper_lag_grid() -> np.ndarray:
    """Return the paper's lag candidates: [-300, 0) ms in steps of 0.1 ms (3,000)."""
    return np.round(-300.0 + 0.1 * np.arange(3000), 1)


def _visible(stream) -> tuple[np.ndarray, np.ndarray]:
    keep = stream.visible
    return stream.timestamps[keep].astype(np.float64), stream.tracker_from_marker[keep]


def covered_frames(stamps, stream, *, dt_ms, max_gap_ms: float) -> np.ndarray:
    """Return which frames the stream covers for every lag in ``dt_ms``.

    A frame is covered when all its query times ``t + dt`` lie inside the visible
    samples' span and no dropout longer than ``max_gap_ms`` (between two visible
    samples) overlaps them.

    Parameters
    ----------
    stamps : ndarray of shape (f,)
        Image stamps, ms.
    stream : MarkerStream
    dt_ms : ndarray of shape (d,)
    max_gap_ms : float

    Returns
    -------
    covered : ndarray of shape (f,), bool
    """
    times, _ = _visible(stream)
    lo = np.asarray(stamps, dtype=np.float64) + np.min(dt_ms)
    hi = np.asarray(stamps, dtype=np.float64) + np.max(dt_ms)
    if times.size < 2:
        return np.zeros(lo.shape, dtype=bool)
    covered = (lo >= times[0]) & (hi <= times[-1])
    long_gap = np.flatnonzero(np.diff(times) > max_gap_ms)
    for a, b in zip(times[long_gap], times[long_gap + 1], strict=True):
        covered &= (hi <= a) | (lo >= b)
    return covered


@dataclass(frozen=True)
class LagCurve:
    """Least-squares calibration and its errors for every candidate lag.

    Attributes
    ----------
    dt_ms : ndarray of shape (d,)
    probe_from_image : ndarray of shape (d, 4, 4)
    localization_error_mm : ndarray of shape (d,)
        Mean 3D distance between calibrated image points and phantom-derived points.
    residual_mm : ndarray of shape (d,)
        Root mean square of the same distances (the least-squares objective).
    """

    dt_ms: np.ndarray
    probe_from_image: np.ndarray
    localization_error_mm: np.ndarray
    residual_mm: np.ndarray

    @property
    def best(self) -> int:
        """Index of the lag of least localisation error on the grid."""
        return int(np.argmin(self.localization_error_mm))

    def chosen(self, *, window_ms: float) -> int:
        """Index of the lag nearest the vertex of the least-squares objective.

        Parameters
        ----------
        window_ms : float
            Half-width of the fitted window around the grid minimum; 0 keeps the
            grid minimum itself.

        Notes
        -----
        Near the true lag the squared residual is quadratic in dt (the pose error
        grows linearly with the timing error), so a parabola is fitted to
        ``residual_mm ** 2`` within ``window_ms`` of the localisation error's grid
        minimum. Tracker jitter adds a random ripple correlated over about one tracker
        period, so the flat bottom's grid minimum wanders by a few ms; the vertex over
        +-40 ms averages that ripple out.
        """
        i = self.best
        near = np.abs(self.dt_ms - self.dt_ms[i]) <= window_ms
        if window_ms <= 0 or near.sum() < 5:
            return i
        a, b, _ = np.polyfit(
            self.dt_ms[near] - self.dt_ms[i], self.residual_mm[near] ** 2, 2
        )
        if a <= 0:
            return i
        return int(np.argmin(np.abs(self.dt_ms - (self.dt_ms[i] - b / (2 * a)))))


def _probe_from_phantom(query, probe, phantom) -> np.ndarray:
    flat = query.ravel()
    tracker_from_probe = interpolate_rigid(*_visible(probe), flat)
    tracker_from_phantom = interpolate_rigid(*_visible(phantom), flat)
    out = invert_rigid(tracker_from_probe) @ tracker_from_phantom
    return out.reshape(query.shape + (4, 4))


def _solve_chunk(dt, stamps, points_image, points_phantom, weights, streams):
    query = stamps[None, :] + dt[:, None]
    probe_from_phantom = _probe_from_phantom(
        query, streams["probe"], streams["phantom"]
    )
    target = apply_rigid(probe_from_phantom, points_phantom)
    target = target.reshape(dt.size, -1, 3)
    source = points_image.reshape(-1, 3)
    w = weights.ravel()
    probe_from_image = fit_rigid(source, target, w)
    dist = np.linalg.norm(apply_rigid(probe_from_image, source) - target, axis=-1)
    mean = (dist * w).sum(axis=-1) / w.sum()
    rms = np.sqrt((dist**2 * w).sum(axis=-1) / w.sum())
    return probe_from_image, mean, rms


def lag_grid(
    stamps,
    points_image,
    points_phantom,
    *,
    weights,
    streams,
    dt_ms,
    chunk: int = 250,
) -> LagCurve:
    """Solve T_US<-I for every lag, vectorised over lags in chunks.

    Parameters
    ----------
    stamps : ndarray of shape (f,)
        Image stamps (image clock, ms) of the frames used.
    points_image : ndarray of shape (f, k, 3)
        Middle dots in the image plane, mm.
    points_phantom : ndarray of shape (f, k, 3)
        Their 3D points from the Z geometry, phantom marker frame, mm.
    weights : ndarray of shape (f, k)
        1 for a detected point, 0 for a missing one.
    streams : mapping of str to MarkerStream
        Tracker streams of the ``"probe"`` and the ``"phantom"`` markers (e.g. a
        recording's ``streams``).
    dt_ms : ndarray of shape (d,)
        Candidate lags; every ``stamps + dt`` must be covered (:func:`covered_frames`).
    chunk : int
        Lags solved per batch (bounds memory).

    Returns
    -------
    curve : LagCurve

    Notes
    -----
    For a lag dt, the phantom points map to the probe frame by
    ``probe_from_phantom = inv(tracker_from_probe) @ tracker_from_phantom`` at t + dt,
    and ``probe_from_image`` is the Kabsch fit of the image points onto them;
    :func:`~ultrabones.transforms.fit_rigid` broadcasts over the lags.
    """
    stamps = np.asarray(stamps, dtype=np.float64)
    dt = np.asarray(dt_ms, dtype=np.float64)
    parts = [
        _solve_chunk(
            dt[i : i + chunk],
            stamps,
            points_image,
            points_phantom,
            weights,
            streams,
        )
        for i in range(0, dt.size, chunk)
    ]
    return LagCurve(dt, *(np.concatenate(p) for p in zip(*parts, strict=True)))
