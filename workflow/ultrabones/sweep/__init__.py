"""Label a whole sweep: per-frame tasks, chunk workers and the Dask orchestration.

:func:`label_sweep` labels a record into a published store: it plans one task per
row of the poses table (:mod:`.plan`), refines pilot frames for the sweep's warm
start, maps the store's chunks over a Dask client (:mod:`.cluster`), each worker
applying the Dask-free kernel of :mod:`.frames` and writing its chunk, refines again
the frames that stray from the sweep's correction (``refinement: sweep``,
:mod:`ultrabones.engine.consistency`), then scores the sweep's frames together
(:func:`confidence_check`) and publishes. Each step on the work-in-progress store
(:mod:`.store_io`) resumes after a kill.

The bench, ``select-lambda`` (:mod:`.lam`) and the studies run the same steps in
their own process (:mod:`.local`, on the in-process :class:`~.cluster.Serial`
client): one frame loop, one warm start and one sweep step for all, one row each
in the per-frame table of :mod:`.table`.
"""

from __future__ import annotations

from .checks import confidence_check
from .cluster import label_chunks, pilot_prior, refit_frames
from .frames import run_chunk
from .plan import FrameTask, frame_seed, plan_tasks
from .run import SweepOptions, label_sweep

__all__ = [
    "FrameTask",
    "SweepOptions",
    "confidence_check",
    "frame_seed",
    "label_chunks",
    "label_sweep",
    "pilot_prior",
    "plan_tasks",
    "refit_frames",
    "run_chunk",
]
