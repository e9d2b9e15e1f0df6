"""A sweep's frames labelled in this process, as ``label-sweep`` labels them.

The bench, ``select-lambda`` and the studies run the same steps as ``label-sweep``
on the in-process :class:`~.cluster.Serial` client instead of Dask: the same tasks
(:func:`record_tasks`, seeded by :func:`~.plan.frame_seed`), the same warm start
(:func:`~.cluster.pilot_prior`), the same loop (:func:`~.frames.label_frames`) and the
same sweep step (:func:`~ultrabones.engine.consistency.refit_plan`,
:func:`~.cluster.refit_frames`). Only the store is missing: the frames' fields come
back as dicts, their image and masks dropped once ``keep`` has seen them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..engine import process_frame
from ..engine.consistency import refit_plan
from ..vocabulary import MASKS
from .cluster import Serial, pilot_prior, refit_frames
from .frames import label_frames
from .plan import FrameTask, plan_tasks

__all__ = [
    "PLANES",
    "kernel_of",
    "label_tasks",
    "record_tasks",
    "sweep_ids",
    "warm_start",
]

#: The per-frame fields of image size, dropped once ``keep`` has seen a frame.
PLANES = ("image", *MASKS)


def sweep_ids(root) -> tuple[str, str]:
    """Return the specimen and sweep IDs of a record folder, from its path.

    The workflow's ``<specimen>/<sweep>`` and the raw layout's
    ``<specimen>/sweeps/<sweep>`` (``ultrabones.layout``) both name them.

    Examples
    --------
    >>> sweep_ids("results/poses/S01/tibia-1")
    ('S01', 'tibia-1')
    >>> sweep_ids("cohort/specimens/S02/sweeps/fibula-1")
    ('S02', 'fibula-1')
    """
    root = Path(root)
    above = root.parent.parent if root.parent.name == "sweeps" else root.parent
    return above.name, root.name


def record_tasks(record, params) -> list[FrameTask]:
    """Return one task per row of an opened record, seeded as ``label-sweep`` seeds.

    The run seed is ``params.seed``; the specimen and sweep IDs are read from the
    record's folder (:func:`sweep_ids`).
    """
    specimen, sweep = sweep_ids(record.root)
    return plan_tasks(record, seed=params.seed, specimen=specimen, sweep=sweep)


def kernel_of(calibration, model, params) -> dict:
    """Return the kernel arguments of :func:`~.frames.run_frame` for a record."""
    shape = calibration.shape
    return dict(shape=shape, model=model, calibration=calibration, params=params)


def warm_start(tasks: Sequence[FrameTask], kernel: dict) -> tuple:
    """Return the sweep's warm start over ``tasks`` and its pilots' timestamps.

    :func:`~.cluster.pilot_prior` with ``params.warm_start_frames`` pilots, here.
    """
    n = kernel["params"].warm_start_frames
    return pilot_prior(Serial(), tasks, n=n, frame_fn=process_frame, **kernel)


def _dropped(fields: dict, keep: Callable | None) -> dict:
    """Hand a frame's fields to ``keep``, then drop its image and masks."""
    if keep is not None:
        keep(fields)
    return {k: v for k, v in fields.items() if k not in PLANES}


def label_tasks(tasks, kernel: dict, *, prior=None, keep=None) -> list[dict]:
    """Label ``tasks`` as ``label-sweep`` labels a sweep, both passes.

    Parameters
    ----------
    tasks : sequence of FrameTask
        The frames, in time order.
    kernel : dict
        :func:`kernel_of`.
    prior : ndarray of shape (6,), optional
        The warm start (:func:`warm_start`).
    keep : callable, optional
        Called with each frame's fields (image and masks included) as it ends, and
        again for a frame refined again; the fields it adds to them stay.

    Returns
    -------
    fields : list of dict
        Per task, its fields (:func:`~.frames.label_frames`) without image and
        masks. With ``refinement: sweep`` a frame refined again holds its second
        pass, ``start`` (its start pose) and times summed over both passes.
    """
    tasks = list(tasks)
    frame_fn = functools.partial(process_frame, prior=prior)
    frames = label_frames(tasks, **dict(kernel, frame_fn=frame_fn))
    fields = [_dropped(f, keep) for f in frames]
    if kernel["params"].refinement == "sweep":
        _refit(tasks, fields, kernel, keep)
    return fields


def _refit(tasks, fields: list[dict], kernel: dict, keep) -> None:
    """Refine again, in place, the frames that stray from the sweep's correction."""
    rows, starts = refit_plan(
        np.array([f["timestamp"] for f in fields]),
        np.array([f["pose_initial"] for f in fields], float).reshape(-1, 6),
        np.array([f["pose_refined"] for f in fields], float).reshape(-1, 6),
        np.array([f["reason"] for f in fields], str),
        params=kernel["params"],
        fiducials=kernel["calibration"].probe_marker_fiducials_mm,
    )
    again = refit_frames(
        Serial(), tasks, rows, starts, frame_fn=process_frame, **kernel
    )
    for i, start, frame in zip(rows, starts, again, strict=True):
        frame["start"] = start
        frame["ms"] += fields[i]["ms"]
        frame["cpu_ms"] += fields[i]["cpu_ms"]
        fields[i] = _dropped(frame, keep)
