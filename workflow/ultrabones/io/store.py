"""Label stores on disk: a resumable work-in-progress folder, chunk writes, publish.

A sweep's store is built in ``<out>.wip/`` beside the declared output, because
Snakemake deletes a job's outputs before it reruns the job::

    <out>.wip/
        plan.json       what is being computed (inputs, parameters); a different plan
                        discards the folder instead of resuming it
        sweep.json      sweep-level results, saved before any frame chunk
        store.zarr/     the store, its metadata written first
        done/<i>        one marker per completed chunk, written after the chunk

A chunk counts as complete only when its marker exists; markers are written by
atomic rename after the chunk's data, so a kill mid-chunk leaves the chunk to be
recomputed. :func:`publish` moves the finished store to ``<out>`` by an atomic rename.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import xarray as xr

__all__ = [
    "WorkInProgress",
    "open_store",
    "clear_frames",
    "open_work",
    "write_region",
    "write_variables",
]

log = logging.getLogger(__name__)

STORE = "store.zarr"


def open_store(path: str | Path) -> xr.Dataset:
    """Open a label store lazily (``consolidated=False`` on read as on write)."""
    return xr.open_zarr(Path(path), consolidated=False)


def write_region(store: str | Path, frames: slice, chunk: xr.Dataset) -> None:
    """Write the frames of one whole chunk into an existing store.

    Writes through zarr directly: xarray's region write re-reads and checks the whole
    store's metadata per call (about 0.5 s a chunk).
    """
    import zarr

    group = zarr.open_group(Path(store), mode="r+", zarr_format=3)
    for name, var in chunk.data_vars.items():
        group[name][frames] = var.values


def write_variables(store: str | Path, values: dict) -> None:
    """Overwrite whole per-frame variables (``name -> array``, frames first)."""
    import zarr

    group = zarr.open_group(Path(store), mode="r+", zarr_format=3)
    for name, array in values.items():
        group[name][...] = array


def clear_frames(store: str | Path, frames, names) -> None:
    """Set variables ``names`` of the frames at indices ``frames`` to 0."""
    import zarr

    group = zarr.open_group(Path(store), mode="r+", zarr_format=3)
    for name in names:
        for i in frames:
            group[name][int(i)] = 0


def _write_json_atomic(path: Path, doc) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, sort_keys=True, indent=1))
    os.replace(tmp, path)


class WorkInProgress:
    """The work-in-progress folder of one store (see the module docstring)."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.root = self.out.with_name(self.out.name + ".wip")
        self.store = self.root / STORE

    @property
    def created(self) -> bool:
        """True once the store's metadata is fully written and not yet published."""
        return (self.root / "done").is_dir() and self.store.is_dir()

    def completed(self) -> set[int]:
        """Return the indices of the chunks whose marker exists."""
        done = self.root / "done"
        return {int(p.name) for p in done.iterdir()} if done.is_dir() else set()

    def create(self, template: xr.Dataset, encoding: dict) -> None:
        """Write the store's metadata and coordinates (no frame data yet)."""
        template.to_zarr(
            self.store,
            mode="w",
            compute=False,
            consolidated=False,
            zarr_format=3,
            encoding=encoding,
        )
        (self.root / "done").mkdir(exist_ok=True)

    def write_chunk(self, index: int, frames: slice, chunk: xr.Dataset) -> None:
        """Write one chunk's frames into the store, then mark the chunk complete."""
        write_region(self.store, frames, chunk)
        self.mark_done(index, frames)

    def mark_done(self, index: int, frames: slice) -> None:
        """Mark a chunk complete (after its data is written)."""
        _write_json_atomic(self.root / "done" / str(index), [frames.start, frames.stop])

    def load_sweep(self) -> dict | None:
        """Return the saved sweep-level results, or None before they are saved."""
        path = self.root / "sweep.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def save_sweep(self, doc: dict) -> None:
        """Save the sweep-level results (before any frame chunk)."""
        _write_json_atomic(self.root / "sweep.json", doc)

    def publish(self, attrs: dict) -> None:
        """Set the final root attrs and move the store to the output by rename."""
        import zarr

        group = zarr.open_group(self.store, mode="r+", zarr_format=3)
        group.attrs.update(attrs)
        if self.out.exists():
            shutil.rmtree(self.out)
        os.replace(self.store, self.out)
        shutil.rmtree(self.root)


def open_work(out: str | Path, plan: dict) -> WorkInProgress:
    """Return the work-in-progress folder of ``out``, resumed when ``plan`` matches.

    A folder left by an earlier run with the same plan is resumed; one with a
    different plan (other inputs or parameters) is removed and started afresh.
    """
    work = WorkInProgress(out)
    plan_path = work.root / "plan.json"
    if work.root.is_dir():
        same = plan_path.is_file() and json.loads(plan_path.read_text()) == plan
        if same and work.created:
            log.info("%s: resuming, %d chunk(s) done", work.root, len(work.completed()))
            return work
        log.info("%s: plan changed or incomplete; starting afresh", work.root)
        shutil.rmtree(work.root)
    work.root.mkdir(parents=True)
    _write_json_atomic(plan_path, plan)
    return work
