"""Probe paths over the bones, tracker streams and the acquisition error model.

The image plane is transverse to the bone (as in the real sample: both image axes are
nearly perpendicular to the fibula axis), the probe sits on the skin a few cm above
the bone and moves along it, with slow tilts and wobble: either at the real sweep's
recorded speeds, reversing at the segment's ends, or (``recorded_motion`` off) once
there and back at about 10 mm/s. Also here: the bones' slow drift against the
specimen marker and the speed-of-sound depth scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..io.tracker import MarkerStream
from ..transforms import fit_rigid, interpolate_rigid, invert_rigid, matrix_from_params

__all__ = [
    "ERROR_MODELS",
    "BoneDrift",
    "ErrorModel",
    "ProbePath",
    "Segment",
    "calibration_error",
    "depth_scale",
    "draw_drift",
    "draw_path",
    "tracker_streams",
]

IMAGE_PERIOD_MS = 88
TRACKER_HZ = 60.0
#: Speed along the bone of the plain cosine path (``recorded_motion`` off).
_SPEED_MM_S = 10.0
#: Recorded motion: median and log-SD of the speed along the bone, mm/s, set so the
#: record's probe-marker speed matches the real sweep's (all 1,110 poses of the
#: sample's sweep_initial.csv: median 14.8, 90th percentile 23.8 mm/s; tilts and
#: tracker jitter add to the along-bone speed). Measured, see docs/simulator.md.
_RECORDED_MEDIAN_MM_S = 13.0
_RECORDED_LOG_SD = 0.37
#: Correlation time of the recorded speed, path samples (20 ms each): the sample's
#: speed changes over about a second.
_RECORDED_SPEED_WIDTH = 50
_STANDOFF_MM = 80.0
#: Speeds of sound, m/s: the scanner's assumed value (device convention), fat and
#: muscle (literature: Duck 1990, "Physical Properties of Tissue").
C_ASSUMED_M_S = 1540.0
C_FAT_M_S = 1450.0
C_MUSCLE_M_S = 1580.0
#: Fat share of the path from skin to bone (subcutaneous fat 2-5 mm over 10-20 mm of
#: soft tissue in the renderer; thin muscle over the tibia's face raises it).
_FAT_FRACTION = (0.1, 0.6)
#: Bone drift against the specimen marker over a sweep, mm, and the largest rotation
#: about the scanned segment's centre, deg (K-wires hold the bone; issue 16).
_DRIFT_MM = (0.2, 0.45)
_DRIFT_DEG = 0.03
#: Creep time constant as a fraction of the sweep: fast at first, then settling.
_DRIFT_TAU = 0.5


@dataclass(frozen=True)
class ErrorModel:
    """Acquisition error sources of a sweep (see docs/simulator.md).

    Attributes
    ----------
    jitter_mm, jitter_deg : float
        White tracker noise per sample and marker, per axis.
    dropouts : int
        Dropout bursts per marker stream (2 to 6 samples each).
    calib_mm, calib_deg : tuple of 3 floats
        SDs of the translation error along and of the rotation error about the image
        axes (lateral, axial, elevational) of the calibration used for the record
        (per specimen).
    lag_offset_ms, lag_drift_ms : float
        SD of the lag estimate's constant error, amplitude of its slow drift.
    sphere_noise_mm, voxel_mm : float
        Segmentation noise and voxel size of the CT fiducial spheres.
    sphere_shift_mm : float
        Per-axis SD of each segmented sphere's displacement (streak and partial-volume
        artefacts of the metal-free spheres; what makes the registration err).
    """

    jitter_mm: float
    jitter_deg: float
    dropouts: int
    calib_mm: tuple[float, float, float]
    calib_deg: tuple[float, float, float]
    lag_offset_ms: float
    lag_drift_ms: float
    sphere_noise_mm: float
    voxel_mm: float
    sphere_shift_mm: float

    @property
    def exact(self) -> bool:
        """True when every source is off (record poses are then the truth)."""
        return not any(np.any(getattr(self, f)) for f in self.__dataclass_fields__)


#: The rigid error a Z-phantom calibration leaves, per image axis (lateral, axial,
#: elevational): mm along, deg about. Measured: the RMS over 12 simulated paper
#: recordings of ``ultrabones calibrate`` (3D error 1.10 mm, the paper's 1.07 mm;
#: docs/results/calibration_error.md). The paper's 1.07 mm is that 3D point error,
#: not the transform's: the wire dots are located to ~1 mm, the fit to 4,458 of them
#: pins the transform far better, least in elevation and about the axial axis.
CALIBRATION_ERROR_MM = (0.01, 0.01, 0.075)
CALIBRATION_ERROR_DEG = (0.10, 0.17, 0.02)

ERROR_MODELS = {
    "paper": ErrorModel(
        0.12,
        0.03,
        3,
        CALIBRATION_ERROR_MM,
        CALIBRATION_ERROR_DEG,
        4.0,
        6.0,
        0.15,
        0.5,
        0.15,
    ),
    "none": ErrorModel(0.0, 0.0, 0, (0.0,) * 3, (0.0,) * 3, 0.0, 0.0, 0.0, 0.0, 0.0),
}


@dataclass(frozen=True)
class ProbePath:
    """Smooth true pose of the image plane over tracker time.

    Attributes
    ----------
    knots_ms : ndarray of shape (k,)
    ct_from_image : ndarray of shape (k, 4, 4)
        Dense samples, interpolated (slerp) at query times.
    """

    knots_ms: np.ndarray
    ct_from_image: np.ndarray

    def at(self, t_ms) -> np.ndarray:
        """Return ct_from_image at tracker times ``t_ms`` (m, 4, 4)."""
        return interpolate_rigid(self.knots_ms, self.ct_from_image, t_ms)


def _smooth_noise(rng, n: int, scale: float, width: float) -> np.ndarray:
    x = gaussian_filter1d(rng.normal(size=n + 200), width, mode="wrap")[100:-100]
    # The SD of Gaussian-filtered white noise, not the sample's: short paths would
    # otherwise blow a nearly constant segment up to a large offset.
    return scale * x * np.sqrt(2 * np.sqrt(np.pi) * width)


def _along_cosine(rng, t, length: float, duration_ms: float) -> np.ndarray:
    """Position (mm) on a segment: there and back once, ``(1 - cos)/2`` profile."""
    half = min(length, _SPEED_MM_S * duration_ms / 2000.0)
    s0 = rng.uniform(0, length - half)
    return s0 + half * (1 - np.cos(2 * np.pi * np.clip(t / duration_ms, 0, 1))) / 2


def _along_recorded(rng, t, length: float) -> np.ndarray:
    """Position (mm) on a segment at log-normal, slowly varying recorded speeds.

    The probe starts anywhere, in either direction, and turns at the segment's ends.
    """
    log_speed = _smooth_noise(rng, t.size, _RECORDED_LOG_SD, _RECORDED_SPEED_WIDTH)
    speed = _RECORDED_MEDIAN_MM_S * np.exp(log_speed)
    step = speed * np.diff(t, prepend=t[0]) / 1000.0
    travelled = rng.uniform(0, 2 * length) + np.cumsum(step)
    folded = np.mod(travelled, 2 * length)
    return np.where(folded > length, 2 * length - folded, folded)


@dataclass(frozen=True)
class Segment:
    """The scanned stretch of a bone axis and the beam direction of a sweep.

    ``start_leg`` and ``end_leg`` (shape (3,), leg frame, mm) are the stretch's ends;
    ``look_leg`` (shape (3,), leg frame) is the beam direction, skin to bone,
    perpendicular to the stretch.
    """

    start_leg: np.ndarray
    end_leg: np.ndarray
    look_leg: np.ndarray


def draw_path(
    rng,
    *,
    scene,
    ct_from_leg,
    segment: Segment,
    duration_ms: float,
    width_mm: float,
    recorded: bool = True,
) -> ProbePath:
    """Draw a probe path along a bone segment.

    Parameters
    ----------
    segment : Segment
        The scanned stretch of the bone axis and the beam direction.
    duration_ms : float
    width_mm : float
        Image width, to centre the image over the bone.
    recorded : bool
        Move at the real sweep's speeds, back and forth (``recorded_motion``);
        otherwise once there and back at about 10 mm/s.
    """
    import open3d as o3d

    t = np.arange(0.0, duration_ms + 1000.0, 20.0) - 500.0
    n = t.size
    axis = segment.end_leg - segment.start_leg
    full_len = np.linalg.norm(axis)
    s = (
        _along_recorded(rng, t, full_len)
        if recorded
        else _along_cosine(rng, t, full_len, duration_ms)
    )
    along = segment.start_leg + axis / full_len * s[:, None]
    look = segment.look_leg / np.linalg.norm(segment.look_leg)
    lateral = np.cross(axis / full_len, look)
    along = along + lateral * _smooth_noise(rng, n, 2.0, 60)[:, None]
    R = ct_from_leg[:3, :3]
    # The shallowest bone under the whole image width sets the skin, so the probe
    # never sits inside a flaring bone end.
    spread = np.linspace(-0.5, 0.5, 9)[:, None, None] * width_mm * lateral
    far = (along[None] + spread - _STANDOFF_MM * look).reshape(-1, 3)
    far = far @ R.T + ct_from_leg[:3, 3]
    rays = np.c_[far, np.broadcast_to(R @ look, far.shape)].astype(np.float32)
    hit = scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy().astype(float)
    hit = np.where(np.isfinite(hit), hit, _STANDOFF_MM).reshape(9, n).min(axis=0)
    depth = rng.uniform(10.0, 18.0) + _smooth_noise(rng, n, 2.0, 80)
    skin = -gaussian_filter1d(-hit, 8.0) - depth
    origin = along - look * (_STANDOFF_MM - skin)[:, None] - lateral * width_mm / 2
    leg_from_image = np.tile(np.eye(4), (n, 1, 1))
    leg_from_image[:, :3, 0] = lateral
    leg_from_image[:, :3, 1] = look
    leg_from_image[:, :3, 2] = np.cross(lateral, look)
    leg_from_image[:, :3, 3] = origin
    tilt = np.stack([_smooth_noise(rng, n, s, 70) for s in (3.0, 2.0, 4.0)], axis=1)
    centre = matrix_from_params(np.r_[width_mm / 2, 0, 0, 0, 0, 0])
    wobble = centre @ matrix_from_params(np.c_[np.zeros((n, 3)), tilt])
    leg_from_image = leg_from_image @ wobble @ invert_rigid(centre)
    return ProbePath(t, ct_from_leg @ leg_from_image)


def calibration_error(rng, model: ErrorModel) -> np.ndarray:
    """Draw the rigid error (image frame) of the calibration used for a record.

    Translations ``calib_mm`` along and rotations ``calib_deg`` about the image axes.
    """
    sd = np.r_[model.calib_mm, model.calib_deg]
    return matrix_from_params(rng.normal(0.0, sd))


def depth_scale(rng) -> float:
    """Draw the true-over-displayed depth ratio of a sweep, ``c_tissue / c_assumed``.

    The scanner converts echo time to depth with 1540 m/s; the tissue over the bone,
    a mix of fat and muscle, has its own speed (the harmonic mean by path share, as
    travel times add), so every displayed depth is scaled by this factor.

    Examples
    --------
    >>> 0.97 < depth_scale(np.random.default_rng(0)) < 1.03
    True
    """
    fat = rng.uniform(*_FAT_FRACTION)
    c_tissue = 1.0 / (fat / C_FAT_M_S + (1.0 - fat) / C_MUSCLE_M_S)
    return float(c_tissue / C_ASSUMED_M_S)


@dataclass(frozen=True)
class BoneDrift:
    """Slow rigid creep of the bones against the specimen marker during a sweep.

    Attributes
    ----------
    centre_ct : ndarray of shape (3,)
        Pivot of the rotation (the scanned segment's centre), CT frame, mm.
    shift_mm : ndarray of shape (3,)
        Translation reached at the end of the sweep.
    rotation_deg : ndarray of shape (3,)
        Small rotation (Euler xyz) reached at the end of the sweep.
    duration_ms : float
        The sweep's length in tracker time, from its first sample.
    """

    centre_ct: np.ndarray
    shift_mm: np.ndarray
    rotation_deg: np.ndarray
    duration_ms: float

    def at(self, t_ms) -> np.ndarray:
        """Return ``ct_from_bone`` (m, 4, 4) at times ``t_ms`` since the sweep began.

        Maps a point of the bone's CT model to where the bone is at that time, in
        the CT frame the specimen marker defines (identity at the start).
        """
        tau = np.clip(np.asarray(t_ms, dtype=np.float64) / self.duration_ms, 0, 1)
        creep = (1 - np.exp(-tau / _DRIFT_TAU)) / (1 - np.exp(-1 / _DRIFT_TAU))
        about = matrix_from_params(np.r_[self.centre_ct, 0.0, 0.0, 0.0])
        move = matrix_from_params(
            np.c_[np.outer(creep, self.shift_mm), np.outer(creep, self.rotation_deg)]
        )
        return about @ move @ invert_rigid(about)


def draw_drift(rng, *, centre_ct, duration_ms: float) -> BoneDrift:
    """Draw a sweep's bone drift: 0.2-0.45 mm in a random direction, <= 0.03 deg."""
    direction = rng.normal(size=3)
    axis = rng.normal(size=3)
    return BoneDrift(
        np.asarray(centre_ct, dtype=np.float64),
        rng.uniform(*_DRIFT_MM) * direction / np.linalg.norm(direction),
        rng.uniform(0, _DRIFT_DEG) * axis / np.linalg.norm(axis),
        float(duration_ms),
    )


def tracker_streams(
    rng, *, stamps, tracker_from_probe, tracker_from_specimen, model: ErrorModel
) -> dict[str, MarkerStream]:
    """Sample both markers with white jitter and dropouts."""
    out = {}
    markers = (("probe", tracker_from_probe), ("specimen", tracker_from_specimen))
    for name, tracker_from_marker in markers:
        n = stamps.size
        noise = np.c_[
            rng.normal(0, 1, (n, 3)) * model.jitter_mm,
            rng.normal(0, 1, (n, 3)) * model.jitter_deg,
        ]
        noisy = tracker_from_marker @ matrix_from_params(noise)
        visible = np.ones(n, dtype=bool)
        for start in rng.integers(20, max(n - 20, 21), model.dropouts):
            visible[start : start + rng.integers(2, 7)] = False
        noisy[~visible] = np.nan
        out[name] = MarkerStream(stamps.astype(np.int64), noisy, visible)
    return out


def stream_at(stream: MarkerStream, t_ms) -> np.ndarray:
    """Interpolate the visible samples of a stream at ``t_ms``."""
    v = stream.visible
    return interpolate_rigid(stream.timestamps[v], stream.tracker_from_marker[v], t_ms)


def sphere_fit(points) -> np.ndarray:
    """Least-squares sphere centre of surface points (algebraic fit)."""
    A = np.c_[2 * points, np.ones(len(points))]
    b = (points**2).sum(axis=1)
    return np.linalg.lstsq(A, b, rcond=None)[0][:3]


def estimate_registration(marker_mm, sphere_points) -> np.ndarray:
    """ct_from_specimen from the sphere centres fitted to the segmented surfaces."""
    centres = np.array([sphere_fit(p) for p in sphere_points])
    return fit_rigid(marker_mm, centres)
