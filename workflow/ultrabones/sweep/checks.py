"""Sweep-level checks once every frame is refined: confidence, failures, any input.

:func:`confidence_check` scores the sweep's frames together (neighbours'
corrections, the sweep's evidence) and discards the kept ones of low confidence;
:func:`check_failures` and :func:`check_any_processed` refuse to publish a sweep
whose frames failed in the engine or never reached it.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..errors import InputDataError
from ..store import status_of
from ..vocabulary import UNPROCESSED_REASONS, Reason

__all__ = ["check_any_processed", "check_failures", "confidence_check"]


def confidence_check(
    pose_initial, pose_refined, features, reason, *, params, fiducials
) -> dict:
    """Score a sweep's frames together; discard the kept ones of low confidence.

    Runs once every frame of the sweep is refined. Each refined frame's correction is
    compared with the running median of its neighbours'
    (:func:`~ultrabones.engine.confidence.neighbour_distance_mm`), its evidence with
    the sweep's distribution, and the frames are rescored
    (:func:`~ultrabones.engine.confidence.sweep_confidence`); kept frames below
    ``params.min_confidence`` become ``low_confidence``.

    Parameters
    ----------
    pose_initial, pose_refined : ndarray of shape (n, 6)
        The sweep's poses in frame order (record parameters, mm and deg).
    features : ndarray of shape (n, 4)
        Per-frame confidence features from the engine (NaN rows where not refined).
    reason : ndarray of shape (n,), str
        The frames' reason codes.
    params : EngineParams
    fiducials : ndarray of shape (m, 3)
        Probe fiducials, probe-marker frame, mm.

    Returns
    -------
    checked : dict
        ``confidence`` (float32, n), ``confidence_features`` (float32, n x 4, with
        ``neighbour_mm``), ``reason`` and ``status`` (str, n) and ``discarded``
        (int indices of the frames the check discarded).
    """
    from ..engine.confidence import neighbour_distance_mm, sweep_confidence

    features = np.array(features, dtype=np.float64).reshape(-1, 4)
    refined = np.isfinite(features[:, 0])
    features[:, 3] = neighbour_distance_mm(
        pose_initial, pose_refined, refined, fiducials=fiducials
    )
    # object, not a fixed-width str array, which would cut the new code to the
    # longest code already present
    reason = np.array(reason, dtype=object)
    kept = reason == Reason.OK
    confidence = sweep_confidence(features, kept, params.confidence_model)
    low = kept & (confidence < params.min_confidence)
    reason[low] = Reason.LOW_CONFIDENCE.value
    return {
        "confidence": confidence.astype(np.float32),
        "confidence_features": features.astype(np.float32),
        "reason": reason.astype(str),
        "status": np.array([status_of(r) for r in reason], dtype=str),
        "discarded": np.flatnonzero(low),
    }


def check_failures(reason, out, max_fraction: float) -> None:
    """Fail when more frames with an image than ``max_fraction`` hit engine_error."""
    has_image = reason != "no_image"
    failed = (
        float(np.mean(reason[has_image] == "engine_error")) if has_image.any() else 0
    )
    if failed > max_fraction:
        raise InputDataError(
            f"{out}: {failed:.1%} of frames ended in engine_error, more than "
            f"--max-failed-fraction {max_fraction:.1%} (see the log's tracebacks)"
        )


def check_any_processed(reasons, record: str) -> None:
    """Fail when no frame's image was read and refined (nothing to publish).

    ``reasons`` are the frames' codes: the poses table's before labelling (no row
    ``ok``: nothing can be), the store's after. A sweep whose frames were all refined
    and then discarded is a normal outcome; one where no frame reached the engine
    (images misnamed, probe never tracked) is bad input, and publishing it would give
    an empty release.
    """
    if any(r not in UNPROCESSED_REASONS for r in reasons):
        return
    counts = ", ".join(f"{k} {n}" for k, n in sorted(Counter(reasons).items()))
    raise InputDataError(
        f"{record}: no frame of the sweep has an image that was read and refined "
        f"({counts}); check the image names (UltrasoundImages/<timestamp>.png) and "
        "the poses"
    )
