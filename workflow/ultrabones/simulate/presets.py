"""Cohort presets and the cohort-level truth every simulated stage shares.

The probe (its calibration T_US<-I, marker fiducials, image geometry) and the system
lag are properties of the acquisition system, so the Z-phantom recording and every
sweep of a cohort use the same true values, drawn once from the cohort seed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..io.calibration import Calibration, write_calibration
from ..layout import true_calibration
from ..transforms import matrix_from_params

__all__ = [
    "PRESETS",
    "Preset",
    "ProbeTruth",
    "SOURCE_NAMES",
    "Sources",
    "get_preset",
    "rng_for",
    "true_probe",
    "without",
    "write_true_calibration",
]

#: The public sample's probe calibration, used as the template of the simulated probe.
_PROBE_FROM_IMAGE_PARAMS = (
    26.44694442,
    -0.52572229,
    128.00100047,
    92.48865621,
    -0.46874914,
    179.2277322,
)
_PROBE_MARKER_FIDUCIALS_MM = (
    (-30.3539, -25.101, -0.4395),
    (25.7953, -25.101, -0.5479),
    (37.0174, -25.101, -28.2339),
    (-30.6348, -25.101, -57.3485),
)
_SPACING_MM = 0.05392


@dataclass(frozen=True)
class Sources:
    """Error sources and image physics outside the label engine's model (issue 16).

    Each is on by default; switching one off (:func:`without`) is an ablation. What
    each does, its physical basis and its source are in ``docs/simulator.md``.
    ``errors="none"`` (an exact record) also switches off the sources that make the
    record err: ``ct_segmentation``, ``sos_depth_scale`` and ``bone_drift``.

    Attributes
    ----------
    ct_segmentation : bool
        The surface that makes the image is not the CT model the pipeline receives.
    unmodelled_bone : bool
        A bone in view that has no CT model.
    cortical_echo : bool
        Thin cortical echo, 3D-incidence strength, partial shadows of oblique bone.
    reverberation : bool
        Reverberation tails below strong interfaces.
    elevational_slab : bool
        The echo integrates the beam's elevational thickness, not a plane.
    attenuation_tgc : bool
        Depth attenuation with a time-gain compensation that leaves a residual slope.
    tissue_texture : bool
        Muscle texture, fascia and tendon lines like the real frames.
    muscle_fibres : bool
        Muscle fascicle bundles: long, mostly lateral bright streaks, new every frame.
    near_bone_fascia : bool
        Lines 0-1 mm from the bone, as bright as oblique bone.
    sos_depth_scale : bool
        Speed of sound as a depth scale of the image (not a constant offset).
    recorded_motion : bool
        Probe speed and path like the real sweep's marker motion.
    bone_drift : bool
        Slow bone drift against the specimen marker over a sweep.
    """

    ct_segmentation: bool = True
    unmodelled_bone: bool = True
    cortical_echo: bool = True
    reverberation: bool = True
    elevational_slab: bool = True
    attenuation_tgc: bool = True
    tissue_texture: bool = True
    muscle_fibres: bool = True
    near_bone_fascia: bool = True
    sos_depth_scale: bool = True
    recorded_motion: bool = True
    bone_drift: bool = True


SOURCE_NAMES = tuple(f.name for f in fields(Sources))


@dataclass(frozen=True)
class Preset:
    """Size of a simulated cohort.

    Attributes
    ----------
    name : str
    specimens : tuple of str
    sweeps : tuple of str
        Sweep IDs per specimen; the bone is the part before the dash.
    frames_per_sweep : int
    image_size_px : tuple of int
        ``(width, height)``.
    pixel_spacing_mm : tuple of float
        ``(s_x, s_y)``.
    sources : Sources
        Error sources and image physics switched on.
    """

    name: str
    specimens: tuple[str, ...]
    sweeps: tuple[str, ...]
    frames_per_sweep: int
    image_size_px: tuple[int, int]
    pixel_spacing_mm: tuple[float, float]
    sources: Sources = field(default_factory=Sources)


PRESETS = {
    "tiny": Preset(
        "tiny",
        ("S01", "S02"),
        ("tibia-1", "fibula-1"),
        40,
        (475, 406),
        (2 * _SPACING_MM, 2 * _SPACING_MM),
    ),
    "paper": Preset(
        "paper",
        tuple(f"S{i:02d}" for i in range(1, 15)),
        tuple(f"{b}-{k}" for b in ("tibia", "fibula", "foot") for k in (1, 2, 3)),
        800,
        (950, 811),
        (_SPACING_MM, _SPACING_MM),
    ),
}


def get_preset(name: str) -> Preset:
    """Return the preset called ``name``; raise ConfigError naming the choices."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}"
        ) from None


def without(preset: Preset, *names: str) -> Preset:
    """Return ``preset`` with the named sources switched off (an ablation).

    Raises ConfigError naming the choices for an unknown source.
    """
    unknown = sorted(set(names) - set(SOURCE_NAMES))
    if unknown:
        raise ConfigError(
            f"unknown simulator source(s) {', '.join(unknown)}; expected any of "
            f"{', '.join(SOURCE_NAMES)}"
        )
    off = replace(preset.sources, **dict.fromkeys(names, False))
    return replace(preset, sources=off)


def rng_for(seed: int, *keys: str) -> np.random.Generator:
    """Return a generator seeded from ``seed`` and string keys (specimen, sweep, ...).

    Keys are hashed with CRC-32 (stable across processes, unlike ``hash``), so one sweep
    generated alone draws the same numbers as within a whole-cohort run.
    """
    words = [int(seed)] + [zlib.crc32(k.encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


@dataclass(frozen=True)
class ProbeTruth:
    """True acquisition-system properties of a cohort.

    Attributes
    ----------
    probe_from_image : ndarray of shape (4, 4)
        True T_US<-I (image plane mm to probe marker frame).
    dt_ms : float
        True lag: an image stamped t was acquired at tracker time t + dt, in [-300, 0).
    pixel_spacing_mm, image_size_px : tuple
    probe_marker_fiducials_mm : ndarray of shape (4, 3)
    """

    probe_from_image: np.ndarray
    dt_ms: float
    pixel_spacing_mm: tuple[float, float]
    image_size_px: tuple[int, int]
    probe_marker_fiducials_mm: np.ndarray


def true_probe(preset: Preset, seed: int) -> ProbeTruth:
    """Draw the cohort's true probe calibration and lag from ``seed``.

    The calibration is the public sample's, moved by a few mm and degrees so no cohort
    can be solved by copying the template.
    """
    rng = rng_for(seed, "probe")
    params = (
        np.asarray(_PROBE_FROM_IMAGE_PARAMS)
        + np.r_[rng.normal(0, 2, 3), rng.normal(0, 1.5, 3)]
    )
    # Lags away from the grid ends so that a +-2 ms estimate is always inside the grid.
    # Off the 0.1 ms grid on purpose: the truth need not be a candidate.
    dt_ms = float(rng.uniform(-280.0, -20.0))
    return ProbeTruth(
        matrix_from_params(params),
        dt_ms,
        preset.pixel_spacing_mm,
        preset.image_size_px,
        np.asarray(_PROBE_MARKER_FIDUCIALS_MM, dtype=np.float64),
    )


def write_true_calibration(cohort, truth: ProbeTruth) -> Path:
    """Write the cohort's true probe calibration and lag, in ``calibration.yaml`` keys.

    Parameters
    ----------
    cohort : str or Path
        The cohort folder; the file is its ``layout.true_calibration``.
    truth : ProbeTruth
        The cohort's truth (``true_probe``).

    Returns
    -------
    path : Path
        The file written.
    """
    path = true_calibration(cohort)
    path.parent.mkdir(parents=True, exist_ok=True)
    calibration = Calibration(
        truth.probe_from_image,
        truth.pixel_spacing_mm,
        truth.image_size_px,
        truth.probe_marker_fiducials_mm,
        {"dt_ms": truth.dt_ms},
    )
    write_calibration(
        path,
        calibration,
        comment="True probe calibration and lag of the simulated cohort.",
    )
    return path
