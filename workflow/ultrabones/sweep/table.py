"""The per-frame table of labelled frames: one row of poses, outcome and timing each.

``ultrabones bench --table``, the lambda selection and the honesty study read frames
through it; its rows come from the fields of
:func:`~ultrabones.sweep.frames.label_frames`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..engine import FrameResult
from ..engine.confidence import FEATURES
from ..transforms import POSE_COLUMNS
from ..vocabulary import MASKS

#: Table columns of the pose a frame refined again started from.
START_COLUMNS = [f"{c}_start" for c in POSE_COLUMNS]

__all__ = ["START_COLUMNS", "bound_hits", "frame_row", "frame_table", "result_of"]


def result_of(fields: dict) -> FrameResult:
    """Return the engine result of a frame's fields (``sweep.frames.run_frame``)."""
    return FrameResult(
        reason=str(fields["reason"]),
        pose_initial=np.asarray(fields["pose_initial"], float),
        pose_refined=np.asarray(fields["pose_refined"], float),
        fiducial_correction_mm=float(fields["fiducial_correction_mm"]),
        objective_initial=float(fields["objective"][0]),
        objective_refined=float(fields["objective"][1]),
        evaluations=int(fields["evaluations"]),
        confidence=float(fields["confidence"]),
        confidence_features=np.asarray(fields["confidence_features"], float),
        masks={m: np.asarray(fields[m], bool) for m in MASKS if m in fields},
    )


def frame_row(fields: dict) -> dict:
    """Return a frame's table row (the columns of ``ultrabones bench --table``).

    The ``scores`` the bench added to the fields (intensities, truth scores) join
    the row.
    """
    res = result_of(fields)
    row = {"timestamp": int(fields["timestamp"]), "status": _status(res)}
    row["reason"] = res.reason
    row.update(dict(zip(POSE_COLUMNS, res.pose_initial, strict=True)))
    row.update(
        {f"{c}_refined": v for c, v in zip(POSE_COLUMNS, res.pose_refined, strict=True)}
    )
    row.update(
        fiducial_correction_mm=res.fiducial_correction_mm,
        objective_initial=res.objective_initial,
        objective_refined=res.objective_refined,
        evaluations=res.evaluations,
        ms=float(fields["ms"]),
        cpu_ms=float(fields["cpu_ms"]),
        confidence=res.confidence,
    )
    row.update(zip(FEATURES, res.confidence_features, strict=True))
    start = fields.get("start", np.full(len(POSE_COLUMNS), np.nan))
    row.update(refit="start" in fields, **dict(zip(START_COLUMNS, start, strict=True)))
    return row | fields.get("scores", {})


def _status(res: FrameResult) -> str:
    return "kept" if res.kept else "discarded"


def frame_table(fields) -> pd.DataFrame:
    """Return the per-frame table of frames' fields, one :func:`frame_row` each."""
    return pd.DataFrame([frame_row(f) for f in fields])


def bound_hits(table: pd.DataFrame):
    """Return, per row, whether the frame's search ended on its box's edge.

    Read off the ``at_bound`` confidence feature (:func:`frame_row`), which the
    search sets in the variables it moved (``engine.refine``); False for rows not
    refined.
    """
    return table["at_bound"].fillna(0.0).to_numpy(float) > 0.5
