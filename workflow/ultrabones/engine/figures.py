"""Figures of the label engine (returned as matplotlib figures; the CLI saves them)."""

from __future__ import annotations

import numpy as np

__all__ = ["contour_grid", "lambda_figure", "sweep_timeline"]


def contour_grid(images, results, stamps, *, columns: int = 4, titles=None):
    """Return a grid of frames with initial (red) and refined (green) full labels.

    ``titles`` (one string per frame) replaces the default title (timestamp, reason,
    correction).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.4 * rows))
    for ax in np.ravel(axes):
        ax.axis("off")
    if titles is None:
        titles = [
            f"{stamp} {res.reason} {res.fiducial_correction_mm:.2f} mm"
            for res, stamp in zip(results, stamps, strict=True)
        ]
    for ax, image, res, title in zip(
        np.ravel(axes), images, results, titles, strict=False
    ):
        rgb = np.repeat(image[..., None], 3, axis=2).astype(np.uint8)
        rgb[res.masks["full_initial"]] = (255, 40, 40)
        rgb[res.masks["full_refined"]] = (40, 255, 40)
        both = res.masks["full_initial"] & res.masks["full_refined"]
        rgb[both] = (255, 255, 0)
        ax.imshow(rgb)
        ax.set_title(title, fontsize=8)
    fig.suptitle("red: initial, green: refined, yellow: both (full labels)")
    fig.tight_layout()
    return fig


def sweep_timeline(table):
    """Return the correction and the confidence of a sweep's frames along time.

    ``table`` is a bench table (``timestamp``, pose and refined pose columns,
    ``fiducial_correction_mm``, ``confidence``, ``reason``, optionally ``refit``).
    The top panel shows each translation component of the correction in the probe
    frame (mm; :func:`~ultrabones.engine.consistency.probe_corrections`, where a
    calibration error is constant), the frames refined again from the sweep's
    correction circled; the middle one the mean fiducial correction, the bottom one
    the confidence; discarded frames are crosses.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = table.sort_values("timestamp")
    s = (t["timestamp"] - t["timestamp"].iloc[0]).to_numpy() / 1000.0
    kept = (t["reason"] == "ok").to_numpy()
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    _plot_probe_corrections(axes[0], t, s)
    for ax, col, label in (
        (axes[1], "fiducial_correction_mm", "fiducial correction (mm)"),
        (axes[2], "confidence", "confidence"),
    ):
        v = t[col].to_numpy()
        ax.plot(s[kept], v[kept], ".", ms=4, label="kept")
        ax.plot(s[~kept], v[~kept], "x", color="C3", ms=5, label="discarded")
        ax.set_ylabel(label)
    axes[2].legend(fontsize=7)
    axes[2].set_xlabel("time since the first frame (s)")
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


def _plot_probe_corrections(ax, t, s) -> None:
    """Plot the correction's probe-frame translation of frames ``t`` at times ``s``.

    The frames refined again from the sweep's correction (``refit``) are circled.
    """
    from ..transforms import POSE_COLUMNS
    from .consistency import probe_corrections

    eps = probe_corrections(
        t[list(POSE_COLUMNS)].to_numpy(float),
        t[[f"{c}_refined" for c in POSE_COLUMNS]].to_numpy(float),
    )
    refit = t["refit"].to_numpy(bool) if "refit" in t else np.zeros(len(t), bool)
    for k, axis in enumerate("xyz"):
        ax.plot(s, eps[:, k], ".-", ms=3, lw=0.6, label=f"probe {axis}")
    ax.plot(
        np.repeat(s[refit], 3),
        eps[refit, :3].ravel(),
        "o",
        mfc="none",
        color="k",
        ms=5,
        label="refined again",
    )
    ax.set_ylabel("correction, probe frame (mm)")
    ax.legend(fontsize=7, ncol=3)
