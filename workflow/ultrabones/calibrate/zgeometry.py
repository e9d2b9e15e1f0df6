"""Z-pattern geometry: the middle dot's 3D point from the ratio of its distances."""

from __future__ import annotations

import numpy as np

__all__ = ["middle_points_phantom"]


def middle_points_phantom(points_image, wires) -> np.ndarray:
    """Return the 3D points (phantom frame) where the image crosses the diagonals.

    Parameters
    ----------
    points_image : ndarray of shape (..., k, 3, 3)
        Image-plane points (mm) of the dots of wire 1, the diagonal and wire 3.
    wires : ndarray of shape (k, 3, 2, 3)
        Wire end points in the phantom marker frame (mm), as in ``phantom.yaml``.

    Returns
    -------
    points_phantom : ndarray of shape (..., k, 3)

    Notes
    -----
    The three wires of a pattern lie in one plane and the side wires are parallel,
    so the image plane meets that plane in a line through the three dots A, B, C.
    By similar triangles the diagonal point is ``start + r (end - start)`` with
    ``r = |AB| / |AC|``, whatever the plane's tilt.

    Examples
    --------
    >>> wires = np.array([[[[0, 0, 0], [0, 10, 0]], [[0, 0, 0], [10, 10, 0]],
    ...                    [[10, 0, 0], [10, 10, 0]]]], float)
    >>> dots = np.array([[[0, 0, 0], [4, 0, 0], [10, 0, 0]]], float)
    >>> middle_points_phantom(dots, wires)
    array([[4., 4., 0.]])
    """
    p = np.asarray(points_image, dtype=np.float64)
    w = np.asarray(wires, dtype=np.float64)
    ab = np.linalg.norm(p[..., 1, :] - p[..., 0, :], axis=-1)
    ac = np.linalg.norm(p[..., 2, :] - p[..., 0, :], axis=-1)
    r = ab / np.where(ac > 0, ac, np.nan)
    start, end = w[:, 1, 0], w[:, 1, 1]
    return start + r[..., None] * (end - start)
