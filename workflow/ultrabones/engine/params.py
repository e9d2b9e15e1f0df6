"""Engine parameters and the per-frame result record."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import ParameterError
from ..vocabulary import MASKS

#: Sign each coefficient must have (the model is monotone in every feature).
CONFIDENCE_SIGNS = (1.0, 1.0, -1.0, -1.0)

__all__ = ["MOTIONS", "OBJECTIVES", "REFINEMENTS", "EngineParams", "FrameResult"]

#: Objectives the refinement can maximise (see ``docs/engine.md``).
OBJECTIVES = ("robust", "eq3", "authors")
#: Refinement modes: each frame alone (the paper) or consistent along the sweep.
REFINEMENTS = ("frame", "sweep")
#: Motions the robust objective's search explores: the image moving within its own
#: plane about the bone, or every rigid motion (the paper's six offsets).
MOTIONS = ("in_plane", "rigid")

#: Smallest surface sample spacing (mm): the model's samples, and so its memory, grow
#: as 1/spacing^2 (about 1-8 M samples at the default 0.25 mm; 0.02 mm took 14 GiB).
MIN_SAMPLE_SPACING_MM = 0.1

#: Default confidence model: intercept and the coefficients of the standardised
#: ``evidence_per_mm``, ``inside_fraction``, ``at_bound``, ``neighbour_mm`` (per mm),
#: fitted on 194 simulated frames of 9 cohorts with injected failures
#: (``docs/results/confidence.md``).
CONFIDENCE_MODEL = (3.437, 1.746, 1.255, 0.0, -0.867)


@dataclass(frozen=True)
class EngineParams:
    """Every setting that changes the engine's results.

    Attributes
    ----------
    gamma_mm : float
        Label half-width: a pixel is labelled when its CT point lies within
        ``gamma_mm`` of a bone surface.
    bounds_deg, bounds_mm : float
        Search box of the perturbation added to the Euler angles (deg) and the
        translation (mm) of the pose.
    lam : float
        Weight of the mean probe-fiducial displacement (per mm) in the objective.
    objective : {"robust", "eq3", "authors"}
        ``robust`` (default), the paper's Eq. 3 as printed, or the authors' public
        implementation (``engine.objective``; its own band and penalty weight).
    max_correction_mm : float
        Frames whose mean fiducial correction exceeds this are discarded.
    max_incidence_deg : float
        Label pixels with a larger incidence angle are dropped as oblique.
    sample_spacing_mm : float
        Edge length of the surface sampling of the specimen model.
    sigma_mm : float
        Width of the soft plane membership of the robust objective.
    min_label_px : int
        Fewer refined label pixels than this rejects the frame.
    popsize, maxiter, tol : int, int, float
        Differential evolution settings (scipy semantics).
    coarse_points : int
        Surface samples used by the coarse (DE) stage.
    reject_at_bound : bool
        Also reject frames whose correction ends on the search box's edge
        (``correction_at_bound``). Off by default: on the simulator most such frames
        have labels as good as the rest (see ``docs/engine.md``).
    warm_start_frames : int
        Pilot frames of a sweep refined first; their median correction seeds every
        frame's search (``engine.warm``). 0: every frame alone, as in the paper.
    min_confidence : float
        Frames whose sweep-level confidence (``sweep.confidence_check``) is below
        this are discarded (``low_confidence``). 0 keeps every frame the other
        rules keep.
    confidence_model : tuple of 5 float
        Logistic model of the confidence: intercept, then the coefficients of the
        standardised ``evidence_per_mm`` (>= 0), ``inside_fraction`` (>= 0),
        ``at_bound`` (<= 0) and ``neighbour_mm`` (<= 0, per mm); fitted on the
        simulator (``docs/results/confidence.md``).
    refinement : {"sweep", "frame"}
        ``sweep``: after every frame is refined alone, each frame whose correction
        strays from the sweep's running median correction (probe frame) by more
        than ``sweep_residual_mm``, or that failed on its correction, is refined
        again in a box of ``sweep_residual_mm``/``sweep_residual_deg`` around that
        median (``engine.consistency``); ``frame``: each frame alone, as the paper.
    sweep_window_s : float
        Width of the running median along the sweep (s).
    sweep_residual_mm, sweep_residual_deg : float
        Largest per-frame departure from the sweep's correction: the outlier
        threshold (mean fiducial distance, mm) and the re-refinement box.
    evidence_smoothing_px : float
        Gaussian smoothing of the evidence map before it is normalised (sigma,
        binned pixels; ``engine.features``).
    evidence_percentiles : (float, float)
        Percentiles of the smoothed frame that map to 0 (speckle level) and 1 (a
        bright echo) in the evidence map.
    shadow_window_mm : (float, float)
        Depth window below a pixel whose mean brightness is subtracted from it: the
        acoustic shadow a bone casts (mm).
    evidence_offset : float
        Evidence subtracted everywhere, and the evidence of points outside the
        image: plain tissue must cost, or a sum over more surface rewards drifting
        onto speckle and fascia.
    evidence_downsample : int
        Block-averaging factor of the evidence map (0.108 mm pixels on real frames).
    facing_min : float
        Surface samples whose unit normal points towards the transducer (image -y)
        by more than this face the probe; only they count in the robust objective
        and the confidence's ``inside_fraction``.
    shadow_margin_mm : float
        Surface samples deeper than their scan line's first bone interface (at the
        initial pose) by more than this lie in that bone's acoustic shadow and are
        left out of the robust objective (mm; covers the pose error).
    max_miss_mm : float
        Farthest the bone may lie from the image at the initial pose for the frame
        to be refined (mm); else ``no_bone_in_view``.
    fine_points : int
        Surface samples used by the fine (compass) stage of the robust objective.
    flat_ratio : float
        Image motions whose information is below this fraction of the best-pinned
        one are flat: the pull-back moves the correction along them to where the
        probe fiducials move least (``geometry.flat_directions``).
    pull_back_fraction : float
        The pull-back undoes components of the correction while the objective loses
        less than this fraction of the refinement's gain.
    motion : {"in_plane", "rigid"}
        What the robust objective's search moves: ``in_plane``, the image within its
        own plane about the bone in view (lateral and axial shift, rotation about
        the plane's normal; ``bounds_mm``/``bounds_deg`` apply to these), keeping
        the tracked elevation and tilts, which one image of a long bone does not pin
        (``docs/results/pose_error.md``); ``rigid``: the six pose offsets, as the
        paper. ``eq3`` and ``authors`` always search the six offsets.
    bone_weight : float
        Weight of the imaged bone's displacement beside the probe fiducials' (which
        share weight 1) in the robust objective's penalty; 0 is Eq. 3's term alone.
    seed : int
        Base seed; ``process_frame`` combines it with the frame seed.
    """

    gamma_mm: float = 0.3
    bounds_deg: float = 1.0
    bounds_mm: float = 1.0
    lam: float = 3.0
    objective: str = "robust"
    max_correction_mm: float = 1.0
    max_incidence_deg: float = 85.0
    sample_spacing_mm: float = 0.25
    sigma_mm: float = 0.25
    min_label_px: int = 50
    popsize: int = 6
    maxiter: int = 20
    tol: float = 0.01
    coarse_points: int = 1500
    reject_at_bound: bool = False
    warm_start_frames: int = 12
    min_confidence: float = 0.5
    confidence_model: tuple = CONFIDENCE_MODEL
    refinement: str = "sweep"
    sweep_window_s: float = 10.0
    sweep_residual_mm: float = 0.3
    sweep_residual_deg: float = 0.3
    evidence_smoothing_px: float = 1.0
    evidence_percentiles: tuple = (50.0, 99.5)
    shadow_window_mm: tuple = (0.4, 3.0)
    evidence_offset: float = 0.15
    evidence_downsample: int = 2
    facing_min: float = 0.1
    shadow_margin_mm: float = 1.5
    max_miss_mm: float = 2.0
    fine_points: int = 8000
    flat_ratio: float = 0.05
    pull_back_fraction: float = 0.1
    bone_weight: float = 1.0
    motion: str = "in_plane"
    seed: int = 0

    def __post_init__(self):
        """Check the values; raise ``ParameterError`` naming the parameter."""
        if self.objective not in OBJECTIVES:
            raise ParameterError(
                f"objective must be one of {OBJECTIVES}, got {self.objective!r}"
            )
        if self.refinement not in REFINEMENTS:
            raise ParameterError(
                f"refinement must be one of {REFINEMENTS}, got {self.refinement!r}"
            )
        if self.motion not in MOTIONS:
            raise ParameterError(
                f"motion must be one of {MOTIONS}, got {self.motion!r}"
            )
        positive = ("gamma_mm", "sigma_mm", "max_correction_mm")
        for name in (*positive, "sweep_window_s", "sweep_residual_mm"):
            if not getattr(self, name) > 0:
                raise ParameterError(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.sample_spacing_mm >= MIN_SAMPLE_SPACING_MM:
            raise ParameterError(
                f"sample_spacing_mm must be >= {MIN_SAMPLE_SPACING_MM} mm (the model's "
                f"memory grows as 1/spacing^2), got {self.sample_spacing_mm}"
            )
        if self.warm_start_frames < 0:
            raise ParameterError(
                f"warm_start_frames must be >= 0, got {self.warm_start_frames}"
            )
        if min(self.lam, self.bounds_deg, self.bounds_mm, self.sweep_residual_deg) < 0:
            raise ParameterError(
                "lam, bounds_deg, bounds_mm and sweep_residual_deg must be >= 0"
            )
        if not 0 <= self.min_confidence <= 1:
            raise ParameterError(
                f"min_confidence must be in [0, 1], got {self.min_confidence}"
            )
        _check_model(self.confidence_model)
        # lists arrive from JSON and the command line; tuples keep the params hashable
        for name in ("confidence_model", *_PAIRS):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        _check_heuristics(self)

    def to_dict(self) -> dict:
        """Return the parameters as a plain dict (for store attrs and JSON).

        Tuples become lists, so the dict equals its own JSON round trip (the
        resumable work folder compares plans that way).
        """
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()
        }


#: Pair-valued parameters and the interval their two values must lie in, in order.
_PAIRS = {"evidence_percentiles": (0.0, 100.0), "shadow_window_mm": (0.0, np.inf)}
#: Parameters and the half-open interval ``[lo, hi)`` they must lie in.
_RANGES = {
    "evidence_smoothing_px": (0.0, np.inf),
    "evidence_offset": (0.0, 1.0),
    "evidence_downsample": (1, np.inf),
    "facing_min": (0.0, 1.0),
    "shadow_margin_mm": (0.0, np.inf),
    "max_miss_mm": (0.0, np.inf),
    "fine_points": (1, np.inf),
    "flat_ratio": (0.0, 1.0),
    "pull_back_fraction": (0.0, 1.0),
    "bone_weight": (0.0, np.inf),
}


def _check_heuristics(params) -> None:
    """Check the heuristic constants' ranges and pairs (``lo <= a < b <= hi``)."""
    for name, (lo, hi) in _RANGES.items():
        value = getattr(params, name)
        if not lo <= value < hi:
            raise ParameterError(f"{name} must be in [{lo}, {hi}), got {value}")
    for name, (lo, hi) in _PAIRS.items():
        pair = getattr(params, name)
        if len(pair) != 2 or not lo <= pair[0] < pair[1] <= hi:
            raise ParameterError(
                f"{name} must be two values with {lo} <= first < second <= {hi}, "
                f"got {pair}"
            )


def _check_model(model) -> None:
    """Check the confidence model's length and the signs that keep it monotone."""
    if len(model) != 1 + len(CONFIDENCE_SIGNS):
        raise ParameterError(
            f"confidence_model must have {1 + len(CONFIDENCE_SIGNS)} values, "
            f"got {len(model)}"
        )
    wrong = [i for i, s in enumerate(CONFIDENCE_SIGNS, 1) if float(model[i]) * s < 0]
    if wrong:
        raise ParameterError(
            f"confidence_model coefficients {wrong} have the wrong sign "
            f"(expected signs {CONFIDENCE_SIGNS}), got {tuple(model)}"
        )


def _empty_masks(shape) -> dict:
    return {name: np.zeros(shape, dtype=bool) for name in MASKS}


@dataclass
class FrameResult:
    """The engine's output for one frame.

    Attributes
    ----------
    reason : str
        ``"ok"`` when kept, else a :class:`~ultrabones.vocabulary.Reason` code.
    pose_initial, pose_refined : ndarray of shape (6,)
        T_CT<-US as ``x, y, z`` (mm), ``euler_x, euler_y, euler_z`` (deg, "xyz").
    fiducial_correction_mm : float
        Mean displacement of the probe fiducials between the two poses.
    objective_initial, objective_refined : float
        Objective at the initial and the refined pose (NaN when not evaluated).
    evaluations : int
        Objective evaluations used.
    confidence : float
        Estimated probability that the label is right, in (0, 1), of the frame
        alone (``engine.confidence``); NaN when the frame was not refined.
    confidence_features : ndarray of shape (4,)
        The features of ``engine.confidence.FEATURES`` (``neighbour_mm`` 0);
        NaN when the frame was not refined.
    masks : dict of str to ndarray of shape (rows, cols), bool
        ``full_initial``, ``full_refined``, ``shadow``, ``oblique``, ``label``;
        all False when the frame is rejected.
    """

    reason: str
    pose_initial: np.ndarray
    pose_refined: np.ndarray
    fiducial_correction_mm: float = float("nan")
    objective_initial: float = float("nan")
    objective_refined: float = float("nan")
    evaluations: int = 0
    confidence: float = float("nan")
    confidence_features: np.ndarray = field(default_factory=lambda: np.full(4, np.nan))
    masks: dict = field(default_factory=dict)

    @property
    def kept(self) -> bool:
        """True when the frame is kept (reason ``ok``)."""
        return self.reason == "ok"
