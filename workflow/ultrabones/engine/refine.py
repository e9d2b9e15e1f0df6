"""Search of the pose perturbation: seeded differential evolution, then a compass
search on the full sample set; never returns a pose worse than the start."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import differential_evolution
from scipy.stats import qmc

__all__ = ["Refinement", "refine"]

#: Compass search: first step (fraction of the bounds) and the last.
COMPASS_STEPS = (0.08, 0.01)


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


def _population(bounds, size, rng) -> np.ndarray:
    unit = qmc.LatinHypercube(d=6, rng=rng).random(size)
    pop = bounds[:, 0] + unit * (bounds[:, 1] - bounds[:, 0])
    pop[0] = 0.0
    return pop


def _search_de(objective, bounds, params, rng) -> np.ndarray:
    if not np.any(bounds[:, 1] > 0):
        return np.zeros(6)
    size = max(5, params.popsize * 6)
    result = differential_evolution(
        lambda x: -objective(x.T),
        bounds,
        init=_population(bounds, size, rng),
        maxiter=params.maxiter,
        tol=params.tol,
        polish=False,
        vectorized=True,
        updating="deferred",
        rng=rng,
    )
    return np.asarray(result.x, dtype=float)


def _compass(objective, start, bounds) -> tuple[np.ndarray, float]:
    width = bounds[:, 1] - bounds[:, 0]
    best, value = start, float(objective(start[None])[0])
    step = COMPASS_STEPS[0]
    moves = np.concatenate([np.eye(6), -np.eye(6)])
    while step >= COMPASS_STEPS[1]:
        trial = np.clip(best + step * width * moves, bounds[:, 0], bounds[:, 1])
        values = objective(trial)
        k = int(np.argmax(values))
        if values[k] > value:
            best, value = trial[k], float(values[k])
        else:
            step /= 2
    return best, value


def refine(objective, *, params, rng, coarse=None) -> Refinement:
    """Maximise ``objective`` over the perturbation box of ``params``.

    Parameters
    ----------
    objective : callable
        Maps perturbations ``(s, 6)`` to values ``(s,)``; has ``evaluations``.
    params : EngineParams
    rng : numpy.random.Generator
    coarse : callable, optional
        A cheaper version of the objective for the global (DE) stage.

    Returns
    -------
    refinement : Refinement
        The start (zero perturbation) is in the initial population and is returned
        whenever nothing better is found.
    """
    bounds = _bounds(params)
    first = coarse if coarse is not None else objective
    eps = _search_de(first, bounds, params, rng)
    eps, value = _compass(objective, eps, bounds)
    start = float(objective(np.zeros((1, 6)))[0])
    if value < start:
        eps, value = np.zeros(6), start
    used = objective.evaluations + (coarse.evaluations if coarse is not None else 0)
    return Refinement(eps, start, value, used)
