"""Distance-thresholded accuracy, completeness and F1 of label masks, in mm.

For a predicted mask P and a truth mask G of one frame, with Euclidean distances in mm
between pixel centres (spacing ``(s_x, s_y)``, anisotropic allowed):

* Acc(eps) = |{p in P : d(p, G) < eps}| / |P|
* Com(eps) = |{g in G : d(g, P) < eps}| / |G|
* F(eps) = 2 Acc Com / (Acc + Com)   (0 when Acc + Com = 0)

with the supplement's strict inequality. Intensity regions (``high``/``low`` by the
Otsu threshold) restrict the pixels that are *counted* (predicted pixels for Acc,
truth pixels for Com), never the set distances are measured *to*.

Edge cases, per frame and region r (P_r, G_r: the pixels of P, G in r):

* P and G both empty: the frame is skipped (counted as ``both_empty``).
* P_r empty: Acc_r undefined. G_r empty: Com_r undefined.
* G empty (P not): Acc_r = 0 wherever P_r is non-empty (nothing is near a truth pixel).
* P empty (G not): Com_r = 0 wherever G_r is non-empty.
* F_r = 0 when the whole P or the whole G is empty (a complete miss or a pure false
  alarm) and r holds pixels of the other; otherwise F_r is defined when Acc_r and
  Com_r are.

Undefined values are NaN per frame and are left out of the means; an aggregate with no
defined frame is reported as None, so no NaN reaches an aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt

__all__ = [
    "DEFAULT_EPS_MM",
    "REGIONS",
    "FrameScores",
    "aggregate_scores",
    "fractions_within",
    "frame_scores",
    "label_error_mm",
    "region_masks",
]

#: Default distance thresholds (mm), as in the paper's Fig. 4.
DEFAULT_EPS_MM = (0.1, 0.25, 0.5, 1.0, 2.0)
#: Intensity regions, in report order.
REGIONS = ("all", "high", "low")


@dataclass(frozen=True)
class FrameScores:
    """Scores of one frame.

    Attributes
    ----------
    accuracy, completeness, f1 : ndarray of shape (n_regions, n_eps)
        NaN where undefined (see the module notes).
    n_pred, n_truth : ndarray of shape (n_regions,), int
        Counted pixels per region.
    """

    accuracy: np.ndarray
    completeness: np.ndarray
    f1: np.ndarray
    n_pred: np.ndarray
    n_truth: np.ndarray


def fractions_within(distances, eps_mm) -> np.ndarray:
    """Return the fraction of ``distances`` strictly below each threshold.

    Parameters
    ----------
    distances : array_like of shape (n,)
        Distances in mm.
    eps_mm : array_like of shape (k,)
        Thresholds in mm.

    Returns
    -------
    fractions : ndarray of shape (k,)
        NaN for every threshold when ``distances`` is empty.

    Examples
    --------
    >>> fractions_within([0.0, 0.5, 1.0], [0.5, 1.5])
    array([0.33333333, 1.        ])
    """
    d = np.sort(np.asarray(distances, dtype=np.float64).ravel())
    eps = np.asarray(eps_mm, dtype=np.float64)
    if d.size == 0:
        return np.full(eps.shape, np.nan)
    return np.searchsorted(d, eps, side="left") / d.size


def region_masks(shape, intensity=None, *, threshold=None) -> np.ndarray:
    """Return boolean region masks ``(n_regions, rows, cols)``: all, high, low.

    ``high`` is ``intensity > threshold`` (scikit-image's Otsu convention), ``low`` the
    rest. Without intensity or threshold only ``all`` is returned.
    """
    everything = np.ones(shape, dtype=bool)
    if intensity is None or threshold is None:
        return everything[None]
    intensity = np.asarray(intensity)
    if intensity.shape != tuple(shape):
        raise ValueError(
            f"intensity must have the mask shape {tuple(shape)}, got {intensity.shape}"
        )
    high = intensity > threshold
    return np.stack([everything, high, ~high])


def _bounding_box(mask: np.ndarray) -> tuple[slice, slice]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _distance_to(mask: np.ndarray, sampling) -> np.ndarray | None:
    # Every pixel of both sets lies in the crop, so distances to the set are exact.
    return distance_transform_edt(~mask, sampling=sampling) if mask.any() else None


def _counted_fractions(d_to_other, counted, eps) -> np.ndarray:
    if not counted.any():
        return np.full(eps.shape, np.nan)
    if d_to_other is None:
        return np.zeros(eps.shape)
    return fractions_within(d_to_other[counted], eps)


def _f1(acc, com, total_miss) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(acc + com > 0, 2 * acc * com / (acc + com), 0.0)
    f = np.where(np.isnan(acc) | np.isnan(com), np.nan, f)
    return np.where(total_miss & ~(np.isnan(acc) & np.isnan(com)), 0.0, f)


def frame_scores(pred, truth, *, spacing_mm, eps_mm=DEFAULT_EPS_MM, regions=None):
    """Score one predicted mask against a truth mask.

    Parameters
    ----------
    pred, truth : array_like of bool, shape (rows, cols)
        Masks (non-zero = label).
    spacing_mm : array_like of shape (2,)
        ``(s_x, s_y)``: mm per column and per row.
    eps_mm : array_like of shape (k,)
        Distance thresholds, mm.
    regions : ndarray of bool, shape (n_regions, rows, cols), optional
        Pixel regions (from :func:`region_masks`); default: the whole image.

    Returns
    -------
    scores : FrameScores or None
        None when both masks are empty (the frame is skipped).

    Raises
    ------
    ValueError
        If shapes differ, a spacing is not positive or a threshold is negative.
    """
    pred, truth = _check_masks(pred, truth)
    sx, sy = _check_spacing(spacing_mm)
    eps = np.asarray(eps_mm, dtype=np.float64).ravel()
    if eps.size == 0 or np.any(~np.isfinite(eps)) or np.any(eps < 0):
        raise ValueError(f"eps_mm must be finite non-negative values, got {eps}")
    if regions is None:
        regions = np.ones((1, *pred.shape), dtype=bool)
    if not (pred.any() or truth.any()):
        return None
    box = _bounding_box(pred | truth)
    pred, truth, regions = pred[box], truth[box], regions[(slice(None), *box)]
    d_truth, d_pred = _distance_to(truth, (sy, sx)), _distance_to(pred, (sy, sx))
    acc = np.stack([_counted_fractions(d_truth, pred & r, eps) for r in regions])
    com = np.stack([_counted_fractions(d_pred, truth & r, eps) for r in regions])
    total_miss = not (pred.any() and truth.any())
    return FrameScores(
        accuracy=acc,
        completeness=com,
        f1=_f1(acc, com, total_miss),
        n_pred=(pred & regions).sum(axis=(1, 2)),
        n_truth=(truth & regions).sum(axis=(1, 2)),
    )


def _check_masks(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred) != 0
    truth = np.asarray(truth) != 0
    if pred.ndim != 2 or pred.shape != truth.shape:
        raise ValueError(
            f"pred and truth must be 2-D masks of one shape, got {pred.shape} "
            f"and {truth.shape}"
        )
    return pred, truth


def _check_spacing(spacing_mm) -> tuple[float, float]:
    s = np.asarray(spacing_mm, dtype=np.float64).ravel()
    if s.shape != (2,) or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"spacing_mm must be two positive values (s_x, s_y), got {s}")
    return float(s[0]), float(s[1])


def _mean_or_none(values: np.ndarray) -> tuple[list, list]:
    defined = ~np.isnan(values)
    counts = defined.sum(axis=0)
    sums = np.where(defined, values, 0.0).sum(axis=0)
    means = [float(s / n) if n else None for s, n in zip(sums, counts, strict=True)]
    return means, [int(n) for n in counts]


def aggregate_scores(scores, *, eps_mm, region_names=REGIONS) -> dict:
    """Average per-frame scores over frames, as the paper averages over images.

    Parameters
    ----------
    scores : sequence of FrameScores
        Scored frames (skipped frames left out), all with the same regions.
    eps_mm : array_like of shape (k,)
    region_names : sequence of str
        Names of the regions, in order.

    Returns
    -------
    summary : dict
        ``{region: {"accuracy": [...], "completeness": [...], "f1": [...],
        "frames": {"accuracy": [...], ...}}}``: means over frames where the value is
        defined (None where no frame is), and the number of frames behind each mean.
    """
    eps = [float(e) for e in np.ravel(eps_mm)]
    n_regions = scores[0].accuracy.shape[0] if scores else 1
    out = {}
    for i, name in enumerate(region_names[:n_regions]):
        entry, counts = {}, {}
        for metric in ("accuracy", "completeness", "f1"):
            stack = np.array([getattr(s, metric)[i] for s in scores]).reshape(
                -1, len(eps)
            )
            entry[metric], counts[metric] = _mean_or_none(stack)
        out[name] = {**entry, "frames": counts}
    return out


def label_error_mm(a: np.ndarray, b: np.ndarray, *, spacing_mm) -> float:
    """Return the symmetric mean distance (mm) between two masks' pixel centres.

    The mean over the pixels of both masks of the distance to the other mask
    (NaN when either mask is empty).
    """
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if not (a.any() and b.any()):
        return float("nan")
    sampling = (spacing_mm[1], spacing_mm[0])
    d_to_b = distance_transform_edt(~b, sampling=sampling)
    d_to_a = distance_transform_edt(~a, sampling=sampling)
    return float((d_to_b[a].sum() + d_to_a[b].sum()) / (a.sum() + b.sum()))
