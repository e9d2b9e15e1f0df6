"""Wire dots in Z-phantom images: sub-pixel detection and assignment to Z patterns."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["assign_triples", "detect_dots", "dot_threshold"]


def detect_dots(
    image, *, smooth_px: float = 1.5, min_snr: float = 8.0, min_area_px: int = 4
) -> np.ndarray:
    """Detect bright wire dots and return their sub-pixel centres.

    Parameters
    ----------
    image : ndarray of shape (rows, cols)
        8-bit (or float) ultrasound frame.
    smooth_px : float
        Gaussian smoothing (px) against speckle before thresholding.
    min_snr : float
        Threshold above the background median, in robust noise standard deviations;
        at least a quarter of the brightest peak's height.
    min_area_px : int
        Smaller blobs are speckle.

    Returns
    -------
    rc : ndarray of shape (n, 2)
        Intensity-weighted centroids ``(row, col)`` in pixels.

    Notes
    -----
    The centroid weights are the smoothed intensities above the threshold: they fall
    to zero at the blob's edge, so the pixel grid cutting the edge does not pull the
    centre towards a pixel centre.
    """
    smooth = ndimage.gaussian_filter(np.asarray(image, dtype=np.float64), smooth_px)
    threshold = dot_threshold(smooth, min_snr)
    blobs = smooth > threshold
    labels, count = ndimage.label(blobs)
    if count == 0:
        return np.zeros((0, 2))
    # Sums over the blob pixels alone, in raster order: each blob's sums add the same
    # terms in the same order as ndimage.center_of_mass over the whole image (the
    # same bits), at a fraction of its cost (a frame is mostly background).
    label = labels[blobs]
    weights = (smooth - threshold)[blobs]
    area = np.bincount(label, minlength=count + 1)[1:]
    total = np.bincount(label, weights=weights, minlength=count + 1)[1:]
    centres = np.stack(
        [
            np.bincount(label, weights=weights * axis, minlength=count + 1)[1:] / total
            for axis in np.nonzero(blobs)
        ],
        axis=1,
    )
    return centres[area >= min_area_px].reshape(-1, 2)


def dot_threshold(smooth: np.ndarray, min_snr: float) -> float:
    """Return the intensity above which a smoothed frame's pixels are wire dots.

    ``min_snr`` robust noise standard deviations above the background median, and at
    least a quarter of the brightest peak's height above it.
    """
    # A strided sample is enough for robust background statistics, and 16x faster.
    sample = smooth[::4, ::4]
    background = np.median(sample)
    noise = 1.4826 * np.median(np.abs(sample - background)) + 1e-9
    return background + max(min_snr * noise, 0.25 * (smooth.max() - background))


def assign_triples(
    rc, *, n_patterns: int, spacing_mm, band_gap_mm: float = 3.0
) -> np.ndarray | None:
    """Group dots into Z-pattern triples in image order, or None when they do not fit.

    Dots are split into depth bands wherever consecutive rows are more than
    ``band_gap_mm`` apart; each band, sorted by column, is cut into consecutive
    triples (wire 1, diagonal, wire 3). Bands run top to bottom, triples left to
    right: the order of ``phantom.yaml``'s patterns.

    Parameters
    ----------
    rc : ndarray of shape (n, 2)
        Dot centres, pixels.
    n_patterns : int
    spacing_mm : tuple of float
        ``(s_x, s_y)``.
    band_gap_mm : float

    Returns
    -------
    triples : ndarray of shape (n_patterns, 3, 2) or None
    """
    rc = np.asarray(rc, dtype=np.float64).reshape(-1, 2)
    if rc.shape[0] != 3 * n_patterns:
        return None
    rc = rc[np.argsort(rc[:, 0], kind="stable")]
    cuts = np.flatnonzero(np.diff(rc[:, 0]) * spacing_mm[1] > band_gap_mm) + 1
    bands = np.split(rc, cuts)
    if any(band.shape[0] % 3 for band in bands):
        return None
    ordered = [band[np.argsort(band[:, 1], kind="stable")] for band in bands]
    return np.concatenate(ordered).reshape(n_patterns, 3, 2)
