"""Frame sources and figures for the appearance comparison.

Reads real records (labels at their initial poses), plain image folders (no labels)
and simulated cohorts (true ``label_full``), and draws the picture grid and the
curves figure. Example frames come back as ``(image, spacing_mm, title)``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..io.png import read_png
from ..layout import sweep_folder, truth_of
from .appearance import FrameSet, accumulate
from .geometry import ImageGrid, bone_scene, full_label

__all__ = ["curves_figure", "grid_figure", "measure_real", "measure_sim"]

log = logging.getLogger(__name__)
# Image folders carry no calibration: the references come from the same scanner and
# depth setting as the sample (811 x 950 frames), so they take its spacing.
SAMPLE_SPACING_MM = (0.05392, 0.05392)


def _picks(n: int, k: int) -> set:
    """Return ``k`` frame indices spread evenly over ``n`` (part midpoints)."""
    return set(((np.arange(k) + 0.5) * n / k).astype(int).tolist()) if n else set()


def _measure_folder(folder: Path, acc: FrameSet, examples: int) -> list:
    paths = sorted(folder.glob("*.png"))
    picks, out = _picks(len(paths), examples), []
    for i, path in enumerate(paths):
        image = read_png(path)
        accumulate(acc, image, spacing_mm=SAMPLE_SPACING_MM)
        if i in picks:
            out.append((image, SAMPLE_SPACING_MM, f"real {path.stem}"))
    return out


def measure_real(folder: Path, acc: FrameSet, *, examples: int = 2) -> list:
    """Add a real record (labels at its initial poses) or an image folder to ``acc``.

    A folder without ``sweep_initial.csv`` is a plain image folder: its frames count
    for the label-free statistics only, at the sample's pixel spacing.

    Returns
    -------
    examples : list of (image, spacing_mm, title)
        ``examples`` frames spread evenly over the folder, for the picture grid.
    """
    if not (folder / "sweep_initial.csv").is_file():
        return _measure_folder(folder, acc, examples)
    from ..io.record import open_record
    from ..io.stl import read_stl

    record = open_record(folder)
    cal = record.calibration
    grid = ImageGrid(cal.shape, cal.pixel_spacing_mm)
    scene = bone_scene({k: read_stl(p) for k, p in record.bone_paths.items()})
    poses = record.ct_from_probe()
    rows = np.flatnonzero(record.poses["image"].to_numpy() != "")
    picks, out = _picks(rows.size, examples), []
    for n, i in enumerate(rows):
        name = record.poses["image"].iloc[i]
        image = read_png(folder / "UltrasoundImages" / name)
        label = full_label(scene, poses[i] @ cal.probe_from_image, grid)
        accumulate(acc, image, label, spacing_mm=cal.pixel_spacing_mm)
        if n in picks:
            out.append((image, cal.pixel_spacing_mm, f"real {Path(name).stem}"))
    return out


def measure_sim(
    cohort: Path, acc: FrameSet, *, max_frames: int, examples: int = 4
) -> list:
    """Add simulated frames with their true full labels to ``acc``.

    Reads the first ``max_frames`` frames of every sweep; returns ``examples``
    frames spread evenly over all of them as ``(image, spacing_mm, title)``.
    """
    from ..io.calibration import read_calibration

    items = []
    for sweep in sorted(cohort.glob(sweep_folder(".", "*", "*").as_posix())):
        spacing = read_calibration(sweep / "calibration.yaml").pixel_spacing_mm
        truth = truth_of(sweep, "sweep") / "label_full"
        paths = sorted((sweep / "UltrasoundImages").glob("*.png"))[:max_frames]
        items += [(p, truth / p.name, spacing, sweep) for p in paths]
    picks, out = _picks(len(items), examples), []
    for i, (path, truth, spacing, sweep) in enumerate(items):
        image = read_png(path)
        accumulate(acc, image, read_png(truth) > 0, spacing_mm=spacing)
        if i in picks:
            title = f"sim {sweep.parent.parent.name} {sweep.name} {path.stem}"
            out.append((image, spacing, title))
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def grid_figure(path: Path, real: list, sim: list) -> None:
    """Write real (top row) and simulated (bottom row) frames at one mm scale."""
    from ..io.tables import save_figure

    plt = _pyplot()
    n = max(1, len(real), len(sim))
    fig, axes = plt.subplots(
        2, n, figsize=(4 * n, 7.5), squeeze=False, sharex=True, sharey=True
    )
    for r, items in enumerate((real, sim)):
        for c, ax in enumerate(axes[r]):
            if c >= len(items):
                ax.set_visible(False)
                continue
            image, (sx, sy), title = items[c]
            extent = (0, image.shape[1] * sx, image.shape[0] * sy, 0)
            ax.imshow(image, cmap="gray", vmin=0, vmax=255, extent=extent)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("lateral (mm)")
        axes[r, 0].set_ylabel("depth (mm)")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def curves_figure(path: Path, sets: dict) -> None:
    """Write the depth profile, tissue spectrum and mean bone profile of each set.

    ``sets`` maps a set's name to its ``appearance.curves`` dict.
    """
    from ..io.tables import save_figure

    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = (
        ("depth_mm", "tissue_mean", "depth (mm)", "mean tissue grey level"),
        ("frequency_per_mm", "power_db", "frequency (cycles/mm)", "power (dB)"),
        ("profile_mm", "bone_profile", "from echo peak (mm)", "mean grey level"),
    )
    for ax, (x, y, xlabel, ylabel) in zip(axes, panels, strict=True):
        for name, c in sets.items():
            if c[x] and c[y] and (y != "bone_profile" or any(c[y])):
                ax.plot(c[x], c[y], label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ax.lines:
            ax.legend(fontsize=8)
    fit = next(iter(sets.values()))["fit_mm"] if sets else None
    if fit:
        axes[0].axvspan(*fit, color="0.9", zorder=0)  # the attenuation fit range
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
