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

import numpy as np

__all__ = ["SpecimenModel", "prepare_specimen", "sample_surface"]

log = logging.getLogger(__name__)

#: Edge of the grid cells that bucket the surface samples (mm).
CELL_MM = 4.0


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

    def __getstate__(self):
        """Drop the open3d scene when pickled (Dask workers rebuild it)."""
        state = dict(self.__dict__)
        state["_scene"] = None
        return state

    def __post_init__(self):
        """Cache the centre of the samples' box: the float32 scene is built there."""
        self.origin = 0.5 * (self.points.min(axis=0) + self.points.max(axis=0))

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

        return read_specimen_model(path)


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


def _barycentric_grid(n: int) -> np.ndarray:
    """Centroids of the ``n^2`` similar sub-triangles (a midpoint rule).

    Centroids, not corners: corners on shared edges would be counted by both
    triangles and make the sample density (and the objective) lumpy along the
    mesh's edges, which the refinement then follows.
    """
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    up = i + j <= n - 1
    down = i + j <= n - 2
    return np.concatenate(
        [
            np.stack([i[up], j[up]], axis=1) + 1 / 3,
            np.stack([i[down], j[down]], axis=1) + 2 / 3,
        ]
    ) / float(n)


def sample_surface(vertices, faces, *, spacing_mm: float):
    """Sample a triangle mesh so that every surface point is near a sample.

    Parameters
    ----------
    vertices : ndarray of shape (n, 3)
    faces : ndarray of shape (m, 3)
    spacing_mm : float
        Each triangle is split into ``k^2`` similar triangles with edges no longer
        than this; their centroids are the samples (covering radius <= 2/3
        spacing), each standing for an equal share of the triangle's area.

    Returns
    -------
    points : ndarray of shape (p, 3)
    normals : ndarray of shape (p, 3)
        Unit normal of each sample's triangle (right-hand winding).
    weights : ndarray of shape (p,)
        Surface area each sample stands for (its triangle's area over its count),
        mm^2, so sums over samples are area integrals.
    """
    tri = vertices[faces]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    cross = np.cross(e1, e2)
    norm = np.linalg.norm(cross, axis=1, keepdims=True)
    normal = np.divide(cross, norm, out=np.zeros_like(cross), where=norm > 0)
    longest = np.linalg.norm(
        np.stack([e1, e2, tri[:, 2] - tri[:, 1]], axis=1), axis=2
    ).max(axis=1)
    k = np.maximum(1, np.ceil(longest / spacing_mm)).astype(np.int64)
    points, normals, weights = [], [], []
    area = 0.5 * norm[:, 0]
    for n in np.unique(k):
        sel = np.flatnonzero(k == n)
        ab = _barycentric_grid(int(n))
        p = (
            tri[sel, None, 0]
            + ab[None, :, :1] * e1[sel, None]
            + ab[None, :, 1:] * (e2[sel, None])
        )
        points.append(p.reshape(-1, 3))
        normals.append(np.repeat(normal[sel], ab.shape[0], axis=0))
        weights.append(np.repeat(area[sel] / ab.shape[0], ab.shape[0]))
    return np.concatenate(points), np.concatenate(normals), np.concatenate(weights)


def _bucket(points: np.ndarray):
    keys = np.floor(points / CELL_MM).astype(np.int64)
    order = np.lexsort((keys[:, 2], keys[:, 1], keys[:, 0]))
    sorted_keys = keys[order]
    change = np.r_[True, np.any(np.diff(sorted_keys, axis=0) != 0, axis=1)]
    start = np.r_[np.flatnonzero(change), keys.shape[0]].astype(np.int64)
    return order, sorted_keys[change], start


def prepare_specimen(bones: dict, *, params=None) -> SpecimenModel:
    """Build the per-specimen model from bone meshes.

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
    verts, faces, pts, nrm, wts, idx = {}, {}, [], [], [], []
    for i, name in enumerate(names):
        verts[name], faces[name] = _check_mesh(name, *bones[name])
        p, n, w = sample_surface(
            verts[name], faces[name], spacing_mm=params.sample_spacing_mm
        )
        pts.append(p)
        wts.append(w)
        nrm.append(n)
        idx.append(np.full(p.shape[0], i, dtype=np.int16))
    points = np.concatenate(pts)
    area = sum(_area(verts[n], faces[n]) for n in names)
    order, keys, start = _bucket(points)
    log.info("specimen model: %d bones, %d surface samples", len(names), len(order))
    return SpecimenModel(
        names,
        verts,
        faces,
        points[order],
        np.concatenate(nrm)[order].astype(np.float32),
        np.concatenate(wts)[order].astype(np.float32),
        np.concatenate(idx)[order],
        keys,
        start,
        float(params.sample_spacing_mm),
        float(points.shape[0] / area) if area > 0 else 0.0,
    )


def _area(vertices, faces) -> float:
    tri = vertices[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return float(0.5 * np.linalg.norm(cross, axis=1).sum())
