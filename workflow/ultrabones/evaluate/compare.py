"""Score one label set against another: frame matching, spacing, intensities.

Frames are matched by name (a store frame is named by its timestamp, a PNG mask by its
file stem). Only frames present in both sets are scored; a frame whose status is not
``kept`` in either set (a store's ``discarded`` or ``no_image`` frames) is excluded and
counted. The readers of :class:`~ultrabones.io.masks.MaskSource` do the I/O; this module
only combines their arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import InputDataError
from ..io.masks import KEPT, MaskSource
from .intensity import label_histogram, otsu_threshold
from .metrics import REGIONS, aggregate_scores, frame_scores, region_masks

__all__ = ["evaluate_label_sets", "match_frames", "resolve_spacing", "truth_histogram"]

log = logging.getLogger(__name__)


def match_frames(pred: dict[str, str], truth: dict[str, str]) -> tuple[list, dict]:
    """Return the frames to score and the counts of those left out.

    Parameters
    ----------
    pred, truth : dict of str to str
        Frame name -> status of each label set.

    Returns
    -------
    names : list of str
        Frames in both sets and kept in both, in the prediction's order.
    counts : dict
        ``common``, ``excluded_status``, ``pred_only``, ``truth_only``.
    """
    common = [n for n in pred if n in truth]
    kept = [n for n in common if pred[n] == KEPT and truth[n] == KEPT]
    counts = {
        "common": len(common),
        "excluded_status": len(common) - len(kept),
        "pred_only": len(pred) - len(common),
        "truth_only": len(truth) - len(common),
    }
    return kept, counts


def resolve_spacing(*candidates, names: Sequence[str]) -> tuple[float, float]:
    """Return the one pixel spacing the sources and the option agree on.

    Raises
    ------
    InputDataError
        If none gives a spacing or two disagree (naming them).
    """
    given = [
        (name, tuple(float(s) for s in c))
        for name, c in zip(names, candidates, strict=True)
        if c is not None
    ]
    if not given:
        raise InputDataError(
            "pixel spacing unknown: give --spacing SX SY (mm) for PNG mask folders"
        )
    for name, spacing in given[1:]:
        if not np.allclose(spacing, given[0][1], rtol=1e-6, atol=0):
            raise InputDataError(
                f"pixel spacing of {name} {list(spacing)} differs from "
                f"{given[0][0]} {list(given[0][1])}"
            )
    return given[0][1]


def truth_histogram(names, truth: MaskSource, read_image: Callable) -> np.ndarray:
    """Sum the intensity histograms under the truth masks of ``names``."""
    total = np.zeros(256, dtype=np.int64)
    for name in names:
        total += label_histogram(read_image(name), truth.read_mask(name))
    return total


def _score_frame(name, pred, truth, read_image, *, spacing, eps, threshold):
    p, g = pred.read_mask(name), truth.read_mask(name)
    if p.shape != g.shape:
        raise InputDataError(
            f"frame {name}: prediction {pred.path} has shape {p.shape}, "
            f"truth {truth.path} has {g.shape}"
        )
    image = None if read_image is None else read_image(name)
    if image is not None and image.shape != p.shape:
        raise InputDataError(
            f"frame {name}: image shape {image.shape} differs from mask {p.shape}"
        )
    regions = region_masks(p.shape, image, threshold=threshold)
    return frame_scores(p, g, spacing_mm=spacing, eps_mm=eps, regions=regions)


def evaluate_label_sets(
    pred: MaskSource,
    truth: MaskSource,
    *,
    spacing_mm,
    eps_mm,
    read_image: Callable | None = None,
    threshold: float | None = None,
) -> dict:
    """Score ``pred`` against ``truth`` frame by frame and average.

    Parameters
    ----------
    pred, truth : MaskSource
    spacing_mm : tuple of float
        ``(s_x, s_y)`` in mm.
    eps_mm : sequence of float
        Thresholds in mm.
    read_image : callable, optional
        ``read_image(name) -> uint8 image``; enables the high/low split.
    threshold : float, optional
        Otsu threshold; when None but images are given it is computed from the
        intensities under the truth masks of the scored frames.

    Returns
    -------
    result : dict
        JSON-ready: ``eps_mm``, ``accuracy``/``completeness``/``f1`` (all pixels),
        ``regions`` (all/high/low), ``frames`` (number scored), ``frame_counts``,
        ``otsu_threshold``, ``otsu_source``, ``spacing_mm`` and ``per_frame`` rows.

    Raises
    ------
    InputDataError
        If the sets share no kept frame, or a frame's shapes disagree.
    """
    names, counts = match_frames(pred.status_of(), truth.status_of())
    if not names:
        raise InputDataError(
            f"no common kept frames between {pred.path} ({len(pred.names)} frames) "
            f"and {truth.path} ({len(truth.names)} frames): {counts}"
        )
    source = "given" if threshold is not None else None
    if threshold is None and read_image is not None:
        threshold = otsu_threshold(truth_histogram(names, truth, read_image))
        source = "truth_labels"
    per_frame, scored = [], []
    for name in names:
        s = _score_frame(
            name,
            pred,
            truth,
            read_image,
            spacing=spacing_mm,
            eps=eps_mm,
            threshold=threshold,
        )
        per_frame.append((name, s))
        if s is not None:
            scored.append(s)
    counts["both_empty"] = len(names) - len(scored)
    counts["pred_empty"] = sum(int(s.n_pred[0] == 0) for s in scored)
    counts["truth_empty"] = sum(int(s.n_truth[0] == 0) for s in scored)
    return _result(scored, per_frame, counts, eps_mm, spacing_mm, threshold, source)


def _result(scored, per_frame, counts, eps_mm, spacing_mm, threshold, source):
    eps = [float(e) for e in eps_mm]
    regions = aggregate_scores(scored, eps_mm=eps)
    return {
        "eps_mm": eps,
        "accuracy": regions["all"]["accuracy"],
        "completeness": regions["all"]["completeness"],
        "f1": regions["all"]["f1"],
        "frames": len(scored),
        "frame_counts": counts,
        "regions": regions,
        "otsu_threshold": threshold,
        "otsu_source": source,
        "spacing_mm": [float(s) for s in spacing_mm],
        "per_frame": _per_frame_rows(per_frame, eps),
    }


def _per_frame_rows(per_frame, eps) -> list[dict]:
    rows = []
    for name, s in per_frame:
        if s is None:
            continue
        for i, region in enumerate(REGIONS[: s.accuracy.shape[0]]):
            for k, e in enumerate(eps):
                rows.append(
                    {
                        "frame": name,
                        "region": region,
                        "eps_mm": e,
                        "accuracy": _none_if_nan(s.accuracy[i, k]),
                        "completeness": _none_if_nan(s.completeness[i, k]),
                        "f1": _none_if_nan(s.f1[i, k]),
                        "n_pred": int(s.n_pred[i]),
                        "n_truth": int(s.n_truth[i]),
                    }
                )
    return rows


def _none_if_nan(value) -> float | None:
    return None if np.isnan(value) else float(value)
