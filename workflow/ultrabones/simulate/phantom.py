"""Z-phantom calibration recording: a moving probe over a wire phantom, with truth.

The phantom lies still in front of the tracker; the probe sweeps over it (translation
and tilt), so each tracker sample differs and the lag is identifiable. Images are
stamped on the image clock: the frame stamped t was acquired at tracker time
t + dt with the cohort's true lag (``true_probe``). Error model (``errors="paper"``):
per-dot localisation noise (beam width, wire echo shape), tracker jitter of both
markers and a few dropouts, sized so that the calibrated 3D localisation error is
about the paper's 1.07 mm. ``errors="none"`` removes all three.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from ..io.markers import write_marker_ini
from ..io.phantom import Device, ZPhantom, write_device, write_phantom
from ..io.png import write_png
from ..io.tracker import MarkerStream, write_tracker_stream
from ..layout import recording_folder
from ..transforms import apply_rigid, invert_rigid, matrix_from_params
from .presets import (
    Preset,
    get_preset,
    rng_for,
    true_probe,
    write_true_calibration,
)

__all__ = [
    "ERROR_MODELS",
    "ErrorModel",
    "draw_motion",
    "phantom_geometry",
    "phantom_from_image_path",
    "simulate_recording",
    "wire_points_image",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorModel:
    """Acquisition errors of a phantom recording.

    Attributes
    ----------
    dot_sigma_mm : tuple of float
        Dot centre noise (lateral = image x, axial = image y), mm.
    jitter_mm, jitter_deg : float
        Tracker noise per sample and marker (translation per axis, rotation per axis).
    dropouts : int
        Dropouts per marker stream (each 2 to 6 samples).
    """

    dot_sigma_mm: tuple[float, float]
    jitter_mm: float
    jitter_deg: float
    dropouts: int


ERROR_MODELS = {
    "paper": ErrorModel((0.38, 0.17), 0.08, 0.02, 3),
    "none": ErrorModel((0.0, 0.0), 0.0, 0.0, 0),
}

_TRACKER_HZ = 60.0
_IMAGE_PERIOD_MS = 40
_N_IMAGES = 800
_FIRST_IMAGE_MS = 600
_WIRE_HALF_LENGTH_MM = 20.0
_PATTERN_WIDTH_MM = 15.0
_PATTERN_X_MM = (6.0, 30.0)
_PATTERN_DEPTH_MM = (10.0, 20.0, 30.0)
_DOT_SIGMA_MM = (0.4, 0.25)
_PHANTOM_MARKER_MM = ((0, 0, 0), (50, 0, 0), (0, 60, 0), (45, 70, 10))
_PHANTOM_IN_TRACKER = (40.0, -60.0, -1500.0, 170.0, 5.0, -10.0)


def phantom_geometry() -> ZPhantom:
    """Return the simulated phantom: 3 depths x 2 columns of Z patterns.

    Wires run along the phantom's y axis at depth z; the probe images the x-z plane,
    so patterns are listed top to bottom (depth), then left to right (x).
    """
    h = _WIRE_HALF_LENGTH_MM
    names, wires = [], []
    for row, z in enumerate(_PATTERN_DEPTH_MM):
        for col, x in enumerate(_PATTERN_X_MM):
            x3 = x + _PATTERN_WIDTH_MM
            side1 = [[x, -h, z], [x, h, z]]
            diagonal = [[x, -h, z], [x3, h, z]]
            side3 = [[x3, -h, z], [x3, h, z]]
            names.append(f"z{row}{col}")
            wires.append([side1, diagonal, side3])
    return ZPhantom(tuple(names), np.asarray(wires, dtype=np.float64))


def draw_motion(rng) -> np.ndarray:
    """Draw the probe motion over the phantom: periods (s) and phases of 6 sines.

    Returns
    -------
    motion : ndarray of shape (2, 6)
        Row 0: periods of 1.5 to 4 s; row 1: phases (rad).
    """
    return np.stack([rng.uniform(1.5, 4.0, 6), rng.uniform(0, 2 * np.pi, 6)])


def phantom_from_image_path(times_ms, motion, *, image_size_mm) -> np.ndarray:
    """Return the true image pose over the phantom at tracker times (smooth motion).

    The image plane (x lateral, y depth) starts on the phantom's x-z plane and slides
    along the wires (y, +-10 mm) while tilting by up to 4 deg about a pivot at the
    image centre.

    Parameters
    ----------
    times_ms : ndarray of shape (n,)
    motion : ndarray of shape (2, 6)
        From :func:`draw_motion`.
    image_size_mm : tuple of float
        Image width and height, mm.

    Returns
    -------
    phantom_from_image : ndarray of shape (n, 4, 4)
    """
    t_s = np.asarray(times_ms, dtype=np.float64)[:, None] / 1000.0
    amplitude = np.array([4.0, 10.0, 4.0, 4.0, 4.0, 4.0])
    params = amplitude * np.sin(2 * np.pi * t_s / motion[0] + motion[1])
    pivot = np.eye(4)
    pivot[:3, 3] = [image_size_mm[0] / 2, 0.0, image_size_mm[1] / 2]
    nominal = np.array([[1.0, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
    return pivot @ matrix_from_params(params) @ invert_rigid(pivot) @ nominal


def wire_points_image(phantom: ZPhantom, phantom_from_image) -> np.ndarray:
    """Return where the image plane z = 0 crosses each wire, image mm.

    Parameters
    ----------
    phantom : ZPhantom
    phantom_from_image : ndarray of shape (4, 4)

    Returns
    -------
    points_image : ndarray of shape (k, 3, 3)
        Per pattern and wire; z is 0.
    """
    ends = apply_rigid(invert_rigid(phantom_from_image), phantom.wires)
    start, end = ends[..., 0, :], ends[..., 1, :]
    lam = start[..., 2] / (start[..., 2] - end[..., 2])
    return start + lam[..., None] * (end - start)


def _render(points_image, *, device: Device, rng) -> np.ndarray:
    """Render wire dots as blurred bright spots on a speckle background (uint8)."""
    width, height = device.image_size_px
    sx, sy = device.pixel_spacing_mm
    image = rng.rayleigh(14.0, (height, width))
    spikes = np.zeros((height, width))
    cols = np.clip(points_image[:, 0] / sx - 0.5, 0, width - 1)
    rows = np.clip(points_image[:, 1] / sy - 0.5, 0, height - 1)
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    fr, fc = rows - r0, cols - c0
    # Bilinear splat keeps the dot centre sub-pixel exact before blurring.
    for dr, dc, w in (
        (0, 0, (1 - fr) * (1 - fc)),
        (1, 0, fr * (1 - fc)),
        (0, 1, (1 - fr) * fc),
        (1, 1, fr * fc),
    ):
        np.add.at(
            spikes,
            (np.minimum(r0 + dr, height - 1), np.minimum(c0 + dc, width - 1)),
            w,
        )
    sigma = (_DOT_SIGMA_MM[1] / sy, _DOT_SIGMA_MM[0] / sx)
    dots = gaussian_filter(spikes, sigma) * 2 * np.pi * sigma[0] * sigma[1]
    image += 190.0 * dots * rng.uniform(0.8, 1.0)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _tracker_stream(stamps, tracker_from_marker, *, model: ErrorModel, rng):
    n = stamps.size
    noise = np.c_[
        rng.normal(0, model.jitter_mm, (n, 3)), rng.normal(0, model.jitter_deg, (n, 3))
    ]
    measured = tracker_from_marker @ matrix_from_params(noise)
    visible = np.ones(n, dtype=bool)
    for start in rng.integers(20, n - 20, model.dropouts):
        visible[start : start + rng.integers(2, 7)] = False
    measured[~visible] = np.nan
    return MarkerStream(stamps.astype(np.int64), measured, visible)


def simulate_recording(
    out_dir: str | Path,
    *,
    preset: Preset | str,
    seed: int,
    errors: str = "paper",
    recording: str = "zcal",
    frames: int | None = None,
) -> Path:
    """Write a Z-phantom recording and its truth into a cohort folder.

    Parameters
    ----------
    out_dir : str or Path
        Cohort folder; writes ``calibration/<recording>/`` and
        ``truth/calibration.yaml`` (true T_US<-I in calibration.yaml keys + ``dt_ms``).
    preset : Preset or str
    seed : int
        Cohort seed; the probe truth is ``true_probe(preset, seed)``, as in sweeps.
    errors : {"paper", "none"}
    recording : str
    frames : int, optional
        Number of images (default 800, 32 s at 25 Hz).

    Returns
    -------
    root : Path
        The recording folder.
    """
    preset = get_preset(preset) if isinstance(preset, str) else preset
    if errors not in ERROR_MODELS:
        raise ValueError(
            f"errors must be one of {sorted(ERROR_MODELS)}, got {errors!r}"
        )
    model = ERROR_MODELS[errors]
    truth = true_probe(preset, seed)
    # One stream, drawn in this order: stamps, tracker noise, then dots per image.
    rng = rng_for(seed, "calibration", recording)
    root = recording_folder(out_dir, recording)
    device = Device(truth.pixel_spacing_mm, truth.image_size_px)
    size_mm = np.multiply(device.image_size_px, device.pixel_spacing_mm)
    motion = draw_motion(rng_for(seed, "calibration", recording, "motion"))
    image_stamps, tracker_stamps = _stamps(rng, _N_IMAGES if frames is None else frames)
    streams = _streams(
        rng, tracker_stamps, motion, truth=truth, size_mm=size_mm, model=model
    )
    (root / "images").mkdir(parents=True, exist_ok=True)
    write_tracker_stream(root / "tracker.csv", streams)
    phantom_from_image = phantom_from_image_path(
        image_stamps + truth.dt_ms, motion, image_size_mm=size_mm
    )
    phantom = phantom_geometry()
    _write_images(
        root / "images", rng, image_stamps, phantom_from_image, phantom, device, model
    )
    _write_setup(root, phantom, device, truth)
    write_true_calibration(out_dir, truth)
    log.info(
        "%s: %d images, %d tracker samples",
        root,
        image_stamps.size,
        tracker_stamps.size,
    )
    return root


def _stamps(rng, n_images) -> tuple[np.ndarray, np.ndarray]:
    """Image stamps (ms, jittered around the image period) and tracker stamps (ms).

    The tracker runs from 0 to as long after the last image as the first image is
    after 0.
    """
    n_images = int(n_images)
    image_stamps = _FIRST_IMAGE_MS + _IMAGE_PERIOD_MS * np.arange(n_images)
    image_stamps += rng.integers(-3, 4, n_images)
    last_ms = image_stamps[-1] + _FIRST_IMAGE_MS
    tracker_stamps = np.round(np.arange(0, last_ms, 1000.0 / _TRACKER_HZ)).astype(int)
    return image_stamps, tracker_stamps


def _streams(rng, tracker_stamps, motion, *, truth, size_mm, model) -> dict:
    """Marker streams of the still phantom and the moving probe."""
    tracker_from_phantom = matrix_from_params(_PHANTOM_IN_TRACKER)
    probe_T = (
        tracker_from_phantom
        @ phantom_from_image_path(tracker_stamps, motion, image_size_mm=size_mm)
        @ invert_rigid(truth.probe_from_image)
    )
    return {
        "phantom": _tracker_stream(
            tracker_stamps,
            np.broadcast_to(tracker_from_phantom, (tracker_stamps.size, 4, 4)),
            model=model,
            rng=rng,
        ),
        "probe": _tracker_stream(tracker_stamps, probe_T, model=model, rng=rng),
    }


def _write_images(folder, rng, stamps, phantom_from_image, phantom, device, model):
    """Render and write one PNG per image stamp, wire dots moved by the dot noise."""
    for stamp, pose in zip(stamps, phantom_from_image, strict=True):
        points = wire_points_image(phantom, pose).reshape(-1, 3)
        points[:, :2] += rng.normal(0, 1, (points.shape[0], 2)) * model.dot_sigma_mm
        write_png(folder / f"{stamp}.png", _render(points, device=device, rng=rng))


def _write_setup(root: Path, phantom: ZPhantom, device: Device, truth) -> None:
    """Write the recording's phantom, device and marker geometry files."""
    (root / "markers").mkdir(exist_ok=True)
    write_phantom(root / "phantom.yaml", phantom)
    write_device(root / "device.yaml", device)
    write_marker_ini(
        root / "markers" / "probe.ini", 1000, truth.probe_marker_fiducials_mm
    )
    write_marker_ini(
        root / "markers" / "phantom.ini", 3000, np.array(_PHANTOM_MARKER_MM)
    )
