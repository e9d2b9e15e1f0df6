"""Label a whole sweep: per-frame tasks, chunk workers and the Dask orchestration.

The per-frame kernel (:func:`ultrabones.engine.process_frame` by default) takes NumPy
arrays and never sees Dask: :func:`run_chunk` applies it to the frames of one store
chunk inside a worker, and :func:`label_chunks` maps chunks over a Dask client and
hands each finished chunk to the writer as it arrives. Once every frame is refined,
:func:`confidence_check` scores the sweep's frames together (neighbours' corrections,
the sweep's evidence) and discards the kept ones of low confidence. Before that,
with ``refinement: sweep``, :func:`refit_frames` refines again the frames that stray
from the sweep's correction (:mod:`ultrabones.engine.consistency`).
"""

from __future__ import annotations

import functools
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import InputDataError
from .io.png import read_png
from .store import FRAME_VARIABLES, status_of
from .transforms import POSE_COLUMNS, matrix_from_params
from .vocabulary import MASKS, Reason

__all__ = [
    "FrameTask",
    "frame_seed",
    "confidence_check",
    "label_chunks",
    "pilot_prior",
    "plan_tasks",
    "refit_frames",
    "run_chunk",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameTask:
    """One row of the poses table, ready for a worker.

    Attributes
    ----------
    timestamp : int
        ms.
    image_path : str
        Frame PNG, or "" when the row has no image.
    pose : ndarray of shape (6,)
        Initial T_CT<-US as record columns (NaN when invalid).
    status : str
        The poses table's reason code for the row (``ok`` when usable).
    seed : int
        Per-frame seed of the refinement.
    """

    timestamp: int
    image_path: str
    pose: np.ndarray
    status: str
    seed: int


def frame_seed(seed: int, specimen: str, sweep: str, timestamp: int) -> int:
    """Derive a frame's seed from the run seed, its sweep and its timestamp.

    >>> frame_seed(0, "S01", "tibia-1", 5) == frame_seed(0, "S01", "tibia-1", 5)
    True
    """
    parts = [seed, zlib.crc32(specimen.encode()), zlib.crc32(sweep.encode()), timestamp]
    return int(np.random.SeedSequence(parts).generate_state(1)[0])


def plan_tasks(record, *, seed: int, specimen: str, sweep: str) -> list[FrameTask]:
    """Return one task per row of an opened record's poses table."""
    poses = record.poses
    params = poses[list(POSE_COLUMNS)].to_numpy(np.float64)
    return [
        FrameTask(
            timestamp=int(t),
            image_path=str(record.image_path(t)) if image else "",
            pose=params[i],
            status=str(status),
            seed=frame_seed(seed, specimen, sweep, int(t)),
        )
        for i, (t, image, status) in enumerate(
            zip(poses["timestamp"], poses["image"], poses["status"], strict=True)
        )
    ]


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


def _run_frame(task: FrameTask, *, frame_fn, shape, model, calibration, params):
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
        _run_frame(
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


def _scatter(client, kernel: dict) -> dict:
    """Send the large kernel arguments (model, params) to every worker once.

    Under fresh keys (``hash=False``): with content-hashed keys a second scatter of
    the same model (the chunks after the warm start's pilots) reuses the pilots'
    keys, and their release can cancel the chunks ("lost dependencies").
    """
    return {
        k: client.scatter(v, broadcast=True, hash=False)
        if k in ("model", "params")
        else v
        for k, v in kernel.items()
    }


def _pilot_eps(task: FrameTask, **kernel) -> np.ndarray | None:
    out = _run_frame(task, **kernel)
    if out["reason"] != Reason.OK.value:
        return None
    return out["pose_refined"] - out["pose_initial"]


def pilot_prior(client, tasks: Sequence[FrameTask], *, n: int, **kernel):
    """Refine ``n`` pilot frames spread over the sweep; return the warm start.

    Pilots are picked among the rows with a usable image
    (:func:`~ultrabones.engine.warm.pilot_indices`) and run alone (no prior) on the
    client; the warm start is the median of the kept ones' corrections, or None.

    Returns
    -------
    prior : ndarray of shape (6,) or None
    pilots : list of int
        Timestamps of the pilot frames.
    """
    from .engine.warm import pilot_indices, sweep_prior

    usable = [i for i, t in enumerate(tasks) if t.status == Reason.OK and t.image_path]
    picked = [tasks[i] for i in pilot_indices(np.array(usable, dtype=int), n)]
    shared = _scatter(client, kernel)
    futures = [client.submit(_pilot_eps, t, pure=False, **shared) for t in picked]
    eps = [e for e in client.gather(futures) if e is not None]
    return sweep_prior(eps), [t.timestamp for t in picked]


def _label_and_write(index, tasks, *, write, **kernel) -> int:
    write(index, run_chunk(tasks, **kernel))
    return len(tasks)


def label_chunks(
    client,
    tasks: Sequence[FrameTask],
    *,
    slices: Sequence[slice],
    pending: Sequence[int],
    write: Callable[[int, dict], None],
    mark: Callable[[int], None],
    progress=None,
    **kernel,
) -> None:
    """Map the pending chunks over a Dask client; each worker writes its chunk.

    A worker labels the frames of a chunk with :func:`run_chunk` and writes them with
    ``write(index, arrays)`` (chunks are whole Zarr chunks, so writers never share
    one); this process then calls ``mark(index)``, so a chunk is marked complete only
    after its data is on disk. ``progress.update`` counts frames. ``kernel``
    (frame_fn, shape, model, calibration, params) is scattered to the workers once.
    """
    from dask.distributed import as_completed

    shared = _scatter(client, kernel)
    futures = {
        client.submit(
            _label_and_write,
            i,
            list(tasks[slices[i]]),
            write=write,
            pure=False,
            **shared,
        ): i
        for i in pending
    }
    start, done = time.monotonic(), 0
    for future in as_completed(futures):
        index = futures[future]
        frames = future.result()
        mark(index)
        done += frames
        rate = done / max(time.monotonic() - start, 1e-9)
        log.info("chunk %d written: %d frames done, %.2f frames/s", index, done, rate)
        if progress is not None:
            progress.update(frames)


def refit_frames(client, tasks, frames, starts, *, frame_fn, **kernel) -> list[dict]:
    """Refine ``frames`` again from their sweep-consistent ``starts`` (pass two).

    Each frame runs as a one-frame chunk (:func:`run_chunk`) on the client, with
    ``frame_fn(..., start=start)`` in the residual box of
    :func:`~ultrabones.engine.consistency.residual_params`; returns the per-variable
    arrays of each, in the order of ``frames``.
    """
    from .engine.consistency import residual_params

    kernel = dict(kernel, params=residual_params(kernel["params"]))
    shared = _scatter(client, kernel)
    futures = [
        client.submit(
            run_chunk,
            [tasks[int(i)]],
            frame_fn=functools.partial(frame_fn, start=np.asarray(start)),
            pure=False,
            **shared,
        )
        for i, start in zip(frames, starts, strict=True)
    ]
    return client.gather(futures)


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
    from .engine.confidence import neighbour_distance_mm, sweep_confidence

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
