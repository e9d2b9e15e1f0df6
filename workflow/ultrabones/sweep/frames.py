"""The one loop over a sweep's frames: plain NumPy, never Dask.

:func:`label_frames` yields the fields of each frame of a list of tasks
(:func:`~.plan.plan_tasks`: one per row of the poses table, seeded by
:func:`~.plan.frame_seed`) with its wall and CPU time; :func:`run_frame` labels one.
A row without a usable image never reaches the engine and keeps its reason; an
engine exception becomes that frame's ``engine_error``. Every labelling goes through
it: ``label-sweep``'s chunk workers (:func:`run_chunk` stacks the fields into the
store's per-variable arrays), its pilots and its frames refined again
(:mod:`.cluster`), and in this process the bench, ``select-lambda`` and the studies
(:mod:`.local`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from ..errors import InputDataError
from ..io.png import read_png
from ..store import FRAME_VARIABLES, status_of
from ..transforms import POSE_COLUMNS, matrix_from_params
from ..vocabulary import MASKS, Reason
from .plan import FrameTask

__all__ = ["label_frames", "run_chunk", "run_frame", "stack_frames"]

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
    """Label one frame; return its store fields (its fault becomes its reason).

    Parameters
    ----------
    task : FrameTask
    frame_fn : callable
        The engine, :func:`ultrabones.engine.process_frame` (with a ``prior`` or a
        ``start`` bound, as the sweep's step needs).
    shape : tuple of int
        The record's image shape ``(rows, cols)``.
    model, calibration, params
        Passed to ``frame_fn``.

    Returns
    -------
    fields : dict
        The store's per-frame variables but ``status`` (``image`` and the masks only
        for a frame whose image was read).
    """
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


def label_frames(tasks: Sequence[FrameTask], **kernel) -> Iterator[dict]:
    """Yield the fields of each task's frame, in order, with its timestamp and times.

    Parameters
    ----------
    tasks : sequence of FrameTask
    **kernel
        ``frame_fn``, ``shape``, ``model``, ``calibration``, ``params`` of
        :func:`run_frame`.

    Yields
    ------
    fields : dict
        :func:`run_frame`'s fields plus ``timestamp`` (ms), ``ms`` and ``cpu_ms``
        (wall and CPU time of the frame, image reading included).
    """
    for task in tasks:
        t0, c0 = time.perf_counter(), time.process_time()
        out = run_frame(task, **kernel)
        out["ms"] = (time.perf_counter() - t0) * 1e3
        out["cpu_ms"] = (time.process_time() - c0) * 1e3
        out["timestamp"] = task.timestamp
        yield out


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
    kernel = dict(model=model, calibration=calibration, params=params)
    frames = label_frames(tasks, frame_fn=frame_fn, shape=shape, **kernel)
    return stack_frames(list(frames), shape)


def stack_frames(frames: list[dict], shape: tuple) -> dict:
    """Stack frame fields into chunk arrays; absent images and masks are zero.

    Only the store's variables (``FRAME_VARIABLES``) are kept.

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
