"""8-bit grey PNG frames and masks."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputDataError

__all__ = ["encode_png", "read_png", "write_png"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Largest frame read (pixels): 16 x a 950 x 811 frame; larger is no B-mode frame.
MAX_PIXELS = 16 * 950 * 811
#: Pillow modes wider than 8 bits per channel.
_WIDE_MODES = {
    "I;16": "16-bit",
    "I;16B": "16-bit",
    "I;16L": "16-bit",
    "I": "32-bit integer",
    "F": "32-bit float",
}


def read_png(path: str | Path) -> np.ndarray:
    """Read an 8-bit grey image as a ``(rows, cols)`` uint8 array.

    Colour images are converted to grey (luma), so appearance references load too.

    Raises
    ------
    InputDataError
        If the file is missing or cannot be decoded; the message names the file.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            _check_header(path, im)
            im.load()
            grey = im if im.mode == "L" else im.convert("L")
            return np.asarray(grey, dtype=np.uint8)
    except FileNotFoundError as err:
        raise InputDataError(f"{path}: image file not found") from err
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        SyntaxError,
        ValueError,
    ) as err:
        raise InputDataError(f"{path}: cannot decode image ({err})") from err


def _check_header(path: Path, im) -> None:
    """Refuse, before decoding, what would be clipped or would exhaust memory."""
    if im.mode in _WIDE_MODES:
        # Converting to 8 bits clips every value above 255: a 16-bit frame would be
        # labelled on a saturated image. The scaling is the user's to choose.
        raise InputDataError(
            f"{path}: {im.mode} image ({_WIDE_MODES[im.mode]}); frames must be 8-bit "
            "grey B-mode images"
        )
    if im.width * im.height > MAX_PIXELS:
        raise InputDataError(
            f"{path}: {im.width} x {im.height} pixels exceeds the limit of "
            f"{MAX_PIXELS} (a decompression bomb or not an ultrasound frame)"
        )


def write_png(path: str | Path, image: np.ndarray, *, compress_level: int = 1) -> None:
    """Write a ``(rows, cols)`` uint8 array as an 8-bit grey PNG.

    Frames are written by the hundred thousand, so the encoder is ours: every row
    uses the PNG "Sub" filter (a NumPy difference) and zlib at ``compress_level``.
    On ultrasound frames this is about twice as fast as Pillow's adaptive filtering
    at level 1 and no larger. The bytes depend only on the array.
    """
    arr = np.asarray(image)
    if arr.ndim != 2 or arr.dtype != np.uint8:
        raise ValueError(
            f"image must be a 2-D uint8 array, got {arr.dtype} {arr.shape}"
        )
    Path(path).write_bytes(encode_png(arr, compress_level=compress_level))


def encode_png(image: np.ndarray, *, compress_level: int = 1) -> bytes:
    """Encode a 2-D uint8 array as PNG bytes (grey, 8 bit, Sub filter)."""
    rows, cols = image.shape
    filtered = np.empty((rows, cols + 1), dtype=np.uint8)
    filtered[:, 0] = 1  # filter type Sub: each byte minus its left neighbour
    filtered[:, 1:2] = image[:, :1]
    np.subtract(image[:, 1:], image[:, :-1], out=filtered[:, 2:])
    header = struct.pack(">IIBBBBB", cols, rows, 8, 0, 0, 0, 0)
    idat = zlib.compress(filtered.tobytes(), compress_level)
    return b"".join(
        (
            _PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", idat),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(tag: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(tag + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)
