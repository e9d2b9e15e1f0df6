"""Sweep-consistent refinement: one correction shared along a sweep, plus residuals.

A frame's tracking error is mostly shared with its neighbours: the calibration error
is constant in the probe frame for the whole sweep, the registration error and the
bones' creep change slowly, and only tracker jitter differs from frame to frame. So
after every frame is refined alone, the corrections are read in the probe frame,
``probe_from_probe' = inv(ct_from_probe_initial) @ ct_from_probe_refined``, and their
running median along the sweep (:func:`sweep_trend`) is the sweep's correction: a
median, so one frame's failure cannot pull it. A frame whose own correction strays
from it by more than the per-frame residual (:func:`refit_plan`), or whose search
failed on its correction, is refined again from the sweep's correction in a box the
size of that residual (``process_frame(..., start=...)``). The 1 mm fiducial rule is
then applied to the whole correction from the tracked pose, as the paper defines it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..transforms import invert_rigid, matrix_from_params, params_from_matrix
from ..vocabulary import Reason
from .geometry import fiducial_displacement_mm

__all__ = [
    "MIN_TREND_FRAMES",
    "REFIT_REASONS",
    "probe_corrections",
    "refit_plan",
    "residual_params",
    "sweep_trend",
    "trend_poses",
]

#: Fewest refined frames in a window for a local median; with fewer the window
#: widens to the whole sweep, and a sweep with fewer has no sweep correction.
MIN_TREND_FRAMES = 3
#: Pass-one outcomes refined again from the sweep's correction: the kept frames that
#: stray, and the frames whose own search went too far.
REFIT_REASONS = (
    Reason.OK.value,
    Reason.CORRECTION_TOO_LARGE.value,
    Reason.CORRECTION_AT_BOUND.value,
)


def probe_corrections(pose_initial, pose_refined) -> np.ndarray:
    """Return each frame's correction in its probe frame, as pose parameters.

    Parameters
    ----------
    pose_initial, pose_refined : ndarray of shape (n, 6)
        T_CT<-US as record parameters (mm, deg).

    Returns
    -------
    correction : ndarray of shape (n, 6)
        Parameters of ``inv(ct_from_probe_initial) @ ct_from_probe_refined``; NaN
        where either pose is not finite (rows never refined).

    Examples
    --------
    >>> pose = np.array([[10.0, 0, 0, 0, 0, 90.0]])
    >>> moved = pose + [[0.0, 1.0, 0, 0, 0, 0]]  # 1 mm along CT y
    >>> probe_corrections(pose, moved).round(6).tolist()  # probe x is CT y
    [[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
    """
    pose_initial = np.asarray(pose_initial, float).reshape(-1, 6)
    pose_refined = np.asarray(pose_refined, float).reshape(-1, 6)
    finite = np.isfinite(pose_initial).all(axis=1) & np.isfinite(pose_refined).all(1)
    out = np.full(pose_initial.shape, np.nan)
    if finite.any():
        ct_from_initial = matrix_from_params(pose_initial[finite])
        ct_from_refined = matrix_from_params(pose_refined[finite])
        out[finite] = params_from_matrix(
            invert_rigid(ct_from_initial) @ ct_from_refined
        )
    return out


def sweep_trend(times_ms, corrections, use, *, window_ms: float) -> np.ndarray:
    """Return the running median correction at every frame of a sweep.

    Parameters
    ----------
    times_ms : ndarray of shape (n,)
    corrections : ndarray of shape (n, 6)
        Probe-frame corrections (:func:`probe_corrections`).
    use : ndarray of shape (n,), bool
        Frames whose correction counts (refined and kept).
    window_ms : float
        Width of the window centred on each frame.

    Returns
    -------
    trend : ndarray of shape (n, 6)
        Component-wise median of the used corrections within the window (the whole
        sweep's where the window holds fewer than ``MIN_TREND_FRAMES``); NaN
        everywhere when the sweep has fewer.

    Examples
    --------
    >>> c = np.zeros((5, 6)); c[:, 0] = [0.1, 0.1, 5.0, 0.1, 0.1]
    >>> float(sweep_trend(np.arange(5) * 100, c, np.ones(5, bool), window_ms=500)[2, 0])
    0.1
    """
    times = np.asarray(times_ms, float)
    corrections = np.asarray(corrections, float)
    use = np.asarray(use, bool) & np.isfinite(corrections).all(axis=1)
    trend = np.full(corrections.shape, np.nan)
    if use.sum() < MIN_TREND_FRAMES:
        return trend
    overall = np.median(corrections[use], axis=0)
    t_used, c_used = times[use], corrections[use]
    for i, t in enumerate(times):
        near = np.abs(t_used - t) <= window_ms / 2
        local = near.sum() >= MIN_TREND_FRAMES
        trend[i] = np.median(c_used[near], axis=0) if local else overall
    return trend


def trend_poses(pose_initial, trend) -> np.ndarray:
    """Return the poses ``ct_from_probe_initial @ trend`` as record parameters."""
    ct_from_initial = matrix_from_params(np.asarray(pose_initial, float))
    return params_from_matrix(ct_from_initial @ matrix_from_params(trend))


def refit_plan(times_ms, pose_initial, pose_refined, reason, *, params, fiducials):
    """Choose the frames to refine again from the sweep's correction, and the start.

    Parameters
    ----------
    times_ms : ndarray of shape (n,)
    pose_initial, pose_refined : ndarray of shape (n, 6)
        The sweep's poses after refining each frame alone (record parameters).
    reason : ndarray of shape (n,), str
        The frames' reason codes after that pass.
    params : EngineParams
        ``sweep_window_s`` and ``sweep_residual_mm``.
    fiducials : ndarray of shape (m, 3)
        Probe fiducials, probe-marker frame, mm.

    Returns
    -------
    frames : ndarray of int
        Indices of the frames to refine again: those of ``REFIT_REASONS`` whose
        refined pose lies more than ``sweep_residual_mm`` (mean fiducial distance)
        from the sweep's correction, and every one that was not kept. Empty when
        the sweep has too few kept frames for a sweep correction.
    start : ndarray of shape (len(frames), 6)
        Their search starts: the tracked pose moved by the sweep's correction.
    """
    reason = np.asarray(reason).astype(str)
    kept = reason == Reason.OK.value
    corrections = probe_corrections(pose_initial, pose_refined)
    trend = sweep_trend(
        times_ms, corrections, kept, window_ms=1e3 * params.sweep_window_s
    )
    has = np.isfinite(trend).all(axis=1) & np.isin(reason, REFIT_REASONS)
    start = np.full(trend.shape, np.nan)
    start[has] = trend_poses(np.asarray(pose_initial, float)[has], trend[has])
    stray = np.zeros(len(reason), bool)
    stray[has & kept] = (
        fiducial_displacement_mm(
            start[has & kept], pose_refined[has & kept] - start[has & kept], fiducials
        )
        > params.sweep_residual_mm
    )
    frames = np.flatnonzero(has & (stray | ~kept))
    return frames, start[frames]


def residual_params(params):
    """Return ``params`` with the search box of a frame refined again.

    The box is the per-frame residual around the sweep's correction; the warm start
    is off (the start already is the sweep's correction).
    """
    return replace(
        params,
        bounds_mm=params.sweep_residual_mm,
        bounds_deg=params.sweep_residual_deg,
        warm_start_frames=0,
    )
