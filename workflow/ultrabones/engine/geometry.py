"""Frame geometry: perturbed poses, fiducial displacement, samples near the plane."""

from __future__ import annotations

import numba
import numpy as np

from ..transforms import (
    apply_rigid,
    invert_rigid,
    matrix_from_params,
    params_from_matrix,
)
from .model import CELL_MM, SpecimenModel

__all__ = [
    "FrameGeometry",
    "fiducial_displacement_mm",
    "fiducial_shifts",
    "flat_directions",
    "frame_geometry",
    "plane_reach_mm",
    "rigid_from_params",
    "select_samples",
]


def rigid_from_params(params) -> np.ndarray:
    """Build rigid transform(s) from ``(x, y, z, euler_x, euler_y, euler_z)``.

    The same map as :func:`~ultrabones.transforms.matrix_from_params` (extrinsic
    "xyz" in degrees: ``R = Rz Ry Rx``) in a numba loop: the refinement builds a
    few hundred batches of transforms per frame, where scipy's ``Rotation`` costs
    about 0.1 ms a call.

    Parameters
    ----------
    params : ndarray of shape (..., 6)
        Translation (mm), then Euler angles (deg).

    Returns
    -------
    transform : ndarray of shape (..., 4, 4)
    """
    p = np.asarray(params, dtype=np.float64)
    return _rigid_kernel(p.reshape(-1, 6)).reshape(p.shape[:-1] + (4, 4))


@numba.njit(cache=True, nogil=True)
def _rigid_kernel(p):
    out = np.zeros((p.shape[0], 4, 4))
    for i in range(p.shape[0]):
        a = np.radians(p[i, 3:])
        ca, cb, cc = np.cos(a[0]), np.cos(a[1]), np.cos(a[2])
        sa, sb, sc = np.sin(a[0]), np.sin(a[1]), np.sin(a[2])
        rigid = out[i]
        rigid[0, 0], rigid[0, 1], rigid[0, 2] = (
            cb * cc,
            sa * sb * cc - ca * sc,
            ca * sb * cc + sa * sc,
        )
        rigid[1, 0], rigid[1, 1], rigid[1, 2] = (
            cb * sc,
            sa * sb * sc + ca * cc,
            ca * sb * sc - sa * cc,
        )
        rigid[2, 0], rigid[2, 1], rigid[2, 2] = -sb, sa * cb, ca * cb
        rigid[0, 3], rigid[1, 3], rigid[2, 3], rigid[3, 3] = (
            p[i, 0],
            p[i, 1],
            p[i, 2],
            1.0,
        )
    return out


def fiducial_displacement_mm(pose, eps, fiducials, weights=None) -> np.ndarray:
    """Return the mean displacement of the probe fiducials under perturbation(s).

    Parameters
    ----------
    pose : ndarray of shape (6,)
        T_CT<-US as record parameters (mm, deg).
    eps : ndarray of shape (..., 6)
        Perturbation(s) added to the parameters.
    fiducials : ndarray of shape (n, 3)
        F_i in the probe marker frame, mm.
    weights : ndarray of shape (n,), optional
        Weights of the mean (summing to 1); equal when None.

    Returns
    -------
    displacement_mm : ndarray of shape (...)
        ``mean_i |T(pose) F_i - T(pose + eps) F_i|``, weighted by ``weights``.
    """
    moved = np.linalg.norm(fiducial_shifts(pose, eps, fiducials), axis=-1)
    return moved.mean(axis=-1) if weights is None else moved @ np.asarray(weights)


def fiducial_shifts(pose, eps, fiducials) -> np.ndarray:
    """Return ``T(pose + eps) F_i - T(pose) F_i`` (mm), shape (..., n, 3)."""
    base = apply_rigid(rigid_from_params(pose), fiducials)
    return apply_rigid(rigid_from_params(np.asarray(pose) + eps), fiducials) - base


def plane_reach_mm(pose, probe_from_image, extent_mm, *, bounds_mm, bounds_deg):
    """Return how far any point of the image can move within the search box.

    Evaluated at the 64 corners of the box and the image's four corners; the
    displacement is close to linear in the perturbation, so this bounds it up to
    second-order terms (covered by the caller's margin).
    """
    signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * 6, indexing="ij")).reshape(6, -1).T
    eps = signs * np.array([bounds_mm] * 3 + [bounds_deg] * 3)
    w, h = extent_mm
    corners = np.array([[0, 0, 0], [w, 0, 0], [0, h, 0], [w, h, 0]], float)
    corners_probe = apply_rigid(probe_from_image, corners)
    base = apply_rigid(matrix_from_params(pose), corners_probe)
    moved = apply_rigid(matrix_from_params(np.asarray(pose) + eps), corners_probe)
    return float(np.linalg.norm(moved - base, axis=-1).max())


class FrameGeometry:
    """Image plane of one frame at its initial pose.

    Attributes
    ----------
    pose : ndarray of shape (6,)
    ct_from_image, image_from_ct : ndarray of shape (4, 4)
    spacing_mm : (float, float)
    shape : (int, int)
        ``(rows, cols)``.
    """

    def __init__(self, pose, probe_from_image, spacing_mm, shape):
        self.pose = np.asarray(pose, dtype=np.float64)
        self.probe_from_image = np.asarray(probe_from_image, dtype=np.float64)
        self.ct_from_image = matrix_from_params(self.pose) @ self.probe_from_image
        self.image_from_ct = invert_rigid(self.ct_from_image)
        self.spacing_mm = tuple(float(s) for s in spacing_mm)
        self.shape = tuple(int(s) for s in shape)

    @property
    def extent_mm(self) -> tuple[float, float]:
        """Image width and height in mm."""
        return (self.shape[1] * self.spacing_mm[0], self.shape[0] * self.spacing_mm[1])

    def image_from_image0(self, eps) -> np.ndarray:
        """Map initial-image coordinates to the image under perturbation(s) ``eps``.

        Parameters
        ----------
        eps : ndarray of shape (..., 6)

        Returns
        -------
        transform : ndarray of shape (..., 4, 4)
            ``image(eps)_from_ct @ ct_from_image(0)``.
        """
        ct_from_image = rigid_from_params(self.pose + eps) @ self.probe_from_image
        return invert_rigid(ct_from_image) @ self.ct_from_image

    def local_from_eps(self, eps, centre_mm) -> np.ndarray:
        """Express perturbation(s) as motions of the image about ``centre_mm``.

        Parameters
        ----------
        eps : ndarray of shape (..., 6)
            Perturbation(s) of the pose parameters.
        centre_mm : ndarray of shape (3,)
            Pivot in the initial image frame (mm).

        Returns
        -------
        local : ndarray of shape (..., 6)
            Translation (mm) along the image axes (x: columns, y: depth, z: out of
            plane) and Euler "xyz" rotation (deg) about the pivot, such that
            ``ct_from_image(eps) = ct_from_image(0) @ pivot @ T(local) @ pivot^-1``.
        """
        image0_from_pivot = _translation(centre_mm)
        image0_from_image = invert_rigid(self.image_from_image0(eps))
        return params_from_matrix(
            invert_rigid(image0_from_pivot) @ image0_from_image @ image0_from_pivot
        )

    def eps_from_local(self, local, centre_mm) -> np.ndarray:
        """Inverse of :meth:`local_from_eps` (angles of the result near zero)."""
        image0_from_pivot = _translation(centre_mm)
        image0_from_image = (
            image0_from_pivot
            @ rigid_from_params(local)
            @ invert_rigid(image0_from_pivot)
        )
        ct_from_probe = (
            self.ct_from_image @ image0_from_image @ invert_rigid(self.probe_from_image)
        )
        eps = params_from_matrix(ct_from_probe) - self.pose
        eps[..., 3:] = (eps[..., 3:] + 180.0) % 360.0 - 180.0
        return eps


def flat_directions(points, normals, weights, centre_mm, *, sigma_mm, ratio, axes=None):
    """Return the image motions that leave the bone's intersection unchanged.

    A motion (translation t mm, rotation w deg about ``centre_mm``, image axes)
    slides the surface along itself where ``n . (t + w x (p - c)) = 0`` at the
    intersection points p (point-to-plane, as in ICP). The information matrix
    ``A^T W A`` of these residuals, over the samples near the plane (Gaussian
    weights in their distance to it, times their area), has small eigenvalues
    along the directions the image cannot pin: a long bone's axis, the roll
    about it.

    With ``axes`` (indices of the local motion, e.g. the in-plane ones), only
    motions among those components are considered.

    Returns
    -------
    flat : ndarray of shape (k, 6), or (k, len(axes))
        Orthonormal (in local mm/deg units) directions with eigenvalue below
        ``ratio`` times the largest; ``k`` may be 0.
    """
    info, total = _information(
        np.asarray(points, np.float64),
        np.asarray(normals, np.float64),
        np.asarray(weights, np.float64),
        np.asarray(centre_mm, np.float64),
        float(sigma_mm),
    )
    if axes is not None:
        info = info[np.ix_(axes, axes)]
    if not total > 0:
        return np.zeros((0, len(info)))
    values, vectors = np.linalg.eigh(info)
    return vectors[:, values < ratio * values.max()].T


@numba.njit(cache=True, nogil=True)
def _information(points, normals, weights, centre, sigma):
    """Return ``A^T W A`` of :func:`flat_directions` and the sum of the weights."""
    info = np.zeros((6, 6))
    row = np.empty(6)
    total = 0.0
    scale = np.pi / 180.0
    for k in range(points.shape[0]):
        w = weights[k] * np.exp(-0.5 * (points[k, 2] / sigma) ** 2)
        if w == 0.0:
            continue
        ax = (points[k, 0] - centre[0]) * scale
        ay = (points[k, 1] - centre[1]) * scale
        az = (points[k, 2] - centre[2]) * scale
        nx, ny, nz = normals[k, 0], normals[k, 1], normals[k, 2]
        row[0], row[1], row[2] = nx, ny, nz
        row[3], row[4], row[5] = ay * nz - az * ny, az * nx - ax * nz, ax * ny - ay * nx
        for i in range(6):
            for j in range(6):
                info[i, j] += w * row[i] * row[j]
        total += w
    return info, total


def _translation(offset) -> np.ndarray:
    translation = np.eye(4)
    translation[:3, 3] = offset
    return translation


def frame_geometry(pose, calibration, shape) -> FrameGeometry:
    """Build the :class:`FrameGeometry` of a pose under a calibration."""
    return FrameGeometry(
        pose, calibration.probe_from_image, calibration.pixel_spacing_mm, shape
    )


def _candidate_cells(model: SpecimenModel, geom: FrameGeometry, slab_mm, margin_mm):
    """Return the grid cells that may hold samples of :func:`select_samples`.

    A cell is kept when its bounding sphere comes within ``slab_mm`` of the plane
    and within ``margin_mm`` of the image rectangle in the plane.
    """
    local = apply_rigid(geom.image_from_ct, (model.cell_keys + 0.5) * CELL_MM)
    radius = CELL_MM * np.sqrt(3) / 2
    lo = -(margin_mm + radius)
    w, h = geom.extent_mm
    near = np.abs(local[:, 2]) <= slab_mm + radius
    near &= (local[:, 0] >= lo) & (local[:, 0] <= w - lo)
    near &= (local[:, 1] >= lo) & (local[:, 1] <= h - lo)
    return np.flatnonzero(near)


@numba.njit(cache=True, nogil=True)
def _select_in_cells(points, cell_start, cells, T, box):
    """Map the samples of ``cells`` by ``T``; keep those inside ``box``.

    ``box`` is ``(slab, x_lo, x_hi, y_lo, y_hi)`` (mm, image frame). Returns the
    kept indices (ascending, as the cells are) and their mapped points.
    """
    total = 0
    for c in cells:
        total += cell_start[c + 1] - cell_start[c]
    index = np.empty(total, np.int64)
    out = np.empty((total, 3))
    n = 0
    for c in cells:
        for k in range(cell_start[c], cell_start[c + 1]):
            x, y, z = points[k, 0], points[k, 1], points[k, 2]
            qz = T[2, 0] * x + T[2, 1] * y + T[2, 2] * z + T[2, 3]
            if abs(qz) > box[0]:
                continue
            qx = T[0, 0] * x + T[0, 1] * y + T[0, 2] * z + T[0, 3]
            if qx < box[1] or qx > box[2]:
                continue
            qy = T[1, 0] * x + T[1, 1] * y + T[1, 2] * z + T[1, 3]
            if qy < box[3] or qy > box[4]:
                continue
            index[n] = k
            out[n, 0], out[n, 1], out[n, 2] = qx, qy, qz
            n += 1
    return index[:n], out[:n]


def select_samples(model: SpecimenModel, geom: FrameGeometry, *, slab_mm, margin_mm):
    """Return the surface samples near the image plane, in initial-image mm.

    Only the grid cells whose bounding spheres reach the selection are visited
    (:func:`_candidate_cells`), so the cost follows the bone surface near the
    plane, not the model's size; the result equals a test of every sample.

    Parameters
    ----------
    model : SpecimenModel
    geom : FrameGeometry
    slab_mm : float
        Keep samples within this distance of the plane.
    margin_mm : float
        Keep samples up to this far outside the image rectangle.

    Returns
    -------
    index : ndarray of shape (k,), int64
        Indices into ``model.points``, ascending.
    points_image : ndarray of shape (k, 3)
        Samples in the initial image frame (x along columns, y depth, z off-plane).
    """
    cells = _candidate_cells(model, geom, slab_mm, margin_mm)
    w, h = geom.extent_mm
    box = np.array([slab_mm, -margin_mm, w + margin_mm, -margin_mm, h + margin_mm])
    return _select_in_cells(
        model.points, model.cell_start, cells, geom.image_from_ct, box
    )
