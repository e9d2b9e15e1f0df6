"""Exact labels at a pose, and the physics filter (acoustic shadow, incidence)."""

from __future__ import annotations

import numba
import numpy as np
from scipy import ndimage

from ..transforms import apply_rigid
from .geometry import FrameGeometry
from .model import CELL_MM, SpecimenModel

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
    model: SpecimenModel, geom: FrameGeometry, eps, *, gamma_mm: float
) -> LabelRender:
    """Render the full label at the pose ``geom.pose + eps`` with exact distances.

    Only the triangles within gamma of the image plane are visited (found through
    the grid cells of :meth:`SpecimenModel.triangles`). Each is clipped to the slab
    ``|z| <= gamma`` and the pixels within gamma of the clipped part's bounding
    box get their exact point-to-triangle distance, so the cost follows the bone
    in the plane, not the models' size.

    Parameters
    ----------
    model : SpecimenModel
    geom : FrameGeometry
    eps : ndarray of shape (6,)
        Perturbation of the pose parameters (mm, deg).
    gamma_mm : float

    Returns
    -------
    render : LabelRender
        Normals are those of each labelled pixel's nearest triangle.
    """
    image_from_ct = geom.image_from_image0(np.asarray(eps, float)) @ geom.image_from_ct
    tri = model.triangles()
    cells = _cells_near_plane(tri, image_from_ct, geom.extent_mm, gamma_mm)
    spacing = np.asarray(geom.spacing_mm, float)
    origin, dist2, owner = _rasterise(
        tri.corners, tri.cell_start, cells, image_from_ct, spacing, gamma_mm, geom.shape
    )
    rc = np.argwhere(dist2 <= gamma_mm**2)
    normals = tri.normals[owner[rc[:, 0], rc[:, 1]]] @ image_from_ct[:3, :3].T
    rc += origin
    mask = np.zeros(geom.shape, dtype=bool)
    mask[rc[:, 0], rc[:, 1]] = True
    return LabelRender(mask, rc, normals)


def _cells_near_plane(tri, image_from_ct, extent_mm, gamma_mm) -> np.ndarray:
    """Cells whose triangles may come within ``gamma_mm`` of the image."""
    local = apply_rigid(image_from_ct, (tri.cell_keys + 0.5) * CELL_MM)
    reach = CELL_MM * np.sqrt(3) / 2 + tri.radius_mm + gamma_mm
    w, h = extent_mm
    near = np.abs(local[:, 2]) <= reach
    near &= (local[:, 0] >= -reach) & (local[:, 0] <= w + reach)
    near &= (local[:, 1] >= -reach) & (local[:, 1] <= h + reach)
    return np.flatnonzero(near)


@numba.njit(cache=True, nogil=True)
def _slab_box(q, gamma, spacing, shape):
    """Return the pixel range ``(r0, r1, c0, c1)`` within gamma of triangle ``q``.

    ``q`` in image mm, clipped to ``|z| <= gamma``; empty (r0 > r1) when it misses
    the slab.
    """
    lo_x, hi_x, lo_y, hi_y = np.inf, -np.inf, np.inf, -np.inf
    for i in range(3):
        a, b = q[i], q[(i + 1) % 3]
        if abs(a[2]) <= gamma:
            lo_x, hi_x = min(lo_x, a[0]), max(hi_x, a[0])
            lo_y, hi_y = min(lo_y, a[1]), max(hi_y, a[1])
        for h in (-gamma, gamma):
            if (a[2] - h) * (b[2] - h) < 0.0:
                t = (h - a[2]) / (b[2] - a[2])
                x, y = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
                lo_x, hi_x = min(lo_x, x), max(hi_x, x)
                lo_y, hi_y = min(lo_y, y), max(hi_y, y)
    if lo_x > hi_x:
        return 1, 0, 1, 0
    r0 = max(int(np.ceil((lo_y - gamma) / spacing[1] - 0.5)), 0)
    r1 = min(int(np.floor((hi_y + gamma) / spacing[1] - 0.5)), shape[0] - 1)
    c0 = max(int(np.ceil((lo_x - gamma) / spacing[0] - 0.5)), 0)
    c1 = min(int(np.floor((hi_x + gamma) / spacing[0] - 0.5)), shape[1] - 1)
    return r0, r1, c0, c1


@numba.njit(cache=True, nogil=True)
def _rasterise(corners, cell_start, cells, T, spacing, gamma, shape):
    """Squared distance to, and index of, the nearest triangle of each pixel.

    Returns the ``(row, col)`` origin of the box of pixels that any triangle
    reaches, and per pixel of that box the squared distance (``inf`` where none
    is within reach) and the triangle's index (-1 there).
    """
    total = 0
    for c in cells:
        total += cell_start[c + 1] - cell_start[c]
    kept = np.empty(total, np.int64)
    boxes = np.empty((total, 4), np.int64)
    local = np.empty((total, 3, 3))
    n = 0
    for c in cells:
        for t in range(cell_start[c], cell_start[c + 1]):
            for i in range(3):
                x, y, z = corners[t, i, 0], corners[t, i, 1], corners[t, i, 2]
                for d in range(3):
                    local[n, i, d] = T[d, 0] * x + T[d, 1] * y + T[d, 2] * z + T[d, 3]
            r0, r1, c0, c1 = _slab_box(local[n], gamma, spacing, shape)
            if r0 <= r1 and c0 <= c1:
                kept[n] = t
                boxes[n, 0], boxes[n, 1], boxes[n, 2], boxes[n, 3] = r0, r1, c0, c1
                n += 1
    if n == 0:
        return np.zeros(2, np.int64), np.full((0, 0), np.inf), np.full((0, 0), -1)
    top, left = boxes[:n, 0].min(), boxes[:n, 2].min()
    rows, cols = boxes[:n, 1].max() - top + 1, boxes[:n, 3].max() - left + 1
    dist2 = np.full((rows, cols), np.inf)
    owner = np.full((rows, cols), -1, np.int64)
    p = np.zeros(3)
    for k in range(n):
        q = local[k]
        for r in range(boxes[k, 0], boxes[k, 1] + 1):
            p[1] = (r + 0.5) * spacing[1]
            for c in range(boxes[k, 2], boxes[k, 3] + 1):
                p[0] = (c + 0.5) * spacing[0]
                d2 = _point_triangle_dist2(p, q)
                if d2 < dist2[r - top, c - left]:
                    dist2[r - top, c - left] = d2
                    owner[r - top, c - left] = kept[k]
    return np.array([top, left]), dist2, owner


@numba.njit(cache=True, nogil=True)
def _dot(u, v):
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


@numba.njit(cache=True, nogil=True)
def _point_triangle_dist2(p, q):
    """Squared distance from ``p`` to triangle ``q`` (corners in rows).

    Ericson, Real-Time Collision Detection, 5.1.5: the closest point by the
    Voronoi region of ``p``. Scalar code: no arrays are made per pixel.
    """
    ab = (q[1, 0] - q[0, 0], q[1, 1] - q[0, 1], q[1, 2] - q[0, 2])
    ac = (q[2, 0] - q[0, 0], q[2, 1] - q[0, 1], q[2, 2] - q[0, 2])
    ap = (p[0] - q[0, 0], p[1] - q[0, 1], p[2] - q[0, 2])
    d1, d2 = _dot(ab, ap), _dot(ac, ap)
    if d1 <= 0.0 and d2 <= 0.0:
        return _dot(ap, ap)
    bp = (p[0] - q[1, 0], p[1] - q[1, 1], p[2] - q[1, 2])
    d3, d4 = _dot(ab, bp), _dot(ac, bp)
    if d3 >= 0.0 and d4 <= d3:
        return _dot(bp, bp)
    vc = d1 * d4 - d3 * d2
    if vc <= 0.0 and d1 >= 0.0 and d3 <= 0.0:
        return _dist2(ap, ab, d1 / (d1 - d3), ac, 0.0)
    cp = (p[0] - q[2, 0], p[1] - q[2, 1], p[2] - q[2, 2])
    d5, d6 = _dot(ab, cp), _dot(ac, cp)
    if d6 >= 0.0 and d5 <= d6:
        return _dot(cp, cp)
    vb = d5 * d2 - d1 * d6
    if vb <= 0.0 and d2 >= 0.0 and d6 <= 0.0:
        return _dist2(ap, ab, 0.0, ac, d2 / (d2 - d6))
    va = d3 * d6 - d5 * d4
    if va <= 0.0 and (d4 - d3) >= 0.0 and (d5 - d6) >= 0.0:
        w = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        return _dist2(ap, ab, 1.0 - w, ac, w)
    denom = va + vb + vc
    if denom == 0.0:  # degenerate triangle: the nearest of its corners
        return min(_dot(ap, ap), _dot(bp, bp), _dot(cp, cp))
    return _dist2(ap, ab, vb / denom, ac, vc / denom)


@numba.njit(cache=True, nogil=True)
def _dist2(ap, ab, v, ac, w):
    """``|ap - v ab - w ac|^2``: from ``p`` to the point ``a + v ab + w ac``."""
    x = ap[0] - v * ab[0] - w * ac[0]
    y = ap[1] - v * ab[1] - w * ac[1]
    z = ap[2] - v * ab[2] - w * ac[2]
    return x * x + y * y + z * z


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
    """Return the 3D angle (deg) between surface normals and the scan line.

    The scan line is the image's depth axis (y); the angle is the physical one
    between the beam and the normal, so a surface tilted out of the image plane is
    oblique even where its in-plane trace faces the transducer (the projection into
    the plane, used before, called such a surface 0 deg and never dropped it). A
    zero normal counts as 90 deg.

    Examples
    --------
    >>> incidence_deg(np.array([[0.0, -1, 0], [0.0, -1, 1], [0.0, 0, 1]])).round(1)
    array([ 0., 45., 90.])
    """
    n = np.asarray(normals_image, dtype=np.float64)
    length = np.linalg.norm(n, axis=-1)
    cos = np.divide(
        np.abs(n[:, 1]), length, out=np.zeros_like(length), where=length > 1e-9
    )
    return np.degrees(np.arccos(np.clip(cos, 0.0, 1.0)))


def oblique_mask(render: LabelRender, *, max_incidence_deg: float) -> np.ndarray:
    """Return the label pixels whose incidence angle exceeds ``max_incidence_deg``."""
    mask = np.zeros_like(render.mask)
    bad = incidence_deg(render.normals_image) > max_incidence_deg
    mask[render.rc[bad, 0], render.rc[bad, 1]] = True
    return mask
