"""8-bit grey PNG frames and masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputDataError

__all__ = ["read_png", "write_png"]


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
            im.load()
            grey = im if im.mode == "L" else im.convert("L")
            return np.asarray(grey, dtype=np.uint8)
    except FileNotFoundError as err:
        raise InputDataError(f"{path}: image file not found") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputDataError(f"{path}: cannot decode image ({err})") from err


def write_png(path: str | Path, image: np.ndarray, *, compress_level: int = 1) -> None:
    """Write a ``(rows, cols)`` uint8 array as an 8-bit grey PNG.

    ``compress_level`` 1 keeps zlib fast: frames are written by the hundred thousand.
    The output bytes depend only on the array, so runs are reproducible.
    """
    arr = np.asarray(image)
    if arr.ndim != 2 or arr.dtype != np.uint8:
        raise ValueError(
            f"image must be a 2-D uint8 array, got {arr.dtype} {arr.shape}"
        )
    Image.fromarray(arr, mode="L").save(
        Path(path), format="PNG", compress_level=compress_level
    )
