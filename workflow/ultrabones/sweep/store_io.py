"""The sweep's steps on its work-in-progress store, each resumable after a kill.

Every sweep-level result (warm start, refit plan, confidence check) is saved in the
work folder's ``sweep.json`` before the store is changed, so a run killed part way
writes the same values again on resume, or none.
"""

from __future__ import annotations

import logging

import numpy as np

from ..engine import process_frame
from ..engine.consistency import refit_plan
from ..io.store import clear_frames, read_variables, write_region, write_variables
from ..store import as_str, chunk_dataset
from ..vocabulary import MASKS
from .checks import confidence_check
from .cluster import pilot_prior, refit_frames
from .frames import stack_frames

__all__ = [
    "apply_confidence_check",
    "mark_chunk",
    "store_reasons",
    "sweep_refit",
    "warm_start",
    "write_chunk",
]

log = logging.getLogger(__name__)


def write_chunk(index: int, arrays: dict, *, store: str, slices) -> None:
    """Write one chunk (runs in a Dask worker)."""
    write_region(store, slices[index], chunk_dataset(arrays))


def mark_chunk(index: int, *, work, slices) -> None:
    """Mark one chunk done (in this process, once its worker wrote it)."""
    work.mark_done(index, slices[index])


def store_reasons(work) -> np.ndarray:
    """Return the frames' reason codes in the work store."""
    return as_str(read_variables(work.store, ["reason"])["reason"])


def warm_start(work, client, tasks, kernel) -> dict:
    """Return the sweep's warm start, saved before any chunk for a resumed run."""
    saved = work.load_sweep()
    if saved is not None:
        log.info("%s: warm start from the saved sweep results", work.out)
        return saved
    n = kernel["params"].warm_start_frames
    prior, pilots = pilot_prior(client, tasks, n=n, frame_fn=process_frame, **kernel)
    doc = {
        "eps": None if prior is None else [float(v) for v in prior],
        "pilots": pilots,
    }
    log.info(
        "%s: warm start %s from %d pilot frames", work.out, doc["eps"], len(pilots)
    )
    work.save_sweep(doc)
    return doc


def _refit_plan(work, kernel) -> dict:
    """Plan the refit from the store's first-pass poses: frames and their starts."""
    stored = read_variables(
        work.store, ["timestamp", "pose_initial", "pose_refined", "reason"]
    )
    frames, starts = refit_plan(
        stored["timestamp"],
        stored["pose_initial"],
        stored["pose_refined"],
        as_str(stored["reason"]),
        params=kernel["params"],
        fiducials=kernel["calibration"].probe_marker_fiducials_mm,
    )
    return {"frames": frames.tolist(), "starts": starts.tolist()}


def sweep_refit(work, client, tasks, kernel) -> None:
    """Refine again the frames that stray from the sweep's correction.

    The plan (frames and starts) is saved before any frame is rewritten, and a
    finished pass is marked, so a resumed run rewrites the same values or none.
    """
    doc = work.load_sweep()
    if doc.get("refit", {}).get("done"):
        return
    if "refit" not in doc:
        doc["refit"] = _refit_plan(work, kernel)
        work.save_sweep(doc)
    frames = doc["refit"]["frames"]
    starts = np.asarray(doc["refit"]["starts"], float).reshape(-1, 6)
    fields = refit_frames(
        client, tasks, frames, starts, frame_fn=process_frame, **kernel
    )
    for i, frame in zip(frames, fields, strict=True):
        arrays = stack_frames([frame], kernel["shape"])
        write_region(work.store, slice(i, i + 1), chunk_dataset(arrays))
    doc["refit"]["done"] = True
    work.save_sweep(doc)
    log.info(
        "%s: %d frame(s) refined again from the sweep's correction",
        work.out,
        len(frames),
    )


def _checked(work, params, fiducials) -> dict:
    """Run the confidence check on the store's frames; return it as JSON values."""
    stored = read_variables(
        work.store, ["pose_initial", "pose_refined", "confidence_features", "reason"]
    )
    checked = confidence_check(
        stored["pose_initial"],
        stored["pose_refined"],
        stored["confidence_features"],
        as_str(stored["reason"]),
        params=params,
        fiducials=fiducials,
    )
    return {k: v.tolist() for k, v in checked.items()}


def apply_confidence_check(work, params, fiducials) -> None:
    """Apply the sweep-level confidence check to the finished frames.

    Its results are saved (``sweep.json``) before the store is changed, so a run
    killed while writing them re-applies the same values on resume.
    """
    doc = work.load_sweep()
    if "confidence_check" not in doc:
        doc["confidence_check"] = _checked(work, params, fiducials)
        work.save_sweep(doc)
    done = doc["confidence_check"]
    text = np.dtypes.StringDType()
    write_variables(
        work.store,
        {
            "confidence": np.asarray(done["confidence"], np.float32),
            "confidence_features": np.asarray(done["confidence_features"], np.float32),
            "reason": np.asarray(done["reason"], dtype=text),
            "status": np.asarray(done["status"], dtype=text),
        },
    )
    clear_frames(work.store, done["discarded"], MASKS)
    log.info(
        "%s: confidence check discarded %d frame(s) as low_confidence",
        work.out,
        len(done["discarded"]),
    )
