"""QA figures: Fig. 2-style overlays, fiducial corrections, discard rates.

The lambda selection plot is written by ``ultrabones select-lambda`` itself.

Each function returns a Matplotlib ``Figure`` built without pyplot's global state;
``io.release.save_figure`` writes it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from scipy.ndimage import binary_dilation, binary_erosion

from .store import as_str

__all__ = [
    "COLOURS",
    "contour",
    "correction_figure",
    "discard_rate_figure",
    "overlay_figure",
    "overlay_rgb",
    "pick_frames",
]

#: Overlay colours (RGB): the paper's Fig. 2 convention.
COLOURS = {
    "shadow": (0, 90, 255),
    "oblique": (255, 220, 0),
    "full_initial": (255, 0, 0),
    "full_refined": (0, 200, 0),
}


def contour(mask: np.ndarray) -> np.ndarray:
    """Return the boundary pixels of a boolean mask (mask minus its erosion)."""
    mask = np.asarray(mask, bool)
    return mask & ~binary_erosion(mask)


def overlay_rgb(image: np.ndarray, masks: dict) -> np.ndarray:
    """Return an RGB overlay: shadow blue, oblique yellow, contours red/green.

    Parameters
    ----------
    image : ndarray of shape (rows, cols), uint8
    masks : dict of str to ndarray (rows, cols)
        ``shadow``, ``oblique`` (filled), ``full_initial``, ``full_refined`` (contours).
    """
    rgb = np.repeat(np.asarray(image, np.uint8)[..., None], 3, axis=2)
    for name in ("shadow", "oblique"):
        rgb[np.asarray(masks[name], bool)] = COLOURS[name]
    for name in ("full_initial", "full_refined"):
        # 3-pixel lines stay visible when a full frame is shrunk into a figure
        rgb[binary_dilation(contour(masks[name]))] = COLOURS[name]
    return rgb


def pick_frames(ds: xr.Dataset, n: int) -> np.ndarray:
    """Return up to ``n`` evenly spaced frame indices, kept frames first."""
    reason = as_str(ds["reason"].values)
    kept = np.flatnonzero(reason == "ok")
    pool = kept if kept.size else np.flatnonzero(reason != "no_image")
    if pool.size <= n:
        return pool
    return pool[np.linspace(0, pool.size - 1, n).round().astype(int)]


def overlay_figure(ds: xr.Dataset, *, frames: int = 6) -> Figure:
    """Return a grid of overlays of a sweep's frames with their reasons."""
    picks = pick_frames(ds, frames)
    cols = max(min(3, picks.size), 1)
    rows = max(int(np.ceil(picks.size / cols)), 1)
    fig = Figure(figsize=(4 * cols, 3.5 * rows))
    for k, i in enumerate(picks):
        ax = fig.add_subplot(rows, cols, k + 1)
        sel = ds.isel(frame=int(i))
        masks = {m: sel[m].values for m in COLOURS}
        ax.imshow(overlay_rgb(sel["image"].values, masks), interpolation="nearest")
        ax.set_title(
            f"{int(sel['timestamp'])}: {as_str(sel['reason'].values)}", fontsize=8
        )
        ax.set_axis_off()
    fig.suptitle(
        f"{ds['specimen'].values} {ds['sweep'].values}: initial red, "
        "refined green, shadow blue, oblique yellow",
        fontsize=9,
    )
    return fig


def correction_figure(ds: xr.Dataset, *, max_correction_mm: float) -> Figure:
    """Return the histogram of mean fiducial corrections with the discard bound."""
    values = ds["fiducial_correction_mm"].values
    values = values[np.isfinite(values)]
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    ax.hist(values, bins=20, color="grey")
    ax.axvline(max_correction_mm, color="red", label=f"bound {max_correction_mm} mm")
    ax.set_xlabel("mean fiducial correction (mm)")
    ax.set_ylabel("frames")
    ax.set_title(f"{ds['specimen'].values} {ds['sweep'].values}", fontsize=9)
    ax.legend()
    fig.tight_layout()
    return fig


def discard_rate_figure(stats: pd.DataFrame) -> Figure:
    """Return the discard rate per sweep as bars."""
    names = stats["specimen"] + "/" + stats["sweep"]
    fig = Figure(figsize=(max(4, 0.6 * len(stats) + 2), 3.5))
    ax = fig.add_subplot()
    ax.bar(names, stats["discard_rate"], color="tab:orange")
    ax.set_ylabel("discard rate")
    ax.set_ylim(0, 1)
    ax.tick_params(axis="x", rotation=90)
    fig.tight_layout()
    return fig
