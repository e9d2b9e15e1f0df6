"""Per-frame confidence: features of a refinement and a logistic score in [0, 1].

The score estimates the probability that a refined frame's label is right (true
error <= 0.5 mm). It is a logistic function of a few features of the refinement,
each entering with a fixed sign, so the model is monotone in every feature:

* ``evidence_per_mm`` (+): the refined objective per mm of intersection curve, the
  mean bone evidence along the curve; a stalled search or a curve on tissue scores
  low. It enters standardised against the sweep's distribution (median and scaled
  MAD over the frames the other rules keep), since its level depends on the
  scanner's and tissue's appearance.
* ``inside_fraction`` (+): the share of the probe-facing intersection curve (surface
  area within ``sigma_mm`` of the refined plane) inside the image; a curve mostly
  out of view is poorly pinned.
* ``at_bound`` (-): 1 when the correction ends on the search box's edge.
* ``neighbour_mm`` (-): the mean fiducial distance between the frame's correction
  and the running median of its neighbours' corrections (the calibration error is
  shared by the sweep, the lag error varies slowly).

``confidence = 1 / (1 + exp(-(b0 + b1 z + b2 inside + b3 bound + b4 neighbour)))``
with ``z = (evidence_per_mm - median) / scale`` and the coefficients
``EngineParams.confidence_model`` (see ``docs/engine.md``, "Confidence").
:func:`sweep_confidence` scores a whole sweep; a frame alone
(:func:`ultrabones.engine.process_frame`) is scored against
:data:`EVIDENCE_REFERENCE` with ``neighbour_mm`` 0.
"""

from __future__ import annotations

import numpy as np

from ..transforms import apply_rigid
from ..vocabulary import CONFIDENCE_FEATURES as FEATURES
from .geometry import fiducial_displacement_mm, frame_geometry
from .model import CELL_MM
from .params import CONFIDENCE_SIGNS as SIGNS

__all__ = [
    "FEATURES",
    "SIGNS",
    "confidence_auroc",
    "confidence_score",
    "curve_length_mm",
    "evidence_reference",
    "fit_confidence_model",
    "frame_features",
    "inside_fraction",
    "neighbour_distance_mm",
    "sweep_confidence",
]

#: How far outside the image the intersection curve is followed (mm): wider than a
#: lower-leg bone's cross-section, so the whole curve of a bone in view is counted.
CURVE_MARGIN_MM = 30.0
#: Neighbours on each side whose corrections form the running median (frames).
NEIGHBOURS = 5
#: Logits are clipped to this magnitude, so scores stay strictly inside (0, 1).
MAX_LOGIT = 30.0
#: Evidence median and scale for a frame scored alone: the medians over the six
#: simulated cohorts of ``docs/results/confidence.md`` (paper preset, seeds 0-5).
EVIDENCE_REFERENCE = (0.24, 0.043)
#: Fewest kept frames whose evidence gives a sweep its own reference.
MIN_REFERENCE_FRAMES = 5
#: Smallest evidence scale (a sweep of near-identical frames must not blow up z).
MIN_SCALE = 0.01


def curve_length_mm(band, *, spacing_mm, gamma_mm) -> float:
    """Return the length of an intersection curve from its label band.

    Parameters
    ----------
    band : ndarray of shape (rows, cols), bool
        Pixels within ``gamma_mm`` of the bone surface (one curve or several).
    spacing_mm : (float, float)
        Pixel size along columns and rows, mm.
    gamma_mm : float
        Half-width of the band, mm.

    Returns
    -------
    length_mm : float
        ``area / (2 gamma)``; exact for a curve crossing the plane at right angles.

    Examples
    --------
    >>> band = np.zeros((10, 100), bool)
    >>> band[4:6] = True
    >>> round(curve_length_mm(band, spacing_mm=(0.1, 0.1), gamma_mm=0.1), 6)
    10.0
    """
    area = float(np.count_nonzero(band)) * spacing_mm[0] * spacing_mm[1]
    return area / (2.0 * gamma_mm)


def inside_fraction(model, pose, calibration, *, sigma_mm, facing_min) -> float:
    """Return the share of the probe-facing intersection curve inside the image.

    Parameters
    ----------
    model : SpecimenModel
    pose : ndarray of shape (6,)
        Refined T_CT<-US as record parameters (mm, deg).
    calibration : Calibration
    sigma_mm : float
        Surface samples within this distance of the plane make up the curve.
    facing_min : float
        Samples whose unit normal points towards the transducer (image -y) by more
        than this face the probe (``EngineParams.facing_min``, as in the robust
        objective).

    Returns
    -------
    fraction : float
        Area-weighted share in [0, 1]; NaN when no facing surface meets the plane.
    """
    geom = frame_geometry(pose, calibration, calibration.shape)
    index, pts = _curve_samples(model, geom, sigma_mm)
    normals = model.normals[index] @ geom.image_from_ct[:3, :3].T
    facing = normals[:, 1] < -facing_min
    weights = model.weights[index][facing].astype(np.float64)
    if not weights.sum() > 0:
        return float("nan")
    w, h = geom.extent_mm
    x, y = pts[facing, 0], pts[facing, 1]
    inside = (x >= 0) & (x <= w) & (y >= 0) & (y <= h)
    return float(weights[inside].sum() / weights.sum())


def _curve_samples(model, geom, sigma_mm):
    """Return the samples within ``sigma_mm`` of the plane (``CURVE_MARGIN_MM`` out).

    Only buckets the plane passes through are read (``select_samples`` widens its
    slab by the margin too, which would read every bucket within 30 mm).
    """
    centres = (model.cell_keys + 0.5) * CELL_MM
    local = apply_rigid(geom.image_from_ct, centres)
    half = CELL_MM * np.sqrt(3) / 2
    w, h = geom.extent_mm
    m = CURVE_MARGIN_MM + half
    near = np.abs(local[:, 2]) <= half + sigma_mm
    near &= (local[:, 0] >= -m) & (local[:, 0] <= w + m)
    near &= (local[:, 1] >= -m) & (local[:, 1] <= h + m)
    cells = np.flatnonzero(near)
    index = np.concatenate(
        [np.arange(model.cell_start[c], model.cell_start[c + 1]) for c in cells]
        or [np.zeros(0, np.int64)]
    )
    pts = apply_rigid(geom.image_from_ct, model.points[index])
    keep = np.abs(pts[:, 2]) <= sigma_mm
    m = CURVE_MARGIN_MM
    keep &= (pts[:, 0] >= -m) & (pts[:, 0] <= w + m)
    keep &= (pts[:, 1] >= -m) & (pts[:, 1] <= h + m)
    return index[keep], pts[keep]


def frame_features(result, masks, bound, *, model, calibration, params) -> dict:
    """Return the per-frame features of a refined frame (``neighbour_mm`` is 0).

    Parameters
    ----------
    result : FrameResult
        With the refined pose and objective.
    masks : dict of str to ndarray of shape (rows, cols), bool
        The frame's masks (``label`` and ``oblique`` make up the lit curve).
    bound : bool
        Whether the search ended on its box's edge (``Refinement.at_bound``).
    model : SpecimenModel
    calibration : Calibration
    params : EngineParams

    Returns
    -------
    features : dict
        One value per name of :data:`FEATURES`.
    """
    band = masks["label"] | masks["oblique"]
    length = curve_length_mm(
        band, spacing_mm=calibration.pixel_spacing_mm, gamma_mm=params.gamma_mm
    )
    inside = inside_fraction(
        model,
        result.pose_refined,
        calibration,
        sigma_mm=params.sigma_mm,
        facing_min=params.facing_min,
    )
    return {
        "evidence_per_mm": result.objective_refined / length if length > 0 else 0.0,
        "inside_fraction": 0.0 if np.isnan(inside) else inside,
        "at_bound": float(bound),
        "neighbour_mm": 0.0,
    }


def evidence_reference(evidence) -> tuple[float, float]:
    """Return a sweep's evidence median and scale (1.4826 x MAD, robust SD).

    Parameters
    ----------
    evidence : array-like of shape (n,)
        ``evidence_per_mm`` of the sweep's kept frames (NaN ignored).

    Returns
    -------
    median, scale : float
        :data:`EVIDENCE_REFERENCE` when fewer than ``MIN_REFERENCE_FRAMES`` values;
        the scale is at least ``MIN_SCALE``.

    Examples
    --------
    >>> evidence_reference([0.1, 0.2, 0.3, 0.4, 0.5])
    (0.3, 0.14826)
    """
    e = np.asarray(evidence, dtype=np.float64)
    e = e[np.isfinite(e)]
    if e.size < MIN_REFERENCE_FRAMES:
        return EVIDENCE_REFERENCE
    median = float(np.median(e))
    scale = 1.4826 * float(np.median(np.abs(e - median)))
    return median, round(max(scale, MIN_SCALE), 12)


def confidence_score(features, coefficients, reference=EVIDENCE_REFERENCE):
    """Return the logistic confidence of feature vector(s).

    Parameters
    ----------
    features : array-like of shape (..., 4)
        Values in the order of :data:`FEATURES`.
    coefficients : array-like of shape (5,)
        Intercept, then one coefficient per feature (the first on the
        standardised evidence).
    reference : (float, float)
        Evidence median and scale (:func:`evidence_reference`).

    Returns
    -------
    confidence : ndarray of shape (...)
        In (0, 1); NaN where a feature is NaN.

    Examples
    --------
    >>> b = [-1.0, 1.0, 0.0, 0.0, 0.0]
    >>> float(confidence_score([1.0, 1.0, 0.0, 0.0], b, reference=(0.0, 1.0)))
    0.5
    """
    f = np.array(features, dtype=np.float64)
    f[..., 0] = (f[..., 0] - reference[0]) / reference[1]
    b = np.asarray(coefficients, dtype=np.float64)
    logit = np.clip(b[0] + f @ b[1:], -MAX_LOGIT, MAX_LOGIT)
    return 1.0 / (1.0 + np.exp(-logit))


def neighbour_distance_mm(
    pose_initial, pose_refined, refined, *, fiducials, neighbours: int = NEIGHBOURS
):
    """Return each frame's distance from its neighbours' running-median correction.

    Parameters
    ----------
    pose_initial, pose_refined : ndarray of shape (n, 6)
        The sweep's poses in frame order (record parameters, mm and deg).
    refined : ndarray of shape (n,), bool
        Frames whose refinement ran (finite confidence); only they take part.
    fiducials : ndarray of shape (m, 3)
        Probe fiducials, probe-marker frame, mm.
    neighbours : int
        Refined frames on each side (the frame itself excluded) whose corrections
        give the median.

    Returns
    -------
    distance_mm : ndarray of shape (n,)
        Mean fiducial displacement between the pose the neighbours' median
        correction gives and the refined pose; NaN for frames not refined or
        without a refined neighbour.
    """
    initial = np.asarray(pose_initial, dtype=np.float64).reshape(-1, 6)
    eps = np.asarray(pose_refined, dtype=np.float64).reshape(-1, 6) - initial
    use = np.flatnonzero(np.asarray(refined, bool) & np.isfinite(eps).all(axis=1))
    out = np.full(len(eps), np.nan)
    for j, i in enumerate(use):
        before = use[max(j - neighbours, 0) : j]
        near = np.r_[before, use[j + 1 : j + 1 + neighbours]]
        if near.size == 0:
            continue
        median = np.median(eps[near], axis=0)
        shift = eps[i] - median
        out[i] = fiducial_displacement_mm(initial[i] + median, shift, fiducials)
    return out


def sweep_confidence(features, kept, coefficients) -> np.ndarray:
    """Score a sweep's frames against the sweep's own evidence distribution.

    Parameters
    ----------
    features : ndarray of shape (n, 4)
        Per-frame features (:data:`FEATURES`, ``neighbour_mm`` filled in by
        :func:`neighbour_distance_mm`); NaN rows for frames not refined. A NaN
        ``neighbour_mm`` (no refined neighbour) counts as 0.
    kept : ndarray of shape (n,), bool
        Frames the engine's other rules keep: their evidence gives the reference.
    coefficients : array-like of shape (5,)

    Returns
    -------
    confidence : ndarray of shape (n,)
        NaN for frames not refined.
    """
    f = np.array(features, dtype=np.float64).reshape(-1, len(FEATURES))
    reference = evidence_reference(f[np.asarray(kept, bool), 0])
    f[:, 3] = np.where(np.isnan(f[:, 3]) & ~np.isnan(f[:, 0]), 0.0, f[:, 3])
    return confidence_score(f, coefficients, reference)


def confidence_auroc(confidence, error_mm, threshold_mm: float = 0.5) -> float:
    """Return the AUROC of low confidence for a true error above ``threshold_mm``.

    The probability that a frame with error > ``threshold_mm`` scores lower than
    one without (ties count half): Mann-Whitney U over average ranks.

    Parameters
    ----------
    confidence : array-like of shape (n,)
    error_mm : array-like of shape (n,)
        True label (or pose) error of each frame, mm. Frames with NaN in either
        array are left out.
    threshold_mm : float

    Returns
    -------
    auroc : float
        1 when every bad frame scores below every good one, 0.5 for chance; NaN
        when either class is empty.

    Examples
    --------
    >>> confidence_auroc([0.9, 0.8, 0.2, 0.8], [0.1, 0.2, 0.9, 0.7])
    0.875
    """
    from scipy.stats import rankdata

    c = np.asarray(confidence, dtype=np.float64)
    e = np.asarray(error_mm, dtype=np.float64)
    use = np.isfinite(c) & np.isfinite(e)
    c, bad = c[use], e[use] > threshold_mm
    n_bad, n_good = int(bad.sum()), int((~bad).sum())
    if n_bad == 0 or n_good == 0:
        return float("nan")
    ranks = rankdata(-c)  # the least confident frame has the highest rank
    u = ranks[bad].sum() - n_bad * (n_bad + 1) / 2.0
    return float(u / (n_bad * n_good))


def fit_confidence_model(features, good, *, ridge: float = 1e-3) -> np.ndarray:
    """Fit the logistic model's coefficients with the signs of :data:`SIGNS`.

    Maximum likelihood with a small ridge penalty on the feature coefficients (so
    that separable measurements still give finite coefficients); each coefficient
    is bounded to its sign, which keeps the model monotone.

    Parameters
    ----------
    features : ndarray of shape (n, 4)
        Feature vectors in the order of :data:`FEATURES`.
    good : ndarray of shape (n,), bool
        True when the frame's true error is within the tolerance.
    ridge : float
        Weight of the squared coefficients (intercept excluded), per frame.

    Returns
    -------
    coefficients : ndarray of shape (5,)
        Intercept, then one coefficient per feature.
    """
    from scipy.optimize import minimize

    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(good, dtype=np.float64)

    def loss(b):
        z = b[0] + f @ b[1:]
        p = 1.0 / (1.0 + np.exp(-z))
        nll = np.logaddexp(0.0, z) - y * z
        grad = np.r_[np.mean(p - y), f.T @ (p - y) / len(y) + 2 * ridge * b[1:]]
        return nll.mean() + ridge * b[1:] @ b[1:], grad

    bounds = [(None, None)] + [(0, None) if s > 0 else (None, 0) for s in SIGNS]
    fit = minimize(loss, np.zeros(1 + f.shape[1]), jac=True, bounds=bounds)
    return fit.x
