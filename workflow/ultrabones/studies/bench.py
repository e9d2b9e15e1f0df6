"""The bench: label a record as ``label-sweep`` does, time it, score it on truth.

:func:`bench_record` labels chosen rows of a record through the production steps in
this process (:mod:`ultrabones.sweep.local`: the same tasks and seeds, warm start,
frame loop and sweep step), one table row per frame with its wall and CPU time, then
rescores them together as ``label-sweep`` does. On a simulated sweep each frame is
also scored against the simulator's truth (:func:`truth_row`, :func:`pose_errors`).
``ultrabones bench`` (``cli/bench.py``) parses the options and writes the outputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..engine import FrameResult
from ..engine.confidence import FEATURES
from ..evaluate.metrics import label_error_mm
from ..sweep.table import START_COLUMNS, bound_hits, frame_table, result_of
from ..transforms import (
    POSE_COLUMNS,
    apply_rigid,
    matrix_from_params,
    points_image_from_rc,
)
from ..vocabulary import Reason

#: Points per side of the image grid of the true 3D pose error (issue 16, item 7).
POSE_GRID = 16
#: Kept frames whose full labels the bench keeps for its figures.
SHOWN_FRAMES = 48

__all__ = [
    "POSE_GRID",
    "SHOWN_FRAMES",
    "TruePlacement",
    "BenchRun",
    "bench_record",
    "auroc",
    "curve_offset_mm",
    "image_grid_rc",
    "pose_errors",
    "prepare_model",
    "rerun",
    "sweep_confidence",
    "summarise",
    "summarise_truth",
    "true_placement",
    "truth_dir",
    "truth_row",
]


@dataclass
class BenchRun:
    """One benched record.

    Attributes
    ----------
    summary : dict
        :func:`summarise` (and :func:`summarise_truth`) plus the run's settings.
    table : DataFrame
        One row per benched frame (:func:`~ultrabones.sweep.table.frame_table`),
        truth scores joined.
    results : list of FrameResult
        Per row; the masks only of the first ``SHOWN_FRAMES`` kept frames.
    tasks : list of FrameTask
        The benched frames' tasks.
    kernel : dict
        The kernel they ran with (``sweep.local.kernel_of``).
    prior : ndarray of shape (6,) or None
        The warm start.
    """

    summary: dict
    table: pd.DataFrame
    results: list
    tasks: list
    kernel: dict
    prior: np.ndarray | None


def _intensities(fields: dict) -> dict:
    """Mean intensity (0-255) over the full label at each pose (NaN when empty)."""
    out = {}
    image = fields.get("image")
    for stage in ("initial", "refined"):
        m = np.asarray(fields.get(f"full_{stage}", False), bool)
        has = image is not None and m.any()
        out[f"intensity_{stage}"] = float(image[m].mean()) if has else float("nan")
    return out


def summarise(table: pd.DataFrame) -> dict:
    """Return the bench summary (frames with an image only count as discards)."""
    has_image = table["reason"] != Reason.NO_IMAGE.value
    t = table[has_image]
    kept = t["status"] == "kept"
    worked = t["evaluations"] > 0
    return {
        "frames": int(len(t)),
        "ms_per_frame_median": float(t.loc[worked, "ms"].median()),
        "cpu_ms_per_frame_median": float(t.loc[worked, "cpu_ms"].median()),
        "discarded_fraction": float(1 - kept.mean()) if len(t) else float("nan"),
        "fiducial_correction_mm_mean_kept": float(
            t.loc[kept, "fiducial_correction_mm"].mean()
        ),
        "objective_gain_mean_kept": float(
            (t.loc[kept, "objective_refined"] - t.loc[kept, "objective_initial"]).mean()
        ),
        "intensity_gain_mean_kept": float(
            (t.loc[kept, "intensity_refined"] - t.loc[kept, "intensity_initial"]).mean()
        ),
        "bound_hit_fraction": float(bound_hits(t[worked]).mean()),
        "refit_fraction": float(t["refit"].mean()) if "refit" in t else 0.0,
        "reasons": {str(k): int(v) for k, v in t["reason"].value_counts().items()},
    }


def curve_offset_mm(mask, visible_truth, *, spacing_mm) -> tuple[float, float]:
    """Return the median signed and absolute depth offset (mm) of a mask's echo curve.

    Per column (scan line) where both masks have pixels: the top row of ``mask``
    minus the top row of ``visible_truth``, times the row spacing (positive: the
    mask's first interface lies deeper than the true echo). NaN when no column has
    both.

    Parameters
    ----------
    mask, visible_truth : ndarray of bool, shape (rows, cols)
        A label at some pose and the true visible label.
    spacing_mm : tuple of float
        ``(s_x, s_y)`` in mm.

    Returns
    -------
    offset_mm, abs_offset_mm : float
        Medians over the columns of the signed and the absolute offset.

    Examples
    --------
    >>> truth = np.zeros((5, 3), bool); truth[1] = True
    >>> curve_offset_mm(np.roll(truth, 2, axis=0), truth, spacing_mm=(0.1, 0.2))
    (0.4, 0.4)
    """
    mask, truth = np.asarray(mask, bool), np.asarray(visible_truth, bool)
    cols = mask.any(axis=0) & truth.any(axis=0)
    if not cols.any():
        return float("nan"), float("nan")
    rows = mask.argmax(axis=0)[cols] - truth.argmax(axis=0)[cols]
    d = rows * float(spacing_mm[1])
    return float(np.median(d)), float(np.median(np.abs(d)))


def truth_row(result, full_truth, visible_truth, *, spacing_mm) -> dict:
    """Score one frame against simulator truth masks (full and visible labels).

    ``label_error_mm_{initial,refined}``: symmetric band distance of the full label
    at each pose to the true full label (:func:`label_error_mm`; it compresses an
    offset d < band width w to about d^2 / 2w). ``curve_offset_mm_*`` and
    ``curve_offset_abs_mm_*``: median signed and absolute depth offset of the full
    label's top row against the true visible label's (:func:`curve_offset_mm`).
    ``f1_at_0_5mm``: the final label against the true visible label.
    """
    from ..evaluate.metrics import frame_scores

    masks = result.masks
    scores = frame_scores(
        masks["label"], visible_truth, spacing_mm=spacing_mm, eps_mm=(0.5,)
    )
    out = {}
    for stage in ("initial", "refined"):
        full = masks[f"full_{stage}"]
        out[f"label_error_mm_{stage}"] = label_error_mm(
            full, full_truth, spacing_mm=spacing_mm
        )
        offset, offset_abs = curve_offset_mm(full, visible_truth, spacing_mm=spacing_mm)
        out[f"curve_offset_mm_{stage}"] = offset
        out[f"curve_offset_abs_mm_{stage}"] = offset_abs
    out["f1_at_0_5mm"] = float(scores.f1[0, 0]) if scores is not None else np.nan
    return out


def _pixel_distance(ct_from_a, points_a, ct_from_b, points_b) -> float:
    """Mean CT distance of the points ``points_a`` under ``ct_from_a`` and ``_b``."""
    a, b = apply_rigid(ct_from_a, points_a), apply_rigid(ct_from_b, points_b)
    return float(np.linalg.norm(a - b, axis=-1).mean())


def image_grid_rc(shape, *, n: int = POSE_GRID) -> np.ndarray:
    """Return an ``n`` x ``n`` grid of pixel indices spread over an image.

    The central pixel of each cell of an ``n`` x ``n`` partition of the image, so
    the grid's mean point is the image centre (to half a pixel).

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)``.
    n : int
        Points per side.

    Returns
    -------
    rc : ndarray of shape (n * n, 2)
        ``(row, col)`` indices.

    Examples
    --------
    >>> image_grid_rc((4, 8), n=2).tolist()
    [[1, 2], [1, 6], [3, 2], [3, 6]]
    """
    rows, cols = (((np.arange(n) + 0.5) * s / n).astype(int) for s in shape)
    r, c = np.meshgrid(rows, cols, indexing="ij")
    return np.c_[r.ravel(), c.ravel()]


def pose_errors(
    result, true_ct_from_image, *, calibration, label_rc, depth_scale=1.0
) -> dict:
    """Pose errors (mm) of one frame's initial and refined poses against truth.

    ``pose_error_mm``: the true 3D pose error, the mean distance in CT of the image
    points of a 16 x 16 grid over the whole image (:func:`image_grid_rc`) between
    where the frame's image placement (pose and the record's calibration) puts each
    pixel and where that pixel truly lies (``true_ct_from_image`` at the depths the
    tissue's speed of sound gives: ``depth_scale`` times the record's row spacing);
    ``label``: the same over the true label's pixels (``label_rc``, row/col; NaN when
    empty); ``fiducial``: mean distance of the probe fiducials under the pose and
    under ``true_ct_from_image @ image_from_probe`` (the image placement's probe
    pose). With a depth scale no rigid pose is error-free: a pixel's error is what a
    user mapping the label into CT with the released pose gets.
    """
    from ..transforms import invert_rigid

    spacing = calibration.pixel_spacing_mm
    true_spacing = (spacing[0], spacing[1] * depth_scale)
    rc = {"grid": image_grid_rc(calibration.shape), "label": np.asarray(label_rc)}
    shown = {k: points_image_from_rc(v, spacing) for k, v in rc.items()}
    true = {k: points_image_from_rc(v, true_spacing) for k, v in rc.items()}
    true_probe = true_ct_from_image @ invert_rigid(calibration.probe_from_image)
    fid = calibration.probe_marker_fiducials_mm
    out = {}
    for stage in ("initial", "refined"):
        ct_from_probe = matrix_from_params(getattr(result, f"pose_{stage}"))
        placed = ct_from_probe @ calibration.probe_from_image
        out[f"pose_error_mm_{stage}"] = _pixel_distance(
            placed, shown["grid"], true_ct_from_image, true["grid"]
        )
        out[f"label_pose_error_mm_{stage}"] = (
            _pixel_distance(placed, shown["label"], true_ct_from_image, true["label"])
            if len(rc["label"])
            else np.nan
        )
        out[f"fiducial_error_mm_{stage}"] = _pixel_distance(
            ct_from_probe, fid, true_probe, fid
        )
    return out


#: The per-frame truth measures, each with an initial and a refined column.
_TRUTH_MEASURES = (
    "label_error_mm",
    "pose_error_mm",
    "label_pose_error_mm",
    "fiducial_error_mm",
    "curve_offset_mm",
    "curve_offset_abs_mm",
)


def summarise_truth(table: pd.DataFrame) -> dict:
    """Return the truth-based summary over kept frames.

    Medians of the per-frame truth measures (band distance, true 3D pose error,
    curve offset, each initial and refined), ``improved_fraction`` (band distance
    shrank) and ``worse_fraction`` (true 3D pose error grew).
    """
    # no scored frame (none had an initial label) leaves the measures NaN, not absent
    scored = [
        f"{n}_{stage}" for n in _TRUTH_MEASURES for stage in ("initial", "refined")
    ]
    kept = table[table["status"] == "kept"].reindex(
        columns=table.columns.union([*scored, "f1_at_0_5mm"], sort=False)
    )
    before, after = kept["label_error_mm_initial"], kept["label_error_mm_refined"]
    medians = {
        f"{name}_median_{stage}": float(kept[f"{name}_{stage}"].median())
        for name in _TRUTH_MEASURES[1:]
        for stage in ("initial", "refined")
    }
    grown = kept["pose_error_mm_refined"] > kept["pose_error_mm_initial"]
    medians["pose_error_mm_max_refined"] = float(kept["pose_error_mm_refined"].max())
    medians["worse_fraction"] = float(
        grown[kept["pose_error_mm_refined"].notna()].mean()
    )
    return medians | {
        "label_error_mm_median_initial": float(before.median()),
        "label_error_mm_median_refined": float(after.median()),
        "label_error_mm_max_refined": float(after.max()),
        "improved_fraction": float((after < before).mean()),
        "f1_at_0_5mm_mean": float(kept["f1_at_0_5mm"].mean()),
    }


def truth_dir(root):
    """Return the simulator's truth folder of a sweep, or None (a real record)."""
    from pathlib import Path

    from ..layout import truth_of

    truth = truth_of(Path(root).resolve(), "sweep")
    return truth if truth and (truth / "label_full").is_dir() else None


class TruePlacement(NamedTuple):
    """Where a simulated frame truly lies: its image placement and depth scale."""

    ct_from_image: np.ndarray
    depth_scale: float


def true_placement(truth) -> dict:
    """Return the :class:`TruePlacement` per timestamp of a simulated sweep.

    ``depth_scale`` is the sweep's true-over-displayed depth ratio (the simulator's
    speed of sound).
    """
    from ..io.calibration import read_calibration
    from ..io.record import read_poses_table

    poses = read_poses_table(truth / "poses.csv")
    calibration = read_calibration(truth.parents[3] / "calibration.yaml")
    ct_from_probe = matrix_from_params(poses[list(POSE_COLUMNS)].to_numpy(float))
    placed = ct_from_probe @ calibration.probe_from_image
    scale = poses["depth_scale"].to_numpy(float)
    stamps = poses["timestamp"].astype(int).tolist()
    return {
        t: TruePlacement(m, float(k))
        for t, m, k in zip(stamps, placed, scale, strict=True)
    }


class _Keep:
    """The bench's ``keep``: a frame's scores, and the masks of frames to show.

    Each frame gains ``scores``: its label intensities and, with truth and an
    initial label, its scores against the simulator's masks. The full labels of the
    first ``SHOWN_FRAMES`` kept frames are kept for the figures (``shown``).
    """

    def __init__(self, record, truth):
        self.record, self.truth = record, truth
        self.placement = true_placement(truth) if truth is not None else {}
        self.shown = {}

    def __call__(self, fields: dict) -> None:
        """Score and keep what the bench needs of one frame."""
        stamp, res = int(fields["timestamp"]), result_of(fields)
        fields["scores"] = _intensities(fields)
        has_label = res.masks.get("full_initial", np.zeros(0, bool)).any()
        if self.truth is not None and has_label:
            fields["scores"] |= self._score(stamp, res)
        if res.kept and (stamp in self.shown or len(self.shown) < SHOWN_FRAMES):
            full = {k: v for k, v in res.masks.items() if k.startswith("full")}
            self.shown[stamp] = full

    def _score(self, stamp: int, res: FrameResult) -> dict:
        from ..io.png import read_png

        full = read_png(self.truth / "label_full" / f"{stamp}.png") > 0
        visible = read_png(self.truth / "label_visible" / f"{stamp}.png") > 0
        calibration = self.record.calibration
        return truth_row(
            res, full, visible, spacing_mm=calibration.pixel_spacing_mm
        ) | pose_errors(
            res,
            self.placement[stamp].ct_from_image,
            calibration=calibration,
            label_rc=np.argwhere(full),
            depth_scale=self.placement[stamp].depth_scale,
        )


def sweep_confidence(table: pd.DataFrame, params, calibration) -> pd.DataFrame:
    """Rescore the benched frames together as ``label-sweep`` scores a sweep.

    The neighbour feature compares each frame with the benched frames next to it in
    time (every frame of a record unless the bench samples them).
    """
    from ..sweep import confidence_check

    checked = confidence_check(
        table[list(POSE_COLUMNS)].to_numpy(float),
        table[[f"{c}_refined" for c in POSE_COLUMNS]].to_numpy(float),
        table[list(FEATURES)].to_numpy(float),
        table["reason"].to_numpy(str),
        params=params,
        fiducials=calibration.probe_marker_fiducials_mm,
    )
    table = table.copy()
    table["confidence"] = checked["confidence"]
    table[list(FEATURES)] = checked["confidence_features"]
    table["reason"] = checked["reason"]
    table["status"] = checked["status"]
    return table


def auroc(table: pd.DataFrame) -> float:
    """AUROC of the confidence for a refined label error over 0.5 mm (NaN: no truth)."""
    from ..engine.confidence import confidence_auroc

    if "label_error_mm_refined" not in table:
        return float("nan")
    return float(confidence_auroc(table["confidence"], table["label_error_mm_refined"]))


def prepare_model(record, params):
    """Prepare the record's specimen model, its triangles included."""
    from ..engine import prepare_specimen
    from ..io.stl import read_stl

    model = prepare_specimen(
        {k: read_stl(p) for k, p in record.bone_paths.items()}, params=params
    )
    model.triangles()
    return model


def _timed(fn, *args):
    """Return ``fn(*args)`` and its wall time (s)."""
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_record(record, params, rows) -> BenchRun:
    """Label the rows ``rows`` of an opened record as ``label-sweep`` does; score them.

    The warm start's pilots are spread over the whole record; both passes run on
    ``rows`` (the sweep step with ``refinement: sweep``), then the sweep-level
    confidence check. A simulated sweep's frames are scored against its truth.
    """
    from ..sweep.local import kernel_of, label_tasks, record_tasks, warm_start

    truth = truth_dir(record.root)
    model, precompute_s = _timed(prepare_model, record, params)
    kernel = kernel_of(record.calibration, model, params)
    tasks = record_tasks(record, params)
    (prior, _), pilot_s = _timed(warm_start, tasks, kernel)
    keep = _Keep(record, truth)
    picked = [tasks[int(i)] for i in rows]
    fields = label_tasks(picked, kernel, prior=prior, keep=keep)
    table = sweep_confidence(frame_table(fields), params, record.calibration)
    summary = summarise(table)
    if truth is not None:
        summary |= summarise_truth(table) | {"confidence_auroc": auroc(table)}
    summary |= {
        "precompute_s": precompute_s,
        "pilot_s": pilot_s,
        "warm_start_eps": None if prior is None else prior.tolist(),
        "peak_rss_mb": _peak_rss_mb(),
        "objective": params.objective,
        "lam": params.lam,
    }
    results = [result_of(f) for f in fields]
    for r, f in zip(results, fields, strict=True):
        r.masks = keep.shown.get(int(f["timestamp"]), {})
    return BenchRun(summary, table, results, picked, kernel, prior)


def rerun(run: BenchRun, stamps) -> list[FrameResult]:
    """Label the benched frames ``stamps`` again as the bench did, masks kept.

    A frame refined again runs its second pass from its start, any other its first
    with the warm start: the same seeds, so the same results.
    """
    import functools

    from ..engine import process_frame
    from ..sweep.cluster import Serial, refit_frames
    from ..sweep.frames import label_frames

    tasks = {t.timestamp: t for t in run.tasks}
    table = run.table.set_index("timestamp")
    first = dict(run.kernel, frame_fn=functools.partial(process_frame, prior=run.prior))
    out = []
    for stamp in stamps:
        task, row = tasks[int(stamp)], table.loc[int(stamp)]
        if row["refit"]:
            start = row[START_COLUMNS].to_numpy(float)
            kernel = dict(run.kernel, frame_fn=process_frame)
            again = refit_frames(Serial(), [task], [0], [start], **kernel)
        else:
            again = label_frames([task], **first)
        out.append(result_of(next(iter(again))))
    return out
