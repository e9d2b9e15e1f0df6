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
    intensity : ndarray of shape (rows, cols), float32
        Raw intensity in [0, 1] (Eq. 3).
    evidence : ndarray of shape (rows // f, cols // f), float32
        Bone evidence in [-1, 1] at ``f = factor`` times coarser pixels.
    factor : int
    """

    intensity: np.ndarray
    evidence: np.ndarray
    factor: int


def _block_mean(image: np.ndarray, f: int) -> np.ndarray:
    rows, cols = (s // f * f for s in image.shape)
    return image[:rows, :cols].reshape(rows // f, f, cols // f, f).mean(axis=(1, 3))


def _mean_below(image: np.ndarray, start: int, stop: int) -> np.ndarray:
    padded = np.concatenate([image, np.zeros((stop, image.shape[1]), image.dtype)])
    csum = np.zeros((padded.shape[0] + 1, image.shape[1]), dtype=np.float32)
    np.cumsum(padded, axis=0, out=csum[1:])
    rows = np.arange(image.shape[0])
    return (csum[rows + stop + 1] - csum[rows + start]) / (stop + 1 - start)


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
    lo, hi = np.percentile(smooth, [50.0, 99.5])
    norm = np.clip((smooth - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    a, b = (int(round(w / spacing_mm)) for w in SHADOW_WINDOW_MM)
    contrast = norm - _mean_below(norm, a, b) - EVIDENCE_OFFSET
    return contrast.astype(np.float32)


def feature_maps(image: np.ndarray, *, spacing_mm) -> FeatureMaps:
    """Pre-process a uint8 frame into the maps the objectives sample."""
    intensity = np.asarray(image, dtype=np.float32) / 255.0
    coarse = _block_mean(intensity, DOWNSAMPLE)
    evidence = bone_evidence(coarse, spacing_mm=spacing_mm[1] * DOWNSAMPLE)
    return FeatureMaps(intensity, evidence, DOWNSAMPLE)
