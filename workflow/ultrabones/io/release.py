"""Release files: tables, text, copied stores, figures and the export layouts.

Layouts: the public UltraBones100k loader's (:func:`write_public_record`), the one
its authors now publish (:func:`write_published_record`, :func:`copy_bones`) and
nnU-Net v2's raw dataset (:func:`write_nnunet_case`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputDataError
from .png import write_png
from .published import (
    CALIBRATION_FILE,
    IMAGES_DIR,
    LABELS_DIR,
    PUBLISHED_LABEL_VALUE,
    TRACKING_FILE,
)
from .tables import write_table

__all__ = [
    "copy_bones",
    "copy_tree",
    "read_manifest",
    "write_nnunet_case",
    "write_public_record",
    "write_published_record",
]


def copy_tree(src: str | Path, dst: str | Path) -> None:
    """Copy a folder (a store) to ``dst``, replacing it; hard links where possible."""
    dst = Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dst, copy_function=_link_or_copy)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_public_record(
    out: str | Path, table: pd.DataFrame, images: np.ndarray, labels: np.ndarray
) -> None:
    """Write one record in the public UltraBones100k loader layout.

    ``UltrasoundImages/<ts>.png``, ``Label_partial_gradient/`` with
    ``<ts>_label_partial_gradient.png`` (0/255) and ``sweepProcessedAndOptimized.csv``;
    ``images`` and ``labels`` follow the rows of ``table``.
    """
    out = Path(out)
    (out / "UltrasoundImages").mkdir(parents=True, exist_ok=True)
    (out / "Label_partial_gradient").mkdir(exist_ok=True)
    for ts, image, label in zip(table["timestamp"], images, labels, strict=True):
        write_png(out / "UltrasoundImages" / f"{ts}.png", image)
        name = f"{ts}_label_partial_gradient.png"
        write_png(
            out / "Label_partial_gradient" / name, (label > 0).astype(np.uint8) * 255
        )
    write_table(out / "sweepProcessedAndOptimized.csv", table, precision="measured")


def read_manifest(path: str | Path) -> dict:
    """Read a ``sha256sum`` manifest: relative path -> hex digest.

    Raises
    ------
    InputDataError
        If the file is missing or a line is not ``<hex>  <path>``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: manifest not found")
    out = {}
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            raise InputDataError(f"{path} line {i}: not '<sha256>  <path>': {line!r}")
        out[name] = digest
    return out


def write_nnunet_case(
    folder: str | Path, case: str, image: np.ndarray, label: np.ndarray | None
) -> None:
    """Write one nnU-Net v2 case: ``<case>_0000.png`` and ``<case>.png`` (0/1).

    ``label`` None writes a test case (``imagesTs``, no label); otherwise the image
    goes to ``imagesTr`` and the label to ``labelsTr``.
    """
    folder = Path(folder)
    images = folder / ("imagesTs" if label is None else "imagesTr")
    images.mkdir(parents=True, exist_ok=True)
    write_png(images / f"{case}_0000.png", image)
    if label is not None:
        (folder / "labelsTr").mkdir(exist_ok=True)
        write_png(folder / "labelsTr" / f"{case}.png", (label > 0).astype(np.uint8))


def write_published_record(
    out: str | Path,
    table: pd.DataFrame,
    frames: tuple[np.ndarray, np.ndarray],
    *,
    calibration: str | Path,
) -> None:
    """Write one record of the published layout (names from :mod:`.published`).

    ``UltrasoundImages/<ts>.png``, ``Labels/<ts>_label.png`` (0 or
    :data:`PUBLISHED_LABEL_VALUE`), ``tracking.csv`` (``table``) and a copy of the
    record's ``calibration.yaml``; ``frames`` are the images and labels of the rows
    of ``table``.
    """
    out = Path(out)
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    (out / LABELS_DIR).mkdir(exist_ok=True)
    images, labels = frames
    for ts, image, label in zip(table["timestamp"], images, labels, strict=True):
        write_png(out / IMAGES_DIR / f"{ts}.png", image)
        mask = (label > 0).astype(np.uint8) * PUBLISHED_LABEL_VALUE
        write_png(out / LABELS_DIR / f"{ts}_label.png", mask)
    write_table(out / TRACKING_FILE, table, precision="measured")
    shutil.copyfile(calibration, out / CALIBRATION_FILE)


def copy_bones(src: str | Path, dst: str | Path) -> None:
    """Copy a specimen's bone models (``*.stl``) into ``dst``.

    Raises
    ------
    InputDataError
        If ``src`` holds no STL file.
    """
    stls = sorted(Path(src).glob("*.stl"))
    if not stls:
        raise InputDataError(f"{src}: no bone models (*.stl)")
    Path(dst).mkdir(parents=True, exist_ok=True)
    for stl in stls:
        shutil.copyfile(stl, Path(dst) / stl.name)
