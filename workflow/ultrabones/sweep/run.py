"""Label a sweep: plan its frames, label them chunk by chunk, check, publish.

:func:`label_sweep` owns the work-in-progress store
(:func:`~ultrabones.io.store.open_work`): a run killed at any point resumes from the
chunks marked done and the sweep-level results saved in ``sweep.json``, and writes
the same bytes.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np

from ..engine import EngineParams, SpecimenModel, process_frame
from ..io.record import open_record
from ..io.store import open_work
from ..provenance import provenance
from ..store import DEFAULT_CHUNK_FRAMES, chunk_slices, encoding, template_dataset
from ..transforms import params_from_matrix
from .checks import check_any_processed, check_failures
from .cluster import label_chunks
from .plan import plan_tasks
from .store_io import (
    apply_confidence_check,
    mark_chunk,
    store_reasons,
    sweep_refit,
    warm_start,
    write_chunk,
)

__all__ = ["SweepOptions", "label_sweep"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepOptions:
    """What names, chunks and judges a labelled sweep, besides the engine parameters.

    Attributes
    ----------
    specimen, sweep : str
        IDs of the sweep; they seed its frames and name it in the store.
    chunk_frames : int
        Frames per store chunk (the unit of work and of resuming).
    config_hash : str
        Workflow config hash, recorded in the provenance.
    max_failed_fraction : float
        Fail when more of the frames with an image than this end in engine_error.
    lam_rule : str
        How the engine's lambda was chosen (a fixed value, or select-lambda's file
        and rule), recorded in the provenance beside the engine parameters.
    """

    specimen: str
    sweep: str
    chunk_frames: int = DEFAULT_CHUNK_FRAMES
    config_hash: str = ""
    max_failed_fraction: float = 0.05
    lam_rule: str = ""


def label_sweep(
    record: str,
    model: str,
    params: EngineParams,
    out: str,
    options: SweepOptions,
    *,
    connect: Callable[[], AbstractContextManager],
) -> None:
    """Label every frame of a record into the store ``out`` and publish it.

    Parameters
    ----------
    record, model : str
        Record folder (public layout) and prepared specimen model folder.
    params : EngineParams
        The engine parameters; ``params.seed`` is the run seed.
    out : str
        Output store (.zarr), published by an atomic rename.
    options : SweepOptions
    connect : callable
        Returns a Dask client as a context manager. Called once the plan is checked,
        so a sweep with nothing to label fails before any cluster starts.

    Raises
    ------
    InputDataError
        When no frame was read and refined, or too many ended in engine_error.

    Notes
    -----
    The paths are made absolute here, on the submitting host: tasks and writers carry
    them to the workers, which may run in another directory (an external
    scheduler's). Symlinks are kept (no ``resolve``): a linked record stays itself.
    """
    record, model, out = (os.path.abspath(p) for p in (record, model, out))
    opened = open_record(record)
    prov = provenance([record, model], config_hash=options.config_hash)
    work = open_work(out, _plan(prov, params, options))
    tasks = plan_tasks(
        opened, seed=params.seed, specimen=options.specimen, sweep=options.sweep
    )
    check_any_processed([t.status for t in tasks], record)  # before any cluster
    slices = chunk_slices(len(tasks), options.chunk_frames)
    cal = opened.calibration
    attrs = _attrs(prov, cal, params, options)
    if not work.created:
        _create(work, opened, attrs, options)
    pending, finished = _todo(work, slices)
    log.info(
        "%s: %d frames, %d of %d chunks to do",
        out,
        len(tasks),
        len(pending),
        len(slices),
    )
    kernel = dict(
        shape=cal.shape, model=SpecimenModel.load(model), calibration=cal, params=params
    )
    with connect() as client, _progress(len(tasks), finished) as bar:
        attrs["warm_start"] = _label(work, client, tasks, slices, pending, bar, kernel)
    # read once: the confidence check changes no frame's image or engine_error
    reasons = store_reasons(work)
    check_any_processed(reasons, record)
    apply_confidence_check(work, params, cal.probe_marker_fiducials_mm)
    check_failures(reasons, work.out, options.max_failed_fraction)
    work.publish(attrs)


def _plan(prov: dict, params: EngineParams, options: SweepOptions) -> dict:
    """Return what a resumed work folder must match (the provenance but the commit)."""
    plan = {
        **prov,
        "engine": params.to_dict(),
        "seed": params.seed,
        "chunk": options.chunk_frames,
    }
    plan.pop("git_sha")
    return plan


def _attrs(prov: dict, cal, params, options: SweepOptions) -> dict:
    """Return the store's root attrs, but the warm start (known once it has run)."""
    return {
        **prov,
        "specimen": options.specimen,
        "sweep": options.sweep,
        "pixel_spacing_mm": list(cal.pixel_spacing_mm),
        "probe_from_image": [
            float(v) for v in params_from_matrix(cal.probe_from_image)
        ],
        "gamma_mm": float(params.gamma_mm),
        "engine_params": json.dumps(params.to_dict(), sort_keys=True),
        "lam_rule": options.lam_rule,
        "seed": params.seed,
        "chunk_frames": options.chunk_frames,
    }


def _create(work, record, attrs: dict, options: SweepOptions) -> None:
    """Write the work store's metadata and coordinates, no frame data yet."""
    cal = record.calibration
    template = template_dataset(
        record.poses["timestamp"].to_numpy(),
        shape=cal.shape,
        spacing_mm=cal.pixel_spacing_mm,
        specimen=options.specimen,
        sweep=options.sweep,
        chunk_frames=options.chunk_frames,
        attrs=attrs,
    )
    work.create(template, encoding(template, options.chunk_frames))


def _todo(work, slices) -> tuple[list[int], int]:
    """Return the chunks still to label and the number of frames already labelled."""
    done = work.completed()
    pending = [i for i in range(len(slices)) if i not in done]
    finished = sum(s.stop - s.start for i, s in enumerate(slices) if i in done)
    return pending, finished


def _label(work, client, tasks, slices, pending, bar, kernel) -> str:
    """Run the warm start, the pending chunks and the refit; return the warm start.

    The warm start is returned as the store's ``warm_start`` attr (JSON).
    """
    warm = warm_start(work, client, tasks, kernel)
    prior = None if warm["eps"] is None else np.asarray(warm["eps"])
    label_chunks(
        client,
        {i: tasks[slices[i]] for i in pending},
        write=functools.partial(write_chunk, store=str(work.store), slices=slices),
        mark=functools.partial(mark_chunk, work=work, slices=slices),
        progress=bar,
        frame_fn=functools.partial(process_frame, prior=prior),
        **kernel,
    )
    if kernel["params"].refinement == "sweep":
        sweep_refit(work, client, tasks, kernel)
    return json.dumps({k: warm[k] for k in ("eps", "pilots")}, sort_keys=True)


def _progress(total: int, initial: int):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="frame",
        file=sys.stderr,
        mininterval=2.0,
        desc="label-sweep",
    )
