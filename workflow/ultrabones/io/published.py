"""The layout the UltraBones100k authors publish, read as records-mode input.

::

    specimenNN/
        CT_bone_segmentations/{fibula,tibia,foot}.stl     bone surfaces, CT frame, mm
        ultrasound_records/<anatomy>/<record>/
            UltrasoundImages/<timestamp>.png               8-bit frames
            Labels/<timestamp>_label.png                   the authors' labels (0/255)
            tracking.csv                                   a row per frame, see below
            calibration.yaml                               optional (our exporter's)

``tracking.csv`` has ``timestamp`` (integer ms, the image names), the initial pose
``x,y,z,euler_x,euler_y,euler_z`` and the authors' refined pose: the same six with the
suffix ``_optimized``. The convention of both poses is the constants below; an
exporter of this layout imports them, so reader and writer cannot drift apart.

The pose is the probe marker's ``ct_from_probe`` (T_CT<-US), as in the authors'
``sweep_initial.csv``, so records mode also needs the recording's probe calibration:
the record's own ``calibration.yaml`` (our exporter writes one) or one given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputDataError
from ..poses import poses_table
from ..transforms import POSE_COLUMNS, matrix_from_params
from ..vocabulary import Reason
from .calibration import read_calibration
from .png import read_png
from .record import write_record_folder

__all__ = [
    "OPTIMIZED_SUFFIX",
    "PUBLISHED_ANGLE_UNIT",
    "PUBLISHED_EULER",
    "PUBLISHED_LABEL_VALUE",
    "PUBLISHED_LENGTH_UNIT",
    "PUBLISHED_POSE",
    "TRACKING_COLUMNS",
    "PublishedRecord",
    "published_poses",
    "open_published_record",
    "read_tracking",
    "write_published_as_record",
]

#: Euler sequence of a ``tracking.csv`` pose, scipy's (lower case: extrinsic):
#: ``Rotation.from_euler(PUBLISHED_EULER, angles, degrees=True)``.
PUBLISHED_EULER = "xyz"
#: Units of ``euler_*`` and of ``x,y,z``.
PUBLISHED_ANGLE_UNIT = "deg"
PUBLISHED_LENGTH_UNIT = "mm"
#: What a row's pose is: the probe marker in CT, T_CT<-US (``transforms`` naming).
PUBLISHED_POSE = "ct_from_probe"
#: Value of bone pixels in ``Labels/<timestamp>_label.png`` (others are 0).
PUBLISHED_LABEL_VALUE = 255
OPTIMIZED_SUFFIX = "_optimized"
TRACKING_COLUMNS = (
    "timestamp",
    *POSE_COLUMNS,
    *(f"{c}{OPTIMIZED_SUFFIX}" for c in POSE_COLUMNS),
)
BONES_DIR = "CT_bone_segmentations"
RECORDS_DIR = "ultrasound_records"
IMAGES_DIR = "UltrasoundImages"
LABELS_DIR = "Labels"
TRACKING_FILE = "tracking.csv"
CALIBRATION_FILE = "calibration.yaml"


@dataclass(frozen=True)
class PublishedRecord:
    """One record of the published layout.

    Attributes
    ----------
    root : Path
        ``specimenNN/ultrasound_records/<anatomy>/<record>``.
    specimen : str
    anatomy : str
    tracking : DataFrame
        ``tracking.csv`` with int64 ``timestamp`` and float64 pose columns.
    bone_paths : dict of str to Path
        Every bone of the specimen (file stem to STL), sorted by name.
    """

    root: Path
    specimen: str
    anatomy: str
    tracking: pd.DataFrame
    bone_paths: dict

    def label_path(self, timestamp: int) -> Path:
        """Path of the authors' label of ``timestamp`` (it may not exist)."""
        return self.root / LABELS_DIR / f"{int(timestamp)}_label.png"

    def read_label(self, timestamp: int) -> np.ndarray:
        """Return the authors' label of ``timestamp`` as a ``(rows, cols)`` bool mask.

        Raises
        ------
        InputDataError
            If the file is unreadable or holds values other than 0 and 255.
        """
        path = self.label_path(timestamp)
        label = read_png(path)
        odd = np.setdiff1d(np.unique(label), [0, PUBLISHED_LABEL_VALUE])
        if odd.size:
            raise InputDataError(
                f"{path}: label values must be 0 or {PUBLISHED_LABEL_VALUE}, "
                f"got {odd[0]}"
            )
        return label == PUBLISHED_LABEL_VALUE


def open_published_record(root: str | Path) -> PublishedRecord:
    """Open ``specimenNN/ultrasound_records/<anatomy>/<record>``.

    Raises
    ------
    InputDataError
        If the folder is not inside that layout, the specimen has no bone models or
        ``tracking.csv`` is missing or malformed.
    """
    root = Path(root)
    if not root.is_dir() or root.parent.parent.name != RECORDS_DIR:
        raise InputDataError(
            f"{root}: not a record folder specimenNN/{RECORDS_DIR}/<anatomy>/<record>"
        )
    specimen = root.parents[2]
    bones = specimen / BONES_DIR
    bone_paths = {p.stem: p for p in sorted(bones.glob("*.stl"))}
    if not bone_paths:
        raise InputDataError(f"{bones}: no bone models (*.stl) found")
    tracking = read_tracking(root / TRACKING_FILE)
    return PublishedRecord(root, specimen.name, root.parent.name, tracking, bone_paths)


def read_tracking(path: str | Path) -> pd.DataFrame:
    """Read ``tracking.csv``; non-numeric pose values become NaN (invalid poses).

    Raises
    ------
    InputDataError
        If the file is unreadable, lacks a column, or a timestamp is not an
        integer, naming the file and line (1 = header).
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, index_col=False)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise InputDataError(f"{path}: cannot read tracking table ({err})") from err
    missing = [c for c in TRACKING_COLUMNS if c not in table.columns]
    if missing:
        raise InputDataError(f"{path}: lacks column(s) {', '.join(missing)}")
    stamps = pd.to_numeric(table["timestamp"], errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(stamps) | (stamps != np.round(stamps))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputDataError(
            f"{path} line {i + 2}: timestamp must be an integer (ms), "
            f"got {table['timestamp'].iloc[i]!r}"
        )
    out = table[list(TRACKING_COLUMNS[1:])].apply(pd.to_numeric, errors="coerce")
    out.insert(0, "timestamp", stamps.astype(np.int64))
    return out.astype({c: np.float64 for c in TRACKING_COLUMNS[1:]})


def published_poses(tracking: pd.DataFrame, *, optimized: bool = False) -> np.ndarray:
    """Return per-row ``ct_from_probe`` (:data:`PUBLISHED_POSE`) of a tracking table.

    Parameters
    ----------
    tracking : DataFrame
        From :func:`read_tracking`.
    optimized : bool
        Use the authors' refined pose (``*_optimized``) instead of the initial one.

    Returns
    -------
    ct_from_probe : ndarray of shape (n, 4, 4)
        NaN where a pose value is missing or not a number.
    """
    suffix = OPTIMIZED_SUFFIX if optimized else ""
    params = tracking[[f"{c}{suffix}" for c in POSE_COLUMNS]].to_numpy(np.float64)
    ct_from_probe = np.full((len(params), 4, 4), np.nan)
    finite = np.isfinite(params).all(axis=1)
    ct_from_probe[finite] = matrix_from_params(params[finite])
    return ct_from_probe


def write_published_as_record(
    record: PublishedRecord,
    out: str | Path,
    *,
    calibration: str | Path | None = None,
    optimized: bool = False,
) -> pd.DataFrame:
    """Write ``out`` as a public-layout record that records mode opens.

    ``sweep_initial.csv`` from ``tracking.csv`` (rows with a non-finite pose are
    ``invalid_pose``), ``calibration.yaml`` copied, and ``UltrasoundImages`` and
    ``CT_models`` (all the specimen's bones) linked.

    Parameters
    ----------
    calibration : str or Path, optional
        ``calibration.yaml`` of the recording; default: the record's own.
    optimized : bool
        Start from the authors' refined pose instead of the initial one.

    Returns
    -------
    table : DataFrame
        The poses table written; :class:`InputDataError` without a calibration.
    """
    calibration = Path(calibration or record.root / CALIBRATION_FILE)
    spacing_mm = read_calibration(calibration).pixel_spacing_mm
    pose = published_poses(record.tracking, optimized=optimized)
    stamps = record.tracking["timestamp"].to_numpy()
    status = np.full(len(stamps), Reason.OK.value, dtype=object)
    table = poses_table(stamps, pose, status, space_factor=spacing_mm[0])
    models = next(iter(record.bone_paths.values())).parent
    images = record.root / IMAGES_DIR
    write_record_folder(
        out, table, calibration=calibration, images=images, models=models
    )
    return table
