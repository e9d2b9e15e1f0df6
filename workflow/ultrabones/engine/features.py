"""Per-frame image pre-processing for the objectives."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .params import EngineParams

__all__ = ["FeatureMaps", "bone_evidence", "feature_maps"]


@dataclass(frozen=True)
class FeatureMaps:
    """Images the objectives sample.

    Attributes
    ----------
    evidence : ndarray of shape (rows // f, cols // f), float32
        Bone evidence in [-1, 1] at ``f = factor`` times coarser pixels.
    factor : int
    outside : float
        Evidence of a point outside the image: tissue without an echo
        (``-EngineParams.evidence_offset``), so pushing the bone out of view
        gains nothing.
    """

    evidence: np.ndarray
    factor: int
    outside: float


def _block_mean(image: np.ndarray, f: int) -> np.ndarray:
    """Mean of each ``f x f`` block (float32), as a sum of ``f^2`` strided views.

    Faster than a reshape and ``mean(axis=(1, 3))``, which walks the image in
    small strided pieces.
    """
    rows, cols = (s // f * f for s in image.shape)
    acc = np.zeros((rows // f, cols // f), dtype=np.float32)
    for i in range(f):
        for j in range(f):
            acc += image[i:rows:f, j:cols:f]
    return acc / np.float32(f * f)


def _mean_below(image: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Mean of rows ``start..stop`` below each pixel (rows past the image are 0)."""
    rows = image.shape[0]
    csum = np.zeros((rows + 1, image.shape[1]), dtype=np.float32)
    np.cumsum(image, axis=0, out=csum[1:])
    r = np.arange(rows)
    top, bottom = np.minimum(r + start, rows), np.minimum(r + stop + 1, rows)
    return (csum[bottom] - csum[top]) / (stop + 1 - start)


def bone_evidence(
    image: np.ndarray, *, spacing_mm: float, params: EngineParams | None = None
) -> np.ndarray:
    """Return the bright-above-dark evidence of a bone echo at each pixel.

    The image is smoothed, normalised per frame between two percentiles (the
    speckle level and a bright echo), and each pixel's normalised brightness is
    reduced by the mean brightness of the window below it (the shadow bone casts):
    fascia is bright with tissue below, bone is bright with darkness below. The
    evidence offset is subtracted so that tissue without an echo counts against a
    pose.

    Parameters
    ----------
    image : ndarray of shape (rows, cols), float
    spacing_mm : float
        Pixel size of ``image`` along the columns (depth), mm.
    params : EngineParams, optional
        ``evidence_smoothing_px``, ``evidence_percentiles``, ``shadow_window_mm``
        and ``evidence_offset``.
    """
    params = params or EngineParams()
    smooth = ndimage.gaussian_filter(
        image.astype(np.float32), params.evidence_smoothing_px, mode="nearest"
    )
    # Python floats keep the arithmetic in float32 (NumPy scalars would widen it)
    lo, hi = (float(q) for q in np.percentile(smooth, params.evidence_percentiles))
    norm = np.clip((smooth - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    a, b = (int(round(w / spacing_mm)) for w in params.shadow_window_mm)
    contrast = norm - _mean_below(norm, a, b) - params.evidence_offset
    return contrast.astype(np.float32)


def feature_maps(
    image: np.ndarray, *, spacing_mm, params: EngineParams | None = None
) -> FeatureMaps:
    """Pre-process a uint8 frame into the maps the objectives sample."""
    params = params or EngineParams()
    f = params.evidence_downsample
    coarse = _block_mean(np.asarray(image), f) / np.float32(255.0)
    evidence = bone_evidence(coarse, spacing_mm=spacing_mm[1] * f, params=params)
    return FeatureMaps(evidence, f, -params.evidence_offset)
