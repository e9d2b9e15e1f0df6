"""The label store of one sweep: schema, chunk datasets and validation.

One Zarr v3 store per sweep, opened with ``xr.open_zarr(path, consolidated=False)``.

Dimensions ``frame``, ``y`` (image rows), ``x`` (image columns), ``pose`` (6:
``x y z euler_x euler_y euler_z``), ``stage`` (``initial refined``) and ``feature``
(the confidence features, ``vocabulary.CONFIDENCE_FEATURES``). Variables are
chunked along ``frame`` only (``chunk_frames`` frames a chunk, whole images per chunk)
and compressed with checksummed codecs (see :func:`encoding`). Masks are uint8 0/1
with CF ``flag_values``/``flag_meanings``.

``status`` and ``reason`` are stored as uint8 codes with CF ``flag_values`` and
``flag_meanings`` (:data:`FLAGS`), so plain zarr and xarray read them; code 0 means
"unset" (a chunk never written). In memory ultrabones holds them decoded, as strings:
:func:`encode_flags` and :func:`decode_flags` convert at the I/O boundary
(:mod:`ultrabones.io.store`), which also writes and checks the chunk digests.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from .errors import InputDataError
from .transforms import POSE_COLUMNS
from .vocabulary import CONFIDENCE_FEATURES as FEATURES
from .vocabulary import MASKS, STATUSES, Reason

__all__ = [
    "FLAGS",
    "as_str",
    "compare_digests",
    "decode_codes",
    "decode_flags",
    "encode_dataset",
    "encode_flags",
    "flag_attrs",
    "STATUSES",
    "DEFAULT_CHUNK_FRAMES",
    "FRAME_VARIABLES",
    "chunk_dataset",
    "chunk_slices",
    "encoding",
    "status_of",
    "template_dataset",
    "validate_store",
]

STAGES = ("initial", "refined")
#: Frames per Zarr chunk: the resume granularity (a chunk is written and marked done
#: whole). Config ``label.chunk_frames``.
DEFAULT_CHUNK_FRAMES = 10
_STR = np.dtypes.StringDType()
#: Stored code of a flag variable's value "unset" (the zarr fill value).
UNSET = "unset"
#: Flag variables: name -> the values of codes 1, 2, ... (0 is :data:`UNSET`). Append
#: new reasons at the end of ``vocabulary.Reason``; stores decode with their own
#: ``flag_meanings``, so old stores stay readable either way.
FLAGS = {"status": STATUSES, "reason": tuple(r.value for r in Reason)}

#: Per-frame variables: name -> (dims after ``frame``, dtype, fill value).
FRAME_VARIABLES = {
    "image": (("y", "x"), np.uint8, 0),
    **{m: (("y", "x"), np.uint8, 0) for m in MASKS},
    "pose_initial": (("pose",), np.float64, np.nan),
    "pose_refined": (("pose",), np.float64, np.nan),
    "fiducial_correction_mm": ((), np.float64, np.nan),
    "objective": (("stage",), np.float64, np.nan),
    "evaluations": ((), np.int32, 0),
    "confidence": ((), np.float32, np.nan),
    "confidence_features": (("feature",), np.float32, np.nan),
    "status": ((), _STR, ""),
    "reason": ((), _STR, ""),
}

_POSE_ATTRS = {"from_frame": "probe", "to_frame": "ct", "units": "mm, deg (euler xyz)"}
_ATTRS = {
    "pose_initial": {**_POSE_ATTRS, "long_name": "initial T_CT<-US"},
    "pose_refined": {**_POSE_ATTRS, "long_name": "refined T_CT<-US"},
    "fiducial_correction_mm": {"units": "mm", "long_name": "mean fiducial correction"},
    "objective": {"long_name": "refinement objective before and after"},
    "evaluations": {"long_name": "objective evaluations"},
    "confidence": {
        "units": "1",
        "long_name": "estimated probability that the label is right "
        "(ultrabones.engine.confidence); NaN where not refined",
    },
    "confidence_features": {
        "units": "1, 1, 1, mm",
        "long_name": "features of the confidence (ultrabones.engine.confidence)",
    },
    "status": {"long_name": "frame status"},
    "reason": {"long_name": "reason code (ultrabones.vocabulary)"},
    "image": {"long_name": "ultrasound frame", "units": "1"},
}


def as_str(values) -> np.ndarray:
    """Return string values (``status``, ``reason``) as a plain ``str`` array.

    Decoded stores hold them as NumPy's variable-length ``StringDType``, which NumPy
    does not cast to fixed-width ``str`` implicitly.
    """
    return np.array(np.asarray(values).tolist(), dtype=str)


def flag_attrs(name: str) -> dict:
    """Return the CF ``flag_values``/``flag_meanings`` of a stored flag variable."""
    meanings = (UNSET, *FLAGS[name])
    return {
        "flag_values": list(range(len(meanings))),
        "flag_meanings": " ".join(meanings),
    }


def encode_flags(name: str, values) -> np.ndarray:
    """Return the uint8 codes of a flag variable's strings ("" is unset).

    >>> encode_flags("status", ["kept", "", "no_image"]).tolist()
    [1, 0, 3]
    """
    codes = {v: i for i, v in enumerate(FLAGS[name], start=1)} | {"": 0}
    strings = as_str(values)
    unknown = sorted(set(strings.ravel()) - set(codes))
    if unknown:
        raise ValueError(f"{name}: values {unknown} are not in {FLAGS[name]}")
    return np.vectorize(codes.__getitem__, otypes=[np.uint8])(strings)


def encode_dataset(ds: xr.Dataset) -> xr.Dataset:
    """Return ``ds`` with its flag variables as stored: uint8 codes and CF flags."""
    out = ds.copy()
    for name in FLAGS:
        if name in ds and ds[name].dtype.kind not in "iu":
            attrs = {**ds[name].attrs, **flag_attrs(name)}
            codes = encode_flags(name, ds[name].values)
            out[name] = xr.Variable(ds[name].dims, codes, attrs=attrs)
    return out


def decode_flags(ds: xr.Dataset) -> xr.Dataset:
    """Return ``ds`` with its stored flag codes as strings (unset as "").

    Decodes with the store's own ``flag_meanings``; string variables (stores written
    before the codes) pass through unchanged.
    """
    out = ds.copy()
    for name in FLAGS:
        if name not in ds or ds[name].dtype.kind not in "iu":
            continue
        attrs = dict(ds[name].attrs)
        strings = decode_codes(ds[name].values, attrs.pop("flag_meanings"))
        attrs.pop("flag_values", None)
        out[name] = xr.Variable(ds[name].dims, strings, attrs=attrs)
    return out


def decode_codes(codes, flag_meanings: str) -> np.ndarray:
    """Return a flag variable's stored codes as strings by its ``flag_meanings``.

    Code 0 (unset) becomes "", a code past the meanings ``invalid_code_<code>``.

    >>> decode_codes([1, 0, 7], "unset kept discarded").tolist()
    ['kept', '', 'invalid_code_7']
    """
    meanings = ["", *flag_meanings.split()[1:]]
    codes = np.asarray(codes)
    bad = codes >= len(meanings)
    strings = np.array(meanings, dtype=_STR)[np.where(bad, 0, codes)]
    strings[bad] = [f"invalid_code_{c}" for c in codes[bad]]
    return strings


def status_of(reason: str) -> str:
    """Return the frame status (``kept``, ``discarded``, ``no_image``) of a reason."""
    if reason == Reason.OK:
        return "kept"
    return "no_image" if reason == Reason.NO_IMAGE else "discarded"


def chunk_slices(n_frames: int, chunk_frames: int) -> list[slice]:
    """Return the frame slices of the store's chunks, in order.

    >>> chunk_slices(5, 2)
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
    return [
        slice(a, min(a + chunk_frames, n_frames))
        for a in range(0, n_frames, chunk_frames)
    ]


def _mask_attrs(name: str) -> dict:
    return {"flag_values": [0, 1], "flag_meanings": f"not_{name} {name}", "units": "1"}


def _lazy(name: str, n: int, shape: tuple, chunk_frames: int) -> xr.Variable:
    dims, dtype, fill = FRAME_VARIABLES[name]
    full = (
        n,
        *(
            shape[0] if d == "y" else shape[1] if d == "x" else _dim_len(d)
            for d in dims
        ),
    )
    if dtype is _STR:
        data = np.full(full, fill, dtype=_STR)
    else:
        data = da.full(full, fill, dtype=dtype, chunks=(chunk_frames, *full[1:]))
    attrs = _mask_attrs(name) if name in MASKS else _ATTRS.get(name, {})
    return xr.Variable(("frame", *dims), data, attrs=dict(attrs))


def _dim_len(dim: str) -> int:
    return {"pose": len(POSE_COLUMNS), "stage": len(STAGES), "feature": len(FEATURES)}[
        dim
    ]


def template_dataset(
    timestamps, *, shape, spacing_mm, specimen, sweep, chunk_frames, attrs=None
) -> xr.Dataset:
    """Return the lazy, empty dataset of a sweep's store (written before any chunk).

    Parameters
    ----------
    timestamps : array_like of int
        One per row of the poses table (ms).
    shape : tuple of int
        Image ``(rows, cols)``.
    spacing_mm : tuple of float
        ``(s_x, s_y)``, mm per column and per row.
    specimen, sweep : str
    chunk_frames : int
        Frames per chunk.
    attrs : dict, optional
        Root attrs (provenance, calibration, engine parameters).
    """
    n = len(timestamps)
    rows, cols = shape
    coords = {
        "timestamp": ("frame", np.asarray(timestamps, dtype=np.int64)),
        "x_mm": ("x", (np.arange(cols) + 0.5) * spacing_mm[0], {"units": "mm"}),
        "y_mm": ("y", (np.arange(rows) + 0.5) * spacing_mm[1], {"units": "mm"}),
        "pose": ("pose", np.array(POSE_COLUMNS, dtype=_STR)),
        "stage": ("stage", np.array(STAGES, dtype=_STR)),
        "feature": ("feature", np.array(FEATURES, dtype=_STR)),
        "specimen": np.array(specimen, dtype=_STR),
        "sweep": np.array(sweep, dtype=_STR),
    }
    data = {k: _lazy(k, n, shape, chunk_frames) for k in FRAME_VARIABLES}
    return xr.Dataset(data, coords=coords, attrs=dict(attrs or {}))


def encoding(ds: xr.Dataset, chunk_frames: int) -> dict:
    """Return the Zarr encoding: chunks of ``chunk_frames`` frames, whole otherwise.

    Images use zstd level 1 and masks bit-shuffled zstd level 1 (Blosc): about 5 and
    3 ms a 950 x 811 frame to compress, against 11 ms at zstd's default level. Every
    chunk carries a checksum checked on read, so a corrupted chunk fails to decode
    instead of reading as other numbers: zstd's frame checksum, and a CRC-32C after
    Blosc (whose zstd frames have none).
    """
    from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

    mask = (BloscCodec(cname="zstd", clevel=1, shuffle="bitshuffle"), Crc32cCodec())
    codecs = {
        "image": (ZstdCodec(level=1, checksum=True),),
        **dict.fromkeys(MASKS, mask),
    }
    out = {}
    for name in FRAME_VARIABLES:
        out[name] = {
            "chunks": (chunk_frames, *ds[name].shape[1:]),
            "compressors": codecs.get(name, (ZstdCodec(checksum=True),)),
        }
    return out


def chunk_dataset(results: dict) -> xr.Dataset:
    """Return the dataset of one chunk from per-variable arrays (frames first).

    ``results`` holds every name of :data:`FRAME_VARIABLES`; strings are converted to
    the store's string type.
    """
    data = {}
    for name, (dims, dtype, _) in FRAME_VARIABLES.items():
        data[name] = (("frame", *dims), np.asarray(results[name], dtype=dtype))
    return xr.Dataset(data)


def validate_store(ds: xr.Dataset) -> None:
    """Check a label store against the schema.

    Raises
    ------
    InputDataError
        Listing every problem found (missing variables, dims, dtypes, attrs, values).
    """
    problems = [*_check_variables(ds), *_check_coords(ds), *_check_values(ds)]
    missing = [
        k
        for k in (
            "ultrabones_version",
            "git_sha",
            "config_hash",
            "inputs",
            "pixel_spacing_mm",
            "probe_from_image",
            "gamma_mm",
        )
        if k not in ds.attrs
    ]
    if missing:
        problems.append(f"root attrs missing: {', '.join(missing)}")
    if problems:
        raise InputDataError("label store invalid: " + "; ".join(problems))


def _check_variables(ds: xr.Dataset) -> list[str]:
    problems = []
    for name, (dims, dtype, _) in FRAME_VARIABLES.items():
        if name not in ds:
            problems.append(f"variable {name} missing")
            continue
        if ds[name].dims != ("frame", *dims):
            problems.append(
                f"{name} dims must be {('frame', *dims)}, got {ds[name].dims}"
            )
        if dtype is not _STR and ds[name].dtype != dtype:
            problems.append(
                f"{name} dtype must be {np.dtype(dtype)}, got {ds[name].dtype}"
            )
        if name in MASKS and "flag_meanings" not in ds[name].attrs:
            problems.append(f"{name} lacks flag_meanings")
    for name in ("pose_initial", "pose_refined"):
        if name in ds and ds[name].attrs.get("from_frame") != "probe":
            problems.append(f"{name} attrs must name from_frame probe, to_frame ct")
    return problems


def _check_coords(ds: xr.Dataset) -> list[str]:
    problems = []
    for name in ("timestamp", "x_mm", "y_mm", "specimen", "sweep"):
        if name not in ds.coords:
            problems.append(f"coordinate {name} missing")
    for name in ("x_mm", "y_mm"):
        if name in ds.coords and ds[name].attrs.get("units") != "mm":
            problems.append(f"{name} must have units mm")
    if "timestamp" in ds.coords and ds["timestamp"].dtype != np.int64:
        problems.append(f"timestamp dtype must be int64, got {ds['timestamp'].dtype}")
    return problems


def _check_values(ds: xr.Dataset) -> list[str]:
    if "status" not in ds or "reason" not in ds:
        return []
    return [*_check_reasons(ds), *_check_confidence(ds)]


def _check_confidence(ds: xr.Dataset) -> list[str]:
    """Confidence lies in [0, 1] (or NaN), and every kept frame has one."""
    if "confidence" not in ds:
        return []
    c = ds["confidence"].values
    problems = []
    if np.any(c[np.isfinite(c)] < 0) or np.any(c[np.isfinite(c)] > 1):
        problems.append("confidence must lie in [0, 1]")
    kept = as_str(ds["reason"].values) == Reason.OK
    if np.any(np.isnan(c[kept])):
        i = int(np.flatnonzero(kept & np.isnan(c))[0])
        problems.append(f"frame {i}: kept without a confidence")
    return problems


def compare_digests(recorded: dict, found: dict, required) -> list[str]:
    """Return the problems of a store's files against its recorded digests.

    Parameters
    ----------
    recorded : dict
        Key -> SHA-256 written when the store was published.
    found : dict
        Key -> SHA-256 of the file now, or None when it is missing.
    required : iterable of str
        Keys the store's metadata implies (every chunk of every array).

    >>> compare_digests({"a": "1"}, {"a": None, "b": "2"}, ["a", "b"])
    ['a: missing', 'b: no recorded digest']
    """
    problems = []
    for key in sorted(set(recorded) | set(required)):
        if found.get(key) is None:
            problems.append(f"{key}: missing")
        elif key not in recorded:
            problems.append(f"{key}: no recorded digest")
        elif found[key] != recorded[key]:
            problems.append(f"{key}: content does not match its digest")
    return problems


def _check_reasons(ds: xr.Dataset) -> list[str]:
    reasons = as_str(ds["reason"].values)
    status = as_str(ds["status"].values)
    known = {r.value for r in Reason}
    unknown = sorted(set(reasons) - known)
    if unknown:
        return [f"unknown reason code(s) {', '.join(unknown)} (incomplete chunk?)"]
    expected = np.array([status_of(r) for r in reasons], dtype=str)
    bad = np.flatnonzero(expected != status)
    if bad.size:
        i = int(bad[0])
        return [f"frame {i}: status {status[i]!r} does not match reason {reasons[i]!r}"]
    return []
