"""The shared vocabulary: reason codes, frame statuses, mask and feature names.

The ground floor of the package: it imports nothing of it, so every stage (``io``
included) can name these without depending on the engine. A frame is either kept
(reason ``ok``) or rejected with exactly one reason. The codes are stable identifiers
written into stores and tables; extend the lists here, never with free text elsewhere.
"""

from __future__ import annotations

import enum

__all__ = [
    "CONFIDENCE_FEATURES",
    "DISCARD_REASONS",
    "MASKS",
    "STATUSES",
    "UNPROCESSED_REASONS",
    "Reason",
    "is_discard",
]


class Reason(enum.StrEnum):
    """Why a frame is not in the release (or ``OK`` when it is)."""

    OK = "ok"
    #: Mean probe-fiducial correction of the refinement exceeds the bound (1 mm).
    CORRECTION_TOO_LARGE = "correction_too_large"
    #: The refined pose lies on the edge of the search box (only with the engine's
    #: ``reject_at_bound`` option): the best correction may lie outside it.
    CORRECTION_AT_BOUND = "correction_at_bound"
    #: The frame's sweep-level confidence (``engine.confidence``) is below the
    #: engine's ``min_confidence``: the label is more likely wrong than right.
    LOW_CONFIDENCE = "low_confidence"
    #: No bone surface near the image plane at the initial pose.
    NO_BONE_IN_VIEW = "no_bone_in_view"
    #: Too few pixels in the CT/image intersection to refine reliably.
    TOO_FEW_INTERSECTION_PIXELS = "too_few_intersection_pixels"
    #: The image is too dark near the bone to carry an echo (no evidence to align to).
    NO_BONE_ECHO = "no_bone_echo"
    #: Frame time outside the tracker coverage or inside a long dropout.
    NO_TRACKING = "no_tracking"
    #: The poses table has a row but no image file exists for it.
    NO_IMAGE = "no_image"
    #: The image file exists but cannot be decoded.
    UNREADABLE_IMAGE = "unreadable_image"
    #: The image does not have the calibrated size.
    WRONG_IMAGE_SIZE = "wrong_image_size"
    #: The pose is NaN, not rigid or otherwise unusable.
    INVALID_POSE = "invalid_pose"
    #: The engine raised on this frame (logged with the traceback); never silent.
    ENGINE_ERROR = "engine_error"


#: Reasons that count as discards among frames that have an image.
DISCARD_REASONS = tuple(r for r in Reason if r not in (Reason.OK, Reason.NO_IMAGE))
#: Reasons a frame gets without its image reaching the refinement, or when the engine
#: raised: a sweep of only these has nothing to publish.
UNPROCESSED_REASONS = (
    Reason.NO_TRACKING,
    Reason.NO_IMAGE,
    Reason.UNREADABLE_IMAGE,
    Reason.WRONG_IMAGE_SIZE,
    Reason.INVALID_POSE,
    Reason.ENGINE_ERROR,
)


def is_discard(reason: str) -> bool:
    """Return True when ``reason`` discards a frame that has an image."""
    return Reason(reason) in DISCARD_REASONS


#: Frame status values, in the order of their store codes.
STATUSES = ("kept", "discarded", "no_image")

#: Mask variables of a frame, in store order; ``label`` is the final label, the others
#: its stages (``docs/engine.md``).
MASKS = ("label", "full_initial", "full_refined", "shadow", "oblique")

#: Confidence features (``engine.confidence``), in the order of the coefficients of
#: ``EngineParams.confidence_model`` after the intercept, and of the store's
#: ``confidence_features``.
CONFIDENCE_FEATURES = ("evidence_per_mm", "inside_fraction", "at_bound", "neighbour_mm")
