"""The frame files of the appearance comparison (``studies.appearance``).

Three sources: plain image folders (frames only), records (frames, poses and bone
models, opened with ``io.record.open_record``) and simulated cohorts (frames and their
true ``label_full``). The frames themselves are read with ``io.png.read_png``.
"""

from __future__ import annotations

from pathlib import Path

from ..layout import sweep_folder, truth_of
from .calibration import read_calibration
from .record import IMAGES_DIR, POSES_FILE

__all__ = ["SAMPLE_SPACING_MM", "cohort_frames", "folder_images", "is_record"]

# Image folders carry no calibration: the references come from the same scanner and
# depth setting as the sample (811 x 950 frames), so they take its spacing.
SAMPLE_SPACING_MM = (0.05392, 0.05392)


def is_record(folder: Path) -> bool:
    """Return whether ``folder`` is a record (it has ``sweep_initial.csv``)."""
    return (Path(folder) / POSES_FILE).is_file()


def folder_images(folder: Path) -> list[Path]:
    """Return the frames (``*.png``) of a plain image folder, sorted by name."""
    return sorted(Path(folder).glob("*.png"))


def cohort_frames(cohort: Path, *, max_frames: int) -> list[tuple]:
    """Return the first ``max_frames`` frames of every sweep of a simulated cohort.

    Returns
    -------
    frames : list of (image, label, spacing_mm, sweep)
        The frame's PNG, its true ``label_full`` PNG, the sweep's pixel spacing
        (mm) and the sweep folder, sweep by sweep in name order.
    """
    items = []
    for sweep in sorted(Path(cohort).glob(sweep_folder(".", "*", "*").as_posix())):
        spacing = read_calibration(sweep / "calibration.yaml").pixel_spacing_mm
        truth = truth_of(sweep, "sweep") / "label_full"
        paths = sorted((sweep / IMAGES_DIR).glob("*.png"))[:max_frames]
        items += [(p, truth / p.name, spacing, sweep) for p in paths]
    return items
