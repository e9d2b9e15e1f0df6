"""Evaluation figures: metric curves against eps (paper Fig. 4) and the Otsu histogram.

Functions build a :class:`matplotlib.figure.Figure` without pyplot (no global state,
Agg canvas); :func:`ultrabones.io.tables.save_figure` saves it deterministically.
"""

from __future__ import annotations

import numpy as np

__all__ = ["audit_frames_figure", "histogram_figure", "metric_curves_figure"]

_METRICS = (("accuracy", "Accuracy"), ("completeness", "Completeness"), ("f1", "F1"))
_STYLE = {"all": ("k", "-"), "high": ("tab:red", "--"), "low": ("tab:blue", ":")}


def _figure(width_in: float, height_in: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def metric_curves_figure(result: dict, *, title: str = ""):
    """Plot Acc, Com and F1 against eps for every region of an evaluation result.

    Parameters
    ----------
    result : dict
        Output of :func:`ultrabones.evaluate.evaluate_label_sets`.
    title : str
        Figure title.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    fig = _figure(10.0, 3.2)
    axes = fig.subplots(1, 3, sharey=True)
    eps = np.asarray(result["eps_mm"], dtype=float)
    for ax, (key, label) in zip(axes, _METRICS, strict=True):
        for region, values in result["regions"].items():
            y = np.array([np.nan if v is None else v for v in values[key]], float)
            colour, line = _STYLE[region]
            ax.plot(eps, y, color=colour, linestyle=line, marker="o", label=region)
        ax.set_xscale("log")
        ax.set_xlabel("eps (mm)")
        ax.set_title(label)
        ax.set_ylim(0.0, 1.02)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("mean over frames")
    axes[-1].legend(loc="lower right")
    fig.suptitle(title or f"{result['frames']} frames")
    fig.tight_layout()
    return fig


def histogram_figure(counts, threshold: float, *, title: str = ""):
    """Plot the label-pixel intensity distribution with the Otsu threshold line.

    Parameters
    ----------
    counts : array_like of shape (256,)
        Pixel counts per grey level.
    threshold : float
        Otsu threshold (grey level).
    title : str

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    counts = np.asarray(counts, dtype=float)
    fig = _figure(5.0, 3.2)
    ax = fig.subplots()
    total = counts.sum()
    ax.bar(
        np.arange(counts.size),
        counts / total if total else counts,
        width=1.0,
        color="0.5",
    )
    ax.axvline(threshold, color="tab:red", label=f"Otsu = {threshold:g}")
    ax.set_xlabel("pixel intensity (grey level)")
    ax.set_ylabel("fraction of label pixels")
    ax.set_xlim(0, counts.size - 1)
    ax.legend()
    ax.set_title(title or f"{int(total)} label pixels")
    fig.tight_layout()
    return fig


def audit_frames_figure(rows: list[dict], *, title: str = ""):
    """Plot each frame's echo Chamfer distance per pose stage along the sweep.

    Parameters
    ----------
    rows : list of dict
        ``per_frame`` rows of :func:`ultrabones.audit.audit_sweep`.
    title : str

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    fig = _figure(7.0, 3.2)
    ax = fig.subplots()
    stamps = np.array([r["timestamp"] for r in rows], dtype=float)
    stages = sorted({k for r in rows for k in r if k.startswith("echo_cd_")})
    colours = {"initial": "tab:orange", "refined": "tab:green", "truth": "k"}
    for key in stages:
        stage = key.removeprefix("echo_cd_").removesuffix("_mm")
        y = np.array([np.nan if r.get(key) is None else r[key] for r in rows], float)
        ax.plot(stamps, y, ".", color=colours.get(stage, "0.5"), label=stage)
    ax.set_xlabel("timestamp (ms)")
    ax.set_ylabel("echo CD to CT (mm)")
    ax.grid(True, alpha=0.3)
    if stages:
        ax.legend()
    ax.set_title(title or f"{len(rows)} frames")
    fig.tight_layout()
    return fig
