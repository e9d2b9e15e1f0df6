"""The public record layout: one sweep folder as the UltraBones100k sample ships it.

::

    <record>/
        UltrasoundImages/<timestamp>.png   8-bit frames (may cover only some rows)
        CT_models/*.stl                    bone surfaces, CT frame, mm
        sweep_initial.csv                  a row per frame: timestamp, spacing, pose
        calibration.yaml                   T_US<-I, pixel spacing, probe fiducials

A poses table written by ``ultrabones poses`` has the same columns plus ``status`` and
``image``, so a poses folder is read exactly like a real record.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputDataError
from ..transforms import POSE_COLUMNS, matrix_from_params
from ..vocabulary import Reason
from .calibration import Calibration, read_calibration
from .tables import write_table

__all__ = [
    "POSES_COLUMNS",
    "Record",
    "image_paths",
    "link_record_folder",
    "open_record",
    "read_frame_stamps",
    "read_poses_table",
    "write_poses_table",
    "write_record_folder",
]

log = logging.getLogger(__name__)

#: Columns of ``sweep_initial.csv``, in order.
POSES_COLUMNS = ("timestamp", "space_factor", *POSE_COLUMNS)
IMAGES_DIR = "UltrasoundImages"
MODELS_DIR = "CT_models"
POSES_FILE = "sweep_initial.csv"
CALIBRATION_FILE = "calibration.yaml"


@dataclass(frozen=True)
class Record:
    """One sweep in the public layout.

    Attributes
    ----------
    root : Path
    poses : DataFrame
        One row per frame: ``timestamp`` (int64 ms), ``space_factor``, pose columns,
        ``status`` (a reason code) and ``image`` (file name, or "" when absent).
    calibration : Calibration
    bone_paths : dict of str to Path
        Bone name (file stem) to STL path, sorted by name.
    """

    root: Path
    poses: pd.DataFrame
    calibration: Calibration
    bone_paths: dict

    def image_path(self, timestamp: int) -> Path:
        """Path of the frame image of ``timestamp`` (it may not exist)."""
        return self.root / IMAGES_DIR / f"{int(timestamp)}.png"

    def image_rows(self) -> np.ndarray:
        """Return the indices of the poses table's rows that have an image file."""
        return np.flatnonzero(self.poses["image"].to_numpy() != "")

    def ct_from_probe(self) -> np.ndarray:
        """Per-row T_CT<-US as ``(n_rows, 4, 4)``; invalid rows hold NaN."""
        return matrix_from_params(self.poses[list(POSE_COLUMNS)].to_numpy(float))


def read_poses_table(path: str | Path) -> pd.DataFrame:
    """Read and check a poses table (``sweep_initial.csv`` or our ``poses.csv``).

    Fatal problems (missing columns, a row with more fields than the header, an
    unknown status, non-integer, duplicate or non-increasing timestamps) raise; rows
    with too few fields, non-numeric, NaN or unusable poses get status
    ``invalid_pose`` and are logged, so the rest of the sweep goes on.

    Raises
    ------
    InputDataError
        Naming the file and the offending line (1 = header).
    """
    path = Path(path)
    try:
        if path.suffix == ".parquet":
            df = pd.read_parquet(path)
            lines = np.arange(len(df)) + 2
        else:
            df, lines = _read_csv_cells(path)
    except (OSError, ValueError, csv.Error) as err:
        raise InputDataError(f"{path}: cannot read poses table ({err})") from err
    missing = [c for c in POSES_COLUMNS if c not in df.columns]
    if missing:
        raise InputDataError(
            f"{path}: poses table lacks column(s) {', '.join(missing)}"
        )
    if df.empty:
        raise InputDataError(f"{path}: poses table has no rows")
    df = df.reset_index(drop=True)
    df["timestamp"] = _integer_timestamps(path, df["timestamp"], lines)
    _check_increasing(path, df["timestamp"].to_numpy(), lines)
    raw = df[list(POSES_COLUMNS[1:])].copy()
    for col in POSES_COLUMNS[1:]:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(np.float64)
    df["status"] = _statuses(path, df, lines)
    df["image"] = df.get("image", pd.Series("", index=df.index)).fillna("").astype(str)
    _mark_invalid_poses(path, df, raw, lines)
    return df


def _read_csv_cells(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a CSV as text cells (empty = NaN) and each row's line number.

    pandas pads a short row silently, takes a first row with one extra field as an
    index and drops blank lines so that line numbers drift. Here a row with extra
    fields raises (which field is extra is unknowable); a short one keeps NaN for
    its missing values, so its pose is invalid, and is logged with its line.
    """
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        rows, lines = [], []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(header):
                raise InputDataError(
                    f"{path} line {reader.line_num}: {len(row)} fields, but the "
                    f"header has {len(header)}"
                )
            if len(row) < len(header):
                log.warning(
                    "%s line %d: %d of %d fields",
                    path,
                    reader.line_num,
                    len(row),
                    len(header),
                )
            rows.append([c.strip() for c in row] + [""] * (len(header) - len(row)))
            lines.append(reader.line_num)
    df = pd.DataFrame(rows, columns=header, dtype=object)
    return df.mask(df == ""), np.array(lines, dtype=np.int64)


def _statuses(path: Path, df: pd.DataFrame, lines: np.ndarray) -> pd.Series:
    """Return the ``status`` column (``ok`` where absent); raise on unknown codes."""
    if "status" not in df.columns:
        return pd.Series(Reason.OK.value, index=df.index)
    status = df["status"].fillna(Reason.OK.value).astype(str)
    unknown = ~status.isin([r.value for r in Reason])
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise InputDataError(
            f"{path} line {lines[i]}: status {status.iloc[i]!r} is not a reason code "
            f"({', '.join(r.value for r in Reason)})"
        )
    return status


def _mark_invalid_poses(path, df, raw, lines) -> None:
    """Mark ``ok`` rows with a missing, non-numeric or non-finite value invalid_pose."""
    values = df[list(POSES_COLUMNS[1:])]
    bad = ~np.isfinite(values.to_numpy()).all(axis=1)
    bad &= df["status"].to_numpy() == Reason.OK.value
    for i in np.flatnonzero(bad):
        cells = ", ".join(
            f"{c}={raw.at[i, c]!r}"
            for c in values.columns
            if not np.isfinite(values.at[i, c])
        )
        log.warning("%s line %d: %s; frame marked invalid_pose", path, lines[i], cells)
    df.loc[bad, "status"] = Reason.INVALID_POSE.value


def _integer_timestamps(path: Path, column: pd.Series, lines) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
    # Beyond 2**53 ms float64 no longer holds every integer (and int64 overflows).
    bad = ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) > 2**53)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputDataError(
            f"{path} line {lines[i]}: timestamp must be an integer (ms) below 2**53, "
            f"got {column.iloc[i]!r}"
        )
    return values.astype(np.int64)


def _check_increasing(path: Path, stamps: np.ndarray, lines) -> None:
    step = np.diff(stamps)
    if np.any(step <= 0):
        i = int(np.flatnonzero(step <= 0)[0]) + 1
        kind = "duplicate" if step[i - 1] == 0 else "non-increasing"
        raise InputDataError(
            f"{path} line {lines[i]}: {kind} timestamp {stamps[i]} after "
            f"{stamps[i - 1]}"
        )


def write_poses_table(path: str | Path, poses: pd.DataFrame) -> None:
    """Write a poses table as CSV or Parquet (by suffix), full float precision."""
    path = Path(path)
    cols = [*POSES_COLUMNS, *(c for c in ("status", "image") if c in poses.columns)]
    write_table(path, poses[cols])


def open_record(root: str | Path) -> Record:
    """Open a folder in the public record layout and mark rows without images.

    Raises
    ------
    InputDataError
        If the folder, its poses table, calibration or bone models are missing.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputDataError(f"{root}: record folder not found")
    poses = read_poses_table(root / POSES_FILE)
    calibration = read_calibration(root / CALIBRATION_FILE)
    models = root / MODELS_DIR
    bone_paths = (
        {p.stem: p for p in sorted(models.glob("*.stl"))} if models.is_dir() else {}
    )
    if not bone_paths:
        raise InputDataError(f"{models}: no bone models (*.stl) found")
    _check_spacing(root / POSES_FILE, poses, calibration.pixel_spacing_mm[0])
    _mark_images(root, poses)
    return Record(root, poses, calibration, bone_paths)


#: Relative disagreement between a row's ``space_factor`` and the calibration's pixel
#: spacing that counts as another spacing (both are printed to >= 4 digits).
SPACING_RTOL = 1e-3


def _check_spacing(path: Path, poses: pd.DataFrame, spacing_mm: float) -> None:
    """Mark rows whose pixel spacing is not the calibration's; raise if all are.

    The labels are drawn with the calibration's spacing, so a frame recorded at
    another depth setting would be labelled at the wrong scale.
    """
    factor = poses["space_factor"].to_numpy(np.float64)
    off = np.abs(factor - spacing_mm) > SPACING_RTOL * spacing_mm
    off &= np.isfinite(factor)
    if not off.any():
        return
    first = int(np.flatnonzero(off)[0])
    where = f"{path} line {first + 2}: space_factor {factor[first]}"
    if off.sum() == np.isfinite(factor).sum():
        raise InputDataError(
            f"{where} (and every other row) differs from the calibration's pixel "
            f"spacing {spacing_mm} mm: calibration of another probe setting?"
        )
    off &= poses["status"].to_numpy() == Reason.OK.value
    log.warning(
        "%s; %d row(s) differ from the calibration's pixel spacing %s mm: marked "
        "invalid_pose",
        where,
        off.sum(),
        spacing_mm,
    )
    poses.loc[off, "status"] = Reason.INVALID_POSE.value


def _mark_images(root: Path, poses: pd.DataFrame) -> None:
    images = root / IMAGES_DIR
    present = {p.name for p in images.glob("*.png")} if images.is_dir() else set()
    names = [f"{int(t)}.png" for t in poses["timestamp"]]
    has = np.array([n in present for n in names], dtype=bool)
    poses["image"] = np.where(has, names, "")
    lacking = (~has) & (poses["status"].to_numpy() == Reason.OK.value)
    poses.loc[lacking, "status"] = Reason.NO_IMAGE.value
    if lacking.any():
        stamps = poses.loc[lacking, "timestamp"].to_numpy()
        log.info(
            "%s: %d of %d rows have no image (first stamps: %s)",
            root,
            lacking.sum(),
            len(poses),
            ", ".join(map(str, stamps[:10])),
        )


def image_paths(folder: Path) -> dict:
    """Return ``{stamp: path}`` of ``folder/<timestamp>.png``, sorted by stamp.

    Raises
    ------
    InputDataError
        If the folder holds no PNG or a PNG not named by an integer stamp.
    """
    paths = sorted(folder.glob("*.png")) if folder.is_dir() else []
    bad = [p.name for p in paths if not p.stem.isdigit()]
    if bad:
        raise InputDataError(
            f"{folder}: image names must be integer ms stamps, got {bad[0]}"
        )
    if not paths:
        raise InputDataError(f"{folder}: no images (<timestamp>.png) found")
    return dict(sorted((int(p.stem), p) for p in paths))


def read_frame_stamps(folder: str | Path) -> np.ndarray:
    """Return the sorted stamps (ms) named by ``folder/<timestamp>.png``.

    Raises
    ------
    InputDataError
        If the folder holds no PNG or a PNG not named by an integer stamp.
    """
    return np.fromiter(image_paths(Path(folder)), dtype=np.int64)


def link_record_folder(out: str | Path, name: str, target: str | Path) -> None:
    """Make ``out/name`` a relative symlink to ``target`` (replacing an old link).

    Raises
    ------
    InputDataError
        If ``target`` does not exist or ``out/name`` is a real folder.
    """
    out, target = Path(out), Path(target).resolve()
    if not target.exists():
        raise InputDataError(f"{target}: link target not found")
    link = out / name
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        raise InputDataError(f"{link}: exists and is not a symlink; not replacing it")
    link.symlink_to(os.path.relpath(target, out.resolve()))


def write_record_folder(
    out: str | Path, table: pd.DataFrame, *, calibration: str | Path, images, models
) -> None:
    """Make ``out`` a public-layout record: poses table, calibration, folder links.

    Parameters
    ----------
    out : str or Path
    table : DataFrame
        Poses table with ``status`` and ``image`` (written as ``sweep_initial.csv``).
    calibration : str or Path
        ``calibration.yaml`` to copy byte for byte.
    images, models : str or Path
        Folders linked as ``UltrasoundImages`` and ``CT_models`` (relative links).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_poses_table(out / "sweep_initial.csv", table)
    shutil.copyfile(calibration, out / "calibration.yaml")
    link_record_folder(out, "UltrasoundImages", images)
    link_record_folder(out, "CT_models", models)
