"""The calibration's figure: the lag grid's error curve (``ultrabones calibrate``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io.tables import save_figure, write_table

__all__ = ["write_error_curve"]


def write_error_curve(
    stem: str | Path, dt_ms: np.ndarray, columns: dict, *, best_dt_ms: float
) -> None:
    """Write the lag grid's error curve as ``<stem>.csv`` and ``<stem>.png``.

    Parameters
    ----------
    stem : str or Path
        Output path without suffix.
    dt_ms : ndarray of shape (d,)
        Candidate lags.
    columns : dict of str to ndarray of shape (d,)
        Error columns (mm); the first is plotted.
    best_dt_ms : float
        Chosen lag, marked on the plot.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = Path(stem)
    table = pd.DataFrame({"dt_ms": np.round(dt_ms, 4), **columns})
    write_table(stem.with_suffix(".csv"), table, precision="measured")
    name, values = next(iter(columns.items()))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(dt_ms, values, lw=1)
    ax.axvline(best_dt_ms, color="C3", ls="--", label=f"dt = {best_dt_ms:.1f} ms")
    ax.set_xlabel("lag dt (ms)")
    ax.set_ylabel(name)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, stem.with_suffix(".png"))
    plt.close(fig)
