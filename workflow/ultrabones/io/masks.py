"""Label sets for evaluation: PNG mask folders and label variables of Zarr stores.

Both kinds open as a :class:`MaskSource`: frame names (the timestamp for stores, the
file stem for folders, so ``<timestamp>.png`` masks match store frames), a status per
frame, the pixel spacing when the source carries one, and lazy readers, so a sweep of
a thousand frames never sits in memory at once. The writers at the end save the
evaluation's and the audit's JSON, CSV tables and figures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputDataError
from .png import read_png

__all__ = [
    "KEPT",
    "MaskSource",
    "is_zarr_store",
    "iter_store_frames",
    "open_label_store",
    "open_mask_source",
    "read_image_folder",
    "read_truth_poses",
]

log = logging.getLogger(__name__)

#: Store status of a frame that is in the release.
KEPT = "kept"


@dataclass(frozen=True)
class MaskSource:
    """One label set: frame names, statuses, spacing and lazy per-frame readers.

    Attributes
    ----------
    path : Path
        Folder or store it was opened from.
    names : tuple of str
        Frame names in order (store: ``str(timestamp)``; folder: file stem).
    status : tuple of str
        Per frame: the store's ``status``; ``"kept"`` for every PNG mask.
    spacing_mm : tuple of float or None
        ``(s_x, s_y)`` from the store attrs; None for PNG folders.
    read_mask : callable
        ``read_mask(name) -> ndarray of bool, shape (rows, cols)``.
    read_image : callable or None
        ``read_image(name) -> ndarray of uint8``; None when the source holds no images.
    """

    path: Path
    names: tuple[str, ...]
    status: tuple[str, ...]
    spacing_mm: tuple[float, float] | None
    read_mask: Callable[[str], np.ndarray]
    read_image: Callable[[str], np.ndarray] | None = None

    def status_of(self) -> dict[str, str]:
        """Return the mapping frame name -> status."""
        return dict(zip(self.names, self.status, strict=True))


def is_zarr_store(path: str | Path) -> bool:
    """Return True when ``path`` is a Zarr v3 store directory (has ``zarr.json``)."""
    return (Path(path) / "zarr.json").is_file()


def open_mask_source(path: str | Path, *, variable: str = "label") -> MaskSource:
    """Open a label store (its ``variable``) or a folder of PNG masks.

    Parameters
    ----------
    path : str or Path
        A Zarr store directory or a folder of ``<name>.png`` masks (non-zero = label).
    variable : str
        Mask variable of a store (``label``, ``full_initial``, ``full_refined``...).

    Raises
    ------
    InputDataError
        If the path is missing, holds neither a store nor PNG files, or the store
        lacks the variable.
    """
    path = Path(path)
    if not path.is_dir():
        raise InputDataError(f"{path}: label folder or store not found")
    if is_zarr_store(path):
        return _store_source(path, variable)
    return _folder_source(path)


def _folder_source(path: Path) -> MaskSource:
    files = {p.stem: p for p in sorted(path.glob("*.png"))}
    if not files:
        raise InputDataError(f"{path}: no PNG masks (*.png) and no zarr.json found")
    names = tuple(sorted(files, key=_name_order))
    return MaskSource(
        path=path,
        names=names,
        status=(KEPT,) * len(names),
        spacing_mm=None,
        read_mask=lambda name: read_png(files[name]) > 0,
    )


def _name_order(name: str) -> tuple:
    # Timestamps sort numerically, other names alphabetically after them.
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def open_label_store(path: str | Path, *, require: tuple[str, ...] = ("label",)):
    """Open a label store with xarray and check the variables needed downstream.

    Returns
    -------
    ds : xarray.Dataset
        Lazily loaded (dask) dataset.

    Raises
    ------
    InputDataError
        If the store cannot be opened, or lacks ``timestamp``, ``pixel_spacing_mm``
        or one of ``require``.
    """
    import xarray as xr

    from ..store import decode_flags

    path = Path(path)
    try:
        # status as strings: stores keep it as CF flag codes (ultrabones.store)
        ds = decode_flags(xr.open_zarr(path, consolidated=False))
    except (OSError, ValueError, KeyError) as err:
        raise InputDataError(f"{path}: cannot open label store ({err})") from err
    missing = [v for v in ("timestamp", *require) if v not in ds.variables]
    if missing:
        raise InputDataError(f"{path}: label store lacks {', '.join(missing)}")
    if "pixel_spacing_mm" not in ds.attrs:
        raise InputDataError(f"{path}: label store lacks attr pixel_spacing_mm")
    return ds


class _ChunkReader:
    """Read store frames a chunk at a time (frames are read in order by callers)."""

    def __init__(self, ds, variables: tuple[str, ...]):
        self._ds = ds[list(variables)]
        chunks = ds[variables[0]].chunks
        self._size = int(chunks[0][0]) if chunks else max(ds.sizes["frame"], 1)
        self._start, self._data = None, None

    def frame(self, index: int) -> dict:
        start = index - index % self._size
        if start != self._start:
            part = self._ds.isel(frame=slice(start, start + self._size)).load()
            self._start = start
            self._data = {k: part[k].values for k in part.data_vars}
        return {k: v[index - start] for k, v in self._data.items()}


def _store_source(path: Path, variable: str) -> MaskSource:
    ds = open_label_store(path, require=(variable,))
    names = tuple(str(int(t)) for t in ds["timestamp"].values)
    index = {name: i for i, name in enumerate(names)}
    status = (
        tuple(str(s) for s in ds["status"].values)
        if "status" in ds.variables
        else (KEPT,) * len(names)
    )
    has_image = "image" in ds.variables
    reader = _ChunkReader(ds, (variable, "image") if has_image else (variable,))
    return MaskSource(
        path=path,
        names=names,
        status=status,
        spacing_mm=tuple(float(s) for s in ds.attrs["pixel_spacing_mm"]),
        read_mask=lambda name: reader.frame(index[name])[variable] != 0,
        read_image=(
            (lambda name: reader.frame(index[name])["image"].astype(np.uint8))
            if has_image
            else None
        ),
    )


def iter_store_frames(ds, variables: tuple[str, ...], *, status: str | None = KEPT):
    """Yield ``(index, timestamp, {variable: ndarray})`` of a store's frames.

    Frames are read a chunk at a time; with ``status`` only frames of that status.
    """
    reader = _ChunkReader(ds, variables)
    stamps = ds["timestamp"].values
    states = [str(s) for s in ds["status"].values] if status else None
    for i, stamp in enumerate(stamps):
        if states is None or states[i] == status:
            yield i, int(stamp), reader.frame(i)


def read_truth_poses(path: str | Path) -> dict[int, np.ndarray]:
    """Read the simulator's true ``ct_from_probe`` per frame (``poses.csv``).

    Returns
    -------
    poses : dict of int to ndarray (4, 4)
        Timestamp (ms) -> T_CT<-US; rows with non-finite poses are left out.

    Raises
    ------
    InputDataError
        If the file is unreadable or lacks the timestamp or pose columns.
    """
    import pandas as pd

    from ..transforms import POSE_COLUMNS, matrix_from_params

    path = Path(path)
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise InputDataError(f"{path}: cannot read truth poses ({err})") from err
    missing = [c for c in ("timestamp", *POSE_COLUMNS) if c not in df.columns]
    if missing:
        raise InputDataError(f"{path}: truth poses lack column(s) {', '.join(missing)}")
    params = df[list(POSE_COLUMNS)].to_numpy(np.float64)
    ok = np.isfinite(params).all(axis=1)
    stamps = df["timestamp"].to_numpy(np.int64)[ok]
    return dict(zip(stamps.tolist(), matrix_from_params(params[ok]), strict=True))


def read_image_folder(path: str | Path) -> Callable[[str], np.ndarray]:
    """Return a reader of ``<path>/<name>.png`` intensity images.

    Raises
    ------
    InputDataError
        If the folder does not exist (a missing frame raises when it is read).
    """
    path = Path(path)
    if not path.is_dir():
        raise InputDataError(f"{path}: image folder not found")
    return lambda name: read_png(path / f"{name}.png")
