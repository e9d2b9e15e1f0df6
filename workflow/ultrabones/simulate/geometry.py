"""Exact image/bone geometry: scan-line casting and point-to-mesh label masks.

Used by the renderer (first bone interface per image column, its incidence angle and
the bone's chord along the scan line, on the image plane and on planes offset across
the beam's elevational thickness), for the truth masks (pixel centres within gamma of
a bone surface, on the image plane alone), and by ``appearance`` for the real
sample's labels at its initial poses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ImageGrid",
    "ScanHits",
    "SlabHits",
    "bone_scene",
    "cast_columns",
    "cast_slab",
    "full_label",
    "visible_label",
]


@dataclass(frozen=True)
class ImageGrid:
    """Pixel grid of an image: ``shape`` (rows, cols) and ``spacing_mm`` (s_x, s_y)."""

    shape: tuple[int, int]
    spacing_mm: tuple[float, float]

    def points_image(self, rows, cols) -> np.ndarray:
        """Image-plane points (n, 3) of pixel centres (rows, cols broadcast)."""
        r, c = np.broadcast_arrays(np.asarray(rows), np.asarray(cols))
        sx, sy = self.spacing_mm
        return np.stack(
            [(c.ravel() + 0.5) * sx, (r.ravel() + 0.5) * sy, np.zeros(r.size)], axis=-1
        )


@dataclass(frozen=True)
class ScanHits:
    """First bone interface along each image column.

    Attributes
    ----------
    depth_mm : ndarray of shape (cols,)
        Depth below the top image edge; ``inf`` where the column meets no bone.
    cos_incidence : ndarray of shape (cols,)
        |cos| of the angle between scan line and surface normal (0 where no hit).
    """

    depth_mm: np.ndarray
    cos_incidence: np.ndarray


@dataclass(frozen=True)
class SlabHits:
    """First bone interface along each column of several elevational planes.

    Attributes
    ----------
    offsets_mm : ndarray of shape (k,)
        Elevational offset of each plane from the image plane (along image z), mm.
    depth_mm : ndarray of shape (k, cols)
        Depth of the first interface below the top image edge; ``inf`` where none.
    cos_incidence : ndarray of shape (k, cols)
        |cos| of the 3D angle between scan line and surface normal (0 where no hit).
    chord_mm : ndarray of shape (k, cols)
        Path length of the scan line inside the bone from that interface to where it
        leaves the bone (``inf`` if it does not leave it; 0 where no hit).
    """

    offsets_mm: np.ndarray
    depth_mm: np.ndarray
    cos_incidence: np.ndarray
    chord_mm: np.ndarray

    def central(self) -> ScanHits:
        """Return the hits of the image plane itself (offset 0), the truth's plane."""
        at = np.flatnonzero(self.offsets_mm == 0.0)
        if at.size == 0:
            raise ValueError(
                f"offsets_mm must contain 0.0 (the image plane), got {self.offsets_mm}"
            )
        return ScanHits(self.depth_mm[at[0]], self.cos_incidence[at[0]])


def bone_scene(bones: dict):
    """Build an open3d RaycastingScene holding every bone mesh (CT frame)."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    for vertices, faces in bones.values():
        scene.add_triangles(
            np.asarray(vertices, dtype=np.float32), np.asarray(faces, dtype=np.uint32)
        )
    return scene


def cast_columns(scene, ct_from_image: np.ndarray, grid: ImageGrid) -> ScanHits:
    """Cast one ray per image column down the scan line (image +y) from the top edge."""
    import open3d as o3d

    cols = np.arange(grid.shape[1])
    origins = grid.points_image(np.full(cols.size, -0.5), cols)
    origins = origins @ ct_from_image[:3, :3].T + ct_from_image[:3, 3]
    direction = np.broadcast_to(ct_from_image[:3, 1], origins.shape)
    rays = o3d.core.Tensor(np.c_[origins, direction].astype(np.float32))
    ans = scene.cast_rays(rays)
    depth = ans["t_hit"].numpy().astype(np.float64)
    normals = ans["primitive_normals"].numpy().astype(np.float64)
    cos = np.abs(normals @ ct_from_image[:3, 1])
    hit = np.isfinite(depth) & (depth < grid.shape[0] * grid.spacing_mm[1])
    return ScanHits(np.where(hit, depth, np.inf), np.where(hit, cos, 0.0))


def cast_slab(
    scene, ct_from_image: np.ndarray, grid: ImageGrid, offsets_mm
) -> SlabHits:
    """Cast the column scan lines of the image plane moved by each elevational offset.

    A second cast from just past each entry point finds where the line leaves the
    bone (meshes are closed), giving the chord the transmitted beam crosses.

    Parameters
    ----------
    scene : open3d.t.geometry.RaycastingScene
        Bone meshes in CT coordinates (:func:`bone_scene`).
    ct_from_image : ndarray of shape (4, 4)
        Rigid map from image-plane mm to CT mm.
    grid : ImageGrid
    offsets_mm : sequence of float, shape (k,)
        Offsets along the image z axis (elevation), mm; include 0.0 for the image plane.

    Returns
    -------
    hits : SlabHits
    """
    import open3d as o3d

    offsets = np.asarray(offsets_mm, dtype=np.float64)
    cols = np.arange(grid.shape[1])
    base = grid.points_image(np.full(cols.size, -0.5), cols)
    base = base @ ct_from_image[:3, :3].T + ct_from_image[:3, 3]
    origins = base[None] + offsets[:, None, None] * ct_from_image[:3, 2]
    origins = origins.reshape(-1, 3)
    direction = np.broadcast_to(ct_from_image[:3, 1], origins.shape)
    ans = scene.cast_rays(o3d.core.Tensor(np.c_[origins, direction].astype(np.float32)))
    depth = ans["t_hit"].numpy().astype(np.float64)
    cos = np.abs(ans["primitive_normals"].numpy().astype(np.float64) @ direction[0])
    hit = np.isfinite(depth) & (depth < grid.shape[0] * grid.spacing_mm[1])
    # Restart just inside the bone, so the entry triangle is not found again.
    eps = 1e-3
    inside = origins + np.where(hit, depth + eps, 0.0)[:, None] * direction
    out = scene.cast_rays(o3d.core.Tensor(np.c_[inside, direction].astype(np.float32)))
    chord = out["t_hit"].numpy().astype(np.float64) + eps
    shape = (offsets.size, cols.size)
    return SlabHits(
        offsets,
        np.where(hit, depth, np.inf).reshape(shape),
        np.where(hit, cos, 0.0).reshape(shape),
        np.where(hit, chord, 0.0).reshape(shape),
    )


def _distance(scene, ct_from_image, grid: ImageGrid, rows, cols) -> np.ndarray:
    import open3d as o3d

    p = grid.points_image(rows, cols)
    p = p @ ct_from_image[:3, :3].T + ct_from_image[:3, 3]
    return scene.compute_distance(o3d.core.Tensor(p.astype(np.float32))).numpy()


def full_label(
    scene,
    ct_from_image: np.ndarray,
    grid: ImageGrid,
    *,
    gamma_mm: float = 0.3,
    block_px: int = 8,
) -> np.ndarray:
    """Mask pixels whose centre lies within ``gamma_mm`` of a bone surface.

    Exact point-to-mesh distances, evaluated only in blocks that can hold such a
    pixel: the distance is 1-Lipschitz, so a block whose centre is farther than
    gamma plus the block's half diagonal holds none.

    Returns
    -------
    mask : ndarray of shape (rows, cols), bool
    """
    rows, cols = grid.shape
    b = block_px
    rc_r = np.arange(b / 2 - 0.5, rows, b)
    rc_c = np.arange(b / 2 - 0.5, cols, b)
    centre_r, centre_c = np.meshgrid(rc_r, rc_c, indexing="ij")
    d = _distance(scene, ct_from_image, grid, centre_r, centre_c).reshape(
        centre_r.shape
    )
    reach = gamma_mm + 0.5 * b * float(np.hypot(*grid.spacing_mm)) + 1e-3
    mask = np.zeros(grid.shape, dtype=bool)
    br, bc = np.nonzero(d <= reach)
    if br.size == 0:
        return mask
    offs_r, offs_c = np.meshgrid(np.arange(b), np.arange(b), indexing="ij")
    pr = (br[:, None] * b + offs_r.ravel()[None]).ravel()
    pc = (bc[:, None] * b + offs_c.ravel()[None]).ravel()
    inside = (pr < rows) & (pc < cols)
    pr, pc = pr[inside], pc[inside]
    near = _distance(scene, ct_from_image, grid, pr, pc) <= gamma_mm
    mask[pr[near], pc[near]] = True
    return mask


def visible_label(
    full: np.ndarray,
    hits: ScanHits,
    grid: ImageGrid,
    *,
    scene,
    ct_from_image,
    gamma_mm: float = 0.3,
    max_incidence_deg: float = 85.0,
) -> np.ndarray:
    """Remove shadowed (below the first interface + gamma) and oblique label pixels."""
    import open3d as o3d

    sy = grid.spacing_mm[1]
    depth_px = (hits.depth_mm + gamma_mm) / sy - 0.5
    rows = np.arange(grid.shape[0])[:, None]
    visible = full & (rows <= depth_px[None, :])
    r, c = np.nonzero(visible)
    if r.size == 0:
        return visible
    p = grid.points_image(r, c) @ ct_from_image[:3, :3].T + ct_from_image[:3, 3]
    ans = scene.compute_closest_points(o3d.core.Tensor(p.astype(np.float32)))
    normals = ans["primitive_normals"].numpy().astype(np.float64)
    cos = np.abs(normals @ ct_from_image[:3, 1])
    oblique = cos < np.cos(np.deg2rad(max_incidence_deg))
    visible[r[oblique], c[oblique]] = False
    return visible
