"""Frame sources for the appearance comparison: real records, image folders, cohorts."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..io.png import read_png
from .appearance import FrameSet, accumulate
from .geometry import ImageGrid, bone_scene, full_label

__all__ = ["appearance_figure", "measure_real", "measure_sim"]

log = logging.getLogger(__name__)
_EXAMPLES = 3


def measure_real(folder: Path, acc: FrameSet) -> list:
    """Add a real record (labels at its initial poses) or an image folder to ``acc``.

    Returns a few ``(image, label)`` examples for the figure.
    """
    if not (folder / "sweep_initial.csv").is_file():
        paths = sorted(folder.glob("*.png"))
        for path in paths:
            accumulate(acc, read_png(path))
        return []
    from ..io.record import open_record
    from ..io.stl import read_stl

    record = open_record(folder)
    cal = record.calibration
    grid = ImageGrid(cal.shape, cal.pixel_spacing_mm)
    scene = bone_scene({k: read_stl(p) for k, p in record.bone_paths.items()})
    examples = []
    poses = record.ct_from_probe()
    for i in np.flatnonzero(record.poses["image"].to_numpy() != ""):
        image = read_png(folder / "UltrasoundImages" / record.poses["image"].iloc[i])
        label = full_label(scene, poses[i] @ cal.probe_from_image, grid)
        accumulate(acc, image, label, spacing_mm=cal.pixel_spacing_mm)
        if label.sum() > 2000 and len(examples) < _EXAMPLES and i % 97 == 0:
            examples.append((image, label))
    return examples


def measure_sim(cohort: Path, acc: FrameSet, *, max_frames: int) -> list:
    """Add simulated frames with their true full labels to ``acc``."""
    from ..io.calibration import read_calibration

    examples = []
    for sweep in sorted(cohort.glob("specimens/*/sweeps/*")):
        spacing = read_calibration(sweep / "calibration.yaml").pixel_spacing_mm
        truth = cohort / "truth" / sweep.relative_to(cohort) / "label_full"
        for path in sorted((sweep / "UltrasoundImages").glob("*.png"))[:max_frames]:
            image, label = read_png(path), read_png(truth / path.name) > 0
            accumulate(acc, image, label, spacing_mm=spacing)
            if (
                label.sum() > 500
                and len(examples) < _EXAMPLES
                and path.stem.endswith("1")
            ):
                examples.append((image, label))
    return examples


def appearance_figure(path: Path, sim: list, real: list) -> None:
    """Write simulated (top) and real (bottom) example frames side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io.masks import write_figure

    rows = [("simulated", sim), ("real", real)]
    n = max(1, max(len(s) for _, s in rows))
    fig, axes = plt.subplots(2, n, figsize=(4 * n, 7), squeeze=False)
    for r, (name, items) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(items):
                ax.imshow(items[c][0], cmap="gray", vmin=0, vmax=255, aspect="auto")
                ax.set_title(f"{name} {c + 1}")
    fig.tight_layout()
    write_figure(path, fig)
    plt.close(fig)
