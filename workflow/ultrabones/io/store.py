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

Every write stores every chunk, even one equal to the fill value, so a published store
holds each chunk of its grid; :meth:`WorkInProgress.publish` then records the SHA-256
of each chunk and array metadata document in ``<store>/chunks.sha256`` (sha256sum
format; the root ``zarr.json``, whose provenance attrs name the git SHA, is covered by
the release manifest instead). :func:`verify_store` checks that every chunk exists and
matches. Flag variables (``status``, ``reason``) are encoded to codes on write and
decoded to strings by :func:`open_store` and :func:`read_variables`
(:func:`ultrabones.store.decode_flags`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputDataError
from ..store import (
    FLAGS,
    compare_digests,
    decode_codes,
    decode_flags,
    encode_dataset,
    encode_flags,
)
from .checksum import sha256_file

__all__ = [
    "DIGESTS",
    "WorkInProgress",
    "open_store",
    "clear_frames",
    "read_variables",
    "open_work",
    "store_digests",
    "verify_store",
    "write_region",
    "write_variables",
]

log = logging.getLogger(__name__)

STORE = "store.zarr"
#: The chunk digests of a published store, inside the store (sha256sum format).
DIGESTS = "chunks.sha256"


def open_store(path: str | Path) -> xr.Dataset:
    """Open a label store lazily, flags decoded (``consolidated=False`` as on write)."""
    with _quiet_listing():
        return decode_flags(xr.open_zarr(Path(path), consolidated=False))


def read_variables(store: str | Path, names) -> dict[str, np.ndarray]:
    """Return whole variables of a store in memory, flags decoded as by open_store.

    For the small per-frame variables (poses, reasons, features) that the sweep
    reads between its passes: zarr reads each one directly, where
    :func:`open_store` reads every array's metadata (the images' and masks' too)
    and builds a Dask graph per variable.
    """
    import zarr

    group = zarr.open_group(Path(store), mode="r", zarr_format=3)
    return {name: _decoded(name, group[name]) for name in names}


def _decoded(name: str, array) -> np.ndarray:
    """Return a zarr array's values, a flag variable's codes as strings.

    As :func:`ultrabones.store.decode_flags`: string variables (stores written
    before the codes) pass through.
    """
    values = array[...]
    if name in FLAGS and values.dtype.kind in "iu":
        return decode_codes(values, array.attrs["flag_meanings"])
    return values


@contextlib.contextmanager
def _quiet_listing():
    """Silence zarr's warning about the store's non-zarr files.

    They are ours: the digests (:data:`DIGESTS`) and Snakemake's time stamp.
    """
    from zarr.errors import ZarrUserWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ZarrUserWarning)
        yield


@contextlib.contextmanager
def _writable(store: str | Path):
    """Yield a store's group whose writes store chunks equal to the fill value too.

    Zarr reads the setting at write time, so the writes go inside the ``with``.
    """
    import zarr

    with zarr.config.set({"array.write_empty_chunks": True}):
        yield zarr.open_group(Path(store), mode="r+", zarr_format=3)


def _stored(name: str, values):
    return encode_flags(name, values) if name in FLAGS else values


def write_region(store: str | Path, frames: slice, chunk: xr.Dataset) -> None:
    """Write the frames of one whole chunk into an existing store.

    Writes through zarr directly: xarray's region write re-reads and checks the whole
    store's metadata per call (about 0.5 s a chunk).
    """
    with _writable(store) as group:
        for name, var in chunk.data_vars.items():
            group[name][frames] = _stored(name, var.values)


def write_variables(store: str | Path, values: dict) -> None:
    """Overwrite whole per-frame variables (``name -> array``, frames first)."""
    with _writable(store) as group:
        for name, array in values.items():
            group[name][...] = _stored(name, array)


def clear_frames(store: str | Path, frames, names) -> None:
    """Set variables ``names`` of the frames at indices ``frames`` to 0."""
    with _writable(store) as group:
        for name in names:
            for i in frames:
                group[name][int(i)] = 0


def _required_keys(store: Path) -> list[str]:
    """Return the keys a store's metadata implies: each array's metadata and chunks."""
    import itertools

    import zarr

    try:
        group = zarr.open_group(store, mode="r", zarr_format=3)
        with _quiet_listing():
            arrays = sorted(group.arrays())
    except (OSError, ValueError, KeyError) as err:
        raise InputDataError(f"{store}: cannot open the store ({err})") from err
    keys = []
    for name, array in arrays:
        keys.append(f"{name}/zarr.json")
        for coords in itertools.product(*(range(n) for n in array.cdata_shape)):
            keys.append(f"{name}/{array.metadata.encode_chunk_key(coords)}")
    return keys


def _hash_keys(store: Path, keys) -> dict:
    return {k: sha256_file(store / k) if (store / k).is_file() else None for k in keys}


def store_digests(store: str | Path) -> dict:
    """Return key -> SHA-256 of every chunk and array metadata file of a store.

    Raises
    ------
    InputDataError
        If a chunk of the grid is missing (a store written without every chunk).
    """
    store = Path(store)
    digests = _hash_keys(store, _required_keys(store))
    missing = [k for k, v in digests.items() if v is None]
    if missing:
        raise InputDataError(f"{store}: chunk(s) missing: {', '.join(missing[:5])}")
    return digests


def _read_digests(store: Path) -> dict:
    path = store / DIGESTS
    if not path.is_file():
        raise InputDataError(
            f"{store}: no chunk digests ({DIGESTS}); not a published label store"
        )
    pairs = (line.split(maxsplit=1) for line in path.read_text().splitlines())
    return {key: digest for digest, key in pairs}


def verify_store(store: str | Path) -> None:
    """Check that every chunk of a published store exists and matches its digest.

    Raises
    ------
    InputDataError
        Naming the store and the first chunks that are missing or changed.
    """
    store = Path(store)
    if not store.is_dir():
        raise InputDataError(f"{store}: label store not found")
    recorded = _read_digests(store)
    required = _required_keys(store)
    problems = compare_digests(
        recorded, _hash_keys(store, set(recorded) | set(required)), required
    )
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InputDataError(
            f"{store}: store corrupted: {'; '.join(problems[:5])}{more}"
        )


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
        """Return the indices of the chunks whose marker exists.

        A ``<i>.tmp`` left by a marker write that failed (disk full, kill) is removed:
        its chunk counts as not done and is recomputed.
        """
        done = self.root / "done"
        if not done.is_dir():
            return set()
        for leftover in done.glob("*.tmp"):
            log.warning("%s: removing the unfinished marker %s", self.root, leftover)
            leftover.unlink()
        return {int(p.name) for p in done.iterdir()}

    def create(self, template: xr.Dataset, encoding: dict) -> None:
        """Write the store's metadata and coordinates (no frame data yet)."""
        encode_dataset(template).to_zarr(
            self.store,
            mode="w",
            compute=False,
            consolidated=False,
            zarr_format=3,
            encoding=encoding,
            write_empty_chunks=True,
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
        """Set the root attrs, record the chunk digests, move the store by rename."""
        import zarr

        group = zarr.open_group(self.store, mode="r+", zarr_format=3)
        group.attrs.update(attrs)
        digests = store_digests(self.store)
        lines = "".join(f"{digests[k]}  {k}\n" for k in sorted(digests))
        (self.store / DIGESTS).write_text(lines)
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
