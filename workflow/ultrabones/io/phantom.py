"""Raw calibration and registration files: Z-phantom, device, runs of our stages.

Readers and writers of the raw acquisition layout's calibration recording
(``phantom.yaml``, ``device.yaml``, the recording folder as a whole) and of the
outputs of ``calibrate`` (error curve), ``register`` (``ct_from_specimen`` JSON) and
``poses``/``ingest`` (the record folder's symlinks). See ``docs/data-layout.md`` and
``docs/calibration.md``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..errors import InputDataError
from ..transforms import check_rigid, params_from_matrix
from .markers import read_marker_ini
from .tracker import MarkerStream, read_tracker_stream

__all__ = [
    "Device",
    "PhantomRecording",
    "ZPhantom",
    "link_record_folder",
    "marker_stream",
    "read_device",
    "read_phantom",
    "read_frame_stamps",
    "read_phantom_recording",
    "read_registration",
    "write_device",
    "write_error_curve",
    "write_phantom",
    "write_record_folder",
    "write_registration",
]


@dataclass(frozen=True)
class ZPhantom:
    """Z-phantom wires in the phantom marker frame.

    Attributes
    ----------
    names : tuple of str
        Pattern names, in image order (top to bottom, then left to right).
    wires : ndarray of shape (k, 3, 2, 3)
        Per pattern: wire 1 (side), 2 (diagonal), 3 (side); each ``[start, end]``, mm.
        The diagonal starts on wire 1's side and ends on wire 3's side.
    """

    names: tuple[str, ...]
    wires: np.ndarray


@dataclass(frozen=True)
class Device:
    """Ultrasound device geometry.

    ``pixel_spacing_mm`` (s_x, s_y), ``image_size_px`` (width, height).
    """

    pixel_spacing_mm: tuple[float, float]
    image_size_px: tuple[int, int]


@dataclass(frozen=True)
class PhantomRecording:
    """A Z-phantom calibration recording (``<cohort>/calibration/<rec>/``).

    Attributes
    ----------
    root : Path
    phantom : ZPhantom
    device : Device
    probe_marker_fiducials_mm : ndarray of shape (n, 3)
    streams : dict of str to MarkerStream
        At least ``probe`` and ``phantom``.
    image_paths : dict of int to Path
        Image stamp (image clock, ms) to PNG path, sorted by stamp.
    """

    root: Path
    phantom: ZPhantom
    device: Device
    probe_marker_fiducials_mm: np.ndarray
    streams: dict
    image_paths: dict


def _load_yaml(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise InputDataError(f"{path}: cannot read YAML ({err})") from err
    if not isinstance(doc, dict):
        raise InputDataError(f"{path}: expected a YAML mapping")
    return doc


def read_phantom(path: str | Path) -> ZPhantom:
    """Read ``phantom.yaml``.

    Raises
    ------
    InputDataError
        Naming the file and the pattern whose wires are malformed.
    """
    path = Path(path)
    patterns = _load_yaml(path).get("z_patterns")
    if not isinstance(patterns, list) or not patterns:
        raise InputDataError(f"{path}: key z_patterns must be a non-empty list")
    names, wires = [], []
    for i, pattern in enumerate(patterns):
        try:
            w = np.asarray(pattern["wires"], dtype=np.float64)
            names.append(str(pattern.get("name", f"z{i}")))
        except (KeyError, TypeError, ValueError) as err:
            raise InputDataError(f"{path}: z_patterns[{i}] malformed ({err})") from err
        if w.shape != (3, 2, 3) or not np.isfinite(w).all():
            raise InputDataError(
                f"{path}: z_patterns[{i}].wires must be 3 wires of [[x,y,z],[x,y,z]], "
                f"got shape {w.shape}"
            )
        wires.append(w)
    return ZPhantom(tuple(names), np.stack(wires))


def write_phantom(path: str | Path, phantom: ZPhantom) -> None:
    """Write ``phantom.yaml`` (wire end points, phantom marker frame, mm)."""
    doc = {
        "z_patterns": [
            {"name": n, "wires": np.round(w, 6).tolist()}
            for n, w in zip(phantom.names, phantom.wires, strict=True)
        ]
    }
    head = (
        "# Z-phantom wires in the phantom marker frame (mm), listed in image order\n"
        "# (top to bottom, then left to right). Wires: side 1, diagonal, side 3;\n"
        "# the diagonal runs from wire 1's start side to wire 3's end side.\n"
    )
    Path(path).write_text(head + yaml.safe_dump(doc, sort_keys=False))


def read_device(path: str | Path) -> Device:
    """Read ``device.yaml`` (``pixel_spacing_mm``, ``image_size_px``).

    Raises
    ------
    InputDataError
        Naming the file and the missing or malformed key.
    """
    path = Path(path)
    doc = _load_yaml(path)
    missing = [k for k in ("pixel_spacing_mm", "image_size_px") if k not in doc]
    if missing:
        raise InputDataError(f"{path}: device is missing key(s) {', '.join(missing)}")
    try:
        spacing = tuple(float(s) for s in doc["pixel_spacing_mm"])
        size = tuple(int(s) for s in doc["image_size_px"])
    except (TypeError, ValueError) as err:
        raise InputDataError(f"{path}: malformed device value ({err})") from err
    if len(spacing) != 2 or min(spacing) <= 0 or len(size) != 2 or min(size) <= 0:
        raise InputDataError(
            f"{path}: pixel_spacing_mm and image_size_px need two positive values, "
            f"got {spacing} and {size}"
        )
    return Device(spacing, size)


def write_device(path: str | Path, device: Device) -> None:
    """Write ``device.yaml``."""
    doc = {
        "pixel_spacing_mm": [float(s) for s in device.pixel_spacing_mm],
        "image_size_px": [int(s) for s in device.image_size_px],
    }
    Path(path).write_text(
        "# s_x (columns), s_y (rows) in mm; width, height in pixels\n"
        + yaml.safe_dump(doc, sort_keys=False)
    )


def read_phantom_recording(root: str | Path) -> PhantomRecording:
    """Open a calibration recording folder.

    Raises
    ------
    InputDataError
        If a file is missing or malformed, a marker stream is absent or there are
        no images.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputDataError(f"{root}: calibration recording folder not found")
    streams = read_tracker_stream(root / "tracker.csv")
    for marker in ("probe", "phantom"):
        marker_stream(streams, marker, root / "tracker.csv")
    _, fiducials = read_marker_ini(root / "markers" / "probe.ini")
    images = _image_paths(root / "images")
    return PhantomRecording(
        root,
        read_phantom(root / "phantom.yaml"),
        read_device(root / "device.yaml"),
        fiducials,
        streams,
        images,
    )


def _image_paths(folder: Path) -> dict:
    paths = sorted(folder.glob("*.png")) if folder.is_dir() else []
    bad = [p.name for p in paths if not p.stem.isdigit()]
    if bad:
        raise InputDataError(
            f"{folder}: image names must be integer ms stamps, got {bad[0]}"
        )
    if not paths:
        raise InputDataError(f"{folder}: no images (<timestamp>.png) found")
    return dict(sorted((int(p.stem), p) for p in paths))


def write_error_curve(
    stem: str | Path, dt_ms: np.ndarray, columns: dict, *, best_dt_ms: float
) -> None:
    """Write the lag grid's error curve as ``<stem>.csv`` and ``<stem>.png``.

    Parameters
    ----------
    stem : str or Path
        Output path without suffix.
    dt_ms : ndarray of shape (d,)
        Candidate lags.
    columns : dict of str to ndarray of shape (d,)
        Error columns (mm); the first is plotted.
    best_dt_ms : float
        Chosen lag, marked on the plot.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = Path(stem)
    table = pd.DataFrame({"dt_ms": np.round(dt_ms, 4), **columns})
    table.to_csv(stem.with_suffix(".csv"), index=False, float_format="%.6f")
    name, values = next(iter(columns.items()))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(dt_ms, values, lw=1)
    ax.axvline(best_dt_ms, color="C3", ls="--", label=f"dt = {best_dt_ms:.1f} ms")
    ax.set_xlabel("lag dt (ms)")
    ax.set_ylabel(name)
    ax.legend()
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=100, metadata={"Software": None})
    plt.close(fig)


def write_registration(path: str | Path, ct_from_specimen, info: dict) -> None:
    """Write ``ct_from_specimen`` (4x4 and pose params) and its quality as JSON."""
    T = check_rigid(ct_from_specimen, name="ct_from_specimen")
    doc = {
        "ct_from_specimen": np.round(T, 10).tolist(),
        "params": np.round(params_from_matrix(T), 8).tolist(),
        "from_frame": "specimen",
        "to_frame": "ct",
        "units": "mm",
        **info,
    }
    Path(path).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def read_registration(path: str | Path) -> np.ndarray:
    """Read ``ct_from_specimen`` from a registration JSON (ours or the truth's).

    Raises
    ------
    InputDataError
        If the file is unreadable, lacks the key or the matrix is not rigid.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        matrix = doc["ct_from_specimen"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputDataError(
            f"{path}: cannot read ct_from_specimen ({type(err).__name__}: {err})"
        ) from err
    try:
        return check_rigid(
            np.asarray(matrix, dtype=np.float64), name="ct_from_specimen"
        )
    except ValueError as err:
        raise InputDataError(f"{path}: {err}") from err


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


def marker_stream(streams: dict, name: str, path: str | Path) -> MarkerStream:
    """Return ``streams[name]`` or raise naming the tracker file."""
    if name not in streams:
        raise InputDataError(f"{path}: no rows of marker {name!r}")
    return streams[name]


def read_frame_stamps(folder: str | Path) -> np.ndarray:
    """Return the sorted stamps (ms) named by ``folder/<timestamp>.png``.

    Raises
    ------
    InputDataError
        If the folder holds no PNG or a PNG not named by an integer stamp.
    """
    return np.fromiter(_image_paths(Path(folder)), dtype=np.int64)


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
    from .record import write_poses_table

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_poses_table(out / "sweep_initial.csv", table)
    shutil.copyfile(calibration, out / "calibration.yaml")
    link_record_folder(out, "UltrasoundImages", images)
    link_record_folder(out, "CT_models", models)
