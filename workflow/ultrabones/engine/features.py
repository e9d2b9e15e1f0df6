"""Per-frame image pre-processing for the objectives."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["FeatureMaps", "bone_evidence", "feature_maps"]

#: Block-averaging factor of the evidence map (0.108 mm pixels on real frames).
DOWNSAMPLE = 2
#: Depth window below an echo where bone casts its shadow (mm).
SHADOW_WINDOW_MM = (0.4, 3.0)
#: Evidence subtracted everywhere in the image: plain tissue must cost, or a sum
#: over more surface rewards drifting onto speckle and fascia.
EVIDENCE_OFFSET = 0.15


@dataclass(frozen=True)
class FeatureMaps:
    """Images the objectives sample.

    Attributes
    ----------
    evidence : ndarray of shape (rows // f, cols // f), float32
        Bone evidence in [-1, 1] at ``f = factor`` times coarser pixels.
    factor : int
    """

    evidence: np.ndarray
    factor: int


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


def bone_evidence(image: np.ndarray, *, spacing_mm: float) -> np.ndarray:
    """Return the bright-above-dark evidence of a bone echo at each pixel.

    The image is smoothed, normalised per frame between its median (speckle level)
    and its 99.5th percentile, and each pixel's normalised brightness is reduced by
    the mean brightness of the window below it (the shadow bone casts): fascia is
    bright with tissue below, bone is bright with darkness below. ``EVIDENCE_OFFSET``
    is subtracted so that tissue without an echo counts against a pose.

    Parameters
    ----------
    image : ndarray of shape (rows, cols), float
    spacing_mm : float
        Pixel size of ``image`` along the columns (depth), mm.
    """
    smooth = ndimage.gaussian_filter(image.astype(np.float32), 1.0, mode="nearest")
    # Python floats keep the arithmetic in float32 (NumPy scalars would widen it)
    lo, hi = (float(q) for q in np.percentile(smooth, [50.0, 99.5]))
    norm = np.clip((smooth - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    a, b = (int(round(w / spacing_mm)) for w in SHADOW_WINDOW_MM)
    contrast = norm - _mean_below(norm, a, b) - EVIDENCE_OFFSET
    return contrast.astype(np.float32)


def feature_maps(image: np.ndarray, *, spacing_mm) -> FeatureMaps:
    """Pre-process a uint8 frame into the maps the objectives sample."""
    coarse = _block_mean(np.asarray(image), DOWNSAMPLE) / np.float32(255.0)
    evidence = bone_evidence(coarse, spacing_mm=spacing_mm[1] * DOWNSAMPLE)
    return FeatureMaps(evidence, DOWNSAMPLE)
