"""Frame geometry: perturbed poses, fiducial displacement, samples near the plane."""

from __future__ import annotations

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
    "select_samples",
]


def fiducial_displacement_mm(pose, eps, fiducials) -> np.ndarray:
    """Return the mean displacement of the probe fiducials under perturbation(s).

    Parameters
    ----------
    pose : ndarray of shape (6,)
        T_CT<-US as record parameters (mm, deg).
    eps : ndarray of shape (..., 6)
        Perturbation(s) added to the parameters.
    fiducials : ndarray of shape (n, 3)
        F_i in the probe marker frame, mm.

    Returns
    -------
    displacement_mm : ndarray of shape (...)
        ``mean_i |T(pose) F_i - T(pose + eps) F_i|``.
    """
    return np.linalg.norm(fiducial_shifts(pose, eps, fiducials), axis=-1).mean(axis=-1)


def fiducial_shifts(pose, eps, fiducials) -> np.ndarray:
    """Return ``T(pose + eps) F_i - T(pose) F_i`` (mm), shape (..., n, 3)."""
    base = apply_rigid(matrix_from_params(pose), fiducials)
    return apply_rigid(matrix_from_params(np.asarray(pose) + eps), fiducials) - base


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
        ct_from_image = matrix_from_params(self.pose + eps) @ self.probe_from_image
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
        pivot = _translation(centre_mm)
        moved = invert_rigid(self.image_from_image0(eps))
        return params_from_matrix(invert_rigid(pivot) @ moved @ pivot)

    def eps_from_local(self, local, centre_mm) -> np.ndarray:
        """Inverse of :meth:`local_from_eps` (angles of the result near zero)."""
        pivot = _translation(centre_mm)
        moved = pivot @ matrix_from_params(local) @ invert_rigid(pivot)
        ct_from_probe = self.ct_from_image @ moved @ invert_rigid(self.probe_from_image)
        eps = params_from_matrix(ct_from_probe) - self.pose
        eps[..., 3:] = (eps[..., 3:] + 180.0) % 360.0 - 180.0
        return eps


def flat_directions(points, normals, weights, centre_mm, *, sigma_mm, ratio):
    """Return the image motions that leave the bone's intersection unchanged.

    A motion (translation t mm, rotation w deg about ``centre_mm``, image axes)
    slides the surface along itself where ``n . (t + w x (p - c)) = 0`` at the
    intersection points p (point-to-plane, as in ICP). The information matrix
    ``A^T W A`` of these residuals, over the samples near the plane (Gaussian
    weights in their distance to it, times their area), has small eigenvalues
    along the directions the image cannot pin: a long bone's axis, the roll
    about it.

    Returns
    -------
    flat : ndarray of shape (k, 6)
        Orthonormal (in local mm/deg units) directions with eigenvalue below
        ``ratio`` times the largest; ``k`` may be 0.
    """
    arm = (points - centre_mm) * (np.pi / 180.0)
    A = np.concatenate([normals, np.cross(arm, normals)], axis=1)
    w = weights * np.exp(-0.5 * (points[:, 2] / sigma_mm) ** 2)
    if not w.sum() > 0:
        return np.zeros((0, 6))
    values, vectors = np.linalg.eigh((A * w[:, None]).T @ A)
    return vectors[:, values < ratio * values.max()].T


def _translation(offset) -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = offset
    return T


def frame_geometry(pose, calibration, shape) -> FrameGeometry:
    """Build the :class:`FrameGeometry` of a pose under a calibration."""
    return FrameGeometry(
        pose, calibration.probe_from_image, calibration.pixel_spacing_mm, shape
    )


def _candidate_cells(model: SpecimenModel, geom: FrameGeometry, slab_mm: float):
    centres = (model.cell_keys + 0.5) * CELL_MM
    local = apply_rigid(geom.image_from_ct, centres)
    half = CELL_MM * np.sqrt(3) / 2 + slab_mm
    w, h = geom.extent_mm
    near = (np.abs(local[:, 2]) <= half) & (local[:, 0] >= -half)
    near &= (
        (local[:, 0] <= w + half) & (local[:, 1] >= -half) & (local[:, 1] <= h + half)
    )
    return np.flatnonzero(near)


def select_samples(model: SpecimenModel, geom: FrameGeometry, *, slab_mm, margin_mm):
    """Return the surface samples near the image plane, in initial-image mm.

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
        Indices into ``model.points``.
    points_image : ndarray of shape (k, 3)
        Samples in the initial image frame (x along columns, y depth, z off-plane).
    """
    cells = _candidate_cells(model, geom, slab_mm + margin_mm)
    if cells.size == 0:
        return np.zeros(0, np.int64), np.zeros((0, 3))
    starts, stops = model.cell_start[cells], model.cell_start[cells + 1]
    index = np.concatenate(
        [np.arange(a, b) for a, b in zip(starts, stops, strict=True)]
    )
    local = apply_rigid(geom.image_from_ct, model.points[index])
    w, h = geom.extent_mm
    keep = np.abs(local[:, 2]) <= slab_mm
    keep &= (local[:, 0] >= -margin_mm) & (local[:, 0] <= w + margin_mm)
    keep &= (local[:, 1] >= -margin_mm) & (local[:, 1] <= h + margin_mm)
    return index[keep], local[keep]
