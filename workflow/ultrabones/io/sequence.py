"""PLUS / 3D Slicer sequence files: tracked B-mode frames with per-frame transforms.

Reads ``.igs.mha``, ``.seq.mha``, ``.mhd`` (+ ``ElementDataFile``) and ``.seq.nrrd`` /
``.igs.nrrd``, raw or zlib/gzip compressed, 8-bit frames only. Per-frame fields::

    Seq_Frame0000_Timestamp = 12.345                   seconds (written here as ms)
    Seq_Frame0000_ImageStatus = OK                     OK, or the frame has no image
    Seq_Frame0000_ProbeToTrackerTransform = r00 r01 r02 t0 r10 ... 0 0 0 1   (row-major)
    Seq_Frame0000_ProbeToTrackerTransformStatus = OK   OK or INVALID

A PLUS ``ProbeToTracker`` is our ``tracker_from_probe``. ``UltrasoundImageOrientation``
names the image +x and +y axes by transducer axes (PLUS user manual, "Ultrasound image
orientation"): M/U = towards the marked/unmarked side, F/N = away from/towards the
transducer; a third letter (A/D) is the elevation axis of 3-D probes. PLUS works in
``MF`` internally (its ``Image`` frame: +x to the marked side, +y far from the
transducer, origin at the first pixel's centre), and its ``ImageToProbe`` calibrations
hold for MF images. Ours is the same: depth grows with the row index and a calibration
holds for the images as stored. So ``MF`` is read unchanged, ``U`` flips the columns
and ``N`` the rows (``UN`` both).

The MetaIO reader is ours: the format is a text header ending at ``ElementDataFile``
followed by raw or zlib bytes, and the per-frame fields are custom header lines that we
must parse and check ourselves anyway (naming the frame). SimpleITK would add a large
native dependency to decode what ``numpy.frombuffer`` and ``zlib`` decode in two lines.
NRRD has a richer header (encodings, detached data, axis kinds): ``pynrrd`` reads it,
key/value fields included.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputDataError
from ..transforms import check_rigid, invert_rigid, split_pixel_affine
from ..vocabulary import Reason
from .calibration import Calibration
from .png import write_png
from .tracker import MarkerStream

__all__ = [
    "Sequence",
    "frame_fields",
    "orient_frames",
    "parse_matrix",
    "parse_metaimage_header",
    "read_plus_calibration",
    "read_sequence",
    "sequence_poses",
    "sequence_streams",
    "write_sequence_frames",
]

log = logging.getLogger(__name__)

#: PLUS orientation our images are in (see the module docstring).
OUR_ORIENTATION = "MF"
_ORIENTATION = re.compile(r"^[MU][FN][AD]?$")
_ORIENTATION_KEYS = ("UltrasoundImageOrientation", "ultrasound image orientation")
_FRAME_KEY = re.compile(r"^Seq_Frame(\d+)_(.+)$")
#: Orthonormality tolerance of a tracker matrix: files print about 6 to 7 digits.
RIGID_TOL = 1e-4


@dataclass(frozen=True)
class Sequence:
    """Frames and per-frame fields of one sequence file.

    Attributes
    ----------
    path : Path
    images : ndarray of shape (n, rows, cols), uint8
        Frames in our orientation (PLUS ``MF``).
    timestamps_ms : ndarray of shape (n,), int64
        Frame times, ms, strictly increasing.
    image_ok : ndarray of shape (n,), bool
        False where ``ImageStatus`` is not OK.
    transforms : dict of str to ndarray of shape (n, 4, 4)
        Requested transforms by PLUS name (``ProbeToTracker``); NaN where the status
        is not OK or the matrix is not rigid.
    orientation : str
        ``UltrasoundImageOrientation`` of the file.
    """

    path: Path
    images: np.ndarray
    timestamps_ms: np.ndarray
    image_ok: np.ndarray
    transforms: dict
    orientation: str


def read_sequence(path: str | Path, *, transforms: tuple[str, ...]) -> Sequence:
    """Read a sequence file and the named per-frame transforms.

    Parameters
    ----------
    path : str or Path
        ``.mha``, ``.mhd`` or ``.nrrd`` sequence file.
    transforms : tuple of str
        PLUS transform names, e.g. ``("ProbeToTracker", "ReferenceToTracker")``.

    Raises
    ------
    InputDataError
        Naming the file and the field or frame: unsupported format or element type,
        unknown orientation, data size disagreeing with the header, a truncated file,
        frame counts that disagree, a frame lacking a field, a malformed matrix.
    """
    path = Path(path)
    header, frames = _read_pixels(path)
    orientation = _orientation(path, header)
    fields = frame_fields(path, header, frames.shape[0])
    return Sequence(
        path,
        orient_frames(frames, orientation),
        _timestamps_ms(path, fields),
        np.array([f.get("ImageStatus", "OK").upper() == "OK" for f in fields]),
        {name: _transform_stack(path, fields, name) for name in transforms},
        orientation,
    )


def _read_pixels(path: Path) -> tuple[dict, np.ndarray]:
    name = path.name.lower()
    if name.endswith((".mha", ".mhd")):
        return _read_metaimage(path)
    if name.endswith(".nrrd"):
        return _read_nrrd(path)
    raise InputDataError(f"{path}: not a sequence file (expected .mha, .mhd or .nrrd)")


def parse_metaimage_header(text: str) -> dict[str, str]:
    r"""Parse MetaIO ``Key = Value`` lines (up to ``ElementDataFile``) into a dict.

    Examples
    --------
    >>> parse_metaimage_header("NDims = 3\nElementDataFile = LOCAL\n")
    {'NDims': '3', 'ElementDataFile': 'LOCAL'}
    """
    header = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            header[key.strip()] = value.strip()
        if key.strip() == "ElementDataFile":
            break
    return header


def _read_metaimage(path: Path) -> tuple[dict, np.ndarray]:
    raw = _read_bytes(path)
    # The header is text up to the ElementDataFile line; the pixels follow it.
    end = re.search(rb"(?m)^ElementDataFile[ \t]*=[^\n]*\n?", raw)
    if end is None:
        raise InputDataError(f"{path}: no ElementDataFile field (truncated header?)")
    header = parse_metaimage_header(raw[: end.end()].decode("latin-1"))
    shape = _metaimage_shape(path, header)
    source = header["ElementDataFile"]
    if source.upper() != "LOCAL":
        path = path.parent / source
        if source.upper().startswith("LIST") or "%" in source:
            raise InputDataError(f"{path}: multi-file ElementDataFile not supported")
    payload = raw[end.end() :] if source.upper() == "LOCAL" else _read_bytes(path)
    compressed = header.get("CompressedData", "False").lower() == "true"
    data = _decode(path, payload, compressed=compressed, shape=shape)
    return header, data.reshape(shape)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise InputDataError(f"{path}: cannot read ({err})") from err


def _metaimage_shape(path: Path, header: dict) -> tuple[int, int, int]:
    """Return ``(n_frames, rows, cols)`` after checking dimensions and element type."""
    if header.get("NDims") != "3":
        raise InputDataError(
            f"{path}: NDims must be 3 (a stack of 2-D frames), "
            f"got {header.get('NDims')}"
        )
    try:
        cols, rows, n = (int(v) for v in header["DimSize"].split())
    except (KeyError, ValueError) as err:
        raise InputDataError(
            f"{path}: DimSize must be three integers, got {header.get('DimSize')!r}"
        ) from err
    kind = header.get("ElementType")
    if kind != "MET_UCHAR":
        raise InputDataError(
            f"{path}: ElementType {kind} not supported: frames must be MET_UCHAR "
            "(8-bit B-mode)"
        )
    channels = header.get("ElementNumberOfChannels", "1")
    if channels != "1":
        raise InputDataError(
            f"{path}: ElementNumberOfChannels must be 1 (grey), got {channels}"
        )
    if min(cols, rows, n) <= 0:
        raise InputDataError(f"{path}: DimSize must be positive, got {cols} {rows} {n}")
    return n, rows, cols


def _decode(path: Path, payload: bytes, *, compressed: bool, shape) -> np.ndarray:
    if compressed:
        inflate = zlib.decompressobj()
        try:
            payload = inflate.decompress(payload)
        except zlib.error as err:
            raise InputDataError(f"{path}: corrupt compressed data ({err})") from err
        if not inflate.eof:
            raise InputDataError(f"{path}: compressed data ends early (truncated file)")
    need = int(np.prod(shape))
    if len(payload) != need:
        n, rows, cols = shape
        raise InputDataError(
            f"{path}: image data holds {len(payload)} bytes but DimSize "
            f"{cols} {rows} {n} needs {need}"
            + (" (truncated file)" if len(payload) < need else "")
        )
    return np.frombuffer(payload, dtype=np.uint8)


def _read_nrrd(path: Path) -> tuple[dict, np.ndarray]:
    import nrrd

    try:
        data, header = nrrd.read(str(path), index_order="C")
    except (nrrd.NRRDError, ValueError, OSError, EOFError, zlib.error) as err:
        raise InputDataError(f"{path}: cannot read NRRD ({err})") from err
    if data.dtype != np.uint8:
        raise InputDataError(
            f"{path}: type {header.get('type')} not supported: frames must be "
            "unsigned char (8-bit B-mode)"
        )
    return {k: str(v) for k, v in header.items()}, _nrrd_frames(path, data, header)


def _nrrd_frames(path: Path, data: np.ndarray, header: dict) -> np.ndarray:
    """Return ``(n_frames, rows, cols)``: the ``list``/``time`` axis (else the last)."""
    kinds = list(header.get("kinds", ["domain"] * data.ndim))
    frame_axis = next(
        (i for i, k in enumerate(kinds) if k in ("list", "time")), len(kinds) - 1
    )
    # pynrrd's C order reverses the file's axes (x fastest in the file).
    stack = np.moveaxis(data, data.ndim - 1 - frame_axis, 0)
    if stack.ndim < 3 or any(s != 1 for s in stack.shape[1:-2]):
        raise InputDataError(
            f"{path}: sizes {header.get('sizes')} with kinds {kinds} is not a stack "
            "of 2-D single-channel frames"
        )
    return stack.reshape(stack.shape[0], *stack.shape[-2:])


def _orientation(path: Path, header: dict) -> str:
    value = next((header[k] for k in _ORIENTATION_KEYS if k in header), None)
    if value is None:
        # PLUS reads such files as MF too (and warns).
        log.warning("%s: no UltrasoundImageOrientation; assuming MF", path)
        return OUR_ORIENTATION
    if not _ORIENTATION.match(value.strip()):
        raise InputDataError(
            f"{path}: UltrasoundImageOrientation {value!r} is not a 2-D B-mode "
            "orientation (MF, MN, UF or UN, optionally followed by A or D)"
        )
    return value.strip()


def orient_frames(frames: np.ndarray, orientation: str) -> np.ndarray:
    """Flip frames from a PLUS orientation to ours (``MF``).

    Parameters
    ----------
    frames : ndarray of shape (..., rows, cols)
    orientation : str
        ``MF``, ``MN``, ``UF`` or ``UN``, with an optional third letter (ignored: 2-D).

    Returns
    -------
    frames_mf : ndarray of shape (..., rows, cols)

    Examples
    --------
    >>> orient_frames(np.array([[1, 2], [3, 4]]), "UN")
    array([[4, 3],
           [2, 1]])
    """
    if not _ORIENTATION.match(orientation):
        raise ValueError(f"orientation must be MF, MN, UF or UN, got {orientation!r}")
    out = frames[..., :, ::-1] if orientation[0] == "U" else frames
    out = out[..., ::-1, :] if orientation[1] == "N" else out
    return np.ascontiguousarray(out)


def frame_fields(path: Path, header: dict, n_frames: int) -> list[dict[str, str]]:
    """Group ``Seq_FrameNNNN_<Field>`` header entries by frame.

    Raises
    ------
    InputDataError
        If the fields name a frame beyond the image stack or a frame has none.
    """
    fields: dict[int, dict[str, str]] = {}
    for key, value in header.items():
        match = _FRAME_KEY.match(key)
        if match:
            fields.setdefault(int(match[1]), {})[match[2]] = str(value).strip()
    extra = sorted(set(fields) - set(range(n_frames)))
    if extra:
        raise InputDataError(
            f"{path}: the image data holds {n_frames} frames (DimSize/sizes) but the "
            f"header has fields of frame {extra[0]} ({_key(extra[0], '*')})"
        )
    missing = sorted(set(range(n_frames)) - set(fields))
    if missing:
        raise InputDataError(
            f"{path}: frame {missing[0]} has no {_key(missing[0], '*')} fields "
            f"(the image data holds {n_frames} frames)"
        )
    return [fields[i] for i in range(n_frames)]


def _key(frame: int, field: str) -> str:
    return f"Seq_Frame{frame:04d}_{field}"


def _field(path: Path, fields: list, frame: int, name: str) -> str:
    if name not in fields[frame]:
        raise InputDataError(f"{path}: frame {frame} lacks {_key(frame, name)}")
    return fields[frame][name]


def _timestamps_ms(path: Path, fields: list) -> np.ndarray:
    seconds = np.empty(len(fields))
    for i in range(len(fields)):
        text = _field(path, fields, i, "Timestamp")
        try:
            seconds[i] = float(text)
        except ValueError as err:
            raise InputDataError(
                f"{path}: {_key(i, 'Timestamp')} must be seconds, got {text!r}"
            ) from err
    stamps = np.round(seconds * 1000.0).astype(np.int64)
    step = np.diff(stamps)
    if not np.isfinite(seconds).all() or np.any(step <= 0):
        i = int(np.flatnonzero(~np.isfinite(seconds[1:]) | (step <= 0))[0]) + 1
        raise InputDataError(
            f"{path}: {_key(i, 'Timestamp')} = {seconds[i]} s is not after frame "
            f"{i - 1} ({seconds[i - 1]} s) at ms resolution"
        )
    return stamps


def parse_matrix(text: str) -> np.ndarray:
    """Parse 16 numbers (row-major) into a ``(4, 4)`` float64 matrix.

    Raises
    ------
    ValueError
        If ``text`` does not hold exactly 16 numbers.
    """
    values = text.replace(",", " ").split()
    if len(values) != 16:
        raise ValueError(f"a 4x4 transform needs 16 numbers, got {len(values)}")
    try:
        return np.array([float(v) for v in values]).reshape(4, 4)
    except ValueError as err:
        raise ValueError(f"a 4x4 transform needs 16 numbers, got {text!r}") from err


def _transform_stack(path: Path, fields: list, name: str) -> np.ndarray:
    key = f"{name}Transform"
    if key not in fields[0]:
        found = sorted(
            k[: -len("Transform")] for k in fields[0] if k.endswith("Transform")
        )
        raise InputDataError(
            f"{path}: no transform {name} in frame 0 (found: {', '.join(found) or '-'})"
        )
    out = np.full((len(fields), 4, 4), np.nan)
    for i in range(len(fields)):
        text = _field(path, fields, i, key)
        if fields[i].get(f"{key}Status", "OK").upper() != "OK":
            continue
        try:
            matrix = parse_matrix(text)
        except ValueError as err:
            raise InputDataError(f"{path}: {_key(i, key)}: {err}") from err
        try:
            out[i] = check_rigid(matrix, name=_key(i, key), tol=RIGID_TOL)
        except ValueError as err:
            # A status-OK pose that is not rigid is a bad frame, not a bad file.
            log.warning("%s: %s; frame marked invalid_pose", path, err)
    return out


def sequence_streams(
    sequence: Sequence, *, probe: str, reference: str
) -> dict[str, MarkerStream]:
    """Return the tracker streams of the raw layout: markers ``probe``, ``specimen``.

    PLUS ``<Probe>ToTracker`` is ``tracker_from_probe`` and ``<Reference>ToTracker``
    (the marker on the specimen) is ``tracker_from_specimen``.
    """
    streams = {}
    for marker, name in (("probe", probe), ("specimen", reference)):
        tracker_from_marker = sequence.transforms[name]
        visible = np.isfinite(tracker_from_marker).all(axis=(-2, -1))
        streams[marker] = MarkerStream(
            sequence.timestamps_ms, tracker_from_marker, visible
        )
    return streams


def sequence_poses(
    sequence: Sequence, *, probe: str, reference: str, ct_from_reference
) -> tuple[np.ndarray, np.ndarray]:
    """Compose ``ct_from_probe`` per frame; the tracker samples are the frames.

    ``ct_from_probe = ct_from_reference @ inv(tracker_from_reference)
    @ tracker_from_probe``: PLUS stamps the transforms of a frame at its image time,
    so nothing is interpolated and a frame with an invalid transform has no pose.

    Returns
    -------
    ct_from_probe : ndarray of shape (n, 4, 4)
        NaN where a transform is invalid.
    status : ndarray of shape (n,), str
        ``invalid_pose``, else ``no_image`` where ``ImageStatus`` is not OK, else
        ``ok``.
    """
    ct_from_reference = check_rigid(ct_from_reference, name="ct_from_reference")
    tracker_from_reference = sequence.transforms[reference]
    tracker_from_probe = sequence.transforms[probe]
    pose = ct_from_reference @ invert_rigid(tracker_from_reference) @ tracker_from_probe
    finite = np.isfinite(pose).all(axis=(-2, -1))
    status = np.where(sequence.image_ok, Reason.OK.value, Reason.NO_IMAGE.value)
    status = np.where(finite, status, Reason.INVALID_POSE.value)
    return pose, status


def write_sequence_frames(folder: str | Path, sequence: Sequence) -> list[str]:
    """Write the frames whose image is OK as ``<timestamp>.png``; return the names."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for stamp, image, ok in zip(
        sequence.timestamps_ms, sequence.images, sequence.image_ok, strict=True
    ):
        names.append(f"{int(stamp)}.png" if ok else "")
        if ok:
            write_png(folder / names[-1], image)
    return names


def read_plus_calibration(
    path: str | Path, *, image_size_px, probe_marker_fiducials_mm
) -> Calibration:
    """Read ``ImageToProbe`` from a PLUS device-set XML as our :class:`Calibration`.

    The element is ``<Transform From="Image" To="Probe" Matrix="16 numbers"/>``: PLUS
    pixel (col, row) indices of MF images to probe mm, the pixel spacing included.

    Parameters
    ----------
    path : str or Path
    image_size_px : tuple of int
        ``(width, height)`` of the frames.
    probe_marker_fiducials_mm : ndarray of shape (k, 3)
        Probe marker fiducials (PLUS configs do not hold them).

    Raises
    ------
    InputDataError
        If the XML is unreadable, lacks the element or its matrix is malformed.
    """
    path = Path(path)
    matrix = _plus_image_to_probe(path)
    try:
        probe_from_image, spacing = split_pixel_affine(parse_matrix(matrix))
    except ValueError as err:
        raise InputDataError(f"{path}: ImageToProbe Matrix: {err}") from err
    size = tuple(int(s) for s in image_size_px)
    return Calibration(probe_from_image, spacing, size, probe_marker_fiducials_mm)


def _plus_image_to_probe(path: Path) -> str:
    """Return the ``Matrix`` text of the config's Image-to-Probe ``Transform``."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as err:
        raise InputDataError(f"{path}: cannot read PLUS configuration ({err})") from err
    for element in root.iter("Transform"):
        if element.get("From") == "Image" and element.get("To") == "Probe":
            if element.get("Matrix") is not None:
                return element.get("Matrix")
    raise InputDataError(
        f'{path}: no <Transform From="Image" To="Probe" Matrix="..."/> element'
    )
