"""Per-frame tasks of a sweep: one per row of the poses table, with its seed."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from ..transforms import POSE_COLUMNS

__all__ = ["FrameTask", "frame_seed", "plan_tasks"]


@dataclass(frozen=True)
class FrameTask:
    """One row of the poses table, ready for a worker.

    Attributes
    ----------
    timestamp : int
        ms.
    image_path : str
        Frame PNG, or "" when the row has no image.
    pose : ndarray of shape (6,)
        Initial T_CT<-US as record columns (NaN when invalid).
    status : str
        The poses table's reason code for the row (``ok`` when usable).
    seed : int
        Per-frame seed of the refinement.
    """

    timestamp: int
    image_path: str
    pose: np.ndarray
    status: str
    seed: int


def frame_seed(seed: int, specimen: str, sweep: str, timestamp: int) -> int:
    """Derive a frame's seed from the run seed, its sweep and its timestamp.

    >>> frame_seed(0, "S01", "tibia-1", 5) == frame_seed(0, "S01", "tibia-1", 5)
    True
    """
    parts = [seed, zlib.crc32(specimen.encode()), zlib.crc32(sweep.encode()), timestamp]
    return int(np.random.SeedSequence(parts).generate_state(1)[0])


def plan_tasks(record, *, seed: int, specimen: str, sweep: str) -> list[FrameTask]:
    """Return one task per row of an opened record's poses table."""
    poses = record.poses
    params = poses[list(POSE_COLUMNS)].to_numpy(np.float64)
    return [
        FrameTask(
            timestamp=int(t),
            image_path=str(record.image_path(t)) if image else "",
            pose=params[i],
            status=str(status),
            seed=frame_seed(seed, specimen, sweep, int(t)),
        )
        for i, (t, image, status) in enumerate(
            zip(poses["timestamp"], poses["image"], poses["status"], strict=True)
        )
    ]
