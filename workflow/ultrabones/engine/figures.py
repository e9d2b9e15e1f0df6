"""Figures of the label engine (returned as matplotlib figures; the CLI saves them)."""

from __future__ import annotations

import numpy as np

__all__ = ["contour_grid", "lambda_figure"]


def contour_grid(images, results, stamps, *, columns: int = 4):
    """Return a grid of frames with initial (red) and refined (green) full labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.4 * rows))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, image, res, stamp in zip(
        np.ravel(axes), images, results, stamps, strict=False
    ):
        rgb = np.repeat(image[..., None], 3, axis=2).astype(np.uint8)
        rgb[res.masks["full_initial"]] = (255, 40, 40)
        rgb[res.masks["full_refined"]] = (40, 255, 40)
        both = res.masks["full_initial"] & res.masks["full_refined"]
        rgb[both] = (255, 255, 0)
        ax.imshow(rgb)
        ax.set_title(
            f"{stamp} {res.reason} {res.fiducial_correction_mm:.2f} mm", fontsize=8
        )
    fig.suptitle("red: initial, green: refined, yellow: both (full labels)")
    fig.tight_layout()
    return fig


def lambda_figure(table):
    """Return the lambda plot: correction, bounds, discards (and error) vs lambda."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = ["correction_mm_median", "bound_hit_fraction", "discarded_fraction"]
    if "label_error_mm_median" in table:
        columns.append("label_error_mm_median")
    fig, ax = plt.subplots(1, len(columns), figsize=(4 * len(columns), 3.5))
    for a, col in zip(ax, columns, strict=True):
        a.semilogx(table["lam"], table[col], "o-")
        a.set_xlabel("lambda (per mm of fiducial displacement)")
        a.set_title(col)
    fig.tight_layout()
    return fig
