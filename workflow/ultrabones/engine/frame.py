"""``process_frame``: one frame from image and pose to refined pose and labels."""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np

from ..transforms import check_rigid, params_from_matrix
from ..vocabulary import Reason
from .confidence import FEATURES, confidence_score, frame_features
from .features import feature_maps
from .geometry import (
    FrameGeometry,
    fiducial_displacement_mm,
    flat_directions,
    frame_geometry,
    plane_reach_mm,
    select_samples,
)
from .labels import first_interface_mm, oblique_mask, render_label, shadow_mask
from .model import SpecimenModel
from .objective import (
    AUTHORS_BAND_MM,
    AUTHORS_LAM,
    AuthorsObjective,
    Eq3Objective,
    RobustObjective,
    Surface,
)
from .params import EngineParams, FrameResult, _empty_masks
from .refine import IN_PLANE, refine

__all__ = ["FrameRejected", "process_frame"]

log = logging.getLogger(__name__)


class _Search(NamedTuple):
    """Where a frame's search starts and what drives it.

    The sweep's warm start (``prior``), a start pose (``start``) and the frame's
    random generator (``rng``).
    """

    prior: np.ndarray | None
    start: np.ndarray | None
    rng: np.random.Generator


class _Problem(NamedTuple):
    """One frame's refinement: the model samples within reach of its plane.

    ``index`` holds the samples' model rows, ``pts`` their points in the frame of
    ``geom`` (the search's origin); ``image`` is the checked frame.
    """

    model: SpecimenModel
    geom: FrameGeometry
    index: np.ndarray
    pts: np.ndarray
    image: np.ndarray
    calibration: object
    params: EngineParams


class FrameRejected(Exception):
    """Internal signal: the frame is rejected with ``reason``."""

    def __init__(self, reason: Reason, message: str = ""):
        super().__init__(message or reason.value)
        self.reason = reason


def _check_pose(ct_from_probe) -> np.ndarray:
    try:
        ct_from_probe = check_rigid(ct_from_probe, name="ct_from_probe", tol=1e-5)
    except ValueError as err:
        raise FrameRejected(Reason.INVALID_POSE, str(err)) from err
    if ct_from_probe.shape != (4, 4):
        raise FrameRejected(
            Reason.INVALID_POSE, f"ct_from_probe shape {ct_from_probe.shape}"
        )
    return params_from_matrix(ct_from_probe)


def _check_image(image, shape) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 2:
        raise FrameRejected(
            Reason.UNREADABLE_IMAGE, f"image must be 2-D uint8, got {arr.dtype}"
        )
    if arr.shape != tuple(shape):
        raise FrameRejected(
            Reason.WRONG_IMAGE_SIZE, f"image shape {arr.shape}, expected {shape}"
        )
    return arr


def _samples(model, geom, params):
    reach = plane_reach_mm(
        geom.pose,
        geom.probe_from_image,
        geom.extent_mm,
        bounds_mm=params.bounds_mm,
        bounds_deg=params.bounds_deg,
    )
    slab = reach + 3 * params.sigma_mm + model.spacing_mm
    index, pts = select_samples(model, geom, slab_mm=slab, margin_mm=slab)
    w, h = geom.extent_mm
    inside = (pts[:, 0] >= 0) & (pts[:, 0] <= w) & (pts[:, 1] >= 0) & (pts[:, 1] <= h)
    if not np.any(inside & (np.abs(pts[:, 2]) <= params.max_miss_mm)):
        raise FrameRejected(Reason.NO_BONE_IN_VIEW, "no bone within reach of the image")
    return index, pts


def _lit(points_image, full, spacing_mm, *, margin_mm) -> np.ndarray:
    """Return which samples are not in the shadow of a shallower bone.

    ``full`` is the full label at the initial pose: in each column its first
    labelled pixel is the first interface the beam meets; a sample more than
    ``margin_mm`` deeper is in its shadow. Samples outside the image's columns
    count as lit.
    """
    depth = first_interface_mm(full, spacing_mm)
    col = np.floor(points_image[:, 0] / spacing_mm[0]).astype(np.int64)
    inside = (col >= 0) & (col < depth.size)
    limit = np.where(inside, depth[np.clip(col, 0, depth.size - 1)], np.inf)
    return points_image[:, 1] <= limit + margin_mm


def _robust(problem: _Problem, rng, full, prior):
    """Refine the robust objective on the lit, facing samples, warm from ``prior``."""
    model, geom, index, pts, image, calibration, params = problem
    normals = model.normals[index] @ geom.image_from_ct[:3, :3].T
    lit = _lit(pts, full, geom.spacing_mm, margin_mm=params.shadow_margin_mm)
    keep = (normals[:, 1] < -params.facing_min) & lit
    facing, weights = pts[keep], model.weights[index[keep]]
    facing_normals = normals[keep]
    maps = feature_maps(image, spacing_mm=geom.spacing_mm, params=params)
    centre = _pivot(facing, weights)
    kw = dict(sigma_mm=params.sigma_mm, lam=params.lam) | _penalty_points(
        geom, centre, calibration.probe_marker_fiducials_mm, params.bone_weight
    )
    surface = Surface(facing, facing_normals, weights)
    fine = _subset_objective(geom, surface, maps, kw, params.fine_points, rng)
    coarse = _subset_objective(geom, surface, maps, kw, params.coarse_points, rng)
    flat = flat_directions(
        facing,
        facing_normals,
        weights,
        centre,
        sigma_mm=params.sigma_mm,
        ratio=params.flat_ratio,
        axes=IN_PLANE if params.motion == "in_plane" else None,
    )
    return refine(
        fine, params=params, rng=rng, coarse=coarse, pull=(centre, flat), prior=prior
    )


def _penalty_points(geom, centre, fiducials, bone_weight: float) -> dict:
    """Return the points the robust penalty averages the displacement of, weighted.

    The probe fiducials share weight 1 (Eq. 3's term); the imaged bone's centre
    (``centre``, initial image mm) weighs ``bone_weight``. Without it a motion about
    the probe marker is free: it moves the image ~2 mm out of its plane, where a
    long bone's section barely changes, to make an in-plane shift the fiducials
    would pay for (docs/results/pose_error.md).
    """
    fiducials = np.asarray(fiducials, np.float64)
    bone = (geom.probe_from_image @ np.r_[centre, 1.0])[:3]
    n = len(fiducials)
    weights = np.r_[np.full(n, 1.0 / n), bone_weight] / (1.0 + bone_weight)
    return {"fiducials": np.vstack([fiducials, bone]), "penalty_weights": weights}


def _pivot(points, weights) -> np.ndarray:
    """Area-weighted centre of the samples nearest the plane (the bone in view)."""
    near = np.abs(points[:, 2]) <= 1.0
    if not near.any():
        near = np.ones(len(points), bool)
    centre = np.average(points[near], axis=0, weights=weights[near] + 1e-12)
    centre[2] = 0.0
    return centre


def _subset_objective(geom, surface, maps, kw, n, rng) -> RobustObjective:
    """Objective on a random subset of ``n`` samples, rescaled to the full area."""
    count = surface.points.shape[0]
    pick = np.sort(rng.choice(count, min(n, count), replace=False))
    subset = Surface(*(a[pick] for a in surface))
    objective = RobustObjective(geom, subset, maps, **kw)
    objective.scale *= surface.weights.sum() / max(subset.weights.sum(), 1e-12)
    return objective


def _eq3(problem: _Problem, rng, full, prior):
    """Eq. 3 as printed, or the authors' variant: every pixel near the surface counts.

    ``full`` is unused. ``authors`` takes its band and penalty weight from
    ``objective.AUTHORS_*``, not from ``params``.
    """
    from .labels import _candidate_rc

    model, geom, index, pts, image, calibration, params = problem

    rc = _candidate_rc(pts, geom.shape, geom.spacing_mm, np.abs(pts[:, 2]).max())
    rc = rc[(rc[:, 0] % 2 == 0) & (rc[:, 1] % 2 == 0)]
    normals = model.normals[index] @ geom.image_from_ct[:3, :3].T
    authors = params.objective == "authors"
    kind = AuthorsObjective if authors else Eq3Objective
    objective = kind(
        geom,
        rc,
        Surface(pts, normals),
        np.asarray(image, np.float32) / 255.0,
        gamma_mm=AUTHORS_BAND_MM if authors else params.gamma_mm,
        spacing_mm=model.spacing_mm,
        lam=AUTHORS_LAM if authors else params.lam,
        fiducials=calibration.probe_marker_fiducials_mm,
    )
    return refine(objective, params=params, rng=rng, prior=prior)


def _frame(image, ct_from_probe, model, calibration, params, result, search):
    """Refine and label one frame; ``search`` holds the prior, start and generator."""
    result.pose_initial = result.pose_refined = _check_pose(ct_from_probe)
    if image is None:
        raise FrameRejected(Reason.NO_IMAGE)
    image = _check_image(image, calibration.shape)
    origin = result.pose_initial if search.start is None else search.start
    geom = frame_geometry(origin, calibration, calibration.shape)
    index, pts = _samples(model, geom, params)
    at_origin = render_label(model, geom, np.zeros(6), gamma_mm=params.gamma_mm)
    initial = at_origin
    if search.start is not None:
        tracked = frame_geometry(result.pose_initial, calibration, calibration.shape)
        initial = render_label(model, tracked, np.zeros(6), gamma_mm=params.gamma_mm)
    run = _robust if params.objective == "robust" else _eq3
    problem = _Problem(model, geom, index, pts, image, calibration, params)
    ref = run(problem, search.rng, at_origin.mask, search.prior)
    result.pose_refined = origin + ref.eps
    result.fiducial_correction_mm = float(
        fiducial_displacement_mm(
            result.pose_initial,
            result.pose_refined - result.pose_initial,
            calibration.probe_marker_fiducials_mm,
        )
    )
    result.objective_initial = ref.objective_initial
    result.objective_refined = ref.objective_refined
    result.evaluations = ref.evaluations
    refined = render_label(model, geom, ref.eps, gamma_mm=params.gamma_mm)
    return _masks(initial, refined, params), ref.at_bound


def _masks(initial, refined, params) -> dict:
    shadow = shadow_mask(refined.mask)
    oblique = oblique_mask(refined, max_incidence_deg=params.max_incidence_deg)
    label = refined.mask & ~shadow & ~oblique
    return {
        "full_initial": initial.mask,
        "full_refined": refined.mask,
        "shadow": shadow,
        "oblique": oblique & ~shadow,
        "label": label,
    }


def _validate(result, masks, bound: bool, params) -> Reason:
    """Return the frame's reason; ``bound``: the search ended on its box's edge."""
    if result.fiducial_correction_mm > params.max_correction_mm:
        return Reason.CORRECTION_TOO_LARGE
    if params.reject_at_bound and bound:
        return Reason.CORRECTION_AT_BOUND
    if masks["full_refined"].sum() < params.min_label_px:
        return Reason.TOO_FEW_INTERSECTION_PIXELS
    return Reason.OK


def process_frame(
    image,
    ct_from_probe,
    *,
    model: SpecimenModel,
    calibration,
    params: EngineParams | None = None,
    seed: int = 0,
    prior=None,
    start=None,
) -> FrameResult:
    """Refine one frame's pose and render its labels; never raises for a bad frame.

    Parameters
    ----------
    image : ndarray of shape (rows, cols), uint8, or None
        The frame; None when the record has no image for this row.
    ct_from_probe : ndarray of shape (4, 4)
        Initial T_CT<-US of the frame.
    model : SpecimenModel
    calibration : Calibration
        ``probe_from_image``, pixel spacing, image size and probe fiducials.
    params : EngineParams, optional
    seed : int
        Frame seed (combined with ``params.seed``).
    prior : ndarray of shape (6,), optional
        The sweep's warm start (see :func:`ultrabones.engine.warm.sweep_prior`).
    start : ndarray of shape (6,), optional
        Pose (record parameters) to search from instead of ``ct_from_probe``, in the
        box of ``params`` around it: the sweep's correction of a frame refined
        again (``engine.consistency``). The initial label, the correction and the
        1 mm rule still refer to ``ct_from_probe``; ``objective_initial`` is the
        objective at the start.

    Returns
    -------
    result : FrameResult
        ``reason`` is ``"ok"`` when kept; masks are all False when rejected. Its
        ``confidence`` scores the frame alone (reference evidence, no neighbours);
        the sweep-level :func:`ultrabones.sweep.confidence_check` rescores it and
        discards frames below ``params.min_confidence``.
    """
    params = params or EngineParams()
    rng = np.random.default_rng(np.random.SeedSequence([params.seed, int(seed)]))
    nan6 = np.full(6, np.nan)
    result = FrameResult(Reason.OK.value, nan6, nan6)
    masks = _empty_masks(calibration.shape)
    try:
        start = None if start is None else np.asarray(start, float)
        computed, bound = _frame(
            image,
            ct_from_probe,
            model,
            calibration,
            params,
            result,
            _Search(prior, start, rng),
        )
        features = frame_features(
            result, computed, bound, model=model, calibration=calibration, params=params
        )
        result.confidence_features = np.array([features[k] for k in FEATURES])
        result.confidence = float(
            confidence_score(result.confidence_features, params.confidence_model)
        )
        reason = _validate(result, computed, bound, params)
        masks = computed if reason == Reason.OK else masks
    except FrameRejected as rej:
        reason = rej.reason
        log.info("frame seed %s: %s (%s)", seed, reason.value, rej)
    except Exception:  # noqa: BLE001 - a bad frame must never stop the sweep
        log.exception("frame seed %s: engine error", seed)
        reason = Reason.ENGINE_ERROR
    result.reason = reason.value
    result.masks = masks
    return result
