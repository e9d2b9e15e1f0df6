"""The audit pages' images: frame overlays, their thumbnails and the sweep timeline.

Overlays are the QA overlays of :func:`ultrabones.qa.overlay_rgb` (initial contour
red, refined green, shadow blue, oblique yellow) with the final label's contour on top.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.ndimage import binary_dilation

from ..qa import contour, overlay_rgb
from ..store import STATUSES

__all__ = [
    "FINAL_COLOUR",
    "STATUS_COLOURS",
    "THUMB_COLS",
    "frame_overlay",
    "png_bytes",
    "shrink",
    "thumb_shape",
    "timeline_figure",
]

#: Colour (RGB) of the final label's contour; qa.COLOURS has none, since its overlays
#: show the filter's removals (shadow, oblique) instead.
FINAL_COLOUR = (255, 0, 255)
#: Timeline colour of each frame status.
STATUS_COLOURS = {"kept": "tab:green", "discarded": "tab:red", "no_image": "0.6"}
#: Largest thumbnail width (px).
THUMB_COLS = 160


def frame_overlay(image: np.ndarray, masks: dict) -> np.ndarray:
    """Return the RGB overlay of a frame with the final label's contour on top.

    Parameters
    ----------
    image : ndarray of shape (rows, cols), uint8
    masks : dict of str to ndarray of shape (rows, cols)
        The names of :data:`ultrabones.qa.COLOURS` and ``label`` (the final label).

    Returns
    -------
    rgb : ndarray of shape (rows, cols, 3), uint8
    """
    rgb = overlay_rgb(image, masks)
    rgb[binary_dilation(contour(masks["label"]))] = FINAL_COLOUR
    return rgb


def _factor(shape: tuple, cols: int) -> int:
    return max(1, -(-shape[1] // cols))


def thumb_shape(shape: tuple, *, cols: int = THUMB_COLS) -> tuple[int, int]:
    """Return the ``(rows, cols)`` of a frame's thumbnail (see :func:`shrink`).

    >>> thumb_shape((950, 811))
    (158, 135)
    """
    f = _factor(shape, cols)
    return shape[0] // f, shape[1] // f


def shrink(image: np.ndarray, masks: dict, *, cols: int = THUMB_COLS):
    """Return a frame and its masks shrunk by a whole factor to at most ``cols`` wide.

    The image is block-averaged; a mask block is set when any of its pixels is, so
    thin contours survive the shrinking.

    Returns
    -------
    image : ndarray of shape (rows // f, cols // f), uint8
    masks : dict of str to ndarray of bool
    """
    f = _factor(image.shape, cols)
    rows, width = image.shape[0] // f * f, image.shape[1] // f * f

    def blocks(a):
        a = np.asarray(a)[:rows, :width]
        return a.reshape(rows // f, f, width // f, f)

    small = blocks(image).mean(axis=(1, 3)).round().astype(np.uint8)
    return small, {k: blocks(m != 0).any(axis=(1, 3)) for k, m in masks.items()}


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an RGB uint8 array as PNG (no metadata: same array, same bytes)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, np.uint8), "RGB").save(
        buffer, format="PNG", compress_level=6
    )
    return buffer.getvalue()


def timeline_figure(
    table: pd.DataFrame, *, max_correction_mm: float | None = None, title: str = ""
) -> Figure:
    """Return the sweep timeline: correction, confidence and status per frame.

    Parameters
    ----------
    table : DataFrame
        :func:`ultrabones.auditpage.tables.frame_table` of the sweep.
    max_correction_mm : float, optional
        The discard bound, drawn on the correction panel.
    title : str
    """
    fig = Figure(figsize=(10, 5.5))
    ax_c, ax_q, ax_s = fig.subplots(3, 1, sharex=True, height_ratios=(3, 3, 1))
    t = table["timestamp"].to_numpy()
    colours = table["status"].map(STATUS_COLOURS).fillna("k").to_list()
    ax_c.scatter(t, table["correction_mm"], c=colours, s=8)
    if max_correction_mm is not None:
        ax_c.axhline(max_correction_mm, color="red", lw=1)
    ax_c.set_ylabel("correction (mm)")
    ax_q.scatter(t, table["confidence"], c=colours, s=8)
    ax_q.set_ylabel("confidence")
    ax_q.set_ylim(-0.05, 1.05)
    level = table["status"].map({s: i for i, s in enumerate(STATUSES)})
    ax_s.scatter(t, level, c=colours, s=8, marker="|")
    ax_s.set_yticks(range(len(STATUSES)), STATUSES, fontsize=7)
    ax_s.set_ylim(len(STATUSES) - 0.5, -0.5)
    ax_s.set_xlabel("timestamp (ms)")
    ax_c.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
