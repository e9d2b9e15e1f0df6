"""Release files: tables, text, copied stores, figures and the public loader layout."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from .png import write_png

__all__ = [
    "copy_tree",
    "read_table",
    "save_figure",
    "write_public_record",
    "write_table",
    "write_text",
]


def write_text(path: str | Path, text: str) -> None:
    """Write a text file, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_table(path: str | Path, table: pd.DataFrame) -> None:
    """Write a CSV table with full float precision, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, float_format="%.10g", lineterminator="\n")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV table."""
    return pd.read_csv(path)


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


def save_figure(fig, path: str | Path) -> None:
    """Save a Matplotlib figure as PNG without time-stamped metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})


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
    write_table(out / "sweepProcessedAndOptimized.csv", table)
