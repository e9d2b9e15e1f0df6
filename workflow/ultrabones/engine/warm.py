"""The sweep's warm start: one correction shared by a sweep's frames.

The calibration error is the same for a whole sweep and the lag error varies
slowly, so most of a frame's correction is shared with its neighbours. A few pilot
frames spread over the sweep are refined alone first; the median of their
corrections joins every frame's initial population (:func:`refine`'s ``prior``),
which rescues frames whose own search would stall in a local optimum. It is a seed,
not a constraint: each frame still keeps the pose its own image supports.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_PILOTS", "pilot_indices", "sweep_prior"]

#: Fewest kept pilot frames for a warm start (fewer: no prior).
MIN_PILOTS = 3


def pilot_indices(candidates, n: int) -> np.ndarray:
    """Pick ``n`` pilot frames evenly spread over ``candidates`` (indices, in order).

    >>> pilot_indices(np.arange(10), 3).tolist()
    [1, 5, 8]
    """
    candidates = np.asarray(candidates)
    if n <= 0 or candidates.size == 0:
        return candidates[:0]
    n = min(n, candidates.size)
    picks = np.floor((np.arange(n) + 0.5) * candidates.size / n).astype(int)
    return candidates[picks]


def sweep_prior(eps) -> np.ndarray | None:
    """Return the sweep's warm start: the median pilot correction, or None.

    Parameters
    ----------
    eps : array-like of shape (k, 6)
        Corrections (refined minus initial pose parameters) of the kept pilots.

    Returns
    -------
    prior : ndarray of shape (6,) or None
        None when fewer than ``MIN_PILOTS`` pilots were kept.
    """
    eps = np.asarray(eps, dtype=float).reshape(-1, 6)
    eps = eps[np.isfinite(eps).all(axis=1)]
    if len(eps) < MIN_PILOTS:
        return None
    return np.median(eps, axis=0)
