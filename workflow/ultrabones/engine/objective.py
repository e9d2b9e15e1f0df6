"""Objectives of the pose refinement, evaluated for a batch of perturbations.

Both return ``data - lam * mean fiducial displacement (mm)``; see ``docs/engine.md``.

* ``robust``: the integral of the bone evidence along the intersection of the
  probe-facing bone surface with the image plane, with a Gaussian membership of
  width ``sigma_mm`` in the distance to the plane. Its unit is mm of curve times
  evidence, so it rewards covering more of the echo, not shrinking onto it.
* ``eq3``: the paper's Eq. 3 as printed: mean raw intensity over the pixels whose
  CT point lies within gamma of the surface.
* ``authors``: the authors' public implementation as described to us: the sum of
  ``exp(5 I)`` (``I`` the intensity in [0, 1]) over the pixels within 0.5 mm of the
  surface, minus 3000 x the mean fiducial displacement (mm). Their preprocessing
  beyond the intensity scaling is not known to us and is not reproduced.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from scipy.spatial import cKDTree

from ..transforms import apply_rigid, invert_rigid
from .geometry import FrameGeometry, fiducial_displacement_mm

__all__ = [
    "AUTHORS_BAND_MM",
    "AUTHORS_GAIN",
    "AUTHORS_LAM",
    "AuthorsObjective",
    "Eq3Objective",
    "RobustObjective",
    "Surface",
    "bilinear",
]

#: The authors' public implementation: band half-width (mm), intensity gain of the
#: exponential, and penalty weight per mm of mean fiducial displacement.
AUTHORS_BAND_MM = 0.5
AUTHORS_GAIN = 5.0
AUTHORS_LAM = 3000.0


def bilinear(image: np.ndarray, row, col) -> np.ndarray:
    """Sample ``image`` bilinearly at fractional (row, col); 0 outside the image."""
    r0 = np.floor(row).astype(np.int64)
    c0 = np.floor(col).astype(np.int64)
    fr, fc = row - r0, col - c0
    rows, cols = image.shape
    inside = (r0 >= 0) & (r0 < rows - 1) & (c0 >= 0) & (c0 < cols - 1)
    r0 = np.where(inside, r0, 0)
    c0 = np.where(inside, c0, 0)
    top = image[r0, c0] * (1 - fc) + image[r0, c0 + 1] * fc
    bottom = image[r0 + 1, c0] * (1 - fc) + image[r0 + 1, c0 + 1] * fc
    return np.where(inside, top * (1 - fr) + bottom * fr, 0.0)


class _Base:
    def __init__(self, geom: FrameGeometry, fiducials, lam: float, weights=None):
        self.geom, self.fiducials, self.lam = geom, fiducials, float(lam)
        self.penalty_weights = weights  # of the penalty's mean; None: equal
        self.evaluations = 0

    def __call__(self, eps) -> np.ndarray:
        """Return the objective for perturbations ``eps`` of shape (s, 6)."""
        eps = np.atleast_2d(np.asarray(eps, dtype=np.float64))
        self.evaluations += eps.shape[0]
        penalty = fiducial_displacement_mm(
            self.geom.pose, eps, self.fiducials, self.penalty_weights
        )
        return self.data(eps) - self.lam * penalty


class Surface(NamedTuple):
    """Surface samples near the plane, initial image frame.

    ``points`` (k, 3) mm, their unit ``normals`` (k, 3) and, where an objective
    integrates over area, the area (mm^2) each sample stands for, ``weights`` (k,).
    """

    points: np.ndarray
    normals: np.ndarray
    weights: np.ndarray | None = None


class RobustObjective(_Base):
    """Soft-membership integral of bone evidence along the facing surface.

    Samples that leave the image count as tissue without an echo (``outside``),
    so pushing the bone out of view gains nothing.

    Parameters
    ----------
    geom : FrameGeometry
    surface : Surface
        Probe-facing surface samples near the plane, with normals and weights.
        Each sample's area is scaled by the in-plane length of its normal at the
        perturbed pose, ``sqrt(1 - n_z^2)``: the area of a surface within a slab
        of the plane grows as 1/that factor, so without it a plane grazing the
        bone would earn more than a plane cutting it.
    maps : FeatureMaps
        Its ``evidence`` (at ``factor`` times coarser pixels) and ``outside`` (the
        evidence of a sample outside the map).
    sigma_mm, lam : float
    fiducials : ndarray of shape (n, 3)
        The points whose displacement the penalty averages (probe frame, mm).
    penalty_weights : ndarray of shape (n,), optional
        Their weights in that mean; equal when None.
    """

    def __init__(
        self,
        geom,
        surface: Surface,
        maps,
        *,
        sigma_mm,
        lam,
        fiducials,
        penalty_weights=None,
    ):
        super().__init__(geom, fiducials, lam, penalty_weights)
        # ordered by distance to the initial plane: a pose then only visits the
        # contiguous run of samples its plane can reach (see ``_evidence_sums``)
        order = np.argsort(np.asarray(surface.points)[:, 2], kind="stable")
        self.points = np.asarray(surface.points, dtype=np.float64)[order]
        self.weights = np.asarray(surface.weights, dtype=np.float64)[order]
        self.normals = np.asarray(surface.normals, dtype=np.float64)[order]
        # box of the samples: centre (x, y), half-widths about it, and max |z|
        pts = self.points if len(order) else np.zeros((1, 3))
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        self.box = np.r_[(lo[:2] + hi[:2]) / 2, (hi[:2] - lo[:2]) / 2, 0.0]
        self.box[4] = np.abs(pts[:, 2]).max()
        self.evidence, self.factor = maps.evidence, int(maps.factor)
        self.outside = float(maps.outside)
        self.sigma = float(sigma_mm)
        self.scale = 1.0 / (self.sigma * np.sqrt(2 * np.pi))

    def data(self, eps) -> np.ndarray:
        """Return the evidence integral (mm) for each perturbation."""
        image_from_image0 = self.geom.image_from_image0(eps)
        sx, sy = self.geom.spacing_mm
        f = self.factor
        grid = np.array([1 / (sx * f), 1 / (sy * f), 0.5 / f + (f - 1) / (2 * f)])
        out = _evidence_sums(
            image_from_image0,
            self.points,
            self.normals,
            self.weights,
            self.evidence,
            grid,
            self.sigma,
            self.outside,
            self.box,
        )
        return out * self.scale


@numba.njit(cache=True, nogil=True)
def _evidence_sums(T, points, normals, weights, evidence, grid, sigma, outside, box):
    """Sum Gaussian- and slope-weighted bilinear evidence over points per transform.

    ``points`` are sorted by z; ``box`` is ``(cx, cy, hx, hy, hz)``: every point
    has ``|x - cx| <= hx``, ``|y - cy| <= hy``, ``|z| <= hz``. A transform moves a
    point's z by at most ``|T20| hx + |T21| hy + |T22 - 1| hz + |T20 cx + T21 cy +
    T23|``, so only the run of points whose z lies within that of the cut can
    contribute.
    """
    rows, cols = evidence.shape
    out = np.zeros(T.shape[0])
    cut = 3.0 * sigma
    for s in range(T.shape[0]):
        shift = abs(T[s, 2, 0]) * box[2] + abs(T[s, 2, 1]) * box[3]
        shift += abs(T[s, 2, 2] - 1.0) * box[4]
        shift += abs(T[s, 2, 0] * box[0] + T[s, 2, 1] * box[1] + T[s, 2, 3])
        lo = np.searchsorted(points[:, 2], -cut - shift, side="left")
        hi = np.searchsorted(points[:, 2], cut + shift, side="right")
        acc = 0.0
        for k in range(lo, hi):
            x, y, z = points[k, 0], points[k, 1], points[k, 2]
            qz = T[s, 2, 0] * x + T[s, 2, 1] * y + T[s, 2, 2] * z + T[s, 2, 3]
            if abs(qz) > cut:
                continue
            qx = T[s, 0, 0] * x + T[s, 0, 1] * y + T[s, 0, 2] * z + T[s, 0, 3]
            qy = T[s, 1, 0] * x + T[s, 1, 1] * y + T[s, 1, 2] * z + T[s, 1, 3]
            nz = (
                T[s, 2, 0] * normals[k, 0]
                + T[s, 2, 1] * normals[k, 1]
                + T[s, 2, 2] * normals[k, 2]
            )
            g = weights[k] * np.exp(-0.5 * (qz / sigma) ** 2)
            g *= np.sqrt(max(0.0, 1.0 - nz * nz))
            c = qx * grid[0] - grid[2]
            r = qy * grid[1] - grid[2]
            c0, r0 = int(np.floor(c)), int(np.floor(r))
            if r0 < 0 or c0 < 0 or r0 >= rows - 1 or c0 >= cols - 1:
                acc += g * outside
                continue
            fc, fr = c - c0, r - r0
            top = evidence[r0, c0] * (1 - fc) + evidence[r0, c0 + 1] * fc
            bot = evidence[r0 + 1, c0] * (1 - fc) + evidence[r0 + 1, c0 + 1] * fc
            acc += g * (top * (1 - fr) + bot * fr)
        out[s] = acc
    return out


class Eq3Objective(_Base):
    """Eq. 3 as printed: mean intensity over the gamma-intersection.

    Distances of pixel centres to the surface are point-to-tangent-plane distances
    to the nearest surface sample (exact up to the sample spacing's curvature term).

    Parameters
    ----------
    geom : FrameGeometry
    rc : ndarray of shape (m, 2)
        Candidate pixels (all pixels the intersection can reach within the bounds).
    surface : Surface
        Surface samples near the plane and their normals (weights unused).
    intensity : ndarray of shape (rows, cols)
    gamma_mm, spacing_mm, lam : float
        Label half-width, covering radius of the samples, penalty weight.
    fiducials : ndarray of shape (n, 3)
    """

    def __init__(
        self,
        geom,
        rc,
        surface: Surface,
        intensity,
        *,
        gamma_mm,
        spacing_mm,
        lam,
        fiducials,
    ):
        super().__init__(geom, fiducials, lam)
        sx, sy = geom.spacing_mm
        self.pixels = np.stack(
            [(rc[:, 1] + 0.5) * sx, (rc[:, 0] + 0.5) * sy, np.zeros(len(rc))], axis=1
        )
        self.values = intensity[rc[:, 0], rc[:, 1]].astype(np.float64)
        self.tree = cKDTree(surface.points)
        self.samples, self.normals = surface.points, surface.normals
        self.gamma = float(gamma_mm)
        self.reach = float(gamma_mm) + float(spacing_mm)

    def inside(self, image_from_image0) -> np.ndarray:
        """Return which candidate pixels lie within gamma of the surface at a pose."""
        x = apply_rigid(invert_rigid(image_from_image0), self.pixels)
        dq, k = self.tree.query(x, distance_upper_bound=self.reach)
        k = np.minimum(k, len(self.samples) - 1)
        d = np.abs(((x - self.samples[k]) * self.normals[k]).sum(axis=1))
        return (d <= self.gamma) & np.isfinite(dq)

    def reduce(self, inside) -> float:
        """Return the data term of the pixels ``inside``: their mean intensity."""
        return float(self.values[inside].mean()) if inside.any() else 0.0

    def data(self, eps) -> np.ndarray:
        """Return the data term over the intersection for each perturbation."""
        moves = self.geom.image_from_image0(eps)
        return np.array([self.reduce(self.inside(move)) for move in moves])


class AuthorsObjective(Eq3Objective):
    """The authors' public objective: sum of ``exp(AUTHORS_GAIN * I)`` in the band.

    Built as :class:`Eq3Objective` with ``gamma_mm=AUTHORS_BAND_MM`` and
    ``lam=AUTHORS_LAM``; ``intensity`` in [0, 1].
    """

    def reduce(self, inside) -> float:
        """Return the sum of ``exp(AUTHORS_GAIN * I)`` over the pixels ``inside``."""
        return float(np.exp(AUTHORS_GAIN * self.values[inside]).sum())
