"""Exact labels at a pose, and the physics filter (acoustic shadow, incidence)."""

from __future__ import annotations

import numba
import numpy as np
from scipy import ndimage

from ..transforms import apply_rigid, invert_rigid, points_image_from_rc
from .geometry import FrameGeometry
from .model import SpecimenModel

__all__ = [
    "LabelRender",
    "first_interface_mm",
    "incidence_deg",
    "oblique_mask",
    "render_label",
    "shadow_mask",
]

#: Side of the pixel blocks used to find candidate pixels (px).
BLOCK_PX = 4


class LabelRender:
    """Full label of a frame at one pose with the surface normal of each pixel.

    Attributes
    ----------
    mask : ndarray of shape (rows, cols), bool
        Pixels whose CT point lies within gamma of a bone surface.
    rc : ndarray of shape (n, 2), int64
        Labelled pixels.
    normals_image : ndarray of shape (n, 3)
        Surface normal at each labelled pixel's closest surface point, image frame.
    """

    def __init__(self, mask, rc, normals_image):
        self.mask, self.rc, self.normals_image = mask, rc, normals_image


def _candidate_rc(points_image, shape, spacing_mm, reach_mm) -> np.ndarray:
    rows, cols = shape
    sx, sy = spacing_mm
    near = np.abs(points_image[:, 2]) <= reach_mm
    col = np.floor(points_image[near, 0] / sx).astype(np.int64) // BLOCK_PX
    row = np.floor(points_image[near, 1] / sy).astype(np.int64) // BLOCK_PX
    grid = np.zeros((-(-rows // BLOCK_PX), -(-cols // BLOCK_PX)), dtype=bool)
    inside = (row >= 0) & (row < grid.shape[0]) & (col >= 0) & (col < grid.shape[1])
    grid[row[inside], col[inside]] = True
    pad = int(np.ceil(reach_mm / (min(sx, sy) * BLOCK_PX)))
    grid = ndimage.binary_dilation(grid, iterations=pad)
    br, bc = np.nonzero(grid)
    off_r, off_c = np.mgrid[0:BLOCK_PX, 0:BLOCK_PX].reshape(2, -1)
    r = (br[:, None] * BLOCK_PX + off_r[None]).ravel()
    c = (bc[:, None] * BLOCK_PX + off_c[None]).ravel()
    keep = (r < rows) & (c < cols)
    return np.stack([r[keep], c[keep]], axis=1)


def render_label(
    model: SpecimenModel,
    geom: FrameGeometry,
    eps,
    points_image0,
    normals_image0,
    *,
    gamma_mm: float,
) -> LabelRender:
    """Render the full label at the pose ``geom.pose + eps`` with exact distances.

    Every surface point has a sample within ``h = model.spacing_mm``, so a pixel
    whose nearest sample lies within gamma is labelled, one whose nearest sample is
    farther than ``gamma + h`` is not, and only the pixels in between need an exact
    point-to-triangle distance (open3d).

    Parameters
    ----------
    model : SpecimenModel
    geom : FrameGeometry
    eps : ndarray of shape (6,)
        Perturbation of the pose parameters (mm, deg).
    points_image0, normals_image0 : ndarray of shape (k, 3)
        Surface samples near the plane and their normals, initial image frame.
    gamma_mm : float

    Returns
    -------
    render : LabelRender
    """
    image_from_image0 = geom.image_from_image0(np.asarray(eps, float))
    pts = apply_rigid(image_from_image0, points_image0)
    reach = gamma_mm + model.spacing_mm
    near = np.flatnonzero(np.abs(pts[:, 2]) <= reach)
    mask = np.zeros(geom.shape, dtype=bool)
    dist = np.full(geom.shape, np.inf)
    nearest = np.full(geom.shape, -1, dtype=np.int64)
    _splat_distances(
        pts[near], np.asarray(geom.spacing_mm, float), reach, dist, nearest
    )
    rc = np.argwhere(np.isfinite(dist))
    if rc.shape[0] == 0:
        return LabelRender(mask, rc, np.zeros((0, 3)))
    d, k = dist[rc[:, 0], rc[:, 1]], near[nearest[rc[:, 0], rc[:, 1]]]
    hit = d <= gamma_mm
    unsure = ~hit
    normals = np.zeros((rc.shape[0], 3))
    normals[hit] = normals_image0[k[hit]] @ image_from_image0[:3, :3].T
    if unsure.any():
        ct_from_image = geom.ct_from_image @ invert_rigid(image_from_image0)
        exact, n_ct = _closest(model, ct_from_image, rc[unsure], geom.spacing_mm)
        inside = np.flatnonzero(unsure)[exact <= gamma_mm]
        hit[inside] = True
        normals[inside] = (
            n_ct[exact <= gamma_mm] @ invert_rigid(ct_from_image)[:3, :3].T
        )
    mask[rc[hit, 0], rc[hit, 1]] = True
    return LabelRender(mask, rc[hit], normals[hit])


@numba.njit(cache=True, nogil=True)
def _splat_distances(points, spacing, reach, dist, nearest):
    """Write, per pixel, the distance to its nearest sample within ``reach``."""
    rows, cols = dist.shape
    for k in range(points.shape[0]):
        x, y, z = points[k, 0], points[k, 1], points[k, 2]
        c_lo = max(int(np.floor((x - reach) / spacing[0] - 0.5)), 0)
        c_hi = min(int(np.ceil((x + reach) / spacing[0] - 0.5)), cols - 1)
        r_lo = max(int(np.floor((y - reach) / spacing[1] - 0.5)), 0)
        r_hi = min(int(np.ceil((y + reach) / spacing[1] - 0.5)), rows - 1)
        for r in range(r_lo, r_hi + 1):
            dy = (r + 0.5) * spacing[1] - y
            for c in range(c_lo, c_hi + 1):
                dx = (c + 0.5) * spacing[0] - x
                d = np.sqrt(dx * dx + dy * dy + z * z)
                if d <= reach and d < dist[r, c]:
                    dist[r, c] = d
                    nearest[r, c] = k


def _closest(model, ct_from_image, rc, spacing_mm):
    import open3d as o3d

    points_ct = apply_rigid(ct_from_image, points_image_from_rc(rc, spacing_mm))
    query = o3d.core.Tensor((points_ct - model.origin).astype(np.float32))
    out = model.scene().compute_closest_points(query, nthreads=1)
    closest = out["points"].numpy().astype(np.float64) + model.origin
    dist = np.linalg.norm(points_ct - closest, axis=1)
    return dist, out["primitive_normals"].numpy().astype(np.float64)


def first_interface_mm(full: np.ndarray, spacing_mm) -> np.ndarray:
    """Return, per image column, the depth (mm) of its first labelled pixel.

    Parameters
    ----------
    full : ndarray of shape (rows, cols), bool
        A full label (scan lines are columns, depth grows with the row).
    spacing_mm : (float, float)
        Pixel spacing ``(s_x, s_y)``.

    Returns
    -------
    depth_mm : ndarray of shape (cols,)
        Image y of the pixel centre, ``inf`` where the column has no label.
    """
    full = np.asarray(full, dtype=bool)
    first = np.argmax(full, axis=0)
    depth = (first + 0.5) * spacing_mm[1]
    return np.where(full.any(axis=0), depth, np.inf)


def shadow_mask(full: np.ndarray) -> np.ndarray:
    """Return the label pixels hidden below a shallower bone interface.

    Scan lines are image columns with depth growing with the row. In each column
    the first run of labelled pixels is the first interface the beam meets; every
    labelled pixel after a gap below it lies behind bone and is in shadow.

    Parameters
    ----------
    full : ndarray of shape (rows, cols), bool

    Returns
    -------
    shadow : ndarray of shape (rows, cols), bool
    """
    full = np.asarray(full, dtype=bool)
    shadow = np.zeros_like(full)
    cols = np.flatnonzero(full.any(axis=0))
    if cols.size == 0:
        return shadow
    rows = np.flatnonzero(full.any(axis=1))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    part = full[box]
    started = np.maximum.accumulate(part, axis=0)
    gap = np.cumsum(started & ~part, axis=0, dtype=np.int32) > 0
    shadow[box] = part & gap
    return shadow


def incidence_deg(normals_image: np.ndarray) -> np.ndarray:
    """Return the angle (deg) between in-plane surface normals and the scan line.

    The normal is projected into the image plane (its z component dropped); the
    scan line is the image's depth axis (y). A normal perpendicular to the plane has
    no in-plane direction and counts as 90 deg.
    """
    n = np.asarray(normals_image, dtype=np.float64)
    inplane = np.hypot(n[:, 0], n[:, 1])
    cos = np.divide(
        np.abs(n[:, 1]), inplane, out=np.zeros_like(inplane), where=inplane > 1e-9
    )
    return np.degrees(np.arccos(np.clip(cos, 0.0, 1.0)))


def oblique_mask(render: LabelRender, *, max_incidence_deg: float) -> np.ndarray:
    """Return the label pixels whose incidence angle exceeds ``max_incidence_deg``."""
    mask = np.zeros_like(render.mask)
    bad = incidence_deg(render.normals_image) > max_incidence_deg
    mask[render.rc[bad, 0], render.rc[bad, 1]] = True
    return mask
