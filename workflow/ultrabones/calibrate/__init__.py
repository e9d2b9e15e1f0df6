"""Spatio-temporal probe calibration from a Z-phantom recording (issue 4).

Pipeline: :func:`~.dots.detect_dots` and :func:`~.dots.assign_triples` per frame,
:func:`~.zgeometry.middle_points_phantom` for the 3D points, then
:func:`~.lag.lag_grid` solves T_US<-I for every lag and keeps the least error.
See ``docs/calibration.md``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from ..errors import CalibrationError
from ..transforms import points_image_from_rc
from .dots import assign_triples, detect_dots
from .lag import LagCurve, covered_frames, lag_grid, paper_lag_grid
from .zgeometry import middle_points_phantom

__all__ = [
    "CalibrationResult",
    "LagCurve",
    "calibrate_recording",
    "frame_points",
    "paper_lag_grid",
]

log = logging.getLogger(__name__)

#: Fewer usable frames than this cannot separate lag from calibration.
MIN_FRAMES = 10


@dataclass(frozen=True)
class CalibrationResult:
    """Chosen calibration and the whole error curve.

    Attributes
    ----------
    probe_from_image : ndarray of shape (4, 4)
        T_US<-I at the chosen lag.
    dt_ms : float
        Chosen lag (image stamped t taken at tracker time t + dt).
    localization_error_mm, residual_mm : float
        Mean and RMS 3D distance at the chosen lag.
    curve : LagCurve
    n_frames, n_points : int
        Frames and middle-dot points used.
    grid_seconds : float
        Wall time of the lag grid search alone.
    """

    probe_from_image: np.ndarray
    dt_ms: float
    localization_error_mm: float
    residual_mm: float
    curve: LagCurve
    n_frames: int
    n_points: int
    grid_seconds: float


def frame_points(image, *, wires, spacing_mm, image_size_px) -> np.ndarray | None:
    """Return the middle dots of one frame in image mm and phantom frame, or None.

    Parameters
    ----------
    image : ndarray of shape (rows, cols)
    wires : ndarray of shape (k, 3, 2, 3)
    spacing_mm : tuple of float
    image_size_px : tuple of int
        Expected ``(width, height)``; a frame of another size is skipped.

    Returns
    -------
    points : ndarray of shape (2, k, 3) or None
        ``points[0]`` image-plane points, ``points[1]`` phantom points; None when the
        frame has the wrong size or its dots do not form the phantom's triples.
    """
    if image.shape != (image_size_px[1], image_size_px[0]):
        return None
    triples = assign_triples(
        detect_dots(image), n_patterns=wires.shape[0], spacing_mm=spacing_mm
    )
    if triples is None:
        return None
    points_image = points_image_from_rc(triples.reshape(-1, 2), spacing_mm)
    points_image = points_image.reshape(-1, 3, 3)
    return np.stack([points_image[:, 1], middle_points_phantom(points_image, wires)])


def _collect_points(recording, images) -> tuple[np.ndarray, np.ndarray]:
    stamps, points = [], []
    skipped = []
    for stamp, image in images:
        width, height = recording.device.image_size_px
        if image.shape != (height, width):
            log.warning(
                "%s/images/%d.png: image is %dx%d px, expected %dx%d; skipped",
                recording.root,
                stamp,
                image.shape[1],
                image.shape[0],
                width,
                height,
            )
        found = frame_points(
            image,
            wires=recording.phantom.wires,
            spacing_mm=recording.device.pixel_spacing_mm,
            image_size_px=recording.device.image_size_px,
        )
        if found is None:
            skipped.append(int(stamp))
            continue
        stamps.append(int(stamp))
        points.append(found)
    if skipped:
        log.warning(
            "%s: %d frame(s) skipped, wrong size or without the phantom's dot "
            "pattern (first stamps: %s)",
            recording.root,
            len(skipped),
            ", ".join(map(str, skipped[:10])),
        )
    k = recording.phantom.wires.shape[0]
    return np.asarray(stamps, dtype=np.int64), np.reshape(points, (-1, 2, k, 3))


#: Frames whose lag window meets a longer tracker dropout are left out (ms): about two
#: missed samples at 60 Hz; the lag search needs densely tracked frames. Config
#: ``calibrate.max_gap_ms``.
DEFAULT_MAX_GAP_MS = 50.0


def calibrate_recording(
    recording,
    images,
    *,
    dt_ms=None,
    max_gap_ms: float = DEFAULT_MAX_GAP_MS,
    refine_window_ms: float = 0.0,
) -> CalibrationResult:
    """Calibrate the probe in space and time from a Z-phantom recording.

    Parameters
    ----------
    recording : PhantomRecording
        From :func:`ultrabones.io.phantom.read_phantom_recording`.
    images : iterable of (int, ndarray)
        ``(stamp, image)`` pairs, e.g. read lazily from ``recording.image_paths``.
    dt_ms : ndarray of shape (d,), optional
        Candidate lags; default :func:`paper_lag_grid`.
    max_gap_ms : float
        Frames whose lag window overlaps a longer tracker dropout are left out.
    refine_window_ms : float
        Choose the grid lag nearest the vertex of a parabola fitted to the error
        curve within this distance of its minimum (:meth:`LagCurve.chosen`); 0 keeps
        the plain grid minimum.

    Returns
    -------
    result : CalibrationResult

    Raises
    ------
    CalibrationError
        If fewer than ``MIN_FRAMES`` frames have the dot pattern and tracking.
    """
    dt = paper_lag_grid() if dt_ms is None else np.asarray(dt_ms, dtype=np.float64)
    stamps, points = _collect_points(recording, images)
    keep = np.ones(stamps.size, dtype=bool)
    for name in ("probe", "phantom"):
        keep &= covered_frames(
            stamps, recording.streams[name], dt_ms=dt, max_gap_ms=max_gap_ms
        )
    if keep.sum() < MIN_FRAMES:
        raise CalibrationError(
            f"{recording.root}: {keep.sum()} frame(s) with the phantom's dot pattern "
            f"and tracking over the whole lag window; need at least {MIN_FRAMES}"
        )
    pts = points[keep]
    start = time.perf_counter()
    curve = lag_grid(
        stamps[keep],
        pts[:, 0],
        pts[:, 1],
        weights=np.ones(pts.shape[:1] + pts.shape[2:3]),
        streams=recording.streams,
        dt_ms=dt,
    )
    i = curve.chosen(window_ms=refine_window_ms)
    return CalibrationResult(
        curve.probe_from_image[i],
        float(curve.dt_ms[i]),
        float(curve.localization_error_mm[i]),
        float(curve.residual_mm[i]),
        curve,
        int(keep.sum()),
        int(pts.shape[0] * pts.shape[2]),
        time.perf_counter() - start,
    )
