"""Run the engine over frames of a record and summarise speed and outcome."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..transforms import (
    POSE_COLUMNS,
    apply_rigid,
    matrix_from_params,
    points_image_from_rc,
)
from ..vocabulary import Reason
from .confidence import FEATURES
from .frame import process_frame
from .refine import at_bound

#: Table columns of the pose a frame refined again started from (``refit_sweep``).
START_COLUMNS = [f"{c}_start" for c in POSE_COLUMNS]
#: Points per side of the image grid of the true 3D pose error (issue 16, item 7).
POSE_GRID = 16

__all__ = [
    "POSE_GRID",
    "START_COLUMNS",
    "curve_offset_mm",
    "image_grid_rc",
    "label_error_mm",
    "pose_errors",
    "refit_sweep",
    "run_frames",
    "summarise",
    "summarise_truth",
    "truth_row",
]


def run_frames(
    frames, model, calibration, params, *, keep_masks=None, prior=None, starts=None
):
    """Process ``(timestamp, image, ct_from_probe)`` triples; return table and results.

    ``keep_masks(stamp, result)``, when given, is called with each result before its
    masks are dropped (so long runs stay within memory). ``prior`` is the sweep's
    warm start handed to every frame (see ``engine.warm``); ``starts`` maps a
    timestamp to the pose its search starts from (``process_frame``'s ``start``).

    Returns
    -------
    table : DataFrame
        One row per frame with the columns of ``ultrabones bench --table``.
    results : list of FrameResult
    """
    rows, results = [], []
    for stamp, image, ct_from_probe in frames:
        t0, c0 = time.perf_counter(), time.process_time()
        res = process_frame(
            image,
            ct_from_probe,
            model=model,
            calibration=calibration,
            params=params,
            seed=int(stamp),
            prior=prior,
            start=None if starts is None else starts[int(stamp)],
        )
        ms = (time.perf_counter() - t0) * 1e3
        cpu = {"cpu_ms": (time.process_time() - c0) * 1e3}
        rows.append(_row(stamp, res, ms) | cpu | _intensities(image, res.masks))
        results.append(res)
        if keep_masks is not None:
            keep_masks(stamp, res)
            res.masks = {}
    return pd.DataFrame(rows), results


def refit_sweep(table, results, frames_of, model, calibration, params, **kw):
    """Pass two of ``refinement: sweep`` on a benched sweep, as ``label-sweep`` runs it.

    The frames of ``table`` that stray from the sweep's correction
    (:func:`~ultrabones.engine.consistency.refit_plan`) are refined again from it;
    their rows and results are replaced, their times include both passes.

    Parameters
    ----------
    table, results
        The output of :func:`run_frames` for the sweep's frames, in time order.
    frames_of : callable
        Maps the table's row indices to ``run_frames``' frame triples.
    model, calibration, params
        As for :func:`run_frames`.
    **kw
        ``keep_masks`` for :func:`run_frames`.

    Returns
    -------
    table, results
        With the frames refined again replaced; ``table`` gains ``refit`` (bool)
        and the start poses (``START_COLUMNS``, NaN where not refined again).
    """
    from .consistency import refit_plan, residual_params

    rows, starts = refit_plan(
        table["timestamp"].to_numpy(),
        table[list(POSE_COLUMNS)].to_numpy(float),
        table[[f"{c}_refined" for c in POSE_COLUMNS]].to_numpy(float),
        table["reason"].to_numpy(str),
        params=params,
        fiducials=calibration.probe_marker_fiducials_mm,
    )
    table = table.assign(refit=False, **dict.fromkeys(START_COLUMNS, np.nan))
    if not len(rows):
        return table, results
    stamps = table["timestamp"].to_numpy()[rows].astype(int)
    again, redone = run_frames(
        frames_of(rows),
        model,
        calibration,
        residual_params(params),
        starts=dict(zip(stamps.tolist(), starts, strict=True)),
        **kw,
    )
    again.index = table.index[rows]
    again[["ms", "cpu_ms"]] += table.loc[again.index, ["ms", "cpu_ms"]].to_numpy()
    table.loc[again.index, again.columns] = again
    table.loc[again.index, "refit"] = True
    table.loc[again.index, START_COLUMNS] = starts
    results = list(results)
    for k, i in enumerate(rows):
        results[i] = redone[k]
    return table, results


def _intensities(image, masks) -> dict:
    """Mean intensity (0-255) over the full label at each pose (NaN when empty)."""
    out = {}
    for stage in ("initial", "refined"):
        m = masks.get(f"full_{stage}")
        has = image is not None and m is not None and m.any()
        out[f"intensity_{stage}"] = float(image[m].mean()) if has else float("nan")
    return out


def _row(stamp, res, ms) -> dict:
    row = {"timestamp": int(stamp), "status": "kept" if res.kept else "discarded"}
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
        ms=ms,
        confidence=res.confidence,
    )
    row.update(zip(FEATURES, res.confidence_features, strict=True))
    return row


def bound_hits(table: pd.DataFrame, *, bounds=(1.0, 1.0)):
    """Return, per row, whether a refined parameter ended at its search bound."""
    eps = (
        table[[f"{c}_refined" for c in POSE_COLUMNS]].to_numpy()
        - table[list(POSE_COLUMNS)].to_numpy()
    )
    return at_bound(eps, bounds_mm=bounds[0], bounds_deg=bounds[1])


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


def label_error_mm(a: np.ndarray, b: np.ndarray, *, spacing_mm) -> float:
    """Return the symmetric mean distance (mm) between two masks' pixel centres.

    The mean over the pixels of both masks of the distance to the other mask
    (NaN when either mask is empty).
    """
    from scipy.ndimage import distance_transform_edt

    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if not (a.any() and b.any()):
        return float("nan")
    sampling = (spacing_mm[1], spacing_mm[0])
    d_to_b = distance_transform_edt(~b, sampling=sampling)
    d_to_a = distance_transform_edt(~a, sampling=sampling)
    return float((d_to_b[a].sum() + d_to_a[b].sum()) / (a.sum() + b.sum()))


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


def _mean_distance(ct_from_a, ct_from_b, points) -> float:
    a, b = apply_rigid(ct_from_a, points), apply_rigid(ct_from_b, points)
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


def pose_errors(result, true_ct_from_image, *, calibration, label_rc) -> dict:
    """Pose errors (mm) of one frame's initial and refined poses against truth.

    ``pose_error_mm``: the true 3D pose error, the mean distance in CT of the image
    points of a 16 x 16 grid over the whole image (:func:`image_grid_rc`) between
    the frame's image placement (pose and the record's calibration) and the true
    one (this replaced the mean over the four image corners); ``label``: the same
    over the true label's pixels (``label_rc``, row/col; NaN when empty);
    ``fiducial``: mean distance of the probe fiducials under the pose and under
    ``true_ct_from_image @ image_from_probe`` (the image placement's probe pose).
    """
    from ..transforms import invert_rigid

    spacing = calibration.pixel_spacing_mm
    grid = points_image_from_rc(image_grid_rc(calibration.shape), spacing)
    label = points_image_from_rc(label_rc, spacing)
    true_probe = true_ct_from_image @ invert_rigid(calibration.probe_from_image)
    fid = calibration.probe_marker_fiducials_mm
    out = {}
    for stage in ("initial", "refined"):
        ct_from_probe = matrix_from_params(getattr(result, f"pose_{stage}"))
        placed = ct_from_probe @ calibration.probe_from_image
        out[f"pose_error_mm_{stage}"] = _mean_distance(placed, true_ct_from_image, grid)
        out[f"label_pose_error_mm_{stage}"] = (
            _mean_distance(placed, true_ct_from_image, label) if len(label) else np.nan
        )
        out[f"fiducial_error_mm_{stage}"] = _mean_distance(
            ct_from_probe, true_probe, fid
        )
    return out


def summarise_truth(table: pd.DataFrame) -> dict:
    """Return the truth-based summary over kept frames.

    Medians of the per-frame truth measures (band distance, true 3D pose error,
    curve offset, each initial and refined), ``improved_fraction`` (band distance
    shrank) and ``worse_fraction`` (true 3D pose error grew).
    """
    kept = table[table["status"] == "kept"]
    before, after = kept["label_error_mm_initial"], kept["label_error_mm_refined"]
    medians = {
        f"{name}_median_{stage}": float(kept[f"{name}_{stage}"].median())
        for name in (
            "pose_error_mm",
            "label_pose_error_mm",
            "fiducial_error_mm",
            "curve_offset_mm",
            "curve_offset_abs_mm",
        )
        for stage in ("initial", "refined")
        if f"{name}_{stage}" in kept
    }
    if "pose_error_mm_refined" in kept:
        grown = kept["pose_error_mm_refined"] > kept["pose_error_mm_initial"]
        medians["pose_error_mm_max_refined"] = float(
            kept["pose_error_mm_refined"].max()
        )
        medians["worse_fraction"] = float(grown.mean())
    return medians | {
        "label_error_mm_median_initial": float(before.median()),
        "label_error_mm_median_refined": float(after.median()),
        "label_error_mm_max_refined": float(after.max()),
        "improved_fraction": float((after < before).mean()),
        "f1_at_0_5mm_mean": float(kept["f1_at_0_5mm"].mean()),
    }
