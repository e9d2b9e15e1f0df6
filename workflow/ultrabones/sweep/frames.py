"""The per-frame kernel of a sweep inside a worker: plain NumPy, never Dask.

:func:`run_chunk` reads the frames of one store chunk, applies the kernel
(:func:`ultrabones.engine.process_frame` by default) to each and stacks the fields
into the store's per-variable arrays; a frame's fault becomes that frame's reason.

``engine.bench.run_frames`` is another loop over frames, kept apart on purpose: it
seeds each frame by its timestamp (this one by :func:`~.plan.frame_seed`), hands the
engine frames without an image (here they never reach it), lets an engine error fail
the bench (here it becomes ``engine_error``), and times each frame into a table
row. One generator for both would change one output or the other (the bench's seeds
and its failing on an engine error, or the store's ``engine_error`` rows), unless it
took a switch for each of these differences; so each loop stays by its output.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import InputDataError
from ..io.png import read_png
from ..store import FRAME_VARIABLES, status_of
from ..transforms import POSE_COLUMNS, matrix_from_params
from ..vocabulary import MASKS, Reason
from .plan import FrameTask

__all__ = ["run_chunk", "run_frame"]

log = logging.getLogger(__name__)


def _empty_frame(task: FrameTask, reason: str) -> dict:
    """Return the fields of a frame not refined (its image and masks stay zero)."""
    return {
        "pose_initial": np.asarray(task.pose, np.float64),
        "pose_refined": np.full(len(POSE_COLUMNS), np.nan),
        "fiducial_correction_mm": np.nan,
        "objective": np.full(2, np.nan),
        "evaluations": 0,
        "confidence": np.nan,
        "confidence_features": np.full(4, np.nan),
        "reason": reason,
    }


def _load_image(task: FrameTask, shape: tuple) -> tuple[np.ndarray | None, str]:
    if task.status != Reason.OK:
        return None, task.status
    try:
        image = read_png(task.image_path)
    except InputDataError as err:
        log.warning("frame %d: %s", task.timestamp, err)
        return None, Reason.UNREADABLE_IMAGE.value
    if image.shape != tuple(shape):
        log.warning(
            "frame %d: image %s, expected %s", task.timestamp, image.shape, shape
        )
        return None, Reason.WRONG_IMAGE_SIZE.value
    return image, Reason.OK.value


def run_frame(task: FrameTask, *, frame_fn, shape, model, calibration, params):
    """Label one frame; return its store fields (its fault becomes its reason)."""
    image, reason = _load_image(task, shape)
    if image is None:
        return _empty_frame(task, reason)
    try:
        result = frame_fn(
            image,
            matrix_from_params(task.pose),
            model=model,
            calibration=calibration,
            params=params,
            seed=task.seed,
        )
    except Exception:  # one frame's fault is that frame's reason, never the sweep's
        log.exception("frame %d: engine raised", task.timestamp)
        out = _empty_frame(task, Reason.ENGINE_ERROR.value)
        out["image"] = image
        return out
    return _frame_fields(task, image, result, shape)


def _frame_fields(task: FrameTask, image: np.ndarray, result, shape) -> dict:
    masks = result.masks or {}
    out = {
        m: np.asarray(masks.get(m, np.zeros(shape)), bool).astype(np.uint8)
        for m in MASKS
    }
    out.update(
        image=image,
        pose_initial=np.asarray(task.pose, np.float64),
        pose_refined=np.asarray(result.pose_refined, np.float64),
        fiducial_correction_mm=float(result.fiducial_correction_mm),
        objective=np.array([result.objective_initial, result.objective_refined], float),
        evaluations=int(result.evaluations),
        confidence=float(result.confidence),
        confidence_features=np.asarray(result.confidence_features, np.float64),
        reason=str(result.reason),
    )
    return out


def run_chunk(
    tasks: Sequence[FrameTask],
    *,
    frame_fn: Callable,
    shape: tuple,
    model,
    calibration,
    params,
) -> dict:
    """Label the frames of one chunk; return per-variable arrays, frames first.

    Runs inside a worker: plain NumPy, no Dask. A frame's fault becomes its reason.
    """
    frames = [
        run_frame(
            t,
            frame_fn=frame_fn,
            shape=shape,
            model=model,
            calibration=calibration,
            params=params,
        )
        for t in tasks
    ]
    return _stack(frames, shape)


def _stack(frames: list[dict], shape: tuple) -> dict:
    """Stack frame fields into chunk arrays; absent images and masks are zero.

    The zero planes are allocated, not copied, so a row without an image costs
    next to nothing.
    """
    out = {}
    for name in ("image", *MASKS):
        out[name] = np.zeros((len(frames), *shape), np.uint8)
        for k, frame in enumerate(frames):
            if name in frame:
                out[name][k] = frame[name]
    for name in FRAME_VARIABLES:
        if name not in out and name != "status":
            out[name] = np.stack([np.asarray(f[name]) for f in frames])
    out["status"] = np.array([status_of(f["reason"]) for f in frames])
    return out
