"""Search of the pose perturbation.

Seeded differential evolution, then a compass search on the full sample set; never
returns a pose worse than the start. The robust objective's search moves the image
within its own plane about the bone (``EngineParams.motion = "in_plane"``) or over
the six pose offsets (``"rigid"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import differential_evolution
from scipy.stats import qmc

from .geometry import fiducial_displacement_mm, fiducial_shifts

__all__ = ["AT_BOUND_FRACTION", "IN_PLANE", "Refinement", "at_bound", "refine"]

#: Compass search: first step (fraction of the bounds) and the last.
COMPASS_STEPS = (0.08, 0.01)
#: A parameter within this fraction of its bound counts as at the bound.
AT_BOUND_FRACTION = 0.98
#: The in-plane motions among the image's local motions ``(tx, ty, tz, rx, ry, rz)``
#: (:meth:`~ultrabones.engine.geometry.FrameGeometry.local_from_eps`): lateral and
#: axial shift and the rotation about the plane's normal.
IN_PLANE = [0, 1, 5]


@dataclass(frozen=True)
class Refinement:
    """Outcome of a refinement: the perturbation and objective values."""

    eps: np.ndarray
    objective_initial: float
    objective_refined: float
    evaluations: int
    at_bound: bool = False


def _bounds(params) -> np.ndarray:
    half = np.array([params.bounds_mm] * 3 + [params.bounds_deg] * 3, dtype=float)
    return np.stack([-half, half], axis=1)


def _on_edge(x, half, fraction=AT_BOUND_FRACTION):
    """Return whether any search variable lies at its box's edge (not zero-width)."""
    return ((np.abs(x) >= fraction * half) & (half > 0)).any(axis=-1)


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
    return _on_edge(eps, np.r_[[bounds_mm] * 3, [bounds_deg] * 3], fraction)


def _population(bounds, size, rng, prior=None) -> np.ndarray:
    """Latin hypercube over the box; member 0 is the start, member 1 the prior."""
    unit = qmc.LatinHypercube(d=len(bounds), rng=rng).random(size)
    pop = bounds[:, 0] + unit * (bounds[:, 1] - bounds[:, 0])
    pop[0] = 0.0
    if prior is not None:
        pop[1] = np.clip(prior, bounds[:, 0], bounds[:, 1])
    return pop


def _search_de(objective, bounds, params, rng, prior=None) -> np.ndarray:
    if not np.any(bounds[:, 1] > 0):
        return np.zeros(len(bounds))
    size = max(5, params.popsize * len(bounds))
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
    axes = np.eye(len(bounds)) if moves is None else moves
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


class LocalMotion:
    """An objective over some local motions of the image about a pivot.

    ``LocalMotion(objective, centre)(u)`` is ``objective`` at the pose offsets that move
    the image by ``u`` along the components ``axes`` of its local motion about
    ``centre`` (:meth:`~ultrabones.engine.geometry.FrameGeometry.eps_from_local`;
    default :data:`IN_PLANE`), the other components zero.
    """

    def __init__(self, objective, centre, axes=IN_PLANE):
        self.objective, self.centre, self.axes = objective, centre, list(axes)

    @property
    def evaluations(self) -> int:
        """Evaluations of the wrapped objective."""
        return self.objective.evaluations

    def eps(self, u) -> np.ndarray:
        """Pose offsets of local motion(s) ``u`` of shape (..., len(axes))."""
        u = np.asarray(u, dtype=np.float64)
        local = np.zeros(u.shape[:-1] + (6,))
        local[..., self.axes] = u
        return self.objective.geom.eps_from_local(local, self.centre)

    def __call__(self, u) -> np.ndarray:
        """Objective value(s) of local motion(s) ``u``."""
        return self.objective(self.eps(u))


def _least_moving(search, x, flat) -> np.ndarray:
    """Move ``x`` along ``flat`` to where the probe fiducials move least.

    The image cannot tell poses along the flat directions apart, so of those the
    one needing the smallest probe correction is taken (what Eq. 3's penalty
    prefers at an equal data term). One Gauss-Newton step on the fiducial shifts,
    which are nearly linear in the small local motion.
    """
    objective, h = search.objective, 1e-3
    eps = search.eps(np.vstack([x, x + h * flat]))
    shifts = fiducial_shifts(objective.geom.pose, eps, objective.fiducials)
    if objective.penalty_weights is not None:  # the penalty's weighted points
        shifts = shifts * np.sqrt(np.asarray(objective.penalty_weights))[:, None]
    shifts = shifts.reshape(len(eps), -1)
    jac = (shifts[1:] - shifts[0]).T / h
    step = np.linalg.lstsq(jac, -shifts[0], rcond=None)[0]
    return x + flat.T @ step


def _project_flat(search, x, value, budget, flat, inside):
    """Set the flat components of the correction to the least-moving ones.

    Taken if the value stays >= budget and ``inside(result)``; the rest is
    re-optimised by a compass search along the pinned directions (local mm/deg).
    """
    if not len(flat):
        return x, value
    n = len(x)
    pinned = np.linalg.svd(np.eye(n) - flat.T @ flat)[0][:, : n - len(flat)].T
    wide = np.array([[-1.5, 1.5]] * n)
    best, cand_value = _compass(search, _least_moving(search, x, flat), wide, pinned)
    if not inside(best) or cand_value < budget:
        return x, value
    return best, cand_value


def _pull_back(search, x, value, gain, flat, inside, *, fraction):
    """Undo the components of ``x`` along which the evidence is (nearly) flat.

    ``x`` is a local motion of the image about the bone (``search``: an
    :class:`LocalMotion`). First its components along the geometrically flat
    directions ``flat`` (:func:`~ultrabones.engine.geometry.flat_directions`) are
    removed together; then its components are set to zero, cheapest first, while
    the objective loses less than ``fraction``
    (``EngineParams.pull_back_fraction``) of ``gain`` in total and ``inside(x)``
    holds. The image does not pin motion along a long bone's axis or tilts out of
    its plane; there the start pose is the best estimate.
    """
    budget = value - fraction * max(gain, 0.0)
    x, value = _project_flat(search, x, value, budget, flat, inside)
    return _zero_cheapest(search, x, value, budget, inside)


def _zero_cheapest(search, x, value, budget, inside):
    """Set components of ``x`` to zero, cheapest first, while the value stays >= budget.

    A component is zeroed only where ``inside(x)`` holds and the probe fiducials
    move no more than before.
    """
    n = len(x)
    trials = np.repeat(x[None], n, axis=0)
    trials[np.arange(n), np.arange(n)] = 0.0
    moved = _moves(search, x)
    for i in np.argsort(-search(trials)):
        trial = x.copy()
        trial[i] = 0.0
        if not inside(trial):
            continue
        cand_value, cand_moved = float(search(trial[None])[0]), _moves(search, trial)
        if cand_value >= budget and cand_moved <= moved:
            x, value, moved = trial, cand_value, cand_moved
    return x, value


def _moves(search, x) -> float:
    """Mean fiducial displacement (mm) of one local motion."""
    objective = search.objective
    pose, fiducials = objective.geom.pose, objective.fiducials
    weights = objective.penalty_weights
    return float(fiducial_displacement_mm(pose, search.eps(x), fiducials, weights))


def refine(objective, *, params, rng, coarse=None, pull=None, prior=None) -> Refinement:
    """Maximise ``objective`` over the perturbation box of ``params``.

    Parameters
    ----------
    objective : callable
        Maps perturbations ``(s, 6)`` to values ``(s,)``; has ``evaluations``.
    params : EngineParams
        ``motion``: with ``pull``, ``in_plane`` searches the in-plane motions of the
        image about the pivot (:class:`LocalMotion`), ``rigid`` the six offsets.
    rng : numpy.random.Generator
    coarse : callable, optional
        A cheaper version of the objective for the global (DE) stage.
    pull : (ndarray of shape (3,), ndarray of shape (k, 6) or (k, 3)), optional
        Pivot (initial image mm, the bone) and flat directions of the final
        pull-back (over the searched motions); no pull-back when None.
    prior : ndarray of shape (6,), optional
        A likely perturbation (the sweep's warm start), put into the initial
        population beside the start; the search is free to leave it.

    Returns
    -------
    refinement : Refinement
        The start (zero perturbation) is in the initial population and is returned
        whenever nothing better is found.
    """
    if pull is not None and params.motion == "in_plane":
        return _refine_in_plane(objective, params, rng, coarse, pull, prior)
    bounds = _bounds(params)
    eps, value = _search(objective, coarse, bounds, params, rng, prior)
    start = float(objective(np.zeros((1, 6)))[0])
    if pull is not None and value > start:
        local = LocalMotion(objective, pull[0], axes=range(6))

        def inside(x) -> bool:
            cand = local.eps(x)
            return bool(np.all(cand >= bounds[:, 0]) and np.all(cand <= bounds[:, 1]))

        before = objective.geom.local_from_eps(eps, pull[0])
        x, value = _pull_back(
            local,
            before,
            value,
            value - start,
            pull[1],
            inside,
            fraction=params.pull_back_fraction,
        )
        eps = eps if np.array_equal(x, before) else local.eps(x)
    if value < start:
        eps, value = np.zeros(6), start
    bound = at_bound(eps, bounds_mm=params.bounds_mm, bounds_deg=params.bounds_deg)
    return Refinement(eps, start, value, _used(objective, coarse), bool(bound))


def _used(objective, coarse) -> int:
    return objective.evaluations + (coarse.evaluations if coarse is not None else 0)


def _search(objective, coarse, bounds, params, rng, prior):
    """DE on ``coarse`` (or ``objective``), then compass climbs from it and prior."""
    first = coarse if coarse is not None else objective
    x = _search_de(first, bounds, params, rng, prior)
    x, value = _compass(objective, x, bounds)
    if prior is not None:
        # the DE may leave the prior's basin on the coarse objective: climb it too
        near, near_value = _compass(objective, np.clip(prior, *bounds.T), bounds)
        if near_value > value:
            x, value = near, near_value
    return x, value


def _refine_in_plane(objective, params, rng, coarse, pull, prior) -> Refinement:
    """:func:`refine` over the in-plane motions about the pivot (:class:`LocalMotion`).

    The box is ``bounds_mm`` on the two shifts and ``bounds_deg`` on the rotation;
    ``pull``'s flat directions are over these three motions.
    """
    centre, flat = pull
    plane = LocalMotion(objective, centre)
    bounds = _bounds(params)[IN_PLANE]
    if prior is not None:
        prior = objective.geom.local_from_eps(np.asarray(prior, float), centre)
        prior = prior[IN_PLANE]
    rough = None if coarse is None else LocalMotion(coarse, centre)
    u, value = _search(plane, rough, bounds, params, rng, prior)
    start = float(plane(np.zeros((1, 3)))[0])
    if value > start:

        def inside(x) -> bool:
            return bool(np.all(np.abs(x) <= bounds[:, 1]))

        gain = value - start
        fraction = params.pull_back_fraction
        u, value = _pull_back(plane, u, value, gain, flat, inside, fraction=fraction)
    if value < start:
        u, value = np.zeros(3), start
    eps = plane.eps(u) if u.any() else np.zeros(6)
    return Refinement(
        eps, start, value, _used(objective, coarse), bool(_on_edge(u, bounds[:, 1]))
    )
