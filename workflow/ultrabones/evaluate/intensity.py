"""High/low intensity split of label pixels by the Otsu threshold.

The threshold is computed once over the pixel intensities under the final labels of a
whole release (uint8 images, so a 256-bin histogram is exact and histograms of many
frames simply add). A label pixel is *high* when its intensity is strictly above the
threshold (scikit-image's convention), *low* otherwise.
"""

from __future__ import annotations

import numpy as np

__all__ = ["N_LEVELS", "label_histogram", "otsu_threshold"]

#: Grey levels of an 8-bit image.
N_LEVELS = 256


def label_histogram(image, mask) -> np.ndarray:
    """Count the intensities of the pixels under ``mask``.

    Parameters
    ----------
    image : ndarray of uint8, shape (rows, cols)
    mask : ndarray of bool, shape (rows, cols)

    Returns
    -------
    counts : ndarray of shape (256,), int64

    Raises
    ------
    ValueError
        If the image is not uint8 or the shapes differ.
    """
    image = np.asarray(image)
    mask = np.asarray(mask) != 0
    if image.dtype != np.uint8 or image.shape != mask.shape:
        raise ValueError(
            f"image must be uint8 with the mask shape {mask.shape}, "
            f"got {image.dtype} {image.shape}"
        )
    return np.bincount(image[mask], minlength=N_LEVELS).astype(np.int64)


def otsu_threshold(counts) -> float:
    """Return the Otsu threshold of an intensity histogram.

    Parameters
    ----------
    counts : array_like of shape (256,)
        Pixel counts per grey level.

    Returns
    -------
    threshold : float
        Grey level; pixels strictly above it are *high*.

    Raises
    ------
    ValueError
        If the histogram has the wrong length or fewer than two occupied levels.

    Examples
    --------
    >>> counts = np.zeros(256, int)
    >>> counts[[40, 200]] = 10
    >>> 40 <= otsu_threshold(counts) < 200
    True
    """
    from skimage.filters import threshold_otsu

    counts = np.asarray(counts, dtype=np.int64)
    if counts.shape != (N_LEVELS,):
        raise ValueError(f"counts must have shape ({N_LEVELS},), got {counts.shape}")
    if np.count_nonzero(counts) < 2:
        raise ValueError(
            "Otsu needs label pixels of at least two grey levels, got "
            f"{np.count_nonzero(counts)} occupied level(s)"
        )
    return float(threshold_otsu(hist=(counts, np.arange(N_LEVELS))))
