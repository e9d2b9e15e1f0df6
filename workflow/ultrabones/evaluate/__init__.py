"""Label metrics in mm (accuracy, completeness, F1), Otsu intensity split, figures.

See ``docs/evaluation.md`` for the definitions and edge cases.
"""

from .compare import evaluate_label_sets, match_frames, resolve_spacing
from .intensity import label_histogram, otsu_threshold
from .metrics import (
    DEFAULT_EPS_MM,
    REGIONS,
    FrameScores,
    aggregate_scores,
    fractions_within,
    frame_scores,
    region_masks,
)

__all__ = [
    "DEFAULT_EPS_MM",
    "REGIONS",
    "FrameScores",
    "aggregate_scores",
    "evaluate_label_sets",
    "fractions_within",
    "frame_scores",
    "label_histogram",
    "match_frames",
    "otsu_threshold",
    "region_masks",
    "resolve_spacing",
]
