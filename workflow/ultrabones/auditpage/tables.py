"""The audit pages' tables: one row per frame of a sweep, one row per sweep.

Each cell is a ``(text, value)`` pair: ``text`` is what the page shows (rounded),
``value`` the exact number as Python's shortest round-trip repr (``""`` for NaN), which
the page keeps in ``data-v`` so that sorting, and the tests, see the stored number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputDataError
from ..release import sweep_statistics
from ..store import as_str
from ..transforms import invert_rigid, matrix_from_params, rotation_angle_deg
from ..vocabulary import DISCARD_REASONS, Reason

__all__ = [
    "FRAME_COLUMNS",
    "INDEX_COLUMNS",
    "cell",
    "confidence_quantiles",
    "frame_rows",
    "frame_table",
    "index_rows",
    "summary_text",
    "sweep_row",
]

#: Frame table columns after the thumbnail: (key, heading, digits; None for text).
FRAME_COLUMNS = (
    ("frame", "frame", 0),
    ("timestamp", "timestamp (ms)", 0),
    ("status", "status", None),
    ("reason", "reason", None),
    ("correction_mm", "correction (mm)", 3),
    ("confidence", "confidence", 3),
    ("objective_gain", "objective gain", 4),
    ("pose_change_mm", "pose change (mm)", 3),
    ("pose_change_deg", "pose change (deg)", 3),
)

#: Index columns computed from the stores; the others come from the reject statistics.
_QUANTILES = ("confidence_p10_kept", "confidence_p90_kept")

#: Index columns after the sweep link: reject statistics, then confidence quantiles.
INDEX_COLUMNS = (
    ("rows", "rows", 0),
    ("frames", "frames", 0),
    ("kept", "kept", 0),
    *((f"discarded_{r}", r.replace("_", " "), 0) for r in DISCARD_REASONS),
    ("discarded", "discarded", 0),
    ("discard_rate", "discard rate", 3),
    ("correction_mean_kept_mm", "mean correction kept (mm)", 3),
    ("confidence_p10_kept", "confidence p10", 3),
    ("confidence_median_kept", "confidence median", 3),
    ("confidence_p90_kept", "confidence p90", 3),
)


def cell(value, digits: int | None) -> tuple[str, str]:
    """Return the ``(text, value)`` of one table cell.

    Parameters
    ----------
    value : str or number
    digits : int or None
        Decimals shown; 0 for counts and timestamps, None for text (shown as is).

    Returns
    -------
    text : str
        What the page shows; ``–`` for NaN.
    value : str
        The exact number (shortest round-trip repr), ``""`` for NaN.

    Examples
    --------
    >>> cell(0.123456, 3)
    ('0.123', '0.123456')
    >>> cell(float("nan"), 3)
    ('–', '')
    """
    if digits is None:
        return str(value), str(value)
    number = float(value)
    if not np.isfinite(number):
        return "–", ""
    exact = str(int(number)) if digits == 0 else repr(number)
    return f"{number:.{digits}f}", exact


def _pose_change(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Return translation (mm) and rotation (deg) from initial to refined pose."""
    initial = ds["pose_initial"].values
    refined = ds["pose_refined"].values
    ok = np.isfinite(initial).all(axis=1) & np.isfinite(refined).all(axis=1)
    mm = np.full(len(ok), np.nan)
    deg = np.full(len(ok), np.nan)
    delta = invert_rigid(matrix_from_params(initial[ok])) @ matrix_from_params(
        refined[ok]
    )
    mm[ok] = np.linalg.norm(delta[:, :3, 3], axis=1)
    deg[ok] = rotation_angle_deg(delta)
    return mm, deg


def frame_table(ds: xr.Dataset) -> pd.DataFrame:
    """Return one row per frame of a label store, in frame order.

    Parameters
    ----------
    ds : Dataset
        A label store (``ultrabones.store``).

    Returns
    -------
    table : DataFrame
        Columns: the keys of :data:`FRAME_COLUMNS`. ``objective_gain`` is the
        objective after minus before refinement (positive: the refinement raised
        the objective it maximises, ``engine.refine``); ``pose_change_mm`` and
        ``pose_change_deg`` are the translation and rotation of
        ``inv(initial) @ refined`` (T_CT<-US), NaN where the frame was not refined.
    """
    objective = ds["objective"].values
    mm, deg = _pose_change(ds)
    return pd.DataFrame(
        {
            "frame": np.arange(ds.sizes["frame"]),
            "timestamp": ds["timestamp"].values,
            "status": as_str(ds["status"].values),
            "reason": as_str(ds["reason"].values),
            "correction_mm": ds["fiducial_correction_mm"].values,
            "confidence": ds["confidence"].values.astype(np.float64),
            "objective_gain": objective[:, 1] - objective[:, 0],
            "pose_change_mm": mm,
            "pose_change_deg": deg,
        }
    )


def confidence_quantiles(ds: xr.Dataset) -> dict:
    """Return the 10th and 90th percentiles of the kept frames' confidence.

    The median is the reject statistics' ``confidence_median_kept``.
    """
    kept = as_str(ds["reason"].values) == Reason.OK
    values = ds["confidence"].values.astype(np.float64)[kept]
    quantiles = np.quantile(values, [0.1, 0.9]) if values.size else [np.nan] * 2
    return {k: float(q) for k, q in zip(_QUANTILES, quantiles, strict=True)}


def sweep_row(stats: pd.DataFrame, ds: xr.Dataset, *, path: str) -> dict:
    """Return the index row of a sweep: its reject statistics and quantiles.

    Parameters
    ----------
    stats : DataFrame
        ``reject_statistics.csv``, one row per sweep.
    ds : Dataset
        The sweep's label store.
    path : str
        File name of ``stats``, for the error message.

    Raises
    ------
    InputDataError
        If ``stats`` lacks a column, or has no single row for the store's sweep.
    """
    missing = [k for k, _, _ in INDEX_COLUMNS if k not in stats and k not in _QUANTILES]
    if missing:
        raise InputDataError(f"{path}: missing column(s) {', '.join(missing)}")
    specimen, sweep = str(ds["specimen"].values), str(ds["sweep"].values)
    match = stats[(stats["specimen"] == specimen) & (stats["sweep"] == sweep)]
    if len(match) != 1:
        raise InputDataError(
            f"{path}: expected one row for {specimen}/{sweep}, got {len(match)}"
        )
    row = {"specimen": specimen, "sweep": sweep, **match.iloc[0].to_dict()}
    return {**row, **confidence_quantiles(ds)}


def index_rows(rows: list[dict]) -> list[dict]:
    """Return the index table's rows (sorted by sweep) as cells with a link."""
    out = []
    for row in sorted(rows, key=lambda r: (r["specimen"], r["sweep"])):
        name = f"{row['specimen']}/{row['sweep']}"
        cells = [cell(row[k], digits) for k, _, digits in INDEX_COLUMNS]
        out.append({"name": name, "href": f"{name}/index.html", "cells": cells})
    return out


def frame_rows(table: pd.DataFrame) -> list[dict]:
    """Return the frame table's rows as cells, with their image file name.

    ``image`` is ``<timestamp>.png`` (the thumbnail in ``thumbs/``, the full overlay
    in ``full/``), or None for a row without an image.
    """
    out = []
    for row in table.to_dict("records"):
        has_image = row["reason"] != Reason.NO_IMAGE
        out.append(
            {
                "status": row["status"],
                "reason": row["reason"],
                "image": f"{row['timestamp']}.png" if has_image else None,
                "cells": [cell(row[k], digits) for k, _, digits in FRAME_COLUMNS],
            }
        )
    return out


def summary_text(ds: xr.Dataset) -> str:
    """Return the one-line summary of a sweep (its reject statistics)."""
    s = sweep_statistics(ds)
    rate = "–" if not np.isfinite(s["discard_rate"]) else f"{s['discard_rate']:.1%}"
    return (
        f"{s['rows']} rows, {s['frames']} frames with an image, {s['kept']} kept, "
        f"{s['discarded']} discarded ({rate})"
    )
