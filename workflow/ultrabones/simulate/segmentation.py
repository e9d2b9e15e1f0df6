"""CT segmentation error: the bone model the pipeline gets is not the imaged surface.

A bone model segmented from CT misses the true cortex by a few tenths of a mm:
threshold choice and partial volume in 0.84 x 0.84 x 0.6 mm voxels move the
iso-surface along its normal, by more where the surface cuts the coarse in-plane
voxel edge than where it cuts the thinner slices, and the segmentation software
remeshes and decimates the result. :func:`segment_bone` does the same to a true
surface mesh.
"""

from __future__ import annotations

import numpy as np

__all__ = ["VOXEL_MM", "displacement_field", "segment_bone"]

#: CT voxel size (x, y, z), mm: the dataset's lower-leg CT (paper, issue 16).
VOXEL_MM = np.array([0.84, 0.84, 0.6])
#: RMS normal displacement of a segmented bone surface, mm: drawn per bone in this
#: range (issue 16; threshold and partial-volume error of about half a voxel).
RMS_RANGE_MM = (0.2, 0.5)
#: Wavelengths of the displacement's spatial modes, mm: cortical thickness and
#: density change over cm along a bone, so the threshold error does too.
_WAVELENGTH_MM = (8.0, 40.0)
_N_MODES = 24
#: Fraction of triangles kept by the decimation: 33,600-43,200 triangles a bone, near
#: the sample's Fibula.stl (44,194; measurement).
KEEP_FRACTION = 0.75


def displacement_field(points, normals, *, rng: np.random.Generator) -> np.ndarray:
    """Draw a smooth normal displacement per vertex, of unit RMS over the vertices.

    Parameters
    ----------
    points : ndarray of shape (n, 3)
        Surface vertices, CT frame (z along the scanner axis), mm.
    normals : ndarray of shape (n, 3)
        Unit vertex normals.
    rng : numpy.random.Generator

    Returns
    -------
    field : ndarray of shape (n,)
        Signed, unitless; a constant part (the threshold's bias) plus random plane
        waves, scaled by the voxel's width along the normal (partial volume).
    """
    length = rng.uniform(*_WAVELENGTH_MM, _N_MODES)
    k = rng.normal(size=(_N_MODES, 3))
    k *= (2 * np.pi / length / np.linalg.norm(k, axis=1))[:, None]
    phase = rng.uniform(0, 2 * np.pi, _N_MODES)
    waves = np.cos(points @ k.T + phase).sum(axis=1) * np.sqrt(2.0 / _N_MODES)
    raw = rng.normal(0.0, 0.5) + waves
    width = np.sqrt((normals**2) @ VOXEL_MM**2) / VOXEL_MM[0]
    field = raw * width
    return field / np.sqrt(np.mean(field**2))


def segment_bone(vertices, faces, *, rng: np.random.Generator):
    """Return the CT segmentation of a true bone surface: displaced and decimated.

    Parameters
    ----------
    vertices : ndarray of shape (n, 3)
        True surface, CT frame, mm.
    faces : ndarray of shape (m, 3)
    rng : numpy.random.Generator
        Draws the RMS size in ``RMS_RANGE_MM`` and the field's modes.

    Returns
    -------
    vertices : ndarray of shape (n', 3)
    faces : ndarray of shape (m', 3)
        About ``KEEP_FRACTION`` of the triangles (open3d quadric decimation).
    """
    import open3d as o3d

    mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(np.asarray(vertices, dtype=np.float64)),
        o3d.utility.Vector3iVector(np.asarray(faces, dtype=np.int32)),
    )
    mesh.compute_vertex_normals()
    normals = np.asarray(mesh.vertex_normals)
    rms = rng.uniform(*RMS_RANGE_MM)
    field = displacement_field(np.asarray(mesh.vertices), normals, rng=rng)
    moved = np.asarray(mesh.vertices) + (rms * field)[:, None] * normals
    mesh.vertices = o3d.utility.Vector3dVector(moved)
    out = mesh.simplify_quadric_decimation(int(KEEP_FRACTION * len(faces)))
    return np.asarray(out.vertices), np.asarray(out.triangles, dtype=np.int64)
