"""3D audit of a labelled sweep: image evidence and labels against the CT surface.

Labels lie within gamma of the CT surface by construction, so back-projecting them
checks little. The audit back-projects *image evidence* instead: along every scan line
(image column) that carries a label, the bone echo is the intensity ridge, the row of
the maximum of the smoothed image within ``window_mm`` of the label. The same ridge
pixels are mapped to CT with the initial and with the refined poses
(``ct_from_probe @ probe_from_image``) and their distances to the bone surfaces are
summarised by the one-sided Chamfer distance (mean) and the 95 % Hausdorff distance
(95th percentile). A sweep with a systematic pose error has a large initial (or
refined) distance. The refined labels back-projected give the supplement's
reconstruction check; with simulator truth, the truth poses give the reference.

Functions here are pure (arrays in, numbers out); files are read by ``ultrabones.io``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from scipy.ndimage import gaussian_filter

from .transforms import apply_rigid, invert_rigid, points_image_from_rc

__all__ = [
    "DEFAULT_SIGMA_MM",
    "DEFAULT_WINDOW_MM",
    "audit_sweep",
    "distance_summary",
    "near_surface_mask",
    "plane_offset_mm",
    "points_ct_from_rc",
    "ridge_points_rc",
    "surface_distance_fn",
]

log = logging.getLogger(__name__)

#: Half-height (mm) of the band around the label searched for the echo ridge.
DEFAULT_WINDOW_MM = 3.0
_SUMMARY_KEYS = ("n", "cd_mm", "hd95_mm", "median_mm", "mean_signed_mm")
#: Gaussian smoothing (mm) of the image before the ridge search (speckle scale).
DEFAULT_SIGMA_MM = 0.2


def ridge_points_rc(
    image,
    near,
    *,
    spacing_mm,
    window_mm: float = DEFAULT_WINDOW_MM,
    sigma_mm: float = DEFAULT_SIGMA_MM,
) -> np.ndarray:
    """Find the bone-echo ridge along each scan line that crosses a label.

    Parameters
    ----------
    image : ndarray of shape (rows, cols)
        Frame intensities; scan lines are columns, depth grows with the row.
    near : ndarray of bool, shape (rows, cols)
        Label whose columns are searched; rows within ``window_mm`` of its first and
        last row in a column form the search band.
    spacing_mm : array_like of shape (2,)
        ``(s_x, s_y)`` in mm.
    window_mm, sigma_mm : float
        Band half-height and smoothing scale, mm.

    Returns
    -------
    rc : ndarray of shape (n, 2), int64
        ``(row, col)`` of the ridge, one per labelled column, columns ascending.
    """
    near = np.asarray(near) != 0
    sx, sy = (float(s) for s in spacing_mm)
    cols = np.flatnonzero(near.any(axis=0))
    if cols.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    smooth = gaussian_filter(
        np.asarray(image, dtype=np.float64), sigma=(sigma_mm / sy, sigma_mm / sx)
    )[:, cols]
    band = near[:, cols]
    rows = np.arange(near.shape[0])[:, None]
    first = band.argmax(axis=0) - window_mm / sy
    last = band.shape[0] - 1 - band[::-1].argmax(axis=0) + window_mm / sy
    inside = (rows >= first) & (rows <= last)
    ridge = np.where(inside, smooth, -np.inf).argmax(axis=0)
    return np.c_[ridge, cols].astype(np.int64)


def points_ct_from_rc(rc, *, ct_from_probe, probe_from_image, spacing_mm):
    """Map pixel centres to CT coordinates.

    Parameters
    ----------
    rc : array_like of shape (n, 2)
        Pixel ``(row, col)``.
    ct_from_probe, probe_from_image : ndarray of shape (4, 4)
        Frame pose T_CT<-US and calibration T_US<-I.
    spacing_mm : array_like of shape (2,)
        ``(s_x, s_y)``.

    Returns
    -------
    points_ct : ndarray of shape (n, 3), mm
    """
    points_image = points_image_from_rc(rc, spacing_mm)
    return apply_rigid(ct_from_probe @ probe_from_image, points_image)


def plane_offset_mm(ct_from_image, reference_ct_from_image, *, size_mm) -> float:
    """Mean displacement of the image rectangle's corners between two image poses.

    Parameters
    ----------
    ct_from_image, reference_ct_from_image : ndarray of shape (4, 4)
        ``ct_from_probe @ probe_from_image`` of a pose and of the reference (truth).
    size_mm : array_like of shape (2,)
        Image width and height in mm.

    Returns
    -------
    offset : float
        Mean over the four corners of the distance between their CT positions, mm.
    """
    w, h = (float(s) for s in size_mm)
    corners = np.array([[0, 0, 0], [w, 0, 0], [0, h, 0], [w, h, 0]], dtype=np.float64)
    moved = apply_rigid(invert_rigid(reference_ct_from_image) @ ct_from_image, corners)
    return float(np.linalg.norm(moved - corners, axis=1).mean())


def surface_distance_fn(
    meshes: dict, *, signed: bool = False
) -> Callable[[np.ndarray], np.ndarray]:
    """Return a function giving each point's distance to the nearest bone surface.

    Parameters
    ----------
    meshes : dict of str to (vertices, faces)
        Bone surfaces in CT coordinates (mm): ``(n, 3)`` floats and ``(m, 3)`` ints.
    signed : bool
        Signed distances, negative inside the bone; needs closed (watertight) meshes.

    Returns
    -------
    distance : callable
        ``distance(points_ct (n, 3)) -> ndarray (n,)`` in mm (open3d
        ``RaycastingScene.compute_distance`` / ``compute_signed_distance`` over all
        meshes).
    """
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    for vertices, faces in meshes.values():
        scene.add_triangles(
            o3d.core.Tensor(np.asarray(vertices, dtype=np.float32)),
            o3d.core.Tensor(np.asarray(faces, dtype=np.uint32)),
        )
    query = scene.compute_signed_distance if signed else scene.compute_distance

    def distance(points_ct) -> np.ndarray:
        pts = np.asarray(points_ct, dtype=np.float32).reshape(-1, 3)
        if pts.shape[0] == 0:
            return np.zeros(0)
        return query(o3d.core.Tensor(pts)).numpy().astype(np.float64)

    return distance


def distance_summary(distances) -> dict:
    """Summarise one-sided point-to-surface distances.

    Parameters
    ----------
    distances : array_like of shape (n,)
        Distances in mm, unsigned or signed (negative inside the bone).

    Returns
    -------
    summary : dict
        ``n``, ``cd_mm`` (mean of ``|d|``: one-sided Chamfer distance), ``hd95_mm``
        (95th percentile of ``|d|``: 95 % Hausdorff distance), ``median_mm`` and
        ``mean_signed_mm`` (mean of ``d``: the systematic offset when signed); None
        values when n = 0.

    Examples
    --------
    >>> distance_summary([0.0, 1.0, 2.0])["cd_mm"]
    1.0
    """
    signed = np.asarray(distances, dtype=np.float64).ravel()
    d = np.abs(signed)
    if d.size == 0:
        return dict.fromkeys(_SUMMARY_KEYS) | {"n": 0}
    return {
        "n": int(d.size),
        "cd_mm": float(d.mean()),
        "hd95_mm": float(np.percentile(d, 95)),
        "median_mm": float(np.median(d)),
        "mean_signed_mm": float(signed.mean()),
    }


def _frame_rows(frame, rc, distances: dict, offsets: dict) -> dict:
    row = {"timestamp": int(frame["timestamp"]), "echo_points": int(rc.shape[0])}
    for stage, d in distances.items():
        row[f"echo_cd_{stage}_mm"] = float(np.abs(d).mean()) if d.size else None
    for stage, value in offsets.items():
        row[f"plane_offset_{stage}_mm"] = value
    return row


def audit_sweep(
    frames,
    *,
    distance: Callable[[np.ndarray], np.ndarray],
    probe_from_image: dict,
    spacing_mm,
    window_mm: float = DEFAULT_WINDOW_MM,
    sigma_mm: float = DEFAULT_SIGMA_MM,
) -> dict:
    """Audit the frames of one sweep against the CT surface.

    Parameters
    ----------
    frames : iterable of dict
        Kept frames: ``timestamp``, ``image`` (rows, cols), ``label`` (bool mask) and
        ``ct_from_probe``: dict stage -> ndarray (4, 4) for ``initial``, ``refined``
        and optionally ``truth``.
    distance : callable
        Point-to-surface distance (see :func:`surface_distance_fn`).
    probe_from_image : dict of str to ndarray (4, 4)
        Calibration per stage (the truth stage uses the true calibration).
    spacing_mm : array_like of shape (2,)
    window_mm, sigma_mm : float
        Ridge search parameters (see :func:`ridge_points_rc`).

    Returns
    -------
    result : dict
        ``frames``; ``echo`` (stage -> :func:`distance_summary` of the ridge points);
        ``labels`` (refined / truth: summaries of the back-projected label pixels);
        ``plane_offset_mm`` (initial / refined: mean image-corner offset from the
        truth pose, when given); ``per_frame`` rows.
    """
    pooled = {"echo": {}, "labels": {}, "offsets": {}}
    rows = []
    for frame in frames:
        parts, row = _audit_frame(
            frame,
            distance=distance,
            probe_from_image=probe_from_image,
            spacing_mm=spacing_mm,
            window_mm=window_mm,
            sigma_mm=sigma_mm,
        )
        for kind, values in parts.items():
            for stage, value in values.items():
                pooled[kind].setdefault(stage, []).append(value)
        rows.append(row)
    return {
        "frames": len(rows),
        **{
            kind: {s: distance_summary(np.concatenate(v)) for s, v in sorted(d.items())}
            for kind, d in pooled.items()
            if kind != "offsets"
        },
        "plane_offset_mm": {
            s: float(np.mean(v)) for s, v in sorted(pooled["offsets"].items())
        },
        "per_frame": rows,
    }


def _audit_frame(frame, *, distance, probe_from_image, spacing_mm, **ridge):
    """Distances of one frame's echo and label points per stage, and its row."""
    rc = ridge_points_rc(frame["image"], frame["label"], spacing_mm=spacing_mm, **ridge)
    label_rc = np.argwhere(np.asarray(frame["label"]) != 0)
    ct_from_image = {
        s: pose @ probe_from_image[s] for s, pose in frame["ct_from_probe"].items()
    }
    echo = {
        s: distance(apply_rigid(pose, points_image_from_rc(rc, spacing_mm)))
        for s, pose in ct_from_image.items()
    }
    labels = {
        s: distance(apply_rigid(pose, points_image_from_rc(label_rc, spacing_mm)))
        for s, pose in ct_from_image.items()
        if s != "initial"
    }
    offsets = _plane_offsets(ct_from_image, frame["image"].shape, spacing_mm)
    parts = {"echo": echo, "labels": labels, "offsets": offsets}
    return parts, _frame_rows(frame, rc, echo, offsets)


def _plane_offsets(ct_from_image: dict, shape, spacing_mm) -> dict:
    if "truth" not in ct_from_image:
        return {}
    size = (shape[1] * float(spacing_mm[0]), shape[0] * float(spacing_mm[1]))
    return {
        s: plane_offset_mm(pose, ct_from_image["truth"], size_mm=size)
        for s, pose in ct_from_image.items()
        if s != "truth"
    }


def near_surface_mask(
    shape, *, ct_from_image, spacing_mm, distance, tol_mm: float, stride: int = 4
) -> np.ndarray:
    """Mark pixels whose CT point lies within ``tol_mm`` of the bone, on a coarse grid.

    Used to audit a record that has no labels yet (its initial poses only): the mask
    only locates the scan lines and depths to search for the echo, so a grid of every
    ``stride``-th pixel, each standing for its ``stride x stride`` block, suffices.

    Parameters
    ----------
    shape : tuple of int
        Image ``(rows, cols)``.
    ct_from_image : ndarray of shape (4, 4)
        ``ct_from_probe @ probe_from_image``.
    spacing_mm : array_like of shape (2,)
    distance : callable
        Point-to-surface distance (see :func:`surface_distance_fn`).
    tol_mm : float
        Distance bound, mm.
    stride : int
        Grid step in pixels.

    Returns
    -------
    near : ndarray of bool, shape (rows, cols)
    """
    rows, cols = shape
    grid = np.stack(
        np.meshgrid(
            np.arange(0, rows, stride), np.arange(0, cols, stride), indexing="ij"
        ),
        axis=-1,
    )
    points = apply_rigid(
        ct_from_image, points_image_from_rc(grid.reshape(-1, 2), spacing_mm)
    )
    coarse = (distance(points) < tol_mm).reshape(grid.shape[:2])
    return np.repeat(np.repeat(coarse, stride, axis=0), stride, axis=1)[:rows, :cols]
