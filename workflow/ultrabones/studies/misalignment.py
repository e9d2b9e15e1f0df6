"""The realised label misalignment of a simulated preset, frame by frame.

How far the record's labels (the CT models under the record's error-carrying pose)
lie from the true ones, on the simulator's own geometry: the numbers ``ultrabones
simulate-bench --misalignment`` prints and ``docs/simulator.md`` reports. The
per-frame measures (`misalignment_mm`, `misalignment_3d_mm`) are the simulator's, which
writes them to the truth's ``poses.csv``.
"""

from __future__ import annotations

import pandas as pd

from ..simulate.cohort import GAMMA_MM, frame_misalignment, sweep_plans, unmodelled_at
from ..simulate.geometry import full_label

__all__ = ["COLUMNS", "misalignment_table"]

#: Columns of `misalignment_table`.
COLUMNS = (
    "specimen",
    "sweep",
    "timestamp",
    "misalignment_mm",
    "misalignment_3d_mm",
    "unmodelled_in_view",
    "depth_scale",
    "bone_drift_mm",
)


def misalignment_table(
    preset,
    *,
    seed: int,
    errors: str = "paper",
    step: int = 10,
    frames: int | None = None,
) -> pd.DataFrame:
    """Realised label misalignment of every ``step``-th frame of a whole preset.

    Geometry only (no images are rendered or written).

    Returns
    -------
    table : DataFrame
        Columns specimen, sweep, timestamp, misalignment_mm (in-plane label error,
        see ``simulate.cohort.misalignment_mm``), misalignment_3d_mm (see
        ``simulate.cohort.misalignment_3d_mm``), unmodelled_in_view, depth_scale and
        bone_drift_mm (as in the truth's ``poses.csv``).
    """
    rows = []
    plans = sweep_plans(preset, seed=seed, errors=errors, frames=frames)
    for specimen, sweep, scene, plan in plans:
        for k in range(0, plan.stamps.size, step):
            ct_from_image = plan.ct_from_image_true[k]
            full = full_label(scene, ct_from_image, plan.render_grid, gamma_mm=GAMMA_MM)
            rows.append(
                (
                    specimen,
                    sweep,
                    int(plan.stamps[k]),
                    *frame_misalignment(scene, plan.grid, plan, k, full),
                    int(unmodelled_at(scene, plan, k)),
                    plan.depth_scale,
                    plan.bone_drift_mm[k],
                )
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))
