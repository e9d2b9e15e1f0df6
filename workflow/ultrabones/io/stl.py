"""Binary (and ASCII) STL surface meshes, in mm."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputDataError

__all__ = ["read_stl", "write_stl"]

_TRI_DTYPE = np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])


def read_stl(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an STL file into shared vertices and triangle indices.

    Returns
    -------
    vertices : ndarray of shape (n_vertices, 3), float64, mm
    faces : ndarray of shape (n_faces, 3), int64

    Raises
    ------
    InputDataError
        If the file is missing, truncated, empty, holds non-finite coordinates or
        has no triangle of non-zero area.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputDataError(f"{path}: cannot read STL ({err.strerror})") from err
    if data[:5].lower() == b"solid" and b"facet" in data[:2048]:
        tri = _ascii_triangles(path, data)
    else:
        tri = _binary_triangles(path, data)
    if tri.shape[0] == 0:
        raise InputDataError(f"{path}: STL holds no triangles")
    if not np.all(np.isfinite(tri)):
        raise InputDataError(f"{path}: STL holds NaN or infinite coordinates")
    area = 0.5 * np.linalg.norm(
        np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1
    )
    if not (area > 0).any():
        # A mesh without area has no surface to label against (every pixel would be
        # "no bone in view" while the file looks fine).
        raise InputDataError(
            f"{path}: STL has no surface: all {tri.shape[0]} triangles have zero area"
        )
    vertices, inverse = np.unique(tri.reshape(-1, 3), axis=0, return_inverse=True)
    return vertices, inverse.reshape(-1, 3).astype(np.int64)


def _binary_triangles(path: Path, data: bytes) -> np.ndarray:
    if len(data) < 84:
        raise InputDataError(f"{path}: STL shorter than its 84-byte header")
    count = int(np.frombuffer(data, "<u4", count=1, offset=80)[0])
    if len(data) < 84 + count * _TRI_DTYPE.itemsize:
        raise InputDataError(
            f"{path}: binary STL announces {count} triangles but is truncated "
            f"({len(data)} bytes)"
        )
    rec = np.frombuffer(data, _TRI_DTYPE, count=count, offset=84)
    return rec["v"].astype(np.float64)


def _ascii_triangles(path: Path, data: bytes) -> np.ndarray:
    coords = [
        line.split()[1:4]
        for line in data.decode("ascii", errors="replace").splitlines()
        if line.strip().startswith("vertex")
    ]
    try:
        arr = np.asarray(coords, dtype=np.float64)
    except ValueError as err:
        raise InputDataError(f"{path}: malformed ASCII STL vertex ({err})") from err
    if arr.size % 9:
        raise InputDataError(f"{path}: ASCII STL vertex count is not a multiple of 3")
    return arr.reshape(-1, 3, 3)


def write_stl(path: str | Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write a binary STL with per-facet normals (float32, mm)."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    tri = v[f]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(normal, axis=1, keepdims=True)
    normal = np.divide(normal, norm, out=np.zeros_like(normal), where=norm > 0)
    rec = np.zeros(f.shape[0], dtype=_TRI_DTYPE)
    rec["normal"] = normal
    rec["v"] = tri
    header = b"ultrabones binary STL, mm".ljust(80, b" ")
    with open(path, "wb") as fh:
        fh.write(header)
        fh.write(np.uint32(f.shape[0]).tobytes())
        fh.write(rec.tobytes())
