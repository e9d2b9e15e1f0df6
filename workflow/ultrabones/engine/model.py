"""Per-specimen precompute: dense surface samples with normals and a distance scene.

The bone surfaces are sampled so that every surface point lies within
``sample_spacing_mm`` of a sample (each triangle is subdivided until its edges are
shorter than the spacing). The samples carry their triangle's outward normal and are
bucketed into a coarse grid so that a frame selects the samples near its image
plane without touching the whole cloud.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numba
import numpy as np

__all__ = ["SpecimenModel", "TriangleIndex", "prepare_specimen", "sample_surface"]

log = logging.getLogger(__name__)

#: Edge of the grid cells that bucket the surface samples (mm).
CELL_MM = 4.0


@dataclass(frozen=True)
class TriangleIndex:
    """The bones' triangles bucketed by the grid cell of their centroids.

    Attributes
    ----------
    corners : ndarray of shape (t, 3, 3), float64
        Corners of each triangle, CT mm, ordered by cell.
    normals : ndarray of shape (t, 3), float64
        Unit normals (right-hand winding; zero for degenerate triangles).
    cell_keys : ndarray of shape (c, 3), int64
    cell_start : ndarray of shape (c + 1,), int64
        Triangles of bucket ``i`` are ``corners[cell_start[i]:cell_start[i + 1]]``.
    radius_mm : float
        Farthest any triangle's corner lies from its centroid.
    """

    corners: np.ndarray
    normals: np.ndarray
    cell_keys: np.ndarray
    cell_start: np.ndarray
    radius_mm: float


@dataclass
class SpecimenModel:
    """Bone surfaces of one specimen, ready for per-frame queries.

    Attributes
    ----------
    bone_names : tuple of str
        Bone names, sorted; ``bone_index`` refers to this order.
    vertices, faces : dict of str to ndarray
        Mesh of each bone: vertices ``(n, 3)`` float64 mm (CT), faces ``(m, 3)``.
    points : ndarray of shape (k, 3), float64
        Surface samples, CT mm, ordered by grid cell.
    normals : ndarray of shape (k, 3), float32
        Outward unit normals of the samples.
    weights : ndarray of shape (k,), float32
        Surface area (mm^2) each sample stands for.
    bone_index : ndarray of shape (k,), int16
    cell_keys : ndarray of shape (c, 3), int64
        Grid cell of each bucket (``floor(point / CELL_MM)``).
    cell_start : ndarray of shape (c + 1,), int64
        Samples of bucket ``i`` are ``points[cell_start[i]:cell_start[i + 1]]``.
    spacing_mm : float
        Covering radius of the samples.
    density_per_mm2 : float
        Samples per mm^2 of surface (turns sums over samples into integrals).
    """

    bone_names: tuple
    vertices: dict
    faces: dict
    points: np.ndarray
    normals: np.ndarray
    weights: np.ndarray
    bone_index: np.ndarray
    cell_keys: np.ndarray
    cell_start: np.ndarray
    spacing_mm: float
    density_per_mm2: float
    _scene: object = field(default=None, repr=False, compare=False)
    _triangles: object = field(default=None, repr=False, compare=False)

    def __getstate__(self):
        """Drop the open3d scene and the triangle index when pickled.

        Dask workers rebuild them.
        """
        state = dict(self.__dict__)
        state["_scene"] = state["_triangles"] = None
        return state

    def __post_init__(self):
        """Cache the centre of the samples' box: the float32 scene is built there."""
        self.origin = 0.5 * (self.points.min(axis=0) + self.points.max(axis=0))

    def triangles(self) -> TriangleIndex:
        """Return (building once) the triangles of all bones, bucketed by cell."""
        if self._triangles is None:
            self._triangles = _triangle_index(self)
        return self._triangles

    def scene(self):
        """Return (building once) the open3d raycasting scene of all bones."""
        if self._scene is None:
            self._scene = _build_scene(self)
        return self._scene

    def save(self, path) -> None:
        """Write the model to folder ``path`` (deterministic bytes)."""
        from ..io.model import write_specimen_model

        write_specimen_model(path, self)

    @classmethod
    def load(cls, path) -> SpecimenModel:
        """Read a model written by :meth:`save`."""
        from ..io.model import read_specimen_model

        return cls(**read_specimen_model(path))


def _build_scene(model: SpecimenModel):
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    origin = model.origin
    for name in model.bone_names:
        mesh = o3d.t.geometry.TriangleMesh()
        mesh.vertex.positions = o3d.core.Tensor(
            (model.vertices[name] - origin).astype(np.float32)
        )
        mesh.triangle.indices = o3d.core.Tensor(model.faces[name].astype(np.int32))
        scene.add_triangles(mesh)
    return scene


def _triangle_index(model: SpecimenModel) -> TriangleIndex:
    corners = np.concatenate(
        [model.vertices[n][model.faces[n]] for n in model.bone_names]
    )
    centroid = corners.mean(axis=1)
    radius = float(np.linalg.norm(corners - centroid[:, None], axis=2).max())
    origin, size = _cell_layout(model.vertices)
    order, keys, start = _bucket(_cell_codes(centroid, origin, size), origin, size)
    corners = corners[order]
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    norm = np.linalg.norm(cross, axis=1, keepdims=True)
    normals = np.divide(cross, norm, out=np.zeros_like(cross), where=norm > 0)
    return TriangleIndex(corners, normals, keys, start, radius)


def _check_mesh(name: str, vertices, faces) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(
            f"bone {name!r}: vertices and faces must have shape (n, 3), "
            f"got {v.shape} and {f.shape}"
        )
    if f.shape[0] == 0:
        raise ValueError(f"bone {name!r}: mesh has no triangles")
    if f.min() < 0 or f.max() >= v.shape[0]:
        raise ValueError(f"bone {name!r}: face index outside the vertex list")
    if not np.isfinite(v).all():
        raise ValueError(f"bone {name!r}: vertices must be finite")
    return v, f


def _subdivision(vertices, faces, spacing_mm):
    """Per triangle: first corner, edges, unit normal, area and subdivision ``k``."""
    tri = vertices[faces]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    cross = np.cross(e1, e2)
    norm = np.linalg.norm(cross, axis=1, keepdims=True)
    normal = np.divide(cross, norm, out=np.zeros_like(cross), where=norm > 0)
    longest = np.linalg.norm(
        np.stack([e1, e2, tri[:, 2] - tri[:, 1]], axis=1), axis=2
    ).max(axis=1)
    k = np.maximum(1, np.ceil(longest / spacing_mm)).astype(np.int64)
    return tri[:, 0], e1, e2, normal, 0.5 * norm[:, 0], k


@numba.njit(cache=True, nogil=True)
def _fill_samples(v0, e1, e2, normal, area, k, order, slots, points, normals, weights):
    """Write the sub-triangle centroids of the triangles ``order`` into ``slots``.

    Triangle ``t`` is split into ``k[t]^2`` similar sub-triangles: the "up" ones
    (barycentric ``((i, j) + 1/3) / k``, ``i + j <= k - 1``), then the "down" ones
    (``+ 2/3``, ``i + j <= k - 2``), ``i`` outer. Sample ``s`` of that sequence goes
    to row ``slots[s]`` of the outputs. Centroids, not corners: corners on shared
    edges would be counted by both triangles and make the sample density (and the
    objective) lumpy along the mesh's edges, which the refinement then follows.
    """
    s = 0
    for t in order:
        n = k[t]
        w = area[t] / (n * n)
        for third, last in ((1.0 / 3.0, n - 1), (2.0 / 3.0, n - 2)):
            for i in range(n):
                for j in range(n):
                    if i + j > last:
                        continue
                    a, b = (i + third) / n, (j + third) / n
                    row = slots[s]
                    for d in range(3):
                        points[row, d] = v0[t, d] + a * e1[t, d] + b * e2[t, d]
                        normals[row, d] = normal[t, d]
                    weights[row] = w
                    s += 1


def sample_surface(vertices, faces, *, spacing_mm: float, slots=None, out=None):
    """Sample a triangle mesh so that every surface point is near a sample.

    Parameters
    ----------
    vertices : ndarray of shape (n, 3)
    faces : ndarray of shape (m, 3)
    spacing_mm : float
        Each triangle is split into ``k^2`` similar triangles with edges no longer
        than this; their centroids are the samples (covering radius <= 2/3
        spacing), each standing for an equal share of the triangle's area.
        Triangles are taken by ascending ``k`` (stable).
    slots : ndarray of shape (p,), int64, optional
        Row of ``out`` for each sample (default: ``0..p-1``).
    out : (points, normals, weights), optional
        Arrays to write into (any float dtypes), e.g. rows of a larger model.

    Returns
    -------
    points : ndarray of shape (p, 3)
    normals : ndarray of shape (p, 3)
        Unit normal of each sample's triangle (right-hand winding).
    weights : ndarray of shape (p,)
        Surface area each sample stands for (its triangle's area over its count),
        mm^2, so sums over samples are area integrals.
    """
    v0, e1, e2, normal, area, k = _subdivision(
        np.asarray(vertices, np.float64), np.asarray(faces, np.int64), spacing_mm
    )
    count = int((k * k).sum())
    if out is None:
        out = (np.empty((count, 3)), np.empty((count, 3)), np.empty(count))
    slots = np.arange(count) if slots is None else slots
    order = np.argsort(k, kind="stable")
    _fill_samples(v0, e1, e2, normal, area, k, order, slots, *out)
    return out


def _cell_layout(vertices: dict):
    """Origin and size (cells) of a grid of ``CELL_MM`` cells around all vertices."""
    lo = np.min([np.floor(v.min(axis=0) / CELL_MM) for v in vertices.values()], axis=0)
    hi = np.max([np.floor(v.max(axis=0) / CELL_MM) for v in vertices.values()], axis=0)
    return lo.astype(np.int64), (hi - lo + 1).astype(np.int64)


def _cell_codes(points, origin, size) -> np.ndarray:
    """One int64 per point that sorts like its cell ``floor(point / CELL_MM)``."""
    key = np.floor(points / CELL_MM).astype(np.int64) - origin
    return (key[:, 0] * size[1] + key[:, 1]) * size[2] + key[:, 2]


def _bucket(codes, origin, size):
    """Order of the samples by cell, the cells' keys and their first samples."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    change = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]
    start = np.r_[np.flatnonzero(change), codes.shape[0]].astype(np.int64)
    cell = sorted_codes[change]
    keys = np.stack(
        [cell // (size[1] * size[2]), cell // size[2] % size[1], cell % size[2]], 1
    )
    return order, keys + origin, start


def prepare_specimen(bones: dict, *, params=None) -> SpecimenModel:
    """Build the per-specimen model from bone meshes.

    The samples are made twice, bone by bone: once for their cells (to sort
    them), once straight into their sorted rows, so that the model's arrays are
    the only full-size ones held (peak memory).

    Parameters
    ----------
    bones : dict of str to (vertices, faces)
        Bone name to mesh: vertices ``(n, 3)`` CT mm, faces ``(m, 3)`` indices.
    params : EngineParams, optional
        Uses ``sample_spacing_mm``.

    Returns
    -------
    model : SpecimenModel

    Raises
    ------
    ValueError
        If no bone is given or a mesh is empty or malformed (naming the bone).
    """
    from .params import EngineParams

    params = params or EngineParams()
    if not bones:
        raise ValueError("bones must hold at least one mesh, got none")
    names = tuple(sorted(bones))
    meshes = {name: _check_mesh(name, *bones[name]) for name in names}
    spacing = params.sample_spacing_mm
    row, counts, keys, start = _sorted_rows(meshes, spacing)
    points, normals, weights, bone_index = _fill_rows(meshes, spacing, row, counts)
    total = row.size
    area = sum(_area(v, f) for v, f in meshes.values())
    log.info("specimen model: %d bones, %d surface samples", len(names), total)
    return SpecimenModel(
        names,
        {n: v for n, (v, _) in meshes.items()},
        {n: f for n, (_, f) in meshes.items()},
        points,
        normals,
        weights,
        bone_index,
        keys,
        start,
        float(spacing),
        float(total / area) if area > 0 else 0.0,
    )


def _sorted_rows(meshes: dict, spacing: float) -> tuple:
    """First pass: each sample's row in cell order, and the cells.

    Returns the rows (in the bones' sampling order), the samples per bone, and the
    cells' keys and first rows (`_bucket`). Only the cell codes are held, not the
    samples.
    """
    origin, size = _cell_layout({n: v for n, (v, _) in meshes.items()})
    codes = [
        _cell_codes(sample_surface(v, f, spacing_mm=spacing)[0], origin, size)
        for v, f in meshes.values()
    ]
    counts = [c.size for c in codes]
    order, keys, start = _bucket(np.concatenate(codes), origin, size)
    del codes
    row = np.empty_like(order)
    row[order] = np.arange(order.size)
    return row, counts, keys, start


def _fill_rows(meshes: dict, spacing: float, row, counts) -> tuple:
    """Second pass: sample each bone again, straight into its sorted rows.

    Returns the points, normals, weights and bone index of all samples.
    """
    total = row.size
    points, normals = np.empty((total, 3)), np.empty((total, 3), np.float32)
    weights, bone_index = np.empty(total, np.float32), np.empty(total, np.int16)
    first = 0
    for i, (v, f) in enumerate(meshes.values()):
        slots = row[first : first + counts[i]]
        sample_surface(
            v, f, spacing_mm=spacing, slots=slots, out=(points, normals, weights)
        )
        bone_index[slots] = i
        first += counts[i]
    return points, normals, weights, bone_index


def _area(vertices, faces) -> float:
    tri = vertices[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return float(0.5 * np.linalg.norm(cross, axis=1).sum())
