"""The Z-phantom recording of the raw layout: phantom, device and the folder as a whole.

Readers and writers of ``phantom.yaml`` and ``device.yaml`` and the reader of a
recording folder (``calibration/<recording>/``). See ``docs/data-layout.md`` and
``docs/calibration.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ..errors import InputDataError
from .calibration import image_geometry, read_mapping
from .markers import read_marker_ini
from .record import image_paths
from .tracker import marker_stream, read_tracker_stream

__all__ = [
    "Device",
    "PhantomRecording",
    "ZPhantom",
    "read_device",
    "read_phantom",
    "read_phantom_recording",
    "write_device",
    "write_phantom",
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


def read_phantom(path: str | Path) -> ZPhantom:
    """Read ``phantom.yaml``.

    Raises
    ------
    InputDataError
        Naming the file and the pattern whose wires are malformed.
    """
    path = Path(path)
    patterns = read_mapping(path, kind="phantom").get("z_patterns")
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
    doc = read_mapping(
        path, kind="device", required=("pixel_spacing_mm", "image_size_px")
    )
    return Device(*image_geometry(path, doc, kind="device"))


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
    images = image_paths(root / "images")
    return PhantomRecording(
        root,
        read_phantom(root / "phantom.yaml"),
        read_device(root / "device.yaml"),
        fiducials,
        streams,
        images,
    )
