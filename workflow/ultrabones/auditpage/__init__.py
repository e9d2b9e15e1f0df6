"""Static HTML audit pages: one per sweep, and an index of the release's sweeps.

A sweep's page shows a timeline of the fiducial correction, the confidence and the
status along the sweep, and a table of its frames (thumbnail overlay, timestamp,
status, reason, correction, confidence, objective gain, pose change) that sorts and
filters in the browser. The index shows each sweep's reject statistics and the spread
of its kept frames' confidence. Pages open offline: every image and script sits next
to them. The ``audit-page`` command writes the files; see ``docs`` in the README.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .images import frame_overlay, png_bytes, shrink, thumb_shape, timeline_figure
from .render import (
    ASSETS,
    SCRIPT,
    STYLE,
    asset_text,
    render_index_page,
    render_sweep_page,
)
from .tables import frame_rows, frame_table, index_rows, summary_text, sweep_row

__all__ = [
    "ASSETS",
    "FRAME_VARIABLES",
    "SCRIPT",
    "STYLE",
    "asset_text",
    "frame_pngs",
    "index_page",
    "sweep_page",
    "sweep_row",
]

#: Store variables an overlay needs.
FRAME_VARIABLES = (
    "image",
    "label",
    "full_initial",
    "full_refined",
    "shadow",
    "oblique",
)


def frame_pngs(data: dict) -> tuple[bytes, bytes]:
    """Return the PNGs of a frame's thumbnail and full-resolution overlay.

    Parameters
    ----------
    data : dict of str to ndarray of shape (rows, cols)
        The frame's :data:`FRAME_VARIABLES`.
    """
    image = np.asarray(data["image"], np.uint8)
    masks = {k: data[k] != 0 for k in FRAME_VARIABLES[1:]}
    small, small_masks = shrink(image, masks)
    return png_bytes(frame_overlay(small, small_masks)), png_bytes(
        frame_overlay(image, masks)
    )


def sweep_page(ds: xr.Dataset, *, max_correction_mm: float | None = None):
    """Return a sweep page's HTML and its timeline figure.

    Parameters
    ----------
    ds : Dataset
        The sweep's label store.
    max_correction_mm : float, optional
        The discard bound, drawn on the timeline.

    Returns
    -------
    html : str
    timeline : matplotlib.figure.Figure
    """
    title = f"{ds['specimen'].values}/{ds['sweep'].values}"
    table = frame_table(ds)
    html = render_sweep_page(
        frame_rows(table),
        title=title,
        summary=summary_text(ds),
        thumb=thumb_shape((ds.sizes["y"], ds.sizes["x"])),
    )
    figure = timeline_figure(table, max_correction_mm=max_correction_mm, title=title)
    return html, figure


def index_page(rows: list[dict]) -> str:
    """Return the release index's HTML from :func:`sweep_row` rows."""
    return render_index_page(index_rows(rows), title="ultrabones release audit")
