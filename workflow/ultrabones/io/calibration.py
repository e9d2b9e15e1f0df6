"""``calibration.yaml``: image-to-probe calibration, pixel spacing, probe fiducials.

The file has exactly the keys of the public UltraBones100k record, plus the optional
results of our own calibration (``dt_ms``, ``localization_error_mm``, ``residual_mm``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ..errors import InputDataError
from ..transforms import check_rigid, matrix_from_params, params_from_matrix

__all__ = [
    "Calibration",
    "image_geometry",
    "read_calibration",
    "read_mapping",
    "write_calibration",
]

_REQUIRED = (
    "image_to_probe_marker",
    "pixel_spacing_mm",
    "image_size_px",
    "probe_marker_fiducials_mm",
)
_OPTIONAL = ("dt_ms", "localization_error_mm", "residual_mm")


@dataclass(frozen=True)
class Calibration:
    """Probe calibration of one record.

    Attributes
    ----------
    probe_from_image : ndarray of shape (4, 4)
        T_US<-I: image plane (mm) to probe marker frame (mm).
    pixel_spacing_mm : tuple of float
        ``(s_x, s_y)``: mm per column and per row.
    image_size_px : tuple of int
        ``(width, height)`` = (columns, rows).
    probe_marker_fiducials_mm : ndarray of shape (n, 3)
        Probe marker fiducials F_i in the probe marker frame.
    extra : dict
        Optional calibration results (``dt_ms``, ``localization_error_mm``, ...).
    """

    probe_from_image: np.ndarray
    pixel_spacing_mm: tuple[float, float]
    image_size_px: tuple[int, int]
    probe_marker_fiducials_mm: np.ndarray
    extra: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """Image array shape ``(rows, cols)``."""
        return (self.image_size_px[1], self.image_size_px[0])

    @property
    def dt_ms(self) -> float:
        """Tracker-to-image lag in ms (0 when the file does not state one)."""
        return float(self.extra.get("dt_ms", 0.0))


def read_calibration(path: str | Path) -> Calibration:
    """Read and check ``calibration.yaml``.

    Raises
    ------
    InputDataError
        Naming the file and the missing or malformed key.
    """
    path = Path(path)
    doc = read_mapping(path, kind="calibration", required=_REQUIRED)
    try:
        t = doc["image_to_probe_marker"]
        params = np.r_[
            np.asarray(t["translation_mm"], float),
            np.asarray(t["euler_xyz_deg"], float),
        ]
        probe_from_image = check_rigid(
            matrix_from_params(params), name="image_to_probe_marker"
        )
        fid = np.asarray(doc["probe_marker_fiducials_mm"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as err:
        raise InputDataError(f"{path}: malformed calibration value ({err})") from err
    spacing, size = image_geometry(path, doc, kind="calibration")
    _check_fiducials(path, fid)
    extra = {k: float(doc[k]) for k in _OPTIONAL if k in doc}
    return Calibration(probe_from_image, spacing, size, fid, extra)


def read_mapping(path: str | Path, *, kind: str, required=()) -> dict:
    """Read a YAML file that must be a mapping with the keys ``required``.

    Raises
    ------
    InputDataError
        Naming the file and its ``kind`` (``"calibration"``, ``"device"``, ...) if
        it cannot be read, is not a mapping or lacks a required key.
    """
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise InputDataError(f"{path}: cannot read {kind} ({err})") from err
    if not isinstance(doc, dict):
        raise InputDataError(f"{path}: {kind} must be a YAML mapping")
    missing = [k for k in required if k not in doc]
    if missing:
        raise InputDataError(f"{path}: {kind} is missing key(s) {', '.join(missing)}")
    return doc


def image_geometry(path, doc: dict, *, kind: str) -> tuple[tuple, tuple]:
    """Return a file's ``pixel_spacing_mm`` and ``image_size_px``, checked.

    Parameters
    ----------
    path : str or Path
        The file, for the errors.
    doc : dict
        Its YAML mapping, with both keys.
    kind : str
        What the file is (``"calibration"``, ``"device"``), for the errors.

    Returns
    -------
    spacing : (float, float)
        ``(s_x, s_y)`` in mm.
    size : (int, int)
        ``(width, height)`` in pixels.

    Raises
    ------
    InputDataError
        If either is malformed or not two finite positive values.
    """
    try:
        spacing = tuple(float(s) for s in doc["pixel_spacing_mm"])
        size = tuple(int(s) for s in doc["image_size_px"])
    except (KeyError, TypeError, ValueError) as err:
        raise InputDataError(f"{path}: malformed {kind} value ({err})") from err
    if (
        len(spacing) != 2
        or not all(np.isfinite(spacing))
        or min(spacing) <= 0
        or len(size) != 2
        or min(size) <= 0
    ):
        raise InputDataError(
            f"{path}: pixel_spacing_mm and image_size_px need two finite positive "
            f"values each, got {spacing} and {size}"
        )
    return spacing, size


#: The fiducial correction is a mean over the marker's spheres: it needs a rigid
#: body, i.e. at least three spheres not on one line (an optical marker has 3-4).
MIN_FIDUCIALS = 3


def _check_fiducials(path, fid: np.ndarray) -> None:
    if fid.ndim != 2 or fid.shape[1] != 3 or not np.isfinite(fid).all():
        raise InputDataError(
            f"{path}: probe_marker_fiducials_mm must be a list of finite [x, y, z], "
            f"got shape {fid.shape}"
        )
    # The second singular value of the centred fiducials is their spread off the
    # best line (mm): below 1 mm they cannot fix a rotation about that line.
    if (
        fid.shape[0] < MIN_FIDUCIALS
        or np.linalg.svd(fid - fid.mean(axis=0), compute_uv=False)[1] < 1.0
    ):
        raise InputDataError(
            f"{path}: probe_marker_fiducials_mm needs at least {MIN_FIDUCIALS} "
            f"fiducials not on one line (a rigid marker), got {fid.shape[0]}"
        )


def write_calibration(
    path: str | Path, calibration: Calibration, *, comment: str = ""
) -> None:
    """Write ``calibration.yaml`` in the public record's keys, plus optional results."""
    params = params_from_matrix(calibration.probe_from_image)
    doc = {
        "image_to_probe_marker": {
            "translation_mm": [round(float(v), 8) for v in params[:3]],
            "euler_xyz_deg": [round(float(v), 8) for v in params[3:]],
        },
        "pixel_spacing_mm": [float(s) for s in calibration.pixel_spacing_mm],
        "image_size_px": [int(s) for s in calibration.image_size_px],
        "probe_marker_fiducials_mm": [
            [round(float(v), 6) for v in row]
            for row in calibration.probe_marker_fiducials_mm
        ],
    }
    doc.update({k: round(float(v), 6) for k, v in calibration.extra.items()})
    head = "".join(f"# {line}\n" for line in comment.splitlines())
    Path(path).write_text(head + yaml.safe_dump(doc, sort_keys=False))
