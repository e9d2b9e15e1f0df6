"""The sweep's frames on a Dask client: pilot frames, store chunks, frames refit.

The kernel arguments (``frame_fn``, ``shape``, ``model``, ``calibration``,
``params``) travel as keyword arguments, which Dask resolves when they are scattered
futures; the workers run the Dask-free :mod:`~ultrabones.sweep.frames`.
:func:`pilot_prior` and :func:`refit_frames` (the warm start and the sweep step)
take any client with ``submit``, ``gather`` and ``scatter``: ``label-sweep`` hands
them a Dask client, the bench and ``select-lambda`` the in-process :class:`Serial`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..vocabulary import Reason
from .frames import label_frames, run_chunk, run_frame
from .plan import FrameTask

__all__ = ["Serial", "label_chunks", "pilot_prior", "refit_frames"]

log = logging.getLogger(__name__)


class Serial:
    """A Dask client's stand-in that runs each task here, when it is gathered.

    ``submit`` defers a call, ``gather`` yields the results one by one (so a long
    run holds one frame's masks at a time) and ``scatter`` hands its value back.

    Examples
    --------
    >>> client = Serial()
    >>> list(client.gather([client.submit(divmod, 7, 2, pure=False)]))
    [(3, 1)]
    """

    def submit(self, fn: Callable, *args, pure: bool = True, **kwargs):
        """Return the call ``fn(*args, **kwargs)``, not run yet (``pure`` unused)."""
        return functools.partial(fn, *args, **kwargs)

    def gather(self, futures: Iterable[Callable]) -> Iterator:
        """Run the submitted calls in order, yielding each result."""
        return (call() for call in futures)

    def scatter(self, value, **_):
        """Return ``value`` (this process is the only worker)."""
        return value


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
    out = run_frame(task, **kernel)
    if out["reason"] != Reason.OK.value:
        return None
    return out["pose_refined"] - out["pose_initial"]


def pilot_prior(client, tasks: Sequence[FrameTask], *, n: int, **kernel):
    """Refine ``n`` pilot frames spread over the sweep; return the warm start.

    Pilots are picked among the rows with a usable image
    (:func:`~ultrabones.engine.warm.pilot_indices`) and run alone (no prior) on the
    client; the warm start is the median of the kept ones' corrections, or None
    (also when ``n`` is 0: nothing is sent to the client).

    Returns
    -------
    prior : ndarray of shape (6,) or None
    pilots : list of int
        Timestamps of the pilot frames.
    """
    from ..engine.warm import pilot_indices, sweep_prior

    usable = [i for i, t in enumerate(tasks) if t.status == Reason.OK and t.image_path]
    picked = [tasks[i] for i in pilot_indices(np.array(usable, dtype=int), n)]
    if not picked:
        return None, []
    shared = _scatter(client, kernel)
    futures = [client.submit(_pilot_eps, t, pure=False, **shared) for t in picked]
    eps = [e for e in client.gather(futures) if e is not None]
    return sweep_prior(eps), [t.timestamp for t in picked]


def _label_and_write(index, tasks, *, write, **kernel) -> int:
    write(index, run_chunk(tasks, **kernel))
    return len(tasks)


def label_chunks(
    client,
    chunks: Mapping[int, Sequence[FrameTask]],
    *,
    write: Callable[[int, dict], None],
    mark: Callable[[int], None],
    progress=None,
    **kernel,
) -> None:
    """Map chunks (index to tasks) over a Dask client; each worker writes its chunk.

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
            _label_and_write, i, list(tasks), write=write, pure=False, **shared
        ): i
        for i, tasks in chunks.items()
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


def _refit_frame(task: FrameTask, start, *, frame_fn, **kernel) -> dict:
    """Label one frame from ``start``: its fields (:func:`label_frames`)."""
    frame_fn = functools.partial(frame_fn, start=np.asarray(start))
    return next(label_frames([task], frame_fn=frame_fn, **kernel))


def refit_frames(client, tasks, frames, starts, *, frame_fn, **kernel) -> Iterable:
    """Refine ``frames`` again from their sweep-consistent ``starts`` (pass two).

    Each frame runs alone on the client, with ``frame_fn(..., start=start)`` in the
    residual box of :func:`~ultrabones.engine.consistency.residual_params`.

    Returns
    -------
    fields : iterable of dict
        The fields of each frame (:func:`label_frames`), in the order of ``frames``.
    """
    from ..engine.consistency import residual_params

    kernel = dict(kernel, params=residual_params(kernel["params"]))
    shared = _scatter(client, kernel)
    futures = [
        client.submit(
            _refit_frame,
            tasks[int(i)],
            np.asarray(start),
            frame_fn=frame_fn,
            pure=False,
            **shared,
        )
        for i, start in zip(frames, starts, strict=True)
    ]
    return client.gather(futures)
