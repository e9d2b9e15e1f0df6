"""Search of the pose perturbation.

Seeded differential evolution, then a compass search on the full sample set; never
returns a pose worse than the start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import differential_evolution
from scipy.stats import qmc

from .geometry import fiducial_displacement_mm, fiducial_shifts

__all__ = ["AT_BOUND_FRACTION", "Refinement", "at_bound", "refine"]

#: Compass search: first step (fraction of the bounds) and the last.
COMPASS_STEPS = (0.08, 0.01)
#: A parameter within this fraction of its bound counts as at the bound.
AT_BOUND_FRACTION = 0.98


@dataclass(frozen=True)
class Refinement:
    """Outcome of a refinement: the perturbation and objective values."""

    eps: np.ndarray
    objective_initial: float
    objective_refined: float
    evaluations: int


def _bounds(params) -> np.ndarray:
    half = np.array([params.bounds_mm] * 3 + [params.bounds_deg] * 3, dtype=float)
    return np.stack([-half, half], axis=1)


def at_bound(eps, *, bounds_mm, bounds_deg, fraction=AT_BOUND_FRACTION):
    """Return whether a perturbation reached its search box's edge.

    Parameters
    ----------
    eps : ndarray of shape (..., 6)
        Perturbation(s) ``x, y, z`` (mm), ``euler_x, euler_y, euler_z`` (deg).
    bounds_mm, bounds_deg : float
        Half-widths of the box; a zero-width parameter never counts.

    Returns
    -------
    hit : ndarray of shape (...,), bool
    """
    limit = np.r_[[bounds_mm] * 3, [bounds_deg] * 3]
    hit = (np.abs(eps) >= fraction * limit) & (limit > 0)
    return hit.any(axis=-1)


def _population(bounds, size, rng, prior=None) -> np.ndarray:
    """Latin hypercube over the box; member 0 is the start, member 1 the prior."""
    unit = qmc.LatinHypercube(d=6, rng=rng).random(size)
    pop = bounds[:, 0] + unit * (bounds[:, 1] - bounds[:, 0])
    pop[0] = 0.0
    if prior is not None:
        pop[1] = np.clip(prior, bounds[:, 0], bounds[:, 1])
    return pop


def _search_de(objective, bounds, params, rng, prior=None) -> np.ndarray:
    if not np.any(bounds[:, 1] > 0):
        return np.zeros(6)
    size = max(5, params.popsize * 6)
    result = differential_evolution(
        lambda x: -objective(x.T),
        bounds,
        init=_population(bounds, size, rng, prior),
        maxiter=params.maxiter,
        tol=params.tol,
        polish=False,
        vectorized=True,
        updating="deferred",
        rng=rng,
    )
    return np.asarray(result.x, dtype=float)


def _compass(objective, start, bounds, moves=None) -> tuple[np.ndarray, float]:
    """Compass search from ``start`` along ``moves`` (default: the axes), clipped."""
    width = bounds[:, 1] - bounds[:, 0]
    axes = np.eye(6) if moves is None else moves
    best, value = start, float(objective(start[None])[0])
    step = COMPASS_STEPS[0]
    moves = np.concatenate([axes, -axes])
    while step >= COMPASS_STEPS[1]:
        trial = np.clip(best + step * width * moves, bounds[:, 0], bounds[:, 1])
        values = objective(trial)
        k = int(np.argmax(values))
        if values[k] > value:
            best, value = trial[k], float(values[k])
        else:
            step /= 2
    return best, value


def _least_moving(objective, local, flat, centre) -> np.ndarray:
    """Move ``local`` along ``flat`` to where the probe fiducials move least.

    The image cannot tell poses along the flat directions apart, so of those the
    one needing the smallest probe correction is taken (what Eq. 3's penalty
    prefers at an equal data term). One Gauss-Newton step on the fiducial shifts,
    which are nearly linear in the small local motion.
    """
    geom, h = objective.geom, 1e-3
    trial = np.vstack([local, local + h * flat])
    eps = geom.eps_from_local(trial, centre)
    shifts = fiducial_shifts(geom.pose, eps, objective.fiducials)
    if objective.penalty_weights is not None:  # the penalty's weighted points
        shifts = shifts * np.sqrt(np.asarray(objective.penalty_weights))[:, None]
    shifts = shifts.reshape(len(eps), -1)
    jac = (shifts[1:] - shifts[0]).T / h
    step = np.linalg.lstsq(jac, -shifts[0], rcond=None)[0]
    return local + flat.T @ step


def _project_flat(objective, eps, value, budget, pull, bounds):
    """Set the flat components of the correction to the least-moving ones.

    Taken if that costs < budget; the rest is re-optimised by a compass search
    along the pinned directions (local mm/deg units; the box is checked on the
    result).
    """
    geom, (centre, flat) = objective.geom, pull
    if not len(flat):
        return eps, value
    local = geom.local_from_eps(eps, centre)
    pinned = np.linalg.svd(np.eye(6) - flat.T @ flat)[0][:, : 6 - len(flat)].T

    def in_local(c):
        return objective(geom.eps_from_local(c, centre))

    wide = np.array([[-1.5, 1.5]] * 6)
    start = _least_moving(objective, local, flat, centre)
    best, cand_value = _compass(in_local, start, wide, pinned)
    cand = geom.eps_from_local(best, centre)
    if np.any(cand < bounds[:, 0]) or np.any(cand > bounds[:, 1]):
        return eps, value
    return (cand, cand_value) if cand_value >= budget else (eps, value)


def _pull_back(objective, eps, value, gain, pull, bounds, *, fraction):
    """Undo the components of ``eps`` along which the evidence is (nearly) flat.

    First the components along the geometrically flat directions of ``pull``
    (``(centre, flat)``, see :func:`~ultrabones.engine.geometry.flat_directions`)
    are removed together; then the image motion of ``eps`` is split into
    translations along and rotations about the image axes at ``centre`` (the
    bone); components are set to zero, cheapest first, while the objective loses
    less than ``fraction`` (``EngineParams.pull_back_fraction``) of ``gain`` in
    total (staying inside ``bounds``). The image does not pin motion along a long
    bone's axis or tilts out of its plane; there the start pose is the best
    estimate.

    Returns
    -------
    eps, value : ndarray of shape (6,), float
    """
    geom, centre = objective.geom, pull[0]
    budget = value - fraction * max(gain, 0.0)
    eps, value = _project_flat(objective, eps, value, budget, pull, bounds)
    local = geom.local_from_eps(eps, centre)
    trials = np.repeat(local[None], 6, axis=0)
    trials[np.arange(6), np.arange(6)] = 0.0
    order = np.argsort(-objective(geom.eps_from_local(trials, centre)))
    for i in order:
        trial = local.copy()
        trial[i] = 0.0
        cand = geom.eps_from_local(trial, centre)
        if np.any(cand < bounds[:, 0]) or np.any(cand > bounds[:, 1]):
            continue
        cand_value = float(objective(cand[None])[0])
        if cand_value >= budget and _moves(objective, cand) <= _moves(objective, eps):
            local, eps, value = trial, cand, cand_value
    return eps, value


def _moves(objective, eps) -> float:
    """Mean fiducial displacement (mm) of one perturbation."""
    pose, fiducials = objective.geom.pose, objective.fiducials
    weights = objective.penalty_weights
    return float(fiducial_displacement_mm(pose, eps, fiducials, weights))


def refine(objective, *, params, rng, coarse=None, pull=None, prior=None) -> Refinement:
    """Maximise ``objective`` over the perturbation box of ``params``.

    Parameters
    ----------
    objective : callable
        Maps perturbations ``(s, 6)`` to values ``(s,)``; has ``evaluations``.
    params : EngineParams
    rng : numpy.random.Generator
    coarse : callable, optional
        A cheaper version of the objective for the global (DE) stage.
    pull : (ndarray of shape (3,), ndarray of shape (k, 6)), optional
        Pivot (initial image mm, the bone) and flat directions of the final
        pull-back; no pull-back when None.
    prior : ndarray of shape (6,), optional
        A likely perturbation (the sweep's warm start), put into the initial
        population beside the start; the search is free to leave it.

    Returns
    -------
    refinement : Refinement
        The start (zero perturbation) is in the initial population and is returned
        whenever nothing better is found.
    """
    bounds = _bounds(params)
    first = coarse if coarse is not None else objective
    eps = _search_de(first, bounds, params, rng, prior)
    eps, value = _compass(objective, eps, bounds)
    if prior is not None:
        # the DE may leave the prior's basin on the coarse objective: climb it too
        near, near_value = _compass(objective, np.clip(prior, *bounds.T), bounds)
        if near_value > value:
            eps, value = near, near_value
    start = float(objective(np.zeros((1, 6)))[0])
    if pull is not None and value > start:
        eps, value = _pull_back(
            objective,
            eps,
            value,
            value - start,
            pull,
            bounds,
            fraction=params.pull_back_fraction,
        )
    if value < start:
        eps, value = np.zeros(6), start
    used = objective.evaluations + (coarse.evaluations if coarse is not None else 0)
    return Refinement(eps, start, value, used)
