"""Frame-named rigid transforms: checks, inversion, Euler conversion, interpolation.

This module owns every conversion between the pose encodings the project meets:

* 4x4 homogeneous matrices named ``<to>_from_<from>`` (``p_to = to_from_from @ p``);
* the record's pose parameters ``(x, y, z, euler_x, euler_y, euler_z)``: translation in
  mm and extrinsic Euler angles in degrees, sequence ``"xyz"`` (scipy's
  ``Rotation.from_euler("xyz", angles, degrees=True)``), as in ``sweep_initial.csv``
  and ``calibration.yaml`` of the public UltraBones100k record.

All functions broadcast over leading axes: stacks are ``(..., 4, 4)``.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

__all__ = [
    "POSE_COLUMNS",
    "apply_rigid",
    "check_rigid",
    "fit_rigid",
    "interpolate_rigid",
    "invert_rigid",
    "matrix_from_params",
    "image_from_pixel",
    "params_from_matrix",
    "points_image_from_rc",
    "rotation_angle_deg",
    "split_pixel_affine",
]

#: Column names of a pose in the record's tables: mm and degrees (Euler "xyz").
POSE_COLUMNS = ("x", "y", "z", "euler_x", "euler_y", "euler_z")

_EULER_SEQ = "xyz"


def check_rigid(transform, *, name: str = "transform", tol: float = 1e-6) -> np.ndarray:
    """Return ``transform`` as float64 after checking that it is rigid.

    Parameters
    ----------
    transform : array_like of shape (..., 4, 4)
        Homogeneous rigid transform(s).
    name : str
        Name used in the error message, e.g. ``"ct_from_probe"``.
    tol : float
        Tolerance on orthonormality, determinant and last row.

    Returns
    -------
    transform : ndarray of shape (..., 4, 4), float64

    Raises
    ------
    ValueError
        If the shape, last row, orthonormality or determinant is wrong, or a value is
        not finite.
    """
    transform = np.asarray(transform, dtype=np.float64)
    if transform.ndim < 2 or transform.shape[-2:] != (4, 4):
        raise ValueError(f"{name} must have shape (..., 4, 4), got {transform.shape}")
    if not np.all(np.isfinite(transform)):
        raise ValueError(f"{name} must be finite, got NaN or inf")
    last = transform[..., 3, :]
    if not np.allclose(last, [0.0, 0.0, 0.0, 1.0], atol=tol):
        raise ValueError(
            f"{name} must have last row [0, 0, 0, 1], got {last.reshape(-1, 4)[0]}"
        )
    R = transform[..., :3, :3]
    gram = np.swapaxes(R, -1, -2) @ R
    err = np.abs(gram - np.eye(3)).max() if R.size else 0.0
    if err > tol:
        raise ValueError(
            f"{name} rotation must be orthonormal, got |R^T R - I| = {err:.3g}"
        )
    det = np.linalg.det(R)
    if np.any(np.abs(det - 1.0) > tol):
        raise ValueError(
            f"{name} rotation must have det +1, got {np.ravel(det)[0]:.6g}"
        )
    return transform


def invert_rigid(transform, *, check: bool = False) -> np.ndarray:
    """Invert rigid transform(s) exactly, using ``R^T`` rather than a general inverse.

    Parameters
    ----------
    transform : array_like of shape (..., 4, 4)
        ``b_from_a``.
    check : bool
        Validate rigidity first.

    Returns
    -------
    a_from_b : ndarray of shape (..., 4, 4)

    Examples
    --------
    >>> b_from_a = matrix_from_params([1, 2, 3, 10, 20, 30])
    >>> np.allclose(invert_rigid(b_from_a) @ b_from_a, np.eye(4))
    True
    """
    b_from_a = (
        check_rigid(transform) if check else np.asarray(transform, dtype=np.float64)
    )
    R_t = np.swapaxes(b_from_a[..., :3, :3], -1, -2)
    out = np.zeros_like(b_from_a)
    out[..., :3, :3] = R_t
    out[..., :3, 3] = -(R_t @ b_from_a[..., :3, 3, None])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def apply_rigid(transform, points) -> np.ndarray:
    """Map points by a rigid transform.

    Parameters
    ----------
    transform : array_like of shape (4, 4) or (..., 4, 4)
        ``b_from_a``.
    points : array_like of shape (n, 3) or (..., n, 3)
        Points in frame ``a``.

    Returns
    -------
    points_b : ndarray of shape (..., n, 3)
    """
    b_from_a = np.asarray(transform, dtype=np.float64)
    P = np.asarray(points, dtype=np.float64)
    return P @ np.swapaxes(b_from_a[..., :3, :3], -1, -2) + b_from_a[..., None, :3, 3]


def matrix_from_params(params) -> np.ndarray:
    """Build rigid transform(s) from ``(x, y, z, euler_x, euler_y, euler_z)``.

    Parameters
    ----------
    params : array_like of shape (..., 6)
        Translation in mm, then extrinsic Euler "xyz" angles in degrees.

    Returns
    -------
    transform : ndarray of shape (..., 4, 4)
    """
    p = np.asarray(params, dtype=np.float64)
    if p.shape[-1:] != (6,):
        raise ValueError(f"params must have shape (..., 6), got {p.shape}")
    flat = p.reshape(-1, 6)
    out = np.zeros((flat.shape[0], 4, 4))
    out[:, :3, :3] = Rotation.from_euler(
        _EULER_SEQ, flat[:, 3:], degrees=True
    ).as_matrix()
    out[:, :3, 3] = flat[:, :3]
    out[:, 3, 3] = 1.0
    return out.reshape(p.shape[:-1] + (4, 4))


def params_from_matrix(transform) -> np.ndarray:
    """Return ``(x, y, z, euler_x, euler_y, euler_z)`` of rigid transform(s).

    Parameters
    ----------
    transform : array_like of shape (..., 4, 4)

    Returns
    -------
    params : ndarray of shape (..., 6)
        Translation in mm, extrinsic Euler "xyz" angles in degrees, in (-180, 180].
    """
    transform = np.asarray(transform, dtype=np.float64)
    flat = transform.reshape(-1, 4, 4)
    out = np.empty((flat.shape[0], 6))
    out[:, :3] = flat[:, :3, 3]
    out[:, 3:] = Rotation.from_matrix(flat[:, :3, :3]).as_euler(
        _EULER_SEQ, degrees=True
    )
    return out.reshape(transform.shape[:-2] + (6,))


def rotation_angle_deg(transform) -> np.ndarray:
    """Return the rotation angle (degrees) of rigid transform(s) ``(..., 4, 4)``."""
    R = np.asarray(transform, dtype=np.float64)[..., :3, :3]
    cos = (np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def interpolate_rigid(times, transforms, query_times) -> np.ndarray:
    """Interpolate a stream of rigid poses: slerp for rotation, linear for translation.

    Parameters
    ----------
    times : array_like of shape (n,)
        Strictly increasing sample times (any unit, same as ``query_times``).
    transforms : array_like of shape (n, 4, 4)
        Poses at ``times``.
    query_times : array_like of shape (m,)
        Times to interpolate at; each must lie in ``[times[0], times[-1]]``.

    Returns
    -------
    transforms_at_query : ndarray of shape (m, 4, 4)

    Raises
    ------
    ValueError
        If ``times`` is not strictly increasing or a query lies outside the samples.
    """
    t = np.asarray(times, dtype=np.float64)
    q = np.atleast_1d(np.asarray(query_times, dtype=np.float64))
    transforms = np.asarray(transforms, dtype=np.float64)
    if t.ndim != 1 or transforms.shape != (t.size, 4, 4):
        raise ValueError(
            f"transforms must have shape ({t.size}, 4, 4), got {transforms.shape}"
        )
    if t.size < 2 or np.any(np.diff(t) <= 0):
        raise ValueError("times must hold at least two strictly increasing values")
    if q.size and (q.min() < t[0] or q.max() > t[-1]):
        raise ValueError(
            f"query_times must lie in [{t[0]}, {t[-1]}], got [{q.min()}, {q.max()}]"
        )
    slerp = Slerp(t, Rotation.from_matrix(transforms[:, :3, :3]))
    out = np.zeros((q.size, 4, 4))
    out[:, :3, :3] = slerp(q).as_matrix()
    for axis in range(3):
        out[:, axis, 3] = np.interp(q, t, transforms[:, axis, 3])
    out[:, 3, 3] = 1.0
    return out


def fit_rigid(points_from, points_to, weights=None) -> np.ndarray:
    """Fit the rigid transform mapping ``points_from`` onto ``points_to`` (Kabsch).

    Parameters
    ----------
    points_from : array_like of shape (..., n, 3)
    points_to : array_like of shape (..., n, 3)
        Corresponding points; ``n >= 3`` and not collinear. Coplanar points (an image
        plane) are fine.
    weights : array_like of shape (..., n), optional
        Non-negative weights.

    Returns
    -------
    to_from_from : ndarray of shape (..., 4, 4)
        Broadcasts over leading axes, so many fits run in one call.
    """
    A = np.asarray(points_from, dtype=np.float64)
    B = np.asarray(points_to, dtype=np.float64)
    w = (
        np.ones(A.shape[:-1])
        if weights is None
        else np.asarray(weights, dtype=np.float64)
    )
    w = w / w.sum(axis=-1, keepdims=True)
    ca = (w[..., None] * A).sum(axis=-2)
    cb = (w[..., None] * B).sum(axis=-2)
    H = np.swapaxes((A - ca[..., None, :]) * w[..., None], -1, -2) @ (
        B - cb[..., None, :]
    )
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.swapaxes(Vt, -1, -2) @ np.swapaxes(U, -1, -2)))
    D = np.zeros(d.shape + (3, 3))
    D[..., 0, 0] = 1.0
    D[..., 1, 1] = 1.0
    D[..., 2, 2] = np.where(d == 0, 1.0, d)
    R = np.swapaxes(Vt, -1, -2) @ D @ np.swapaxes(U, -1, -2)
    out = np.zeros(R.shape[:-2] + (4, 4))
    out[..., :3, :3] = R
    out[..., :3, 3] = cb - (R @ ca[..., None])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def image_from_pixel(spacing_mm) -> np.ndarray:
    """Affine map from pixel indices ``(row, col, 0, 1)`` to image-plane mm.

    The pixel (row v, column u) maps to its centre
    ``((u + 0.5) s_x, (v + 0.5) s_y, 0)``, the convention that reproduces the public
    record's labels. Not rigid: it carries the spacing so that ``probe_from_image``
    stays rigid.

    Parameters
    ----------
    spacing_mm : array_like of shape (2,)
        ``(s_x, s_y)``: mm per column step and per row step.
    """
    sx, sy = (float(s) for s in spacing_mm)
    return np.array(
        [
            [0.0, sx, 0.0, 0.5 * sx],
            [sy, 0.0, 0.0, 0.5 * sy],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def points_image_from_rc(rc, spacing_mm) -> np.ndarray:
    """Return image-plane points (mm, z = 0) of pixel centres.

    Parameters
    ----------
    rc : array_like of shape (n, 2)
        Pixel indices ``(row, col)``; fractional (sub-pixel) values allowed.
    spacing_mm : array_like of shape (2,)
        ``(s_x, s_y)`` in mm.

    Returns
    -------
    points_image : ndarray of shape (n, 3)

    Examples
    --------
    >>> points_image_from_rc([[0, 0]], (0.1, 0.2))
    array([[0.05, 0.1 , 0.  ]])
    """
    rc = np.asarray(rc, dtype=np.float64).reshape(-1, 2)
    sx, sy = (float(s) for s in spacing_mm)
    out = np.zeros((rc.shape[0], 3))
    out[:, 0] = (rc[:, 1] + 0.5) * sx
    out[:, 1] = (rc[:, 0] + 0.5) * sy
    return out


def split_pixel_affine(probe_from_pixel, *, tol: float = 1e-3) -> tuple:
    """Split a PLUS-style pixel-to-mm affine into rigid ``probe_from_image`` + spacing.

    PLUS's ``ImageToProbe`` maps pixel indices ``(col, row, 0, 1)`` (first pixel's
    centre at the origin) to mm, its first two columns scaled by the spacing. Ours puts
    that centre at ``(s_x / 2, s_y / 2)`` (:func:`image_from_pixel`): half a pixel.

    Parameters
    ----------
    probe_from_pixel : array_like of shape (4, 4)
        Pixel indices to probe-marker mm (PLUS ``ImageToProbe``).
    tol : float
        Largest ``|cos|`` of the angle between the scaled axes (shear).

    Returns
    -------
    probe_from_image : ndarray of shape (4, 4)
        Image-plane mm to probe mm: the rotation nearest to the axes, z = x cross y.
    spacing_mm : tuple of float
        ``(s_x, s_y)``, mm per column and per row.

    Raises
    ------
    ValueError
        On a last row other than ``0 0 0 1``, a zero axis, or shear beyond ``tol``.
    """
    probe_from_pixel = np.asarray(probe_from_pixel, dtype=np.float64)
    if probe_from_pixel.shape != (4, 4) or not np.allclose(
        probe_from_pixel[3], [0, 0, 0, 1]
    ):
        raise ValueError("probe_from_pixel must be a 4x4 affine with last row 0 0 0 1")
    spacing = np.linalg.norm(probe_from_pixel[:3, :2], axis=0)
    if not np.all(spacing > 0):
        raise ValueError(f"probe_from_pixel axes must be non-zero, got {spacing}")
    x, y = (probe_from_pixel[:3, :2] / spacing).T
    if abs(x @ y) > tol:
        raise ValueError(f"probe_from_pixel axes must be perpendicular, cos = {x @ y}")
    u, _, vt = np.linalg.svd(np.column_stack([x, y, np.cross(x, y)]))
    out = np.eye(4)
    out[:3, :3] = u @ vt
    out[:3, 3] = probe_from_pixel[:3, 3] - 0.5 * (
        probe_from_pixel[:3, 0] + probe_from_pixel[:3, 1]
    )
    return out, (float(spacing[0]), float(spacing[1]))
