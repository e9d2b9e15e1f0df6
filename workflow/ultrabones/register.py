"""Specimen marker to CT: fiducial spheres, correspondence search, open3d ICP, FRE.

1. Split the CT fiducial mesh into connected components and fit a sphere to each
   (algebraic fit, then geometric least squares); reject components whose radius or
   fit residual is implausible (tube, bone fragment, merged blobs).
2. Match the sphere centres to the marker geometry without a start: try every
   injective correspondence, fit each by Kabsch (vectorised) and keep the least RMS.
3. Refine with open3d point-to-point ICP between points on virtual spheres at the
   geometry's centres and the CT sphere vertices.
4. The fiducial registration error (FRE) is the RMS distance between the mapped
   geometry centres and the fitted CT centres.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .errors import RegistrationError
from .transforms import apply_rigid, fit_rigid

__all__ = [
    "RegistrationResult",
    "find_spheres",
    "fit_sphere",
    "match_fiducials",
    "mesh_components",
    "refine_icp",
    "register_specimen",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegistrationResult:
    """Registration of one specimen marker to its CT.

    Attributes
    ----------
    ct_from_specimen : ndarray of shape (4, 4)
    fre_mm : float
        RMS distance between mapped marker fiducials and CT sphere centres.
    pairs : ndarray of shape (n, 2), int
        ``(fiducial index, CT sphere index)`` correspondences.
    centres_ct : ndarray of shape (k, 3)
        Accepted CT sphere centres.
    radii_mm : ndarray of shape (k,)
    icp_rmse_mm : float
        open3d's inlier RMSE of the final ICP.
    """

    ct_from_specimen: np.ndarray
    fre_mm: float
    pairs: np.ndarray
    centres_ct: np.ndarray
    radii_mm: np.ndarray
    icp_rmse_mm: float


def mesh_components(vertices, faces) -> list[np.ndarray]:
    """Return the vertex indices of each connected component of a triangle mesh."""
    f = np.asarray(faces, dtype=np.int64)
    n = len(vertices)
    rows = np.r_[f[:, 0], f[:, 1], f[:, 2]]
    cols = np.r_[f[:, 1], f[:, 2], f[:, 0]]
    graph = coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    count, label = connected_components(graph, directed=False)
    used = np.zeros(n, dtype=bool)
    used[f.ravel()] = True
    return [idx for c in range(count) if used[(idx := np.flatnonzero(label == c))[0]]]


def fit_sphere(points) -> tuple[np.ndarray, float, float]:
    """Fit a sphere to points: algebraic start, geometric least-squares refinement.

    Parameters
    ----------
    points : ndarray of shape (n, 3), n >= 4

    Returns
    -------
    centre : ndarray of shape (3,)
    radius : float
    rms : float
        RMS of the radial residuals, mm.

    Examples
    --------
    >>> d = np.eye(3)
    >>> c, r, _ = fit_sphere(np.r_[d, -d] * 2 + 1)
    >>> np.round(c, 6).tolist(), round(r, 6)
    ([1.0, 1.0, 1.0], 2.0)
    """
    p = np.asarray(points, dtype=np.float64)
    # |p|^2 = 2 c.p + (r^2 - |c|^2) is linear in c and the constant.
    A = np.c_[2 * p, np.ones(len(p))]
    sol = np.linalg.lstsq(A, (p**2).sum(axis=1), rcond=None)[0]
    start = np.r_[sol[:3], np.sqrt(max(sol[3] + sol[:3] @ sol[:3], 1e-12))]

    def radial(x):
        return np.linalg.norm(p - x[:3], axis=1) - x[3]

    fit = least_squares(radial, start, method="lm")
    return fit.x[:3], float(abs(fit.x[3])), float(np.sqrt(np.mean(fit.fun**2)))


def find_spheres(
    vertices,
    faces,
    *,
    radius_range_mm=(2.0, 10.0),
    max_rms_mm: float = 0.5,
    min_vertices: int = 20,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Fit a sphere per mesh component and keep the plausible ones.

    Returns
    -------
    centres : ndarray of shape (k, 3)
    radii : ndarray of shape (k,)
    members : list of ndarray
        Vertex indices of each accepted sphere.
    """
    v = np.asarray(vertices, dtype=np.float64)
    centres, radii, members = [], [], []
    for idx in mesh_components(v, faces):
        if idx.size < min_vertices:
            continue
        centre, radius, rms = fit_sphere(v[idx])
        if radius_range_mm[0] <= radius <= radius_range_mm[1] and rms <= max_rms_mm:
            centres.append(centre)
            radii.append(radius)
            members.append(idx)
        else:
            log.info(
                "rejected cluster: %d vertices, r=%.2f mm, rms=%.2f mm",
                idx.size,
                radius,
                rms,
            )
    return np.reshape(centres, (-1, 3)), np.asarray(radii), members


def match_fiducials(centres_ct, fiducials) -> tuple[np.ndarray, np.ndarray, float]:
    """Find the correspondence of least RMS between CT centres and marker fiducials.

    Every injective assignment of the smaller set into the larger one is fitted by
    Kabsch in one vectorised call.

    Parameters
    ----------
    centres_ct : ndarray of shape (k, 3)
    fiducials : ndarray of shape (m, 3)
        Marker geometry, specimen marker frame; ``min(k, m) >= 3``.

    Returns
    -------
    ct_from_specimen : ndarray of shape (4, 4)
    pairs : ndarray of shape (min(k, m), 2)
        ``(fiducial index, CT index)``.
    rms_mm : float
    """
    c = np.asarray(centres_ct, dtype=np.float64)
    f = np.asarray(fiducials, dtype=np.float64)
    n = min(len(c), len(f))
    if n < 3:
        raise ValueError(
            f"need at least 3 spheres and fiducials, got {len(c)}, {len(f)}"
        )
    fid_sets = np.array(list(itertools.permutations(range(len(f)), n)))
    ct_sets = np.array(list(itertools.combinations(range(len(c)), n)))
    fi = np.repeat(fid_sets, len(ct_sets), axis=0)
    ci = np.tile(ct_sets, (len(fid_sets), 1))
    ct_from_specimen = fit_rigid(f[fi], c[ci])
    err = np.sqrt(
        ((apply_rigid(ct_from_specimen, f[fi]) - c[ci]) ** 2).sum(-1).mean(-1)
    )
    best = int(np.argmin(err))
    return ct_from_specimen[best], np.c_[fi[best], ci[best]], float(err[best])


def _sphere_points(centres, radius: float, *, count: int = 300) -> np.ndarray:
    # Fibonacci lattice: evenly spread, deterministic.
    k = np.arange(count) + 0.5
    polar = np.arccos(1 - 2 * k / count)
    azimuth = np.pi * (1 + 5**0.5) * k
    unit = np.c_[
        np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)
    ]
    return (np.asarray(centres)[:, None, :] + radius * unit).reshape(-1, 3)


def refine_icp(
    ct_from_specimen, fiducials, points_ct, *, radius_mm: float, max_distance_mm=2.0
) -> tuple[np.ndarray, float]:
    """Refine by open3d point-to-point ICP: virtual spheres onto the CT spheres.

    Returns
    -------
    ct_from_specimen : ndarray of shape (4, 4)
    inlier_rmse_mm : float
    """
    import open3d as o3d

    source = o3d.geometry.PointCloud(
        o3d.utility.Vector3dVector(_sphere_points(fiducials, radius_mm))
    )
    target = o3d.geometry.PointCloud(
        o3d.utility.Vector3dVector(np.asarray(points_ct, dtype=np.float64))
    )
    result = o3d.pipelines.registration.registration_icp(
        source,
        target,
        max_distance_mm,
        np.asarray(ct_from_specimen, dtype=np.float64),
        o3d.pipelines.registration.TransformationEstimationPointToPoint(),
        o3d.pipelines.registration.ICPConvergenceCriteria(max_iteration=100),
    )
    return np.array(result.transformation), float(result.inlier_rmse)


def register_specimen(
    vertices,
    faces,
    fiducials,
    *,
    name: str,
    max_fre_mm: float = 1.0,
    radius_range_mm=(2.0, 10.0),
) -> RegistrationResult:
    """Register a specimen marker to its CT from the CT fiducial sphere mesh.

    Parameters
    ----------
    vertices : ndarray of shape (n, 3)
        CT fiducial mesh (``ct/marker_spheres.stl``), CT frame, mm.
    faces : ndarray of shape (f, 3)
    fiducials : ndarray of shape (m, 3)
        Marker geometry (``markers/specimen.ini``), specimen marker frame, mm.
    name : str
        Specimen name for messages.
    max_fre_mm : float
        Bound on the fiducial registration error.
    radius_range_mm : tuple of float
        Plausible fiducial sphere radii.

    Raises
    ------
    RegistrationError
        Fewer than 3 plausible spheres, or FRE above ``max_fre_mm``.
    """
    centres, radii, members = find_spheres(
        vertices, faces, radius_range_mm=radius_range_mm
    )
    if len(centres) < 3:
        raise RegistrationError(
            f"specimen {name}: {len(centres)} plausible fiducial sphere(s) in the CT "
            f"(radius in {radius_range_mm} mm); need at least 3"
        )
    start, pairs, rms = match_fiducials(centres, fiducials)
    log.info("specimen %s: %d spheres, match rms %.3f mm", name, len(centres), rms)
    points_ct = np.asarray(vertices)[np.concatenate(members)]
    ct_from_specimen, icp_rmse = refine_icp(
        start,
        np.asarray(fiducials)[pairs[:, 0]],
        points_ct,
        radius_mm=float(np.median(radii)),
    )
    mapped = apply_rigid(ct_from_specimen, np.asarray(fiducials)[pairs[:, 0]])
    fre = float(np.sqrt(((mapped - centres[pairs[:, 1]]) ** 2).sum(-1).mean()))
    if fre > max_fre_mm:
        raise RegistrationError(
            f"specimen {name}: fiducial registration error {fre:.3f} mm exceeds the "
            f"bound {max_fre_mm} mm"
        )
    return RegistrationResult(ct_from_specimen, fre, pairs, centres, radii, icp_rmse)
